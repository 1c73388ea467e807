"""The ``constraint`` axis kind: structured answers (``--json``, ``--regex``, ``--one-of``,
``--grammar``) free or enforced while decoding (``--constrain``), as one registered axis kind
(:mod:`lmwidgets.core.axis_kinds`).

A run with a constraint has the ``constraint`` axis (``enforced`` by default, ``free``, or both
side by side). Every column is checked against the constraint after generation (its answer is
the structured part, its record's ``output.structured`` the verdict); enforced columns hand it
to the engine. The live view shows ✓ valid / ✗ invalid (``structured`` in the cell), the static
copy the same flag and the parsed JSON. What the options mean: :mod:`.structured`.
"""

from __future__ import annotations

import json
from typing import Any

from lmwidgets.core.axis_kinds import AxisContext, AxisKind, AxisRun, register_kind
from lmwidgets.core.constraints import ANSWER_MARKER
from lmwidgets.errors import ConstraintError
from lmwidgets.prompting.axes import KindAxis
from lmwidgets.prompting.structured import (
    CONSTRAIN_VALUES,
    check_engines,
    constrain_values,
    resolve_constraint,
    structured_finisher,
)

#: The API keywords (and ``%%prompt`` options) of a structured answer.
KEYWORDS = ("json", "regex", "one_of", "grammar", "constrain")


def column_constraint(constraint: Any, strategy: str) -> Any:
    """The constraint of one column: with chain-of-thought only the final answer (after the
    marker the cot instruction asks for) is structured; the reasoning before it is free."""
    if constraint is None or strategy not in ("cot", "self-consistency"):
        return constraint
    return constraint.with_marker(ANSWER_MARKER)


class ConstraintRun(AxisRun):
    """A run's constraint: every column checked against it, enforced where its value says."""

    def __init__(self, constraint: Any, axis: KindAxis) -> None:
        self.constraint = constraint
        self.axis = axis

    def variant(self, value: Any, strategy: str, media: list[Any]) -> dict[str, Any]:
        return {
            "constraint": column_constraint(self.constraint, strategy),
            "enforced": value == "enforced",
        }

    def finishers(self) -> list[Any]:
        return [structured_finisher(self.constraint)]


def build(context: AxisContext) -> ConstraintRun | None:
    """The run's constraint and its axis (free, enforced or both); None without one."""
    options = context.options
    constraint = resolve_constraint(
        json=options.get("json"),
        regex=options.get("regex"),
        one_of=options.get("one_of"),
        grammar=options.get("grammar"),
        namespace=context.namespace,
    )
    constrain = options.get("constrain")
    values = constrain_values(constrain, constraint)
    if constraint is None:
        return None
    for strategy in dict.fromkeys(context.strategies):  # cot constrains what follows its marker
        check_engines(
            context.engines, column_constraint(constraint, strategy), "enforced" in values
        )
    axis = KindAxis("constraint", tuple((v, v) for v in values), shown=constrain == "both")
    return ConstraintRun(constraint, axis)


def structured_cell(result: Any) -> dict[str, Any] | None:
    """A structured column's verdict for the view: valid or not, enforced or free, and its
    parsed JSON written out readably (shown folded)."""
    structured = result.extras.get("structured")
    if not isinstance(structured, dict):
        return None
    kind = (structured.get("constraint") or {}).get("kind", "")
    parsed = structured.get("parsed")
    shown = json.dumps(parsed, indent=2, ensure_ascii=False) if kind == "json" and parsed else ""
    return {
        "valid": structured.get("valid"),
        "enforced": structured.get("enforced"),
        "kind": kind,
        "parsed": shown,
    }


def bounded_cell(structured: dict[str, Any] | None) -> dict[str, Any] | None:
    """:func:`structured_cell` as the widget keeps it (its parsed JSON bounded)."""
    if structured is None:
        return None
    from lmwidgets.core.safe_text import WIDGET_TEXT_LIMIT, clean, truncate

    return {
        "valid": bool(structured.get("valid")),
        "enforced": bool(structured.get("enforced")),
        "kind": str(structured.get("kind", "")),
        "parsed": truncate(clean(str(structured.get("parsed") or "")), WIDGET_TEXT_LIMIT)[0],
    }


def add_options(parser: Any) -> None:
    """``%%prompt``'s structured-answer options."""
    parser.add_argument(
        "--json",
        default=None,
        metavar="VAR",
        help="A structured answer: a variable holding a pydantic model class or a JSON-schema "
        "dict. Result.parsed holds the answer as data, Result.valid whether it matched.",
    )
    parser.add_argument(
        "--regex",
        default=None,
        metavar="PATTERN",
        help="The answer must match PATTERN (typed as is: {n} is not expanded; quote it when "
        "it has spaces).",
    )
    parser.add_argument(
        "--one-of",
        default=None,
        metavar="A,B,C|VAR",
        help="The answer is one of these labels (or of a variable's list).",
    )
    parser.add_argument(
        "--grammar",
        default=None,
        metavar="VAR",
        help="The answer follows a Lark grammar (a variable holding its text).",
    )
    parser.add_argument(
        "--constrain",
        default=None,
        choices=list(CONSTRAIN_VALUES),
        help="With a structured answer: enforced while decoding (default), free (only checked) "
        "or both side by side, with the parse rate of each.",
    )


KIND = register_kind(
    AxisKind(
        name="constraint",
        after="strategy",
        build=build,
        keywords=KEYWORDS,
        asks=("json", "regex", "one_of", "grammar"),
        flag="a structured answer",
        title="free or enforced",
        error=ConstraintError,
        add_options=add_options,
        raw_options=("--regex", "--one-of"),
        check="lmwidgets.run.structured:checked_answer",
        cell_value=structured_cell,
        cell=bounded_cell,
        cell_key="structured",
        static_head="lmwidgets.sharing.static_structured:structured_flags",
        static_body="lmwidgets.sharing.static_structured:parsed_html",
    )
)
