"""Given choices (issue 20): the options checked before anything runs, ``expected`` as a
choice's text or index, and every bad input as a ChoicesError that names the culprit."""

import pytest

import lmwidgets
from lmwidgets.errors import ChoicesError, LmWidgetsError
from lmwidgets.prompting.choices import check_choices, expected_index


@pytest.fixture
def scripted(registry):
    engine = lmwidgets.load_model(engine="scripted", name="s", replies={"France": "Paris"})
    yield engine


def prompt(text="Capital of France?", **options):
    options.setdefault("display", False)
    return lmwidgets.prompt(text, **options)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "list of strings"),
        ("Paris,Lyon", "list of strings"),
        ({"a": "Paris"}, "list of strings"),
        (42, "list of strings"),
        ([], "at least two"),
        (["Paris"], "at least two"),
        (["Paris", ""], "choice 1 is empty"),
        (["Paris", "   "], "choice 1 is empty"),
        (["Paris", 4], "choice 1 is 4, not text"),
        (["Paris", None], "choice 1 is None"),
        (["Paris", "Lyon", "Paris"], "Paris more than once"),
        ([str(i) for i in range(101)], "at most 100"),
    ],
)
def test_bad_choices_are_refused_by_name(value, words):
    with pytest.raises(ChoicesError, match=words):
        check_choices(value)


def test_good_choices_pass_as_lists():
    assert check_choices(("Paris", "Lyon")) == ["Paris", "Lyon"]
    np = pytest.importorskip("numpy")
    assert check_choices(np.array(["a", "b"])) == ["a", "b"]


@pytest.mark.parametrize(
    ("expected", "index"),
    [("Lyon", 1), (" Lyon ", 1), (2, 2), ("0", 0), (1.0, 1), ("Nice", 2)],
)
def test_expected_is_a_choice_or_its_index(expected, index):
    assert expected_index(expected, ["Paris", "Lyon", "Nice"], 0) == index


@pytest.mark.parametrize("expected", ["Berlin", 3, -1, True, "7"])
def test_expected_outside_the_choices_is_an_error(expected):
    with pytest.raises(ChoicesError, match=r"Dataset item 4: expected .* neither one of its"):
        expected_index(expected, ["Paris", "Lyon", "Nice"], 4)


def test_a_choice_that_is_digits_wins_over_an_index():
    assert expected_index("1", ["0", "1", "2"], 0) == 1
    assert expected_index(0, ["1", "0"], 0) == 0  # an int is an index


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"strategy": "cot"}, "cot .*cannot run with them"),
        ({"compare": "zero-shot,self-consistency"}, "self-consistency"),
        ({"one_of": ["Paris", "Lyon"]}, "structured answer"),
        ({"probe": "leak"}, "--probe"),
        ({"logprobs": 3}, "drop --logprobs"),
    ],
)
def test_generation_options_are_refused_before_anything_runs(scripted, options, words):
    with pytest.raises(ChoicesError, match=words):
        prompt(choices=["Paris", "Lyon"], **options)
    assert scripted.calls == [] and scripted.choice_calls == []


def test_a_model_that_cannot_score_choices_is_named(registry):
    engine = lmwidgets.load_model(engine="scripted", name="mute", choice_scores=False)
    with pytest.raises(ChoicesError, match=r"mute .*cannot score choices"):
        prompt(choices=["Paris", "Lyon"])
    assert engine.choice_calls == []


def test_dataset_choices_are_checked_per_item(scripted):
    good = {"input": "France?", "choices": ["Paris", "Lyon"], "expected": "Paris"}
    cases = [
        ([good, {"input": "Spain?", "expected": "Madrid"}], "item 1 has no choices"),
        ([good, {"input": "x", "choices": ["a", 3]}], "item 1's choices: choice 1 is 3"),
        ([good, {"input": "x", "choices": ["a", "b"], "expected": "c"}], "item 1: expected"),
    ]
    for dataset, words in cases:
        with pytest.raises(ChoicesError, match=words):
            prompt("{input}", dataset=dataset)
    assert scripted.choice_calls == []


def test_scorers_that_do_not_fit_given_choices(scripted):
    dataset = [{"input": "France?", "expected": "Paris"}]
    with pytest.raises(ChoicesError, match="drop --score exact"):
        prompt("{input}", dataset=dataset, choices=["Paris", "Lyon"], score="exact")
    with pytest.raises(ChoicesError, match="give them with --choices"):
        prompt("{input}", dataset=dataset, score="likelihood")
    with pytest.raises(ChoicesError, match="drop --choices"):
        prompt("{input}", dataset=dataset, choices=["Paris", "Lyon"], score="perplexity")
    with pytest.raises(ChoicesError, match="item 1 has no expected"):
        prompt("{input}", dataset=[*dataset, {"input": "Spain?"}], score="perplexity")
    with pytest.raises(LmWidgetsError, match="give a dataset"):
        prompt(score="perplexity")
    assert scripted.choice_calls == []


def test_few_shot_scores_choices(scripted):
    examples = [("Capital of Italy?", "Rome")]
    comparison = prompt(compare="zero-shot,few-shot", examples=examples, choices=["Paris", "Lyon"])
    assert [r.answer for r in comparison] == ["Paris", "Paris"]
    assert "Rome" in comparison["few-shot"].prompt
