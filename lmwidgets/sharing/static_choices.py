"""Given choices in the static copy: one bar per choice (its probability among the choices),
the likeliest (``acc``) in bold with a brand-coloured bar, the expected choice outlined, and
the length-normalized pick (``acc_norm``) named when it differs. Every text is escaped; colours
are JupyterLab's theme variables, as in the live view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmwidgets.core.safe_text import SHORT_LIMIT, escape_html, shorten
from lmwidgets.run.choices import choice_bars
from lmwidgets.sharing.static_style import BG_RAISED, FG_MUTED, SMALL, SUCCESS

if TYPE_CHECKING:
    from lmwidgets.core.results import Result

BRAND = "var(--jp-brand-color1,#1976d2)"
MUTED_BAR = "var(--jp-ui-font-color3,#999)"


def _percent(p: float) -> str:
    return f"{100 * p:.{1 if p < 0.1 else 0}f}%"


def choices_html(result: Result) -> str:
    """The bars of a column of given choices ('' for any other column)."""
    bars = choice_bars(result)
    if bars is None:
        return ""
    rows = []
    for index, (text, p) in enumerate(zip(bars["texts"], bars["probs"], strict=True)):
        pick = index == bars["acc"]
        border = SUCCESS if index == bars["expected"] else "transparent"
        weight = "font-weight:bold;" if pick else ""
        fill = BRAND if pick else MUTED_BAR
        label = escape_html(shorten(text, SHORT_LIMIT))
        rows.append(
            f'<tr class="lmw-choice"><td style="width:1%;white-space:pre;padding:1px 6px 1px 0">'
            f'<span style="{weight}border:1px solid {border};border-radius:3px;padding:0 3px">'
            f'{label}</span></td><td style="width:100%;padding:1px 0"><div style="background:'
            f'{BG_RAISED};height:10px;border-radius:3px;overflow:hidden"><div style="background:'
            f'{fill};height:100%;width:{100 * max(0.0, min(1.0, p)):.1f}%"></div></div></td>'
            f'<td style="width:1%;white-space:nowrap;text-align:right;padding:1px 0 1px 6px;'
            f'color:{FG_MUTED}">{_percent(p)}</td></tr>'
        )
    notes = choices_notes(bars)
    note = f'<div style="{SMALL}">{escape_html(" · ".join(notes))}</div>' if notes else ""
    return (
        '<table class="lmw-choices" style="border-collapse:collapse;width:100%;'
        f'margin:4px 0">{"".join(rows)}</table>{note}'
    )


def choices_notes(bars: dict) -> list[str]:
    """What the bars do not show by themselves: a different acc_norm pick, choices left out."""
    notes = []
    if bars["acc_norm"] != bars["acc"] and bars["acc_norm"] < len(bars["texts"]):
        notes.append(f"per character (acc_norm): {bars['texts'][bars['acc_norm']]}")
    if bars["more"]:
        notes.append(f"{bars['more']} more choices (see Result.choice_logprobs)")
    return notes


def choices_lines(result: Result) -> list[str]:
    """The choices as plain lines (markdown and text copies): ``Paris 81% ← likeliest``."""
    bars = choice_bars(result)
    if bars is None:
        return []
    lines = []
    for index, (text, p) in enumerate(zip(bars["texts"], bars["probs"], strict=True)):
        marks = [
            m
            for m, on in (
                ("likeliest", index == bars["acc"]),
                ("expected", index == bars["expected"]),
            )
            if on
        ]
        lines.append(
            f"  {shorten(text, SHORT_LIMIT)}: {_percent(p)}"
            + (f" ← {', '.join(marks)}" if marks else "")
        )
    return ["Choices:", *lines, *choices_notes(bars)]
