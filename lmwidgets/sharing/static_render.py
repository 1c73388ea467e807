"""Static renderings of a :class:`~lmwidgets.core.results.Comparison` for viewers without a kernel.

HTML is self-contained (inline styles in JupyterLab's theme variables, no script) and every
piece of untrusted text (model output, prompts, labels, records) is escaped. It is laid out like
the run (:mod:`~lmwidgets.sharing.static_matrix`): a row of columns, a strategies x models
matrix, or one row per dataset item. Markdown and plain text say the same in plain form, texts
in code fences. Long texts are cut with a visible note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmwidgets.core.layout import asks_its_own_question
from lmwidgets.core.results import RENDERERS
from lmwidgets.core.safe_text import (
    LABEL_LIMIT,
    SHORT_LIMIT,
    STATIC_PROMPT_LIMIT,
    STATIC_TEXT_LIMIT,
    code_fence,
    escape_html,
    markdown_inline,
    shorten,
    truncate,
)
from lmwidgets.run.records import RECORD_MIME, bundle_payload
from lmwidgets.sharing.static_choices import choices_html, choices_lines
from lmwidgets.sharing.static_judge import judge_html, judge_line, reasoning_html
from lmwidgets.sharing.static_kinds import kind_body_html, kind_head_html, kind_lines
from lmwidgets.sharing.static_matrix import (
    Grid,
    answer_shown,
    column_accuracy,
    layout,
    paired_line,
    settings_text,
    status_flag,
    status_line,
    verdict_text,
    verdict_words,
    vs_text,
    word_diff,
)
from lmwidgets.sharing.static_media import (
    box_lines,
    boxes_html,
    gallery_html,
    media_line,
    row_media_html,
)
from lmwidgets.sharing.static_ratings import (
    preference_lines,
    preferences_html,
    rating_html,
    rating_line,
)
from lmwidgets.sharing.static_style import (
    CELL,
    ERROR,
    FG_MUTED,
    FG_STRONG,
    HEAD,
    INPUT_CELL,
    PRE,
    ROOT,
    ROW_HEAD,
    SCROLL,
    SMALL,
    SUCCESS,
    TABLE,
    WRAP,
    answer_chip,
    flag_chip,
    group_chip,
    group_letter,
    note_line,
    verdict_pill,
)
from lmwidgets.sharing.static_tokens import (
    confidence_text,
    has_tokens,
    legend_html,
    tokens_html,
)

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result

__all__ = ["box_lines", "render_html", "render_markdown", "render_plain"]


def _cut_note(cut: int) -> str:
    return f"… {cut:,} more characters cut here; the full text is in Result.text."


def _text_html(result: Result) -> str:
    """The cell's text, cut to the static limit; with token probabilities, shaded by token."""
    shown, cut = truncate(result.text, STATIC_TEXT_LIMIT)
    body, token_note = (
        tokens_html(shown, result.tokens_detail) if has_tokens(result) else (escape_html(shown), "")
    )
    html = f'<pre style="{PRE}">{body}</pre>'
    if token_note:
        html += note_line(token_note)
    if cut:
        html += note_line(_cut_note(cut))
    return html


def _confidence_html(result: Result) -> str:
    """``p=0.82`` / ``vote 3/5`` beside the answer chip ('' when unknown)."""
    text = confidence_text(result)
    return (
        f' <span class="lmw-confidence" style="{SMALL}">{escape_html(text)}</span>' if text else ""
    )


def _answer_html(result: Result, grid: Grid) -> str:
    """The answer chip, when the answer is a part of the text (a free-form answer that is the
    whole text is not repeated; with agreement marks, its group's letter stays); in a dataset
    the verdict instead, ✓ / ✗ and how it was judged."""
    if result.expected is not None:
        return verdict_pill(result.correct, verdict_words(result)) + _confidence_html(result)
    if asks_its_own_question(result):  # a probe column: its verdict is what it says
        return ""
    group = grid.group(result)
    if result.answer is None:
        return answer_chip(None, group, grouped=grid.grouped)
    if answer_shown(result):
        chip = answer_chip(shorten(result.answer, SHORT_LIMIT), group, grouped=grid.grouped)
        return chip + _confidence_html(result)
    return group_chip(group) if grid.grouped else ""


