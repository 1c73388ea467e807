"""Demonstrations and dataset items as data: what ``--examples`` and ``--dataset`` hold, read from
the shapes a notebook keeps them in (lists of pairs or dicts, DataFrames, Hugging Face
``datasets.Dataset`` objects), with errors that name the row. Engines (LoRA training) and
prompting both read examples through here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lmwidgets.checks import shown
from lmwidgets.errors import DatasetError, ExamplesError, LmWidgetsError


@dataclass(frozen=True)
class Example:
    """One demonstration: input, output and an optional rationale (for few-shot CoT)."""

    input: str
    output: str
    rationale: str | None = None


def _records_of(value: Any) -> list[Any] | None:
    """Rows of a DataFrame-like object, a Hugging Face ``datasets.Dataset`` or a list; None when
    it is none of them."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict("records")
    hf = _hf_kind(value)
    if hf == "Dataset":
        # to_list() keeps Image and Audio cells undecoded ({"bytes", "path"}): the media kinds
        # decode them one batch at a time (lmwidgets.media.base.hf_cell), without torchcodec
        return _converted(value)
    if hf is not None:
        raise DatasetError(_HF_HINTS.get(hf, _HF_HINTS["other"]).format(cls=hf))
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _converted(dataset: Any) -> list[Any]:
    """A ``datasets.Dataset``'s rows as Python values; a value Python cannot hold (a date past
    the year 9999, a decimal out of range) is refused with what to do, not Arrow's traceback."""
    try:
        return list(dataset.to_list())
    except (OverflowError, ValueError, TypeError) as error:
        raise DatasetError(
            f"The dataset's rows could not be read as Python values ({type(error).__name__}: "
            f"{str(error)[:200]}). Cast or drop the column that holds them first, e.g. "
            "data.remove_columns(['column']) or data.cast_column('column', Value('string'))."
        ) from error


#: What to do with Hugging Face dataset objects that are not one ``Dataset``.
_HF_HINTS = {
    "DatasetDict": "A datasets.DatasetDict holds several splits: pass one, e.g. ds['test'].",
    "IterableDataset": (
        "A streaming datasets.IterableDataset has no length: take the items you want first, "
        "e.g. datasets.Dataset.from_list(list(ds.take(100)))."
    ),
    "other": "A datasets.{cls} cannot be read as items: pass a datasets.Dataset.",
}


def _hf_kind(value: Any) -> str | None:
    """The class name of a Hugging Face ``datasets`` object (told by its module, so that
    ``datasets`` is never imported for anything else), or None."""
    cls = type(value)
    module = cls.__module__ or ""
    if module != "datasets" and not module.startswith("datasets."):
        return None
    names = [c.__name__ for c in cls.__mro__]
    for known in ("IterableDatasetDict", "DatasetDict", "IterableDataset", "Dataset"):
        if known in names:
            return "DatasetDict" if known == "IterableDatasetDict" else known
    return cls.__name__


#: Rows of a DataFrame-like object or a list (None when it is neither).
records_of = _records_of


def row_of(value: Any, index: int) -> Any:
    """Row ``index`` of what :func:`records_of` reads, as it reads it, converting only that row
    of a pandas DataFrame or a Hugging Face ``datasets.Dataset`` (a rerun looks up one item's
    media: converting the whole dataset would read every image of it, for every item); None
    when there is no such row or ``value`` holds no rows."""
    if _hf_kind(value) == "Dataset":
        return _converted(value.select([index]))[0] if 0 <= index < len(value) else None
    if hasattr(value, "to_dict") and hasattr(value, "columns") and hasattr(value, "iloc"):
        return value.iloc[[index]].to_dict("records")[0] if 0 <= index < len(value) else None
    rows = _records_of(value)
    return rows[index] if rows is not None and 0 <= index < len(rows) else None


def listed(keys: Any) -> str:
    """Column names for a message (a name whose ``str()`` fails is shown by its type)."""
    names = []
    for key in keys:
        try:
            name = str(key)
        except Exception:
            name = f"a {type(key).__name__}"
        # A lone surrogate cannot be printed by the kernel: show it escaped (\ud800).
        names.append(name.encode("utf-8", "backslashreplace").decode("utf-8"))
    return ", ".join(names) or "none"


