"""A column's structured answer after generation: whether its text satisfies the run's
constraint (``Result.valid``) and the answer as Python data (``Result.parsed``).

Free and enforced columns are checked the same way, by the grammar that enforcement uses
(:func:`lmwidgets.engines.grammar.text_matches`), so a free column's ``valid`` means exactly what
enforcement guarantees. An enforced column cut off by ``--max-new-tokens`` is invalid too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmwidgets.core.constraints import Constraint, parsed_for_display
from lmwidgets.core.variant import Variant


@dataclass(frozen=True)
class Checked:
    """The verdict on one column's text."""

    valid: bool
    parsed: Any = None
    #: The constrained part of the text (after the marker with chain-of-thought).
    answer: str | None = None

    def record(self, constraint: Constraint, enforced: bool) -> dict[str, Any]:
        """The record's ``structured`` entry: the constraint exactly, and the verdict."""
        return {
            "constraint": constraint.record(),
            "enforced": enforced,
            "valid": self.valid,
            "parsed": parsed_for_display(self.parsed) if self.valid else None,
        }


def check_text(constraint: Constraint, text: str) -> Checked:
    """Check ``text`` against ``constraint``; it parses only when valid."""
    from lmwidgets.engines.grammar import text_matches

    answer = constraint.answer_text(text)
    if answer is None or not text_matches(constraint, answer):
        return Checked(False, None, answer)
    try:
        return Checked(True, constraint.parse(answer), answer)
    except ValueError:  # a pydantic validator the schema does not express
        return Checked(False, None, answer)


def check_column(variant: Variant, text: str) -> Checked | None:
    """The verdict on a column of a run with a constraint (None: the run has none)."""
    if variant.constraint is None:
        return None
    return check_text(variant.constraint, text)


def checked_answer(
    variant: Variant, text: str, answer: str | None, extras: dict[str, Any]
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """The ``constraint`` axis kind's check (:mod:`lmwidgets.prompting.structured_axis`): a
    valid answer is the structured part itself (the label, the JSON); the verdict goes to the
    record's ``output.structured`` and the result's ``valid`` and ``parsed`` (a pydantic
    instance with a model class)."""
    checked = check_column(variant, text)
    if checked is None:
        return answer, extras, {}
    if checked.valid:
        answer = checked.answer
    extras = {**extras, "structured": checked.record(variant.constraint, variant.enforced)}
    return answer, extras, {"parsed": checked.parsed, "valid": checked.valid}
