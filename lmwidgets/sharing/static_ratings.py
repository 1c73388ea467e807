"""Your own ratings in the static copy: a thumbs chip per rated cell and one line of the
pairwise preferences (escaped; colour is never the only mark: the chips say it in words)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmwidgets.core.safe_text import LABEL_LIMIT, escape_html, shorten
from lmwidgets.sharing.static_style import ERROR_BG, INVERSE_FG, SMALL, SUCCESS_BG, WRAP

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result

#: At most this many preferences are written out (all of them are in the records).
MAX_SHOWN = 12

_WORDS = {"up": "▲ liked", "down": "▼ disliked"}


def rating_html(result: Result) -> str:
    """``▲ liked`` / ``▼ disliked`` on the success / error background ('' when unrated)."""
    rating = result.rating
    if rating is None:
        return ""
    background = SUCCESS_BG if rating == "up" else ERROR_BG
    return (
        f'<span class="lmw-rating" data-rating="{rating}" style="display:inline-block;'
        f"border-radius:3px;padding:0 5px;margin:1px 2px 1px 0;font-size:12px;line-height:1.5;"
        f'background:{background};color:{INVERSE_FG};font-weight:bold">{_WORDS[rating]}</span>'
    )


def rating_line(result: Result) -> str:
    """``Rating: ▲ liked`` for the markdown and text copies ('' when unrated)."""
    return f"Rating: {_WORDS[result.rating]}" if result.rating else ""


def preference_lines(comparison: Comparison) -> list[str]:
    """``Preferred: cot over zero-shot (blind); a = b (tie)``, with the item in a dataset."""
    found = comparison.preferences
    if not found:
        return []
    dataset = len(comparison.rows) > 1
    said = []
    for p in found[:MAX_SHOWN]:
        a, b = shorten(p.a, LABEL_LIMIT), shorten(p.b, LABEL_LIMIT)
        if p.tie:
            text = f"{a} = {b} (tie)"
        else:
            loser = b if p.winner == p.a else a
            text = f"{shorten(p.winner or '', LABEL_LIMIT)} over {loser}"
        extras = [w for w, on in (("blind", p.blind), (f"item {p.row + 1}", dataset)) if on]
        said.append(text + (f" ({', '.join(extras)})" if extras else ""))
    more = len(found) - MAX_SHOWN
    return ["Preferred: " + "; ".join(said) + (f"; and {more} more" if more > 0 else "")]


def preferences_html(comparison: Comparison) -> str:
    """The preference line under the caption ('' without preferences)."""
    return "".join(
        f'<div class="lmw-preferences" style="{SMALL};margin-bottom:4px;{WRAP}">'
        f"{escape_html(line)}</div>"
        for line in preference_lines(comparison)
    )
