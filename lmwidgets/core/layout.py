"""Where each column of a comparison goes: a row of columns, a matrix (two or more things vary)
or a dataset grid (rows are items). The live view and the static copy both lay results out
here, so they agree.

Every variant and result has coordinates: for each axis (see :mod:`lmwidgets.prompting.axes`)
the id of its value, e.g. ``{"prompt": "A", "strategy": "cot", "model": "smol", "adapter":
"base", "temperature": "0.7"}``. Results of older records, forks and re-runs without recorded
coordinates get ``strategy``, ``model`` and ``adapter`` from their fields. Registered axis
kinds (:mod:`lmwidgets.core.axis_kinds`) take their place after the axis they name, with their
own titles and labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmwidgets.core.axis_kinds import all_kinds, get_kind, with_kinds

#: The order the built-in axes are laid out in: with two varying, the first forms the rows
#: (with the registered kinds: :func:`axis_order`).
AXIS_ORDER = (
    "prompt",
    "system",
    "field",
    "strategy",
    "model",
    "adapter",
    "temperature",
    "top_p",
    "trial",
    "run",
)
#: How an axis is named in a shape line ("2 × 3 matrix (prompts × system prompts)").
AXIS_TITLES = {
    "prompt": "prompts",
    "system": "system prompts",
    "strategy": "strategies",
    "model": "models",
    "adapter": "adapters",
    "temperature": "temperatures",
    "top_p": "top-ps",
    "trial": "trials",
    "run": "runs",
}


def axis_order() -> tuple[str, ...]:
    """:data:`AXIS_ORDER` with the registered axis kinds in their places."""
    return with_kinds(AXIS_ORDER)


def value_label(axis: str, value_id: str) -> str:
    """How a coordinate is written in labels and headers: ``T=0.7``, ``top-p=0.9``, ``trial
    2``, ``city=Paris`` (a template field), or the id itself (prompts, strategies, models...)."""
    kind, _, name = axis.partition(":")
    if kind == "temperature":
        return f"T={value_id}"
    if kind == "top_p":
        return f"top-p={value_id}"
    if kind == "trial":
        return f"trial {value_id}"
    if kind == "field":
        return f"{name}={value_id}"
    registered = get_kind(kind)
    label = registered.hook("label") if registered is not None else None
    if label is not None:
        return label(value_id)
    if kind == "run":
        return "this run" if value_id == "this" else value_id
    return value_id


def axis_title(axis: str) -> str:
    """The plural name of an axis (``strategies``; ``city values`` for ``field:city``)."""
    kind, _, name = axis.partition(":")
    if kind == "field":
        return f"{name} values"
    registered = get_kind(kind)
    if registered is not None:
        return registered.title or f"{kind} values"
    return AXIS_TITLES.get(kind, axis)


@dataclass
class Axes:
    """Where each variant goes: ``positions[i]`` is variant ``i``'s (row, column).

    ``rows`` and ``columns`` are the header labels; ``row_axis``/``column_axis`` name what varies
    along them (``strategy``, ``model``, ``prompt · system``..., ``input`` for a dataset grid,
    ``variant`` for a row of columns that mixes things); ``rows`` is empty for a single row of
    columns. With several row axes, ``row_parts[r]`` holds row ``r``'s value on each (grouped
    headers). ``choices`` are the axes that can form the columns instead (the view swaps them).
    """

    layout: str
    positions: list[tuple[int, int]]
    rows: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    row_axis: str = ""
    column_axis: str = ""
    row_parts: list[list[str]] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)


def coordinates(item: Any) -> dict[str, str]:
    """The coordinates of a variant or result (derived for those recorded without them)."""
    coords = getattr(item, "coords", None)
    if isinstance(coords, Mapping) and coords:
        return {str(k): str(v) for k, v in coords.items()}
    return {
        "strategy": str(getattr(item, "strategy", "") or ""),
        "model": _model_name(item),
        "adapter": getattr(item, "adapter", None) or "base",
    }


def _model_name(item: Any) -> str:
    engine = getattr(item, "engine", None)
    if engine is not None:
        return str(getattr(engine, "name", "") or "")
    return str(getattr(item, "model", "") or "")


def _unique(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def varying(coords: Sequence[Mapping[str, str]]) -> list[str]:
    """The axes whose value differs between ``coords``, in :func:`axis_order`."""
    names = _unique([name for c in coords for name in c])
    found = [n for n in names if len({c.get(n) for c in coords}) > 1]
    order = axis_order()
    return sorted(found, key=lambda n: order.index(n.split(":", 1)[0]))


def _one_row(variants: Sequence[Any], axis: str) -> Axes:
    return Axes(
        "columns",
        [(0, i) for i in range(len(variants))],
        columns=[v.label for v in variants],
        column_axis=axis,
    )


def item_rows(entries: Sequence[tuple[str, str | None, int | None]]) -> list[int]:
    """The dataset row of each ``(label, input, item_index)``: items by their number (two
    items may ask the same question of different images or clips); entries without a number
    (records made before items were numbered) by their input, the n-th column of a label with
    one input in that input's n-th row (joining a numbered row with that input when one is)."""
    seen: dict[tuple[str, str | None], int] = {}
    keys: list[tuple[Any, ...]] = []
    numbered: dict[str | None, list[tuple[Any, ...]]] = {}
    for label, text, index in entries:
        if index is not None:
            keys.append(("item", index))
            rows = numbered.setdefault(text, [])
            if keys[-1] not in rows:
                rows.append(keys[-1])
        else:
            count = seen.get((label, text), 0)
            seen[(label, text)] = count + 1
            keys.append(("input", text, count))
    resolved = []
    for key in keys:
        if key[0] == "input" and key[2] < len(numbered.get(key[1], [])):
            key = numbered[key[1]][key[2]]
        resolved.append(key)
    order = {key: row for row, key in enumerate(_unique(resolved))}
    return [order[key] for key in resolved]


