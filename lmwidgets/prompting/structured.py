"""Structured-answer options: ``json=``, ``regex=``, ``one_of=``, ``grammar=`` and ``constrain=``.

Turns what the user gave (a pydantic model class or a JSON-schema dict, a pattern, a list of
labels or a Lark grammar, directly or as the name of a notebook variable) into one checked
:class:`~lmwidgets.core.constraints.Constraint`, and ``constrain`` (``enforced``, the default;
``free``; ``both``) into the values of the ``constraint`` axis (a registered axis kind:
:mod:`.structured_axis`). Every bad input is a
:class:`~lmwidgets.errors.ConstraintError` before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lmwidgets.core.constraints import Constraint
from lmwidgets.errors import ConstraintError

CONSTRAIN_VALUES = ("enforced", "free", "both")


def _variable(value: Any, namespace: Mapping[str, Any]) -> Any:
    """A notebook variable's value when ``value`` is a name that one holds."""
    if isinstance(value, str) and value.isidentifier() and value in namespace:
        return namespace[value]
    return value


def _schema(value: Any, namespace: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """(JSON schema, pydantic class or None) for ``--json``."""
    value = _variable(value, namespace)
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise ConstraintError(
                f"--json {value!r}: give a pydantic model class or a JSON-schema dict (or the "
                "name of a notebook variable holding one)."
            ) from None
    if isinstance(value, type) and hasattr(value, "model_json_schema"):
        try:
            return value.model_json_schema(), value
        except Exception as exc:  # pydantic raises several kinds for unschemable fields
            raise ConstraintError(
                f"--json {value.__name__}: pydantic cannot make a JSON schema of it ({exc})."
            ) from None
    if not isinstance(value, dict):
        raise ConstraintError(
            f"--json takes a pydantic model class or a JSON-schema dict, not "
            f"{type(value).__name__}."
        )
    return value, None


def _choices(value: Any, namespace: Mapping[str, Any]) -> tuple[str, ...]:
    value = _variable(value, namespace)
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConstraintError("--one-of takes labels a,b,c or a variable holding a list of text.")
    labels = tuple(v.strip() for v in value if v.strip())
    if not labels:
        raise ConstraintError("--one-of needs at least one non-empty label.")
    return tuple(dict.fromkeys(labels))


def _regex(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConstraintError("--regex takes a non-empty regular expression.")
    return value  # compiled by llguidance (Rust regex syntax), which names what is wrong


def _grammar(value: Any, namespace: Mapping[str, Any]) -> str:
    value = _variable(value, namespace)
    if not isinstance(value, str) or not value.strip():
        raise ConstraintError("--grammar takes a Lark grammar (text, or a variable holding it).")
    return value


def resolve_constraint(
    *,
    json: Any = None,
    regex: Any = None,
    one_of: Any = None,
    grammar: Any = None,
    namespace: Mapping[str, Any] | None = None,
) -> Constraint | None:
    """The run's constraint (None without one), compiled once to check it."""
    given = {"json": json, "regex": regex, "one_of": one_of, "grammar": grammar}
    named = [kind for kind, value in given.items() if value is not None]
    if not named:
        return None
    if len(named) > 1:
        flags = ", ".join("--" + k.replace("_", "-") for k in named)
        raise ConstraintError(f"Give one structured-answer option, not several ({flags}).")
    namespace = namespace or {}
    kind = named[0]
    if kind == "json":
        schema, model = _schema(json, namespace)
        constraint = Constraint("json", schema, model)
    elif kind == "regex":
        constraint = Constraint("regex", _regex(regex))
    elif kind == "one_of":
        constraint = Constraint("one_of", _choices(one_of, namespace))
    else:
        constraint = Constraint("grammar", _grammar(grammar, namespace))
    from lmwidgets.engines.grammar import check_constraint

    check_constraint(constraint)
    return constraint


def constrain_values(constrain: str | None, constraint: Constraint | None) -> list[str]:
    """The values of the ``constraint`` axis: ``["enforced"]`` by default, ``["free"]`` or
    ``["free", "enforced"]`` (``both``)."""
    if constrain is None:
        return ["enforced"] if constraint is not None else []
    if constrain not in CONSTRAIN_VALUES:
        raise ConstraintError(
            f"--constrain {constrain!r}: choose from {', '.join(CONSTRAIN_VALUES)}."
        )
    if constraint is None:
        raise ConstraintError(
            f"--constrain {constrain} needs a constraint: --json VAR, --regex PATTERN, "
            "--one-of a,b,c or --grammar VAR."
        )
    return ["free", "enforced"] if constrain == "both" else [constrain]


def check_engines(engines: Sequence[Any], constraint: Constraint, enforced: bool) -> None:
    """Every model of an enforced run must be able to enforce the constraint."""
    if not enforced:
        return
    for engine in engines:
        check = getattr(engine, "check_constraint", None)
        if check is None:
            raise ConstraintError(
                f"{engine.name} ({engine.engine}) cannot enforce {constraint.describe()} while "
                "decoding: use --constrain free to only check its answers."
            )
        check(constraint)


def _rate(results: Sequence[Any]) -> str:
    valid = sum(1 for r in results if r.valid)
    text = f"{valid}/{len(results)} valid ({valid / len(results):.0%})"
    scored = [r.score for r in results if r.score is not None]
    if scored:
        text += f", accuracy {sum(scored) / len(scored):.0%}"
    return text


def structured_finisher(constraint: Constraint) -> Any:
    """The finisher that notes the parse rate (and, on a dataset, the accuracy) of the free and
    the enforced columns side by side."""

    def finish(comparison: Any) -> None:
        checked = [r for r in comparison.results if r.valid is not None]
        if not checked:
            return
        groups: dict[str, list[Any]] = {}
        for result in checked:
            enforced = (result.extras.get("structured") or {}).get("enforced")
            groups.setdefault("enforced" if enforced else "free", []).append(result)
        parts = [f"{name} {_rate(groups[name])}" for name in ("free", "enforced") if name in groups]
        comparison.notes.append(
            f"Structured answers ({constraint.describe()}): " + "; ".join(parts)
        )

    return finish
