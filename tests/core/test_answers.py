"""Extracted answers are spans of the model's text, character for character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmwidgets.core.answers import extract_answer, normalize


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("The result is {undefined_var}", "The result is {undefined_var}"),
        ("Done.\nThe answer is snake_case_name.", "snake_case_name"),
        ("Answer: __init__ method", "__init__ method"),
        ("The answer is `x_y`.", "x_y"),
        ("The final answer is: **Paris**.", "Paris"),
        ("The answer is _Paris_!", "Paris"),
        ("Notes\n**bold** and *it*", "**bold** and *it*"),
    ],
)
def test_an_answer_keeps_every_character_inside_it(text, answer):
    assert extract_answer(text) == answer


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_an_answer_is_always_a_span_of_the_text(text):
    answer = extract_answer(text)
    assert answer is None or (answer and answer in text)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("The code is PELICAN-5299.", "5299"),  # a hyphen, not a minus (seen in probes.ipynb)
        ("Read pages 3-4 first", "4"),
        ("It dropped to -5 overnight", "-5"),
        ("x=-2.5", "-2.5"),
        ("-7", "-7"),
        ("Total: 1,234 apples", "1,234"),
    ],
)
def test_the_last_number_has_a_minus_only_where_no_word_touches_it(text, answer):
    assert extract_answer(text) == answer


def test_normalization_belongs_to_scoring():
    # Scoring compares normalized forms; the answer itself stays as written.
    assert extract_answer("The answer is The Eiffel Tower.") == "The Eiffel Tower"
    assert normalize("The Eiffel Tower") == "eiffel tower"
