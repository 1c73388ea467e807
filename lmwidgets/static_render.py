"""Static renderings of a :class:`~lmwidgets.results.Comparison` for viewers without a kernel.

HTML is self-contained (inline styles, no script) and every piece of untrusted text is escaped.
Markdown puts texts in code fences. Long texts are cut with a visible note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .safe_text import (
    LABEL_LIMIT,
    SHORT_LIMIT,
    STATIC_TEXT_LIMIT,
    code_fence,
    escape_html,
    markdown_inline,
    shorten,
    truncate,
)

if TYPE_CHECKING:
    from .results import Comparison, Result

_STATUS = {
    "done": "done",
    "stopped": "stopped (partial results)",
    "error": "failed (partial results)",
}
_CELL = "border:1px solid #ddd;padding:6px;vertical-align:top;text-align:left;word-break:break-word"
_PRE = "white-space:pre-wrap;word-break:break-word;margin:0;font-family:monospace;font-size:12px"


def _grid(comparison: Comparison) -> tuple[list[str], list[str | None], dict]:
    columns = comparison.variants
    items: list[str | None] = list(dict.fromkeys(r.input for r in comparison.results))
    cells = {(r.input, r.variant): r for r in comparison.results}
    return columns, items, cells


def _cut_note(cut: int) -> str:
    return f"… {cut:,} more characters cut here; the full text is in Result.text."


def _result_html(result: Result) -> str:
    text, cut = truncate(result.text, STATIC_TEXT_LIMIT)
    parts = [f'<pre style="{_PRE}">{escape_html(text)}</pre>']
    if cut:
        parts.append(f'<div style="color:#a60;font-size:11px">{escape_html(_cut_note(cut))}</div>')
    if result.answer is not None:
        parts.append(
            f'<div style="margin-top:4px"><b>Answer:</b> <code>{escape_html(shorten(result.answer, SHORT_LIMIT))}</code>'
            + ("" if result.correct is None else (" ✓" if result.correct else " ✗"))
            + "</div>"
        )
    status = "" if result.complete else f" · <b>{escape_html(result.finish_reason)}</b>"
    if result.error:
        status += f" · {escape_html(result.error)}"
    parts.append(
        f'<div style="color:#666;font-size:11px">{escape_html(result.stats())}{status}</div>'
    )
    return "".join(parts)


def render_html(comparison: Comparison) -> str:
    """A self-contained HTML table: one column per variant, one row per dataset item."""
    columns, items, cells = _grid(comparison)
    head = "".join(
        f'<th style="{_CELL}">{escape_html(shorten(label, LABEL_LIMIT))}</th>' for label in columns
    )
    if any(item is not None for item in items):
        head = f'<th style="{_CELL}">input</th>' + head
    body = []
    for item in items:
        row = (
            [
                f'<td style="{_CELL}"><pre style="{_PRE}">{escape_html(shorten(item, SHORT_LIMIT))}</pre></td>'
            ]
            if item is not None
            else []
        )
        for label in columns:
            result = cells.get((item, label))
            row.append(f'<td style="{_CELL}">{_result_html(result) if result else ""}</td>')
        body.append("<tr>" + "".join(row) + "</tr>")
    status = _STATUS.get(comparison.status, comparison.status)
    caption = f"lmwidgets · {escape_html(status)}"
    if comparison.title:
        caption += f" · {escape_html(comparison.title[:200])}"
    extra = "".join(
        f'<div style="color:#a60;font-size:11px">{escape_html(shorten(note, SHORT_LIMIT))}</div>'
        for note in comparison.notes
    )
    if comparison.scores:
        scores = ", ".join(f"{escape_html(k)}: {v:.0%}" for k, v in comparison.scores.items())
        extra += f'<div style="font-size:12px"><b>Accuracy</b> {scores}</div>'
    return (
        '<div class="lmw-static" style="overflow-x:auto">'
        f'<div style="color:#666;font-size:11px;margin-bottom:4px">{caption}</div>'
        f'<table style="border-collapse:collapse;width:100%;table-layout:fixed">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{extra}</div>"
    )


def render_markdown(comparison: Comparison) -> str:
    """Markdown: a heading per column (and item), each text in a code fence."""
    lines = [
        f"**lmwidgets** · {markdown_inline(_STATUS.get(comparison.status, comparison.status))}",
        "",
    ]
    for result in comparison.results:
        heading = markdown_inline(shorten(result.variant, LABEL_LIMIT))
        if result.input is not None:
            heading += f" · {markdown_inline(result.input[:80])}"
        lines.append(f"#### {heading}")
        text, cut = truncate(result.text, STATIC_TEXT_LIMIT)
        lines.append(code_fence(text))
        if cut:
            lines.append(markdown_inline(_cut_note(cut)))
        if result.answer is not None:
            lines.append(f"Answer: {markdown_inline(shorten(result.answer, SHORT_LIMIT))}")
        lines.append(f"_{markdown_inline(result.stats())}_")
        lines.append("")
    lines.extend(markdown_inline(shorten(note, SHORT_LIMIT)) for note in comparison.notes)
    if comparison.scores:
        lines.append(
            "Accuracy: "
            + ", ".join(f"{markdown_inline(k)} {v:.0%}" for k, v in comparison.scores.items())
        )
    return "\n".join(lines)


def render_plain(comparison: Comparison) -> str:
    """Plain text: each column's label, text and stats."""
    blocks = []
    for result in comparison.results:
        label = shorten(result.variant, LABEL_LIMIT)
        if result.input is not None:
            label = f"{label} · {shorten(result.input, 80)}"
        text, cut = truncate(result.text, STATIC_TEXT_LIMIT)
        block = [f"── {label} ──", text]
        if cut:
            block.append(_cut_note(cut))
        if result.answer is not None:
            block.append(f"Answer: {shorten(result.answer, SHORT_LIMIT)}")
        block.append(f"[{result.stats()}{'' if result.complete else ' · ' + result.finish_reason}]")
        blocks.append("\n".join(block))
    blocks.extend(shorten(note, SHORT_LIMIT) for note in comparison.notes)
    return "\n\n".join(blocks)
