"""Datasets whose items carry their own media (a VQA-style question per image).

A dataset column named after a media kind (``image``, ``audio``; :attr:`~lmwidgets.media.base.
MediaKind.dataset_column`), or the one ``--media-column NAME[:KIND]`` names, holds anything that
kind's option accepts. Each item's value becomes a :class:`~lmwidgets.media.base.Deferred` item:
checked cheaply here, before anything runs (the column is on every item, the value is of a type
the kind reads, a path exists; errors name the item), and decoded only when its batch runs, then
released again, so a 1,000-image dataset never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lmwidgets.core.examples import listed, records_of, row_of
from lmwidgets.errors import DatasetError, LmWidgetsError
from lmwidgets.media.base import Deferred, MediaInput, MediaKind, all_kinds, get_kind


def _named_column(spec: str) -> tuple[str, MediaKind]:
    """``--media-column NAME[:KIND]``: the column and its kind (NAME's kind when it is one,
    else ``image``). Only a registered kind after the last ':' is a kind, so a column whose
    name holds ':' (``scan:front``) is named as it is."""
    name, _, kind_name = str(spec).rpartition(":")
    if get_kind(kind_name.strip()) is None:
        name, kind_name = str(spec), ""
    name, kind_name = name.strip(), kind_name.strip()
    kind = get_kind(kind_name or name) or (None if kind_name else get_kind("image"))
    if not name or kind is None:
        known = ", ".join(k.name for k in all_kinds())
        raise DatasetError(
            f"--media-column {spec!r}: give a column name, and after ':' a media kind ({known})."
        )
    return name, kind


def _kind_hint(spec: str | None, column: str, kind: MediaKind) -> str:
    """What to add to a value's error when ``--media-column NAME`` chose the kind by default
    (a column of clips read as images): how to name its kind; '' otherwise."""
    if not spec or ":" in spec or get_kind(column) is not None:
        return ""
    others = " or ".join(f"--media-column {column}:{k.name}" for k in all_kinds() if k != kind)
    return (
        f" (--media-column {column} reads the column as {kind.name}s; for other media say {others})"
    )


def media_columns(rows: Sequence[Any], spec: str | None) -> list[tuple[str, MediaKind]]:
    """The dataset's media columns and their kinds (none: the dataset has no media)."""
    if spec:
        return [_named_column(spec)]
    present = {key for row in rows if isinstance(row, dict) for key in row}
    return [(kind.dataset_column, kind) for kind in all_kinds() if kind.dataset_column in present]