def _flags_html(result: Result) -> str:
    """The cell's status, once: truncated, stopped or error (nothing when it ended well)."""
    flag = status_flag(result)
    chips = flag_chip(flag) if flag else ""
    if result.cached:  # answered from the response cache: a neutral mark, not a warning
        chips += flag_chip("cached", FG_MUTED)
    return chips


def _footer_html(result: Result) -> str:
    lines = [escape_html(result.stats())]
    if result.error:
        lines.append(escape_html(shorten(result.error, SHORT_LIMIT)))
    setting = settings_text(result)
    if setting:
        lines.append(escape_html(shorten(setting, SHORT_LIMIT)))
    return f'<div style="{SMALL};margin-top:4px;{WRAP}">{"<br>".join(lines)}</div>'


def _prompt_html(result: Result) -> str:
    """The exact prompt, collapsed (``<details>`` needs no script)."""
    shown, cut = truncate(result.prompt or "", STATIC_PROMPT_LIMIT)
    note = (
        note_line(f"… {cut:,} more characters cut here; the full prompt is in Result.prompt.")
        if cut
        else ""
    )
    return (
        f'<details class="lmw-prompt" style="margin-top:4px"><summary style="{SMALL};'
        f'cursor:pointer">prompt</summary><pre style="{PRE}">{escape_html(shown)}</pre>'
        f"{note}</details>"
    )


def _result_html(result: Result, grid: Grid, images: list[dict]) -> str:
    """One cell: answer (and verdict), flags, boxes, text, stats and settings, prompt."""
    head = _answer_html(result, grid) + _flags_html(result) + kind_head_html(result)
    head += rating_html(result)
    head += judge_html(result)
    return (
        f'<div style="margin-bottom:4px">{head}</div>'
        f"{boxes_html(result, images)}{choices_html(result)}{_text_html(result)}"
        f"{kind_body_html(result)}{reasoning_html(result)}"
        f"{_vs_html(result)}"
        f"{_footer_html(result)}{_prompt_html(result)}"
    )


def _vs_html(result: Result) -> str:
    """``--vs``: a collapsed word diff with the earlier counterpart (escaped; words only there
    struck through, words only here underlined)."""
    vs = result.extras.get("vs")
    before = vs.get("previous_text") if isinstance(vs, dict) else None
    if not isinstance(before, str) or not vs.get("text_changed"):
        return ""
    after, _ = truncate(result.text, STATIC_TEXT_LIMIT)
    before, _ = truncate(before, STATIC_TEXT_LIMIT)
    tags = {"=": ("", ""), "-": ("<del>", "</del>"), "+": ("<ins>", "</ins>")}
    body = "".join(
        f"{tags[op][0]}{escape_html(text)}{tags[op][1]}" for op, text in word_diff(before, after)
    )
    return (
        f'<details style="margin-top:4px"><summary style="{SMALL};cursor:pointer">'
        f"diff with {escape_html(shorten(vs.get('label', 'previous'), LABEL_LIMIT))}</summary>"
        f'<pre style="{PRE}">{body}</pre></details>'
    )


def _header_html(comparison: Comparison, grid: Grid) -> str:
    corner = {"matrix": grid.corner or "strategy", "dataset": "input"}.get(grid.kind)
    style = ROW_HEAD if grid.kind == "matrix" else f"{HEAD};min-width:10em"
    cells = [f'<th style="{style}">{escape_html(corner)}</th>'] if corner else []
    for label in grid.columns:
        accuracy = column_accuracy(comparison, label) if grid.kind == "dataset" else ""
        extra = (
            f'<br><span style="{SMALL};color:{FG_STRONG}">{escape_html(accuracy)}</span>'
            if accuracy
            else ""
        )
        cells.append(f'<th style="{HEAD}">{escape_html(shorten(label, LABEL_LIMIT))}{extra}</th>')
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


