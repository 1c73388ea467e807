"""Inline styles of the static copy, in JupyterLab's theme variables (light fallbacks).

The static copy has no stylesheet and no script, so every colour is an inline ``var(--jp-…,
fallback)``: JupyterLab's theme (light, dark, high contrast) fills them in; nbconvert and
GitHub use the fallbacks. Text never sits on a background whose text colour it inherits: a
chip sets both. Colour is never the only mark: chips say what they mean in words or letters.

Contrast (WCAG, >= 4.5 for text) of the colour pairs, in JupyterLab Light / Dark:

* answer chip: ui-font-color0 on layout-color2 (black on #eee / white on #424242);
* ✓ pill: ui-inverse-font-color0 on success-color0 (white on #1b5e20 / black on #388e3c);
* ✗ pill: ui-inverse-font-color0 on error-color1 (white on #d32f2f / black on #f44336).

Every helper here returns markup around text it escapes itself; ``style`` values are constants.
"""

from __future__ import annotations

from lmwidgets.core.safe_text import escape_html

#: Text colours.
FG = "var(--jp-ui-font-color1,#222)"
FG_STRONG = "var(--jp-ui-font-color0,#000)"
FG_MUTED = "var(--jp-ui-font-color2,#555)"
#: Backgrounds (each used with an explicit text colour).
BG = "var(--jp-layout-color1,#fff)"
BG_RAISED = "var(--jp-layout-color2,#eee)"
BORDER = "var(--jp-border-color2,#ddd)"
BORDER_STRONG = "var(--jp-border-color1,#bbb)"
#: Decorations (borders only: text on them would not read in both themes).
WARN = "var(--jp-warn-color1,#f57c00)"
SUCCESS = "var(--jp-success-color1,#1a7f37)"
ERROR = "var(--jp-error-color1,#c62828)"
INVERSE_FG = "var(--jp-ui-inverse-font-color0,#fff)"
SUCCESS_BG = "var(--jp-success-color0,#1a7f37)"
ERROR_BG = "var(--jp-error-color1,#c62828)"

#: Group colours for agreeing answers (a border; the group letter carries the meaning).
PALETTE = (
    "var(--jp-brand-color1,#1976d2)",
    "var(--jp-warn-color1,#f57c00)",
    "var(--jp-info-color1,#0097a7)",
    "var(--jp-error-color2,#e57373)",
    "var(--jp-accent-color2,#81c784)",
)

#: Wrapping: JupyterLab sets ``word-break: break-all`` on ``pre``; this wins (inline).
WRAP = "word-break:normal;overflow-wrap:anywhere"
ROOT = f"color:{FG};font-size:13px;line-height:1.4"
CELL = (
    f"border:1px solid {BORDER};padding:6px;vertical-align:top;text-align:left;"
    f"min-width:16em;background:{BG};color:{FG};{WRAP}"
)
HEAD = f"{CELL};background:{BG_RAISED};color:{FG_STRONG};font-weight:bold"
#: A row's header (a strategy, a dataset input): narrower than the columns, wide enough that
#: an axis name ("temperature \\ trial") is not broken mid-word in a border-box layout.
ROW_HEAD = f"{HEAD};min-width:9em;width:1%"
INPUT_CELL = f"{CELL};min-width:10em"
PRE = (
    f"white-space:pre-wrap;{WRAP};margin:0;padding:0;font-family:monospace;font-size:12px;"
    "color:inherit;background:transparent;border:none"
)
SMALL = f"color:{FG_MUTED};font-size:11px"
TABLE = "border-collapse:collapse;table-layout:auto;width:100%;margin:0"
SCROLL = "overflow-x:auto;max-width:100%"
_CHIP = (
    "display:inline-block;border-radius:3px;padding:0 5px;margin:1px 2px 1px 0;"
    f"font-size:12px;line-height:1.5;{WRAP}"
)


def group_letter(group: int | None) -> str:
    """``A`` for group 0, ``B`` for 1... (``AA`` after ``Z``); ``–`` for no answer."""
    if group is None:
        return "–"
    letters = ""
    group += 1
    while group:
        group, rest = divmod(group - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def group_color(group: int | None) -> str:
    """The border colour of a group's mark (grey for no answer)."""
    return BORDER_STRONG if group is None else PALETTE[group % len(PALETTE)]


def answer_chip(answer: str | None, group: int | None = None, grouped: bool = False) -> str:
    """The answer in a chip; with ``grouped``, the group's letter in front and its colour."""
    edge = f"border-left:4px solid {group_color(group)}" if grouped else ""
    mark = (
        f'<b class="lmw-group" style="margin-right:4px">{escape_html(group_letter(group))}</b>'
        if grouped
        else ""
    )
    shown = (
        f'<code style="font-family:monospace;color:inherit;background:transparent;padding:0">'
        f"{escape_html(answer)}</code>"
        if answer is not None
        else '<i style="font-style:italic">no answer</i>'
    )
    return (
        f'<span class="lmw-answer" style="{_CHIP};background:{BG_RAISED};color:{FG_STRONG};'
        f'border:1px solid {BORDER_STRONG};{edge}">{mark}{shown}</span>'
    )


def group_chip(group: int | None) -> str:
    """The agreement group's letter alone, in its colour (for an answer that is the text)."""
    return (
        f'<span class="lmw-answer" style="{_CHIP};background:{BG_RAISED};color:{FG_STRONG};'
        f'border:1px solid {BORDER_STRONG};border-left:4px solid {group_color(group)}">'
        f'<b class="lmw-group">{escape_html(group_letter(group))}</b>'
        "</span>"
    )


def verdict_pill(correct: bool | None, words: str = "") -> str:
    """``✓ contains Paris`` / ``✗ got 7 · expected 6`` on a success / error background (text
    colour set too); a cell that was not scored gets a neutral chip."""
    if correct is None:
        return (
            f'<span class="lmw-verdict" style="{_CHIP};background:{BG_RAISED};'
            f'color:{FG_STRONG};border:1px solid {BORDER_STRONG}">{escape_html(words)}</span>'
        )
    background, mark = (SUCCESS_BG, "✓") if correct else (ERROR_BG, "✗")
    text = f"{mark} {words}" if words else f"{mark} {'correct' if correct else 'wrong'}"
    return (
        f'<span class="lmw-verdict" style="{_CHIP};background:{background};color:{INVERSE_FG};'
        f'font-weight:bold">{escape_html(text)}</span>'
    )


def flag_chip(text: str, color: str = WARN) -> str:
    """A neutral chip with a coloured edge (``truncated (max tokens)``, ``stopped``)."""
    return (
        f'<span class="lmw-flag" style="{_CHIP};background:{BG_RAISED};color:{FG_STRONG};'
        f'border:1px solid {color};border-left:4px solid {color}">{escape_html(text)}</span>'
    )


def note_line(text: str) -> str:
    """A note under the table: plain text colour, a warning-coloured edge."""
    return (
        f'<div class="lmw-note" style="color:{FG};font-size:12px;border-left:3px solid {WARN};'
        f'padding-left:6px;margin-top:4px;{WRAP}">{escape_html(text)}</div>'
    )
