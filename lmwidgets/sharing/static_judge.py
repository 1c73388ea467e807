"""A judge's verdict in the static copy (``--judge``): the same chip as the live view (its tone
told by the border, in theme colours), its tooltip naming the judge, the rubric and whether the
verdict format was enforced while decoding ("format enforced while decoding" or "free text"),
and the judge's reasoning folded in a ``<details>`` (escaped; no script needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmwidgets.core.safe_text import STATIC_PROMPT_LIMIT, escape_html, shorten, truncate
from lmwidgets.prompting.judging import shown_verdict
from lmwidgets.sharing.static_style import (
    _CHIP,
    BG_RAISED,
    BORDER_STRONG,
    ERROR,
    FG_STRONG,
    PRE,
    SMALL,
    SUCCESS,
    WARN,
)

if TYPE_CHECKING:
    from lmwidgets.core.results import Result

_TONES = {"good": SUCCESS, "mid": WARN, "bad": ERROR, "none": BORDER_STRONG}
_REASONING_LIMIT = 200


def judge_line(result: Result) -> str:
    """``'Judge: judge 4/5 (judged by j · rubric quality (1-5)) · Correct and clear.'``; ''
    without a judge verdict to show."""
    shown = shown_verdict(result.judge)
    if shown is None:
        return ""
    why = shorten(" ".join(shown["reasoning"].split()), _REASONING_LIMIT)
    return f"Judge: {shown['chip']} ({shown['title']})" + (f" · {why}" if why else "")


def judge_html(result: Result) -> str:
    """The verdict chip (escaped; its tooltip names the judge, the rubric and whether the format
    was enforced while decoding)."""
    shown = shown_verdict(result.judge)
    if shown is None:
        return ""
    tone = _TONES.get(shown["tone"], BORDER_STRONG)
    style = "dashed" if shown["tone"] == "none" else "solid"
    return (
        f' <span class="lmw-judge" data-tone="{escape_html(shown["tone"])}" '
        f'title="{escape_html(shown["title"])}" style="{_CHIP};background:{BG_RAISED};'
        f'color:{FG_STRONG};border:2px {style} {tone};font-weight:bold">'
        f"{escape_html(shown['chip'])}</span>"
    )


def reasoning_html(result: Result) -> str:
    """The judge's reasoning, folded (``<details>``, escaped); '' without one."""
    shown = shown_verdict(result.judge)
    if shown is None or not shown["reasoning"]:
        return ""
    text, _ = truncate(shown["reasoning"], STATIC_PROMPT_LIMIT)
    return (
        f'<details class="lmw-judgewhy" style="margin-top:4px"><summary style="{SMALL};'
        f'cursor:pointer">judge\'s reasoning</summary><pre style="{PRE}">'
        f"{escape_html(text)}</pre></details>"
    )
