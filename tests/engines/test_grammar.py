"""Constraint checks before a run: llguidance's reason reaches the error in one readable line."""

from __future__ import annotations

import pytest

from lmwidgets.core.constraints import Constraint
from lmwidgets.engines.grammar import check_constraint
from lmwidgets.errors import ConstraintError


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[0-9", "unclosed character class"),
        ("(ab", "unclosed group"),
        ("a{3,1}", "invalid repetition count range"),
    ],
)
def test_a_bad_regex_says_why(pattern, reason):
    with pytest.raises(ConstraintError) as raised:
        check_constraint(Constraint("regex", pattern))
    message = str(raised.value)
    assert message.startswith("--regex cannot be used:"), message
    assert reason in message, message
    assert not message.endswith(":"), message
    assert "\n" not in message, message


def test_a_bad_grammar_keeps_its_one_line_reason():
    with pytest.raises(ConstraintError) as raised:
        check_constraint(Constraint("grammar", 'start: foo\nfoo: "a" | bar'))
    message = str(raised.value)
    assert 'unknown name: "bar"' in message and "\n" not in message, message


def test_a_valid_regex_passes():
    check_constraint(Constraint("regex", "[0-9]{4}"))