def _grid(variants: Sequence[Any]) -> Axes:
    labels = _unique([v.label for v in variants])
    col_of = {label: i for i, label in enumerate(labels)}
    rows = item_rows([(v.label, v.input, getattr(v, "item_index", None)) for v in variants])
    positions = [(row, col_of[v.label]) for row, v in zip(rows, variants, strict=True)]
    return Axes("grid", positions, rows=[], columns=labels, row_axis="input")


def axes_of(variants: Sequence[Any], grid: bool = False, columns: str | None = None) -> Axes:
    """The layout of ``variants``: rows and columns with their headers.

    A dataset (``grid``) has one row per item and one column per variant label. Otherwise the
    axes that vary among the variants make the layout: none or one is a single row of columns;
    with two, the first (in :func:`axis_order`) forms the rows and the second the columns
    (``cot`` × ``base``/``pirate``: rows cot and zero-shot, columns base and pirate); with three
    or more, one axis forms the columns (``columns``, else the last) and the rows are the
    product of the others, with grouped headers. Variants that would share a place fall back
    to a single row.
    """
    if grid:
        return _grid(variants)
    coords = [coordinates(v) for v in variants]
    vary = varying(coords)
    if len(vary) < 2 or len({v.input for v in variants}) > 1:
        return _one_row(variants, vary[0] if len(vary) == 1 else "variant")
    column_axis = columns if columns in vary else vary[1] if len(vary) == 2 else vary[-1]
    row_axes = [name for name in vary if name != column_axis]
    row_keys = [tuple(c.get(a, "") for a in row_axes) for c in coords]
    column_keys = [c.get(column_axis, "") for c in coords]
    rows, cols = _unique(row_keys), _unique(column_keys)
    positions = [(rows.index(r), cols.index(c)) for r, c in zip(row_keys, column_keys, strict=True)]
    if len(set(positions)) != len(positions):
        return _one_row(variants, "variant")
    row_parts = [[value_label(a, v) for a, v in zip(row_axes, key, strict=True)] for key in rows]
    return Axes(
        "matrix",
        positions,
        rows=[" · ".join(parts) for parts in row_parts],
        columns=[value_label(column_axis, c) for c in cols],
        row_axis=" · ".join(row_axes),
        column_axis=column_axis,
        row_parts=row_parts if len(row_axes) > 1 else [],
        choices=vary,
    )


def shape_title(axes: Axes) -> str:
    """``'strategies × adapters'``, ``'prompts · system prompts × temperatures'``."""
    rows = " · ".join(axis_title(a) for a in axes.row_axis.split(" · ") if a)
    return f"{rows} × {axis_title(axes.column_axis)}"


def agreement_applies(results: Sequence[Any]) -> bool:
    """Whether the columns' answers answer one question, so that "2 of 3 columns agree" and
    the "differs" marks mean something. Not where a varying axis is of a kind whose columns
    ask different things (:attr:`~lmwidgets.core.axis_kinds.AxisKind.agreement`: probes, each
    column another attack), nor in a pairwise-judged run (each column is compared with the
    first: the judge's verdict is the comparison). The live view and the static copy ask here."""
    for axis in varying([coordinates(r) for r in results]):
        kind = get_kind(axis.split(":", 1)[0])
        if kind is not None and not kind.agreement:
            return False
    return not any(_pairwise(getattr(r, "judge", None)) for r in results)


def asks_its_own_question(item: Any) -> bool:
    """Whether a column (variant or result) asks a question of its own: its value on a kind
    whose columns ask different things (a probe's attack) is not the kind's baseline; a
    column without that coordinate (a fork of an attacked column) by the kind's own data on
    it. Its extracted answer (a canary's number, a last line) is then no answer: no chip
    shows it."""
    coords = coordinates(item)
    for kind in all_kinds():
        if kind.agreement:
            continue
        if kind.name in coords:
            if coords[kind.name] != kind.baseline:
                return True
            continue
        read = kind.hook("cell_value")
        if read is not None and read(item) is not None:
            return True
    return False


def _pairwise(judge: Any) -> bool:
    return isinstance(judge, Mapping) and judge.get("mode") == "pairwise"
