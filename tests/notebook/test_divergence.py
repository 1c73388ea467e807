"""Where token streams diverge, on handmade streams (lmwidgets.notebook.divergence)."""

from __future__ import annotations

from lmwidgets.notebook.divergence import (
    common_prefix,
    divergence_key,
    divergences,
    first_divergence,
    group_by_key,
)


def test_two_streams_diverge_at_their_first_different_token():
    a = ["The", " answer", " is", " 4", "."]
    b = ["The", " answer", " is", " 5", "."]
    assert first_divergence([a, b]) == [3, 3]
    assert divergences([a, b]) == [(3, 1), (3, 0)]


def test_ids_work_as_well_as_texts_and_the_first_token_can_differ():
    assert first_divergence([[1, 2, 3], [9, 2, 3]]) == [0, 0]
    assert first_divergence([[1, 2, 3], [1, 2, 3]]) == [None, None]
    assert first_divergence([[], []]) == [None, None]


def test_a_stream_that_ends_early_diverges_at_its_end():
    assert divergences([[1, 2], [1, 2, 3]]) == [(2, 1), (2, 0)]


def test_growing_streams_are_not_divergent_while_one_is_a_start_of_the_other():
    assert first_divergence([[1, 2], [1, 2, 3]], finished=[False, True]) == [None, None]
    assert first_divergence([[1, 2], [1, 2, 3]], finished=[True, False]) == [2, 2]
    # A real difference counts even while both still grow.
    assert first_divergence([[1, 2, 7], [1, 2, 3, 4]], finished=[False, False]) == [2, 2]


def test_each_stream_is_measured_against_its_closest_sibling():
    base = [1, 2, 3, 4, 5]
    fork = [1, 2, 3, 9, 9]  # departs from base at 3
    other = [1, 8, 8]  # departs from both at 1
    assert divergences([base, fork, other]) == [(3, 1), (3, 0), (1, 0)]
    # Two identical streams both still diverge from a third.
    assert divergences([[1, 2], [1, 2], [1, 3]]) == [(1, 2), (1, 2), (1, 0)]


def test_common_prefix():
    assert common_prefix("abc", "abd") == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2]) == 2


def test_groups_share_a_model_and_the_end_of_the_prompt():
    question = "<|user|>\nWhat is 2+2?\n<|assistant|>\n"
    keys = [
        divergence_key("m", "first. " + "shared context " * 20 + question),
        divergence_key("m", "second. " + "shared context " * 20 + question),  # same last 200
        divergence_key("m", question + "Let's think step by step.\n"),
        divergence_key("other", question),
        divergence_key("m", question),
        None,
    ]
    assert group_by_key(keys) == [[0, 1]]
    assert group_by_key([*keys, divergence_key("other", question)]) == [[0, 1], [3, 6]]
    assert divergence_key("m", "x" * 500)[1] == "x" * 200
    assert group_by_key([]) == [] and group_by_key(["a", "b"]) == []
