"""What registered axis kinds (:mod:`lmwidgets.core.axis_kinds`) show in a static copy's cell:
their own HTML beside the answer and after the text, their lines in the Markdown copy, and a
neutral chip for each generic badge (a kind without HTML of its own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lmwidgets.core.axis_kinds import all_kinds, badges
from lmwidgets.core.safe_text import LABEL_LIMIT, SHORT_LIMIT, escape_html, shorten
from lmwidgets.sharing.static_style import _CHIP, BG_RAISED, BORDER, FG_STRONG

if TYPE_CHECKING:
    from lmwidgets.core.results import Result


def badge_html(badge: dict[str, str]) -> str:
    """A generic badge as a chip (escaped): its text, its title on hover, its kind and state
    as data attributes."""
    text = escape_html(shorten(badge["text"], LABEL_LIMIT))
    title = escape_html(shorten(badge["title"], SHORT_LIMIT))
    return (
        f'<span class="lmw-axis-badge" data-kind="{escape_html(badge["kind"])}" '
        f'data-state="{escape_html(badge["state"])}" title="{title}" style="{_CHIP};'
        f'background:{BG_RAISED};color:{FG_STRONG};border:1px solid {BORDER}">{text}</span>'
    )


def _hooks(name: str) -> list[Callable[..., str]]:
    """Every registered kind's hook ``name``, in registration order."""
    return [hook for hook in (kind.hook(name) for kind in all_kinds()) if hook is not None]


def kind_head_html(result: Result) -> str:
    """The kinds' marks beside the answer (a structured answer's flag, a probe's verdict),
    then the generic badges."""
    parts = [head(result) for head in _hooks("static_head")]
    return "".join(parts) + "".join(badge_html(badge) for badge in badges(result))


def kind_body_html(result: Result) -> str:
    """The kinds' HTML after the cell's text (a structured JSON answer, folded)."""
    return "".join(body(result) for body in _hooks("static_body"))


def kind_lines(result: Result) -> list[str]:
    """The kinds' plain lines in the Markdown copy (a probe's verdict), then the badges'."""
    lines = [line(result) for line in _hooks("static_line")]
    lines += [
        f"{badge['text']} ({badge['title']})" if badge["title"] else badge["text"]
        for badge in badges(result)
    ]
    return [line for line in lines if line]
