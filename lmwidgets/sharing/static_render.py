"""Static renderings of a :class:`~lmwidgets.run.results.Comparison` for viewers without a kernel.

HTML is self-contained (inline styles, no script) and every piece of untrusted text is escaped.
Markdown puts texts in code fences. Long texts are cut with a visible note.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lmwidgets.sharing.safe_text import (
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
    from lmwidgets.run.results import Comparison, Result

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


_DATA_URL = re.compile(r"^data:image/(jpeg|png);base64,[A-Za-z0-9+/=]+$")


def _pct(value: float, total: float) -> str:
    return f"{100 * min(max(float(value), 0.0), total) / (total or 1):.2f}%"


def _overlay(image: dict, box: list[float], color: str, label: str = "", dashed=False) -> str:
    x1, y1, x2, y2 = box
    width, height = image["width"], image["height"]
    style = (
        f"position:absolute;left:{_pct(x1, width)};top:{_pct(y1, height)};"
        f"width:{_pct(x2 - x1, width)};height:{_pct(y2 - y1, height)};"
        f"border:2px {'dashed' if dashed else 'solid'} {color};box-sizing:border-box"
    )
    tag = (
        f'<span style="position:absolute;left:0;top:0;background:{color};color:#fff;'
        f'font-size:10px;line-height:1.3;padding:0 3px;white-space:nowrap">'
        f"{escape_html(shorten(label, 80))}</span>"
        if label
        else ""
    )
    return f'<div style="{style}">{tag}</div>'


def _thumbnail(image: dict, overlays: str = "", max_height: int = 320) -> str:
    """A thumbnail (our own data URL only) with overlays positioned over it."""
    src = image.get("src", "")
    if not isinstance(src, str) or not _DATA_URL.match(src):
        return ""
    return (
        '<div style="position:relative;display:inline-block;line-height:0;border:1px solid #ddd">'
        f'<img src="{escape_html(src)}" alt="{escape_html(shorten(image.get("name", ""), 80))}" '
        f'style="display:block;max-width:100%;max-height:{max_height}px">{overlays}</div>'
    )


def _gallery_html(images: list[dict]) -> str:
    figures = []
    for image in images:
        region = image.get("region")
        overlays = _overlay(image, region, "#e00", dashed=True) if region else ""
        caption = f"{image.get('name', 'image')} · {image['width']}×{image['height']}"
        if region:
            caption += f" · region {','.join(str(v) for v in region)}"
        figures.append(
            '<figure style="margin:0 8px 6px 0;display:inline-block;vertical-align:top">'
            f"{_thumbnail(image, overlays)}"
            f'<figcaption style="font-size:11px;color:#666">{escape_html(caption)}</figcaption>'
            "</figure>"
        )
    return f"<div>{''.join(figures)}</div>" if figures else ""


def box_lines(result: Result) -> list[str]:
    """``'cat: (10, 20) – (50, 60)'`` for each box of ``result``."""
    return [
        f"{box.label or 'box'}: ({box.x1:.0f}, {box.y1:.0f}) – ({box.x2:.0f}, {box.y2:.0f})"
        for box in result.boxes
    ]


def _boxes_html(result: Result, images: list[dict]) -> str:
    if not result.boxes:
        return ""
    parts = []
    for index, image in enumerate(images):
        mine = [b for b in result.boxes if b.image == index]
        if mine:
            overlays = "".join(
                _overlay(image, [b.x1, b.y1, b.x2, b.y2], "#ff8c00", b.label) for b in mine
            )
            parts.append(_thumbnail(image, overlays, max_height=200))
    listing = escape_html(" · ".join(box_lines(result)))
    parts.append(f'<div style="font-size:11px;color:#555">{listing}</div>')
    return f'<div style="margin-bottom:4px">{"".join(parts)}</div>'


def _cut_note(cut: int) -> str:
    return f"… {cut:,} more characters cut here; the full text is in Result.text."


def _result_html(result: Result, images: list[dict]) -> str:
    text, cut = truncate(result.text, STATIC_TEXT_LIMIT)
    parts = [_boxes_html(result, images), f'<pre style="{_PRE}">{escape_html(text)}</pre>']
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
            cell = _result_html(result, comparison.images) if result else ""
            row.append(f'<td style="{_CELL}">{cell}</td>')
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
        f"{_gallery_html(comparison.images)}"
        f'<table style="border-collapse:collapse;width:100%;table-layout:fixed">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{extra}</div>"
    )


def render_markdown(comparison: Comparison) -> str:
    """Markdown: a heading per column (and item), each text in a code fence."""
    lines = [
        f"**lmwidgets** · {markdown_inline(_STATUS.get(comparison.status, comparison.status))}",
        "",
    ]
    lines += [f"Image: {markdown_inline(_image_line(image))}" for image in comparison.images]
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
        lines += [f"Box: {markdown_inline(line)}" for line in box_lines(result)]
        lines.append(f"_{markdown_inline(result.stats())}_")
        lines.append("")
    lines.extend(markdown_inline(shorten(note, SHORT_LIMIT)) for note in comparison.notes)
    if comparison.scores:
        lines.append(
            "Accuracy: "
            + ", ".join(f"{markdown_inline(k)} {v:.0%}" for k, v in comparison.scores.items())
        )
    return "\n".join(lines)


def _image_line(image: dict) -> str:
    line = f"{image.get('name', 'image')} ({image['width']}×{image['height']})"
    if image.get("region"):
        line += f", region {','.join(str(v) for v in image['region'])}"
    return line


def render_plain(comparison: Comparison) -> str:
    """Plain text: each column's label, text and stats."""
    blocks = [f"Image: {_image_line(image)}" for image in comparison.images]
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
        block += [f"Box: {line}" for line in box_lines(result)]
        block.append(f"[{result.stats()}{'' if result.complete else ' · ' + result.finish_reason}]")
        blocks.append("\n".join(block))
    blocks.extend(shorten(note, SHORT_LIMIT) for note in comparison.notes)
    return "\n\n".join(blocks)
