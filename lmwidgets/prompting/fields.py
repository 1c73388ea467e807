"""The ``fields`` scorer: a structured answer (``Result.parsed``) against a dict ``expected``,
field by field.

A dataset whose ``expected`` cells are dicts (``{"name": "Ann", "age": 34}``) scores each column
of a ``--json`` run by the share of expected fields its parsed answer gets right. Fields the
answer has beyond the expected ones are ignored (the schema decides the shape). Numbers are
compared as numbers (``34`` equals ``34.0`` and ``"34"``), text like the ``auto`` scorer
compares it (case, punctuation and articles ignored), lists item by item and nested objects
field by field (a nested object is one field: right only when all of it is). ``how`` says
``3 of 4 fields match (age: got 35, expected 34)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lmwidgets.core.answers import normalize
from lmwidgets.errors import InvalidArgumentError
from lmwidgets.prompting.scoring import (
    DEFAULT_RELATIVE_TOLERANCE,
    Judged,
    Output,
    ScoreFailure,
    as_number,
)

#: Mismatches named in ``how`` (the rest are counted).
_NAMED = 3
_SHOWN = 30
_MISSING = object()


def expected_fields(expected: str) -> dict[str, Any]:
    """The expected dict from ``Result.expected``'s JSON text (a run keeps it so)."""
    try:
        value = json.loads(expected)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not value:
        raise ScoreFailure("expected is not a JSON object with fields")
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return as_number(value) if isinstance(value, str) else None


def same(got: Any, want: Any) -> bool:
    """Whether one answered value equals the expected one (see the module docstring)."""
    if isinstance(want, Mapping):
        return isinstance(got, Mapping) and all(
            same(got.get(key, _MISSING), value) for key, value in want.items()
        )
    if isinstance(want, Sequence) and not isinstance(want, str):
        return (
            isinstance(got, Sequence)
            and not isinstance(got, str)
            and len(got) == len(want)
            and all(same(g, w) for g, w in zip(got, want, strict=True))
        )
    if got is _MISSING:
        return False
    if isinstance(want, bool) or isinstance(got, bool) or want is None or got is None:
        return got is want  # True is not 1, None only None
    a, b = _number(got), _number(want)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=DEFAULT_RELATIVE_TOLERANCE)
    return normalize(str(got)) == normalize(str(want)) and bool(normalize(str(want)))


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def score_fields(output: Output, expected: str) -> Judged:
    """The share of ``expected``'s fields that the parsed answer gets right."""
    want = expected_fields(expected)
    got = output.parsed
    if not isinstance(got, Mapping):
        said = "no structured answer" if got is None else "the answer is not a JSON object"
        return Judged(0.0, None, said)
    misses = [key for key, value in want.items() if not same(got.get(key, _MISSING), value)]
    right = len(want) - len(misses)
    how = f"{right} of {len(want)} fields match"
    if misses:
        named = [
            f"{key}: got {_shown(got.get(key, _MISSING))}, expected {_shown(want[key])}"
            for key in misses[:_NAMED]
        ]
        more = f"; {len(misses) - _NAMED} more" if len(misses) > _NAMED else ""
        how += f" ({'; '.join(named)}{more})"
    compared = json.dumps(dict(got), ensure_ascii=False)
    return Judged(right / len(want), compared, how)


def check_fields_scoring(constraint: Any, items: Sequence[Mapping[str, Any] | None]) -> None:
    """``score="fields"`` needs a ``--json`` constraint and dict ``expected`` values: checked
    before anything runs."""
    if constraint is None or constraint.kind != "json":
        raise InvalidArgumentError(
            "score=fields compares the structured answer (Result.parsed) with a dict 'expected' "
            "field by field: give a JSON schema too (--json VAR / json=)."
        )
    for index, item in enumerate(items):
        value = None if item is None else item.get("expected")
        if value is None:
            continue
        if not isinstance(value, Mapping) or not value:
            raise InvalidArgumentError(
                f"score=fields: dataset[{index}]'s 'expected' is {type(value).__name__} "
                f"{_shown(value)!r}, not a dict of the fields to compare (e.g. "
                '{"name": "Ann", "age": 34}).'
            )
