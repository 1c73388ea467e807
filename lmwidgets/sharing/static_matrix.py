"""The shape of a static copy: which results go in which row and column, and what the run was.

Three shapes, all plain data (the renderers turn them into HTML, markdown or text):

* ``columns``: one row of columns (one prompt, one axis: strategies, models or adapters);
* ``matrix``: two or more axes vary (strategies x adapters, prompts x system prompts...): the
  same rows and columns as the live view (:func:`lmwidgets.core.layout.axes_of`);
* ``dataset``: one row per dataset item, one column per variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmwidgets.core.answers import agreement, is_part
from lmwidgets.core.layout import (
    agreement_applies,
    asks_its_own_question,
    axes_of,
    item_rows,
    shape_title,
)
from lmwidgets.core.safe_text import SHORT_LIMIT, shorten
from lmwidgets.core.stats import header_stats, one_column

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result

STATUS = {
    "done": "done",
    "stopped": "stopped (partial results)",
    "error": "failed (partial results)",
}
TRUNCATED = "truncated (max tokens)"


@dataclass
class Row:
    """One row of the table: its header (a strategy, a dataset input) and its cells."""

    header: str | None
    cells: list[Result | None]
    expected: str | None = None


@dataclass
class Grid:
    """Results placed in rows and columns, with the agreement of their answers."""

    kind: str  # "columns", "matrix" or "dataset"
    columns: list[str]
    rows: list[Row]
    #: "strategies × models" for a matrix; "" otherwise.
    axes: str = ""
    #: A matrix's corner: what varies down and across ("strategy \\ adapter").
    corner: str = ""
    #: Each result's group of agreeing answers (by ``id``); empty when not compared.
    groups: dict[int, int | None] = field(default_factory=dict)
    agreement: str = ""

    def group(self, result: Result) -> int | None:
        """The agreement group of ``result``'s answer (None: no answer or not grouped)."""
        return self.groups.get(id(result))

    @property
    def grouped(self) -> bool:
        """Whether cells show agreement marks (a non-dataset run with 2+ columns)."""
        return bool(self.groups)


def is_truncated(result: Result) -> bool:
    """Whether ``result`` was cut off by its token budget."""
    return result.finish_reason == "length"


def answer_shown(result: Result) -> bool:
    """Whether a cell shows its answer apart from its text (the chip): a self-consistency
    vote's winner always, an extracted answer only when it is a part of the text
    (:func:`~lmwidgets.core.answers.is_part`: an answer that is the whole text is not
    repeated). A scored dataset cell shows its verdict instead, a probe column nothing
    (:func:`~lmwidgets.core.layout.asks_its_own_question`)."""
    if result.answer is None or result.expected is not None or asks_its_own_question(result):
        return False
    extras = result.extras if isinstance(result.extras, dict) else {}
    return "votes" in extras or is_part(result.answer, result.text)


def status_flag(result: Result) -> str:
    """What a cell says about how it ended, once: ``truncated (max tokens)``, ``stopped`` or
    ``error``; '' when it ended well."""
    if is_truncated(result):
        return TRUNCATED
    return "" if result.complete else str(result.finish_reason)


def _matrix(results: list[Result], columns: str | None = None) -> Grid | None:
    """The matrix the live view shows (:func:`lmwidgets.core.layout.axes_of`), or None when
    the results make one row of columns."""
    axes = axes_of(results, columns=columns)
    if axes.layout != "matrix":
        return None
    rows = [Row(header, [None] * len(axes.columns)) for header in axes.rows]
    for result, (row, col) in zip(results, axes.positions, strict=True):
        rows[row].cells[col] = result
    corner = f"{axes.row_axis} \\ {axes.column_axis}"
    return Grid(
        kind="matrix", columns=axes.columns, rows=rows, axes=shape_title(axes), corner=corner
    )


