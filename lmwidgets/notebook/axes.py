"""Where each column of a comparison goes: a row of columns, a matrix (two things vary, e.g.
strategies x adapters) or a dataset grid (rows are items)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Axes:
    """Where each variant goes: ``positions[i]`` is variant ``i``'s (row, column).

    ``rows`` and ``columns`` are the header labels; ``row_axis``/``column_axis`` name what varies
    along them (``strategy``, ``model``, ``adapter``, ``input`` or ``variant``); ``rows`` is
    empty for a single row of columns.
    """

    layout: str
    positions: list[tuple[int, int]]
    rows: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    row_axis: str = ""
    column_axis: str = ""


def _adapter_name(variant: Any) -> str:
    return getattr(variant, "adapter", None) or "base"


def _model_name(variant: Any) -> str:
    engine = getattr(variant, "engine", None)
    return str(getattr(engine, "name", "") or "")


def _axis_values(variant: Any) -> dict[str, str]:
    return {
        "strategy": str(getattr(variant, "strategy", "") or ""),
        "model": _model_name(variant),
        "adapter": _adapter_name(variant),
    }


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _one_row(variants: Sequence[Any], axis: str) -> Axes:
    return Axes(
        "columns",
        [(0, i) for i in range(len(variants))],
        columns=[v.label for v in variants],
        column_axis=axis,
    )


def axes_of(variants: Sequence[Any], grid: bool = False) -> Axes:
    """The layout of ``variants``: rows and columns with their headers.

    A dataset (``grid``) has one row per item and one column per variant label. Otherwise the
    things that vary among the variants (strategy, model, adapter, in that order) make the axes:
    none or one is a single row of columns; with two or more, the first is the rows and the
    others together the columns (``cot`` × ``base``/``pirate``: rows cot and zero-shot, columns
    base and pirate). Variants that would share a place fall back to a single row.
    """
    if grid:
        labels = _unique([v.label for v in variants])
        items = _unique([v.input or "" for v in variants])
        col_of = {label: i for i, label in enumerate(labels)}
        row_of = {item: i for i, item in enumerate(items)}
        positions = [(row_of[v.input or ""], col_of[v.label]) for v in variants]
        return Axes("grid", positions, rows=[], columns=labels, row_axis="input")
    values = [_axis_values(v) for v in variants]
    varying = [
        axis for axis in ("strategy", "model", "adapter") if len({d[axis] for d in values}) > 1
    ]
    if len(varying) < 2 or len({v.input for v in variants}) > 1:
        return _one_row(variants, varying[0] if len(varying) == 1 else "variant")
    row_axis, column_axes = varying[0], varying[1:]
    row_keys = [d[row_axis] for d in values]
    column_keys = [" · ".join(d[a] for a in column_axes) for d in values]
    rows, columns = _unique(row_keys), _unique(column_keys)
    positions = [
        (rows.index(r), columns.index(c)) for r, c in zip(row_keys, column_keys, strict=True)
    ]
    if len(set(positions)) != len(positions):
        return _one_row(variants, "variant")
    return Axes("matrix", positions, rows, columns, row_axis, " · ".join(column_axes))