def _row_header_html(
    grid: Grid, header: str | None, expected: str | None, media: list[dict] | None = None
) -> str:
    if grid.kind == "matrix":
        return f'<th style="{ROW_HEAD}">{escape_html(shorten(header, LABEL_LIMIT))}</th>'
    if grid.kind != "dataset":
        return ""
    body = row_media_html(media or [])
    body += f'<pre style="{PRE}">{escape_html(shorten(header or "", SHORT_LIMIT))}</pre>'
    if expected is not None:
        body += (
            f'<div style="margin-top:4px"><span style="{SMALL}">expected</span> '
            f"{answer_chip(shorten(expected, SHORT_LIMIT))}</div>"
        )
    return f'<td style="{INPUT_CELL}">{body}</td>'


def _cell_style(result: Result | None) -> str:
    """A scored cell's left edge says right or wrong at a glance (the pill says it in words)."""
    if result is None or result.correct is None:
        return CELL
    return f"{CELL};border-left:3px solid {SUCCESS if result.correct else ERROR}"


def _body_html(comparison: Comparison, grid: Grid) -> str:
    rows = []
    for row in grid.rows:
        own = next((r.item_media for r in row.cells if r is not None and r.item_media), [])
        cells = [_row_header_html(grid, row.header, row.expected, own)]
        images = [*comparison.images, *(m for m in own if m.get("kind", "image") == "image")]
        for result in row.cells:
            inner = _result_html(result, grid, images) if result else ""
            cells.append(f'<td style="{_cell_style(result)}">{inner}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<tbody>{''.join(rows)}</tbody>"


def _caption_html(comparison: Comparison, grid: Grid) -> str:
    caption = f"lmwidgets · {status_line(comparison, grid)}"
    if comparison.title:
        caption += f" · {comparison.title[:200]}"
    line = f'<div class="lmw-status" style="{SMALL};margin-bottom:4px;{WRAP}">{escape_html(caption)}</div>'
    if grid.agreement:
        line += (
            f'<div class="lmw-agreement" style="font-size:12px;margin-bottom:4px;{WRAP}">'
            f"<b>Agreement:</b> {escape_html(grid.agreement)}</div>"
        )
    paired = paired_line(comparison, grid)
    if paired:
        line += (
            f'<div class="lmw-paired" style="font-size:12px;margin-bottom:4px;{WRAP}">'
            f"<b>Paired:</b> {escape_html(shorten(paired, SHORT_LIMIT))}</div>"
        )
    for spread in comparison.spread():
        line += (
            f'<div class="lmw-spread" style="font-size:12px;margin-bottom:4px;{WRAP}">'
            f"<b>Trials:</b> {escape_html(shorten(spread, SHORT_LIMIT))}</div>"
        )
    return line + preferences_html(comparison)


def render_html(comparison: Comparison) -> str:
    """A self-contained HTML table laid out like the run (columns, matrix or dataset rows)."""
    grid = layout(comparison)
    notes = "".join(note_line(shorten(note, SHORT_LIMIT)) for note in comparison.notes)
    legend = legend_html() if any(has_tokens(r) for r in comparison.results) else ""
    return (
        f'<div class="lmw-static" style="{ROOT}">'
        f"{_caption_html(comparison, grid)}{gallery_html(comparison.media)}{legend}"
        f'<div style="{SCROLL}"><table style="{TABLE}">'
        f"{_header_html(comparison, grid)}{_body_html(comparison, grid)}</table></div>"
        f"{notes}</div>"
    )


# Markdown and plain text ------------------------------------------------------------------------


def _facts(result: Result, grid: Grid) -> list[str]:
    """The cell's facts as plain lines, as the HTML cell says them: the answer (when it is a
    part of the text) and its group and confidence, or a dataset cell's verdict; its status."""
    lines = []
    confidence = confidence_text(result)
    confidence = f" · {confidence}" if confidence else ""
    group = f" (group {group_letter(grid.group(result))})" if grid.grouped else ""
    if result.expected is not None:
        lines.append(f"Verdict: {verdict_text(result)}{confidence}")
    elif asks_its_own_question(result):
        pass  # a probe column: its verdict line follows (kind_lines)
    elif result.answer is None and (grid.grouped or not result.complete):
        lines.append(f"Answer: no answer{group}")
    elif answer_shown(result):
        lines.append(f"Answer: {shorten(result.answer, SHORT_LIMIT)}{group}{confidence}")
    elif grid.grouped:
        lines.append(f"Answer: the text{group}")
    flag = status_flag(result)
    if flag:
        lines.append(f"⚠ {flag}")
    lines += kind_lines(result)
    if result.judge is not None and judge_line(result):
        lines.append(judge_line(result))
    lines += choices_lines(result)
    compared = vs_text(result)
    if compared:
        lines.append(shorten(compared, SHORT_LIMIT))
    if result.rating:
        lines.append(rating_line(result))
    return lines


def _heading(result: Result) -> str:
    label = shorten(result.variant, LABEL_LIMIT)
    return label if result.input is None else f"{label} · {shorten(result.input, 80)}"


def _summary_lines(comparison: Comparison, grid: Grid) -> list[str]:
    lines = [f"lmwidgets · {status_line(comparison, grid)}"]
    if comparison.title:
        lines[0] += f" · {comparison.title[:200]}"
    if grid.agreement:
        lines.append(f"Agreement: {grid.agreement}")
    paired = paired_line(comparison, grid)
    if paired:
        lines.append(f"Paired: {shorten(paired, SHORT_LIMIT)}")
    lines += [f"Trials: {shorten(line, SHORT_LIMIT)}" for line in comparison.spread()]
    return lines + preference_lines(comparison)


def render_markdown(comparison: Comparison) -> str:
    """Markdown: a heading per column (and item), each text in a code fence."""
    grid = layout(comparison)
    summary = _summary_lines(comparison, grid)
    lines = [f"**{markdown_inline(summary[0])}**", *map(markdown_inline, summary[1:]), ""]
    lines += [markdown_inline(media_line(item)) for item in comparison.media]
    for result in comparison.results:
        lines.append(f"#### {markdown_inline(_heading(result))}")
        text, cut = truncate(result.text, STATIC_TEXT_LIMIT)
        lines.append(code_fence(text))
        if cut:
            lines.append(markdown_inline(_cut_note(cut)))
        lines += [markdown_inline(line) for line in _facts(result, grid)]
        lines += [f"Box: {markdown_inline(line)}" for line in box_lines(result)]
        lines.append(f"_{markdown_inline(result.stats())}_")
        setting = settings_text(result)
        if setting:
            lines.append(f"_{markdown_inline(shorten(setting, SHORT_LIMIT))}_")
        lines.append("")
    lines.extend(markdown_inline(shorten(note, SHORT_LIMIT)) for note in comparison.notes)
    if comparison.scores:
        lines.append(
            "Accuracy: "
            + ", ".join(f"{markdown_inline(k)} {v:.0%}" for k, v in comparison.scores.items())
        )
    return "\n".join(lines)


def render_plain(comparison: Comparison) -> str:
    """Plain text: what the run was, then each column's label, answer, text and stats."""
    grid = layout(comparison)
    blocks = ["\n".join(_summary_lines(comparison, grid))]
    blocks += [media_line(item) for item in comparison.media]
    for result in comparison.results:
        text, cut = truncate(result.text, STATIC_TEXT_LIMIT)
        block = [f"── {_heading(result)} ──", *_facts(result, grid), text]
        if cut:
            block.append(_cut_note(cut))
        block += [f"Box: {line}" for line in box_lines(result)]
        block.append(f"[{result.stats()}]")
        setting = settings_text(result)
        if setting:
            block.append(f"[{shorten(setting, SHORT_LIMIT)}]")
        blocks.append("\n".join(block))
    blocks.extend(shorten(note, SHORT_LIMIT) for note in comparison.notes)
    return "\n\n".join(blocks)


def _records_bundle(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The run records as the saved output carries them (:data:`RECORD_MIME`)."""
    return RECORD_MIME, bundle_payload(records)


RENDERERS.update(
    html=render_html, markdown=render_markdown, text=render_plain, records=_records_bundle
)