def _dataset(results: list[Result]) -> Grid:
    """One row per dataset item (:func:`~lmwidgets.core.layout.item_rows`: by its number,
    records without one by their input), one column per label."""
    columns = list(dict.fromkeys(r.variant for r in results))
    rows: list[Row] = []
    places = item_rows([(r.variant, r.input, getattr(r, "item_index", None)) for r in results])
    for result, index in zip(results, places, strict=True):
        if index == len(rows):
            rows.append(Row(result.input, [None] * len(columns), result.expected))
        rows[index].cells[columns.index(result.variant)] = result
        if rows[index].expected is None:
            rows[index].expected = result.expected
    return Grid(kind="dataset", columns=columns, rows=rows)


def layout(comparison: Comparison) -> Grid:
    """Where each result of ``comparison`` goes, and (one prompt, 2+ columns asking the same
    question: :func:`~lmwidgets.core.layout.agreement_applies`) how they agree."""
    results = list(comparison.results)
    if any(r.input is not None for r in results):
        return _dataset(results)
    grid = _matrix(results, getattr(comparison, "columns", None))
    if grid is None:
        cells: list[Result | None] = list(results)
        grid = Grid(kind="columns", columns=[r.variant for r in results], rows=[Row(None, cells)])
    if len(results) >= 2 and agreement_applies(results):
        found = agreement([r.answer for r in results])
        grid.groups = {id(r): g for r, g in zip(results, found.groups, strict=True)}
        grid.agreement = shorten(found.summary, SHORT_LIMIT)
    return grid


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def accuracy_text(comparison: Comparison) -> str:
    """``'accuracy cot 50%, zero-shot 25%'`` (``'accuracy 50%'`` for one column); '' if none."""
    scores = comparison.scores
    if not scores:
        return ""
    if len(scores) == 1:
        return f"accuracy {next(iter(scores.values())):.0%}"
    return "accuracy " + ", ".join(f"{label} {value:.0%}" for label, value in scores.items())


def status_line(comparison: Comparison, grid: Grid) -> str:
    """What the run was: ``'3 columns, done'``, ``'2 × 3 matrix (strategies × models),
    stopped (partial results)'``, ``'12 items × 2 columns, done, accuracy 50%'``; then the
    run's speed once when it was measured (``' · 120 tokens in 3.1 s · 38.7 tok/s'``)."""
    width = len(grid.columns)
    if grid.kind == "matrix":
        shape = f"{len(grid.rows)} × {width} matrix ({grid.axes})"
    elif grid.kind == "dataset":
        shape = f"{_count(len(grid.rows), 'item')} × {_count(width, 'column')}"
    else:
        shape = _count(width, "column")
    cut = sum(is_truncated(r) for r in comparison.results)
    status = STATUS.get(comparison.status, str(comparison.status))
    parts = [shape]
    if comparison.status == "done" and cut:
        total = len(comparison.results)
        parts.append(TRUNCATED if cut == total else f"{cut} of {total} {TRUNCATED}")
    else:
        parts.append(status)
        if cut:
            parts.append(f"{cut} {TRUNCATED}")
    accuracy = accuracy_text(comparison)
    if accuracy:
        parts.append(accuracy)
    speed = comparison.throughput() if callable(getattr(comparison, "throughput", None)) else ""
    return ", ".join(parts) + (f" · {speed}" if speed else "")


def column_accuracy(comparison: Comparison, label: str) -> str:
    """``'Accuracy 50% (1/2) · 95% CI 9–91%'`` of one dataset column (the interval of
    :mod:`lmwidgets.core.stats`); '' when it was not scored."""
    if label not in comparison.scores:
        return ""
    marks = [r.correct for r in comparison.results if r.variant == label and r.correct is not None]
    counted = f" ({sum(marks)}/{len(marks)})" if marks else ""
    found = one_column(comparison, label)
    interval = (
        f" · 95% CI {found.ci_low * 100:.0f}–{found.ci_high:.0%}"
        if found.ci_low is not None and found.ci_high is not None
        else ""
    )
    return f"Accuracy {comparison.scores[label]:.0%}{counted}{interval}"