def split_media(
    dataset: Any, spec: str | None, variable: str | None = None
) -> tuple[Any, list[list[MediaInput]]]:
    """The dataset's rows (read once, a list) without its media columns, for the text side,
    and each item's own media (deferred), checked cheaply; ``(rows, [])`` when it has no media
    column, ``(dataset, [])`` when it holds no rows. ``variable``: the dataset's notebook name
    (its items' records name it, for reruns)."""
    name = variable or "dataset"
    if dataset is None:
        if spec:
            raise DatasetError(f"--media-column {spec} needs a dataset: add --dataset VAR.")
        return dataset, []
    rows = records_of(dataset)
    if rows is None:
        return dataset, []
    columns = media_columns(rows, spec)
    if not columns:
        return rows, []  # read once: normalize_dataset takes the rows, not the dataset again
    names = {column for column, _ in columns}
    present = list(dict.fromkeys(key for row in rows if isinstance(row, dict) for key in row))
    for column, kind in columns:
        if column not in present and rows:
            kinds = ", ".join(k.name for k in all_kinds())
            after = f", and after ':' a media kind ({kinds})" if ":" in str(spec) else ""
            raise DatasetError(
                f"--media-column {spec}: {name} has no column {column!r} (its columns: "
                f"{listed(present)}); name the column that holds each item's {kind.name}{after}."
            )
    stripped: list[Any] = []
    media: list[list[MediaInput]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            return rows, []  # normalize_dataset says what is wrong with it
        own: list[MediaInput] = []
        for column, kind in columns:
            try:
                item = _item_media(row, index, column, kind, name)
            except LmWidgetsError as exc:
                hint = _kind_hint(spec, column, kind) if column in row else ""
                if not hint:
                    raise
                raise type(exc)(f"{str(exc).rstrip('.')}{hint}.") from None
            if variable:
                item.origin = {"variable": variable, "index": index, "column": column}
            own.append(item)
        media.append(own)
        stripped.append({k: v for k, v in row.items() if k not in names})
    return stripped, media


def _missing(value: Any) -> bool:
    """An empty cell: None, a DataFrame's NaN, or a Hugging Face dataset's empty media cell
    (``{"bytes": None, "path": None}``)."""
    if isinstance(value, dict) and value and set(value) <= {"bytes", "path"}:
        return not any(value.values())
    return value is None or (isinstance(value, float) and value != value)


def _item_media(row: dict, index: int, column: str, kind: MediaKind, name: str) -> Deferred:
    label = f"{name}[{index}][{column!r}]"
    if column not in row or _missing(row[column]):
        raise DatasetError(
            f"{label}: item {index} has no {kind.name} in its {column!r} column (columns: "
            f"{listed(row)}). Every item needs one; drop the item or fill it in."
        )
    value = row[column]
    if kind.check is not None:
        kind.check(value, label)
    return Deferred(value=value, media_kind=kind, name=f"item {index} {column}")


def item_value(entry: dict[str, Any], namespace: Any) -> Any:
    """A recorded dataset item's media value found again in the notebook (the record's
    ``dataset``: variable, index, column), or None when it is not there."""
    origin = entry.get("dataset")
    if not isinstance(origin, dict) or namespace is None:
        return None
    variable, index, column = origin.get("variable"), origin.get("index"), origin.get("column")
    if not variable or not isinstance(index, int):
        return None
    row = row_of(namespace.get(str(variable)), index)  # that row only, not the whole dataset
    return row.get(column) if isinstance(row, dict) else None


def check_item_kinds(engines: Sequence[Any], shared: list[MediaInput], own: list[MediaInput]):
    """Every model takes the prompt's media plus one item's (kinds and count)."""
    for engine in engines:
        engine.check_media([*shared, *own])


def item_region(region: Any, shared: Sequence[MediaInput], per_item: Sequence[str]) -> Any:
    """The ``--region`` that falls on a dataset item's own image, numbered among its own images
    (None: it names one of the prompt's). Images are numbered as the model sees them: the
    prompt's (``--image``) first, then the item's own. Raises :class:`ImageError` when it names
    an image there is not."""
    from lmwidgets.errors import ImageError
    from lmwidgets.media.images import parse_region

    if region is None:
        return None
    if isinstance(region, str):
        region = parse_region(region)
    before = sum(item.kind == "image" for item in shared)
    own = sum(kind == "image" for kind in per_item)
    if not own or region.image < before:
        return None
    if region.image >= before + own:
        raise ImageError(
            f"--region names image {region.image + 1}, but the prompt has {before} image(s) and "
            f"each item {own} of its own."
        )
    return replace(region, image=region.image - before)


def mark_items(
    own_media: list[list[MediaInput]], region: Any, mode: str, shared: Sequence[MediaInput]
) -> None:
    """Mark ``--region`` on each item's own image it names (:func:`item_region`): every time
    the item is read (its batch, a rerun), the region is drawn or cropped again. An item whose
    image is too small for it fails when its batch reads it, and says so."""
    from lmwidgets.media.images import REGION_MODES

    region = item_region(region, shared, [item.kind for item in own_media[0]])
    if region is None or mode not in REGION_MODES:
        return  # a mode not known was refused with the prompt's media
    for own in own_media:
        images = [item for item in own if item.kind == "image" and isinstance(item, Deferred)]
        images[region.image].marks = {"region": region.as_list(), "region_mode": mode}