def normalize_examples(value: Any, name: str = "examples") -> list[Example]:
    """Examples from (input, output[, rationale]) tuples, dicts, or a DataFrame with those columns."""
    rows = _records_of(value)
    if rows is None:
        raise ExamplesError(
            f"{name} must be a list of (input, output) pairs, a list of dicts with 'input' and "
            f"'output' keys, or a DataFrame with those columns, not {type(value).__name__}."
        )
    if not rows:
        raise ExamplesError(f"{name} is empty: give at least one (input, output) example.")
    examples = []
    for index, row in enumerate(rows):
        if isinstance(row, Mapping):
            missing = [key for key in ("input", "output") if key not in row]
            if missing:
                raise ExamplesError(
                    f"{name}[{index}] has no {' or '.join(repr(m) for m in missing)} key "
                    f"(keys: {listed(row)})."
                )
            rationale = row.get("rationale")
            parts = [row["input"], row["output"], *([] if rationale is None else [rationale])]
        elif isinstance(row, (list, tuple)) and len(row) in (2, 3):
            parts = list(row)
        else:
            raise ExamplesError(
                f"{name}[{index}] is {type(row).__name__} {shown(row)}; each example must be "
                "an (input, output) pair or a dict with 'input' and 'output'."
            )
        texts = [_text_of(part, name, index, ExamplesError) for part in parts]
        examples.append(Example(texts[0], texts[1], texts[2] if len(texts) == 3 else None))
    return examples


def normalize_dataset(value: Any, name: str = "dataset") -> list[dict[str, Any]]:
    """Dataset items (dicts with an ``input`` and optionally ``expected``). Cells become text or
    numbers, except a dict (or pydantic instance) ``expected``, kept as JSON data so that
    ``score="fields"`` compares it field by field."""
    rows = _records_of(value)
    if rows is None:
        raise DatasetError(
            f"{name} must be a DataFrame, a datasets.Dataset or a list of dicts with an 'input' "
            f"column, not {type(value).__name__}."
        )
    if not rows:
        raise DatasetError(f"{name} is empty.")
    items = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DatasetError(
                f"{name}[{index}] is {type(row).__name__}, not a dict with an 'input'."
            )
        if "input" not in row:
            raise DatasetError(
                f"{name} has no 'input' column (columns: {listed(row)}). "
                "Rename the column that holds the questions to 'input'."
            )
        item = {_text_of(k, name, index): _json_value(v, name, index) for k, v in row.items()}
        if _is_record(row.get("expected")):  # a structured expected stays data (--score fields)
            item["expected"] = _json_data(row["expected"], name, index)
        if _is_sequence(row.get("choices")):  # one list of given choices per item (--choices)
            item["choices"] = [_json_value(v, name, index) for v in row["choices"]]
        items.append(item)
    return items


def _is_sequence(value: Any) -> bool:
    """A list-like cell (a list, a tuple, a numpy array): a dataset's ``choices``."""
    return isinstance(value, (list, tuple)) or (
        callable(getattr(value, "tolist", None)) and getattr(value, "ndim", 0) == 1
    )


def _is_record(value: Any) -> bool:
    """A dict, or a pydantic instance: an ``expected`` compared field by field."""
    return isinstance(value, Mapping) or callable(getattr(value, "model_dump", None))


def _json_data(value: Any, name: str, index: int) -> Any:
    """A structured cell (dicts, lists, pydantic instances) as plain JSON data, its keys as text
    and its leaves as :func:`_json_value` makes them."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        value = dump(mode="json")
    if isinstance(value, Mapping):
        return {_text_of(k, name, index): _json_data(v, name, index) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_data(v, name, index) for v in value]
    return _json_value(value, name, index)


def expected_text(value: Any) -> str | None:
    """A dataset item's ``expected`` as ``Result.expected`` shows it: a structured one as its
    JSON text (``{"name": "Ann", "age": 34}``), anything else as its text."""
    if value is None:
        return None
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_value(value: Any, name: str, index: int) -> Any:
    """A dataset cell as a JSON value: numbers and text as they are, numpy scalars as Python
    ones, anything else as its text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    if callable(item):  # numpy and torch scalars
        try:
            return _json_value(item(), name, index)
        except Exception:
            pass
    return _text_of(value, name, index)


def _text_of(value: Any, name: str, index: int, error: type[LmWidgetsError] = DatasetError) -> str:
    """``str(value)``, or an ``error`` (a :class:`DatasetError` unless told) naming the row when
    the object cannot be shown as text (a user's class with a broken ``__str__``)."""
    try:
        return str(value)
    except Exception as exc:
        raise error(
            f"{name}[{index}] holds a {type(value).__name__} that cannot be turned into text "
            f"({type(exc).__name__}). Convert it to a string first."
        ) from None