def paired_line(comparison: Comparison, grid: Grid) -> str:
    """A two-column dataset's paired comparison in one line (:func:`lmwidgets.core.stats.
    paired`); '' for any other run, or one that cannot have it."""
    if grid.kind != "dataset" or len(grid.columns) != 2:
        return ""
    return header_stats(comparison)[1]


def _value(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def settings(result: Result) -> list[tuple[str, str]]:
    """The settings that matter, from the record: model, adapter, temperature, top p, seed,
    max tokens, samples (what the record does not say is left out)."""
    record = result.record if isinstance(result.record, dict) else {}
    generation = record.get("generation")
    generation = generation if isinstance(generation, dict) else {}
    model = record.get("model")
    adapter = record.get("adapter")
    pairs: list[tuple[str, str | None]] = [
        ("model", _value(model.get("name")) if isinstance(model, dict) else result.model or None),
        (
            "adapter",
            _value(adapter.get("name")) if isinstance(adapter, dict) else result.adapter or "base",
        ),
        ("temperature", _value(generation.get("temperature"))),
        ("top p", _value(generation.get("top_p")) if generation.get("top_p") != 1.0 else None),
        ("seed", _value(generation.get("seed"))),
        ("max tokens", _value(generation.get("max_new_tokens"))),
        ("samples", _value(generation.get("samples")) if generation.get("samples") != 1 else None),
    ]
    return [(name, value) for name, value in pairs if value is not None]


def settings_text(result: Result) -> str:
    """``'model tiny · adapter base · temperature 0.0 · seed 1 · max tokens 64'``."""
    return " · ".join(f"{name} {value}" for name, value in settings(result))


def vs_text(result: Result) -> str:
    """``--vs``: how a column compares with its earlier counterpart ('' when not compared)."""
    vs = result.extras.get("vs")
    if not isinstance(vs, dict):
        return ""
    if vs.get("answer_changed"):
        return f"vs previous: answer changed (was {vs.get('previous_answer')!r})"
    return "vs previous: same answer" if vs.get("text_changed") else "vs previous: same text"


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """``(op, text)`` parts turning ``before`` into ``after`` word by word: ``=`` kept, ``-``
    only before, ``+`` only after (whitespace kept as written)."""
    import difflib
    import re

    a, b = re.findall(r"\s+|\S+", before), re.findall(r"\s+|\S+", after)
    parts: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            parts.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            parts.append(("+", "".join(b[j1:j2])))
    return parts


def verdict_words(result: Result) -> str:
    """How a scored dataset cell was judged, without its mark: the scorer's words (``contains
    Paris``, ``equals 14``) and, for a miss, what was expected (``got 7 · expected 6``); ''
    without ``expected``. The live view and the static copy say the same."""
    if result.expected is None:
        return ""
    expected = shorten(result.expected, SHORT_LIMIT)
    if result.correct is None:
        return f"not scored · expected {expected}"
    how = result.verdict
    if not how:  # a result scored before verdicts had words
        compared = result.compared if result.compared is not None else result.answer
        got = "no answer" if compared is None else compared
        how = f"matches {expected}" if result.correct else f"got {got}"
    words = how if result.correct else f"{how} · expected {expected}"
    score = result.score
    if score is not None and score not in (0.0, 1.0) and f"{score:.2f}" not in words:
        words += f" (score {score:.2f})"
    return shorten(words, SHORT_LIMIT)


def verdict_mark(result: Result) -> str:
    """``✓`` / ``✗`` for a scored cell; '' when it was not scored."""
    return "" if result.correct is None else ("✓" if result.correct else "✗")


def verdict_text(result: Result) -> str:
    """``'✓ contains Paris'``, ``'✗ got 7 · expected 6'`` for a scored dataset cell; '' without
    ``expected``."""
    words = verdict_words(result)
    mark = verdict_mark(result)
    return f"{mark} {words}" if mark and words else words
