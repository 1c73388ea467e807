"""Scorers (issue 14): every built-in scorer and user functions, alone and through a scripted run."""

import math

import pytest

import lmwidgets
from lmwidgets.core.answers import extract_answer
from lmwidgets.errors import InvalidArgumentError, StrategyError
from lmwidgets.prompting.scoring import (
    Output,
    ScoreFailure,
    choice_letter,
    resolve_scorer,
)


def judge(spec, text, expected, answer=..., item=None, variables=None):
    """(score, compared) of ``text`` (its answer extracted as a run extracts it)."""
    scorer = resolve_scorer(spec, variables or {})
    found = extract_answer(text) if answer is ... else answer
    return scorer(Output(found, text, item or {}), expected)[:2]


# auto -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected", "score"),
    [
        ("The opposite of hot is cold.", "cold", 1.0),  # the README's antonym example
        ("cold", "Cold.", 1.0),
        ("I think it is warm.", "cold", 0.0),
        ("14", "4", 0.0),  # a number is not found inside another
        ("The answer is 14.", "4", 0.0),
        ("2 + 2 = 4.0", "4", 1.0),
        ("That makes 1,000 apples", "1000", 1.0),
        ("big\nThe opposite of small is large (2 syllables)", "large", 1.0),  # the last line
        ("The answer is: the Eiffel Tower.", "Eiffel Tower", 1.0),
        ("Lyon", "Paris|lyon", 1.0),
        ("Marseille", "Paris|lyon", 0.0),
    ],
)
def test_auto_accepts_full_sentences_but_not_other_numbers(text, expected, score):
    assert judge("auto", text, expected)[0] == score
    assert judge(None, text, expected)[0] == score  # auto is the default


def test_exact_is_strict():
    assert judge("exact", "The opposite of hot is cold.", "cold") == (
        0.0,
        "The opposite of hot is cold",
    )
    assert judge("exact", "The answer is: Cold.", "cold") == (1.0, "Cold")
    assert judge("exact", "It is 4.0", "four|4")[0] == 1.0


def how(spec, text, expected, answer=..., variables=None):
    """How the scorer says it judged ``text`` (``Result.verdict``)."""
    scorer = resolve_scorer(spec, variables or {})
    found = extract_answer(text) if answer is ... else answer
    return scorer(Output(found, text, {}), expected).how


def test_a_verdict_says_how_it_matched():
    # The example: a match by containment is not "= expected Paris".
    assert how("auto", "The capital of France is Paris", "Paris") == "contains Paris"
    assert how("auto", "The answer is 14.", "14") == "equals 14"
    assert how("auto", "It is 14.0 in all", "14") == "equals 14"
    assert how("number:1%", "It is about 3.16", "3.14") == "3.16 within 1% of 3.14"
    assert how("number:0.01", "It is 3.141", "3.14") == "3.141 within 0.01 of 3.14"
    assert how("contains", "Paris, I believe. Or not.", "Paris|Lyon") == "contains Paris"
    assert how("choice", "The answer is (B).", "B") == "chose B"
    assert how(r"regex:(\d+) apples", "3 pears, 12 apples", "12") == "regex found 12"
    assert how(lambda a, e, i: 0.75, "x", "y") == "<lambda>: 0.75"
    assert how(lambda a, e, i: True, "x", "y") == "<lambda>: yes"


def test_a_miss_says_what_was_found_without_repeating_prose():
    assert how("auto", "The answer is 7.", "6") == "got 7"
    assert how("exact", "Rome.", "Paris") == "no match"  # the text is the answer: said once
    assert how("exact", "I pick Rome.\nAnswer: Rome", "Paris") == "got Rome"
    long = "The opposite of up is sideways, as everyone who has ever looked knows."
    assert how("auto", long, "down") == "not in the answer"
    assert how("contains", "Rome", "Paris") == "not in the text"
    assert how("number:1%", "It is 3.5", "3.14") == "got 3.5, not within 1%"
    assert how("number", "none", "3") == "no number in the answer"
    assert how("choice", "C) Lyon", "B") == "chose C"
    assert how("choice", "Paris", "B") == "no choice letter"
    assert how(r"regex:(\d+) apples", "pears", "12") == "regex found nothing"
    assert how("auto", "", "x", answer=None) == "no answer"


def test_no_answer_scores_zero_without_calling_the_scorer():
    def boom(answer, expected, item):
        raise AssertionError("called")

    for spec in ("auto", "exact", "contains", "choice", boom):
        assert judge(spec, "", "x", answer=None) == (0.0, None)


# contains -------------------------------------------------------------------------------------
def test_contains_finds_whole_words_anywhere():
    assert judge("contains", "Paris, I believe. Or maybe not.", "paris")[0] == 1.0
    assert judge("contains", "Comparison of cities", "paris")[0] == 0.0
    assert judge("contains", "I counted 14 sheep", "4")[0] == 0.0
    assert judge("contains", "I counted 4.0 sheep, then slept", "4")[0] == 1.0
    assert judge("contains", "Rome or Lyon", "paris|lyon")[0] == 1.0
    assert judge("contains", "some text", "paris")[1] == "some text"  # compared: the text


# regex ----------------------------------------------------------------------------------------
def test_regex_takes_the_last_match_and_its_group():
    spec = r"regex:Answer:\s*(\w+)"
    assert judge(spec, "Answer: Rome\nNo wait. Answer: Paris", "paris") == (1.0, "Paris")
    assert judge(spec, "Answer: Rome", "paris") == (0.0, "Rome")
    assert judge(spec, "Paris", "paris") == (0.0, None)  # no match
    assert judge(r"regex:(?P<answer>\d+) apples", "3 pears, 12 apples", "12") == (1.0, "12")
    assert judge(r"regex:\d+", "3 pears, 12 apples", "12") == (1.0, "12")  # whole match
    assert judge(spec, "Answer: Lyon", "Paris|Lyon")[0] == 1.0


def test_a_regex_that_does_not_compile_is_an_error_before_running(registry):
    with pytest.raises(InvalidArgumentError, match=r"'regex:\(unclosed'.*does not compile"):
        resolve_scorer("regex:(unclosed")
    with pytest.raises(InvalidArgumentError, match="needs a pattern"):
        resolve_scorer("regex:")
    model = lmwidgets.load_model(engine="scripted", name="lmw_rx", replies={"*": "x"})
    with pytest.raises(InvalidArgumentError, match="does not compile"):
        lmwidgets.prompt("{input}", dataset=[{"input": "a", "expected": "b"}], score="regex:[")
    assert model.calls == []  # nothing was generated


# number ---------------------------------------------------------------------------------------
def test_number_tolerances():
    assert judge("number", "It is 3.1415927", "3.14159265")[0] == 1.0  # relative 1e-6
    assert judge("number", "It is 3.141", "3.14")[0] == 0.0
    assert judge("number:0.01", "It is 3.141", "3.14") == (1.0, "3.141")
    assert judge("number:0.0005", "It is 3.141", "3.14")[0] == 0.0
    assert judge("number:1%", "about 101", "100")[0] == 1.0
    assert judge("number:1%", "about 102", "100")[0] == 0.0
    assert judge("number", "The answer is 1,234.", "1234") == (1.0, "1234")
    assert judge("number", "The answer is -2.5e3", "-2500")[0] == 1.0
    assert judge("number", "The answer is 0", "0")[0] == 1.0
    assert judge("number", "The answer is none.", "0") == (0.0, None)
    assert judge("number", "It is 7", "six|7")[0] == 1.0  # one numeric alternative is enough


def test_number_needs_a_numeric_expected_and_a_sane_tolerance():
    with pytest.raises(ScoreFailure, match="expected 'six' is not a number"):
        judge("number", "6", "six")
    for bad in ("number:x", "number:-1", "number:nan", "number:"):
        with pytest.raises(InvalidArgumentError, match="tolerance must be a number >= 0"):
            resolve_scorer(bad)


# choice ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is (B).", "B"),
        ("B) Paris", "B"),
        ("b.", "B"),
        ("(b)", "B"),
        ("Answer: c", "C"),
        ("Let me think.\nThe final answer is D because it is blue.", "D"),
        ("I would pick option E", "E"),
        ("Both are close, so it is A.", "A"),
        ("(C) 12 apples", "C"),
        ("the answer is a cat", None),  # an article is not a choice
        ("A cat sat there", None),
        ("Paris", None),
    ],
)
def test_choice_letter_extraction(text, letter):
    assert judge("choice", text, "A|B|C|D|E") == (float(letter is not None), letter)
    assert choice_letter(text.splitlines()[-1]) == letter


def test_choice_scores_letters():
    assert judge("choice", "The answer is (B).", "B") == (1.0, "B")
    assert judge("choice", "B) Paris", "(b)") == (1.0, "B")
    assert judge("choice", "C) Lyon", "B") == (0.0, "C")
    assert judge("choice", "C) Lyon", "B|C")[0] == 1.0
    assert judge("choice", "Paris", "B") == (0.0, None)
    with pytest.raises(ScoreFailure, match="'Paris' is not a choice letter A-E"):
        judge("choice", "B", "Paris")


# functions ------------------------------------------------------------------------------------
def test_functions_return_a_bool_or_a_score():
    def same_length(answer, expected, item):
        return len(answer) == len(expected)

    def overlap(answer, expected, item):
        return len(set(answer) & set(expected)) / len(set(expected))

    assert judge(same_length, "cold", "warm") == (1.0, "cold")
    assert judge(same_length, "cool", "hot") == (0.0, "cool")
    assert judge(overlap, "ab", "abcd")[0] == 0.5
    assert judge(overlap, "x", "ab|xy")[0] == 0.5  # the best alternative


def test_a_function_gets_the_dataset_item():
    seen = []

    def spy(answer, expected, item):
        seen.append((answer, expected, item))
        return True

    judge(spy, "The answer is 4.", "4", item={"input": "2 + 2", "expected": "4", "level": 1})
    assert seen == [("4", "4", {"input": "2 + 2", "expected": "4", "level": 1})]


@pytest.mark.parametrize(
    ("verdict", "match"),
    [
        ("yes", "returned 'yes', not True/False or a number from 0 to 1"),
        (None, "returned None"),
        (1.5, "returned 1.5"),
        (-0.1, "returned -0.1"),
        (math.nan, "returned nan"),
    ],
)
def test_a_function_returning_something_else_fails_that_item(verdict, match):
    def odd(answer, expected, item):
        return verdict

    with pytest.raises(ScoreFailure, match=match):
        judge(odd, "x", "y")


def test_a_function_that_raises_fails_that_item():
    def broken(answer, expected, item):
        raise ValueError("no idea")

    with pytest.raises(ScoreFailure, match="ValueError: no idea"):
        judge(broken, "x", "y")


def test_a_function_named_in_the_notebook():
    def loose(answer, expected, item):
        return expected.lower() in answer.lower()

    assert resolve_scorer("loose", {"loose": loose}).spec == "callable:loose"
    assert resolve_scorer("callable:loose", {"loose": loose}).spec == "callable:loose"
    assert resolve_scorer(loose).spec == "callable:loose"
    with pytest.raises(StrategyError, match=r"Unknown scorer 'tight'.*auto, exact.*notebook"):
        resolve_scorer("tight", {"loose": loose})
    with pytest.raises(InvalidArgumentError, match="'loose' is a int in the notebook"):
        resolve_scorer("loose", {"loose": 3})
    with pytest.raises(InvalidArgumentError, match="must take three arguments"):
        resolve_scorer(lambda answer: True)
    with pytest.raises(InvalidArgumentError, match="takes no argument"):
        resolve_scorer("exact:yes")
    with pytest.raises(InvalidArgumentError, match="score must be a scorer name"):
        resolve_scorer(3)


# Through a run (scripted engine) ----------------------------------------------------------------
REPLIES = {
    "hot": "The opposite of hot is cold.",
    "big": "small",
    "up": "The opposite of up is sideways.",
    "2 + 2": "2 + 2 = 4",
    "7 + 7": "7 + 7 = 14",
    "*": "I do not know.",
}
ANTONYMS = [
    {"input": "hot", "expected": "cold"},
    {"input": "big", "expected": "small|little"},
    {"input": "up", "expected": "down"},
]


@pytest.fixture
def scripted(registry):
    return lmwidgets.load_model(engine="scripted", name="lmw_score", replies=REPLIES)


def ask(**options):
    return lmwidgets.prompt("{input}", display=False, **options)


def test_every_strategy_gets_an_answer(scripted):
    cmp = ask(compare="zero-shot,few-shot,cot", examples=[("a", "b")], dataset=ANTONYMS[:1])
    assert [r.answer for r in cmp] == ["The opposite of hot is cold"] * 3
    assert [r.record["output"]["answer"] for r in cmp] == ["The opposite of hot is cold"] * 3


def test_the_antonym_dataset_with_the_default_scorer(scripted):
    cmp = ask(compare="zero-shot,few-shot", examples=[("wet", "dry")], dataset=ANTONYMS)
    assert [r.correct for r in cmp] == [True, True, True, True, False, False]
    assert [r.score for r in cmp] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert cmp.scores == {"zero-shot": 2 / 3, "few-shot": 2 / 3}
    assert cmp[0].compared == "The opposite of hot is cold"
    record = cmp[0].record
    assert (record["scorer"], record["score"], record["correct"]) == ("auto", 1.0, True)
    assert record["compared"] == "The opposite of hot is cold"
    exact = ask(dataset=ANTONYMS, score="exact")
    assert [r.correct for r in exact] == [False, True, False]
    assert exact.scores == {"zero-shot": 1 / 3} and exact[0].record["scorer"] == "exact"


def test_numbers_do_not_match_inside_other_numbers(scripted):
    cmp = ask(dataset=[{"input": "2 + 2", "expected": "4"}, {"input": "7 + 7", "expected": "4"}])
    assert [r.correct for r in cmp] == [True, False]
    assert [r.compared for r in cmp] == ["4", "14"]


def test_a_failing_function_leaves_its_item_out_and_the_run_goes_on(scripted):
    def picky(answer, expected, item):
        if item["input"] == "big":
            raise ValueError("cannot judge big things")
        return expected in answer

    cmp = ask(dataset=ANTONYMS, score="picky", variables={"picky": picky})
    assert [r.text for r in cmp] == ["The opposite of hot is cold.", "small", REPLIES["up"]]
    assert [r.score for r in cmp] == [1.0, None, 0.0]
    assert [r.correct for r in cmp] == [True, None, False]
    assert cmp[1].score_error == "ValueError: cannot judge big things"
    assert cmp[1].record["score_error"] == "ValueError: cannot judge big things"
    assert cmp.scores == {"zero-shot": 0.5}
    assert cmp.notes[0] == (
        "picky failed on item 1 ('big'), column 'zero-shot': ValueError: cannot judge big things"
    )
    assert "leave out the 1 result(s) the scorer failed on" in cmp.notes[-1]
    assert cmp[0].record["scorer"] == "callable:picky"


def test_many_failures_are_counted_not_listed(scripted):
    def never(answer, expected, item):
        return "maybe"

    items = [{"input": f"question {i}", "expected": "x"} for i in range(8)]
    cmp = ask(dataset=items, score=never)
    assert cmp.scores == {} and all(r.score is None for r in cmp)
    assert len(cmp.notes) == 6 and cmp.notes[-1].startswith("…and 3 more.")
    assert "never returned 'maybe'" in cmp.notes[0]


def test_scorer_choice_and_regex_through_a_run(registry):
    lmwidgets.load_model(
        engine="scripted",
        name="lmw_mc",
        replies={
            "capital": "The answer is (B).",
            "which river": "Hmm.\nA) the Seine",
            "river": "Answer: Seine\nthen maybe more",
        },
    )
    items = [{"input": "capital", "expected": "B"}, {"input": "which river", "expected": "A"}]
    cmp = ask(dataset=items, score="choice")
    assert [r.compared for r in cmp] == ["B", "A"] and [r.correct for r in cmp] == [True, True]
    rx = ask(dataset=[{"input": "river", "expected": "seine"}], score=r"regex:Answer: (\w+)")
    assert (rx[0].correct, rx[0].compared) == (True, "Seine")
    assert rx[0].record["scorer"] == r"regex:Answer: (\w+)"


def test_score_is_checked_before_anything_runs(scripted):
    with pytest.raises(StrategyError, match="Unknown scorer 'nope'"):
        ask(dataset=ANTONYMS, score="nope")
    with pytest.raises(InvalidArgumentError, match="give a dataset too"):
        lmwidgets.prompt("hot", display=False, score="exact")
    assert scripted.calls == []


def test_score_without_expected_is_noted(scripted):
    cmp = ask(dataset=[{"input": "hot"}], score="exact")
    assert cmp[0].score is None and cmp[0].correct is None and cmp.scores == {}
    assert "no dataset item has an 'expected' value" in cmp.notes[-1]
    assert ask(dataset=[{"input": "hot"}]).notes == []  # the default says nothing


def test_exports_carry_scores(scripted):
    import json

    cmp = ask(dataset=ANTONYMS)
    frame = cmp.to_pandas()
    assert list(frame.columns)[-5:] == ["expected", "correct", "score", "compared", "verdict"]
    assert list(frame["score"]) == [1.0, 1.0, 0.0]
    assert list(frame["verdict"]) == ["contains cold", "equals small", "not in the answer"]
    data = json.loads(cmp.to_json())
    assert data["results"][2]["compared"] == "The opposite of up is sideways"
    assert data["results"][0]["verdict"] == cmp[0].record["verdict"] == "contains cold"
    assert data["results"][0]["score"] == 1.0


def test_agreement_per_row(registry):
    lmwidgets.load_model(
        engine="scripted",
        name="lmw_agree",
        replies=lambda text, adapter: (
            "The answer is 4." if "step by step" in text else "4" if "2 + 2" in text else "5"
        ),
    )
    single = lmwidgets.prompt("What is 2 + 2?", compare="zero-shot,cot", display=False)
    assert single.agreement().summary == "both columns agree on 4"
    grid = ask(compare="zero-shot,cot", dataset=[{"input": "2 + 2"}, {"input": "x"}])
    assert len(grid.rows) == 2 and [r.input for r in grid.rows[1]] == ["x", "x"]
    assert grid.agreement(0).all_agree
    assert grid.agreement(1).groups == [0, 1]
    assert grid.agreement(1).summary == "the 2 columns disagree"
    with pytest.raises(InvalidArgumentError, match=r"say which with row=0\.\.1"):
        grid.agreement()
    with pytest.raises(InvalidArgumentError, match="from 0 to 1, not 2"):
        grid.agreement(2)


def test_agreement_summaries_read_naturally():
    from lmwidgets.core.answers import agreement

    assert agreement(["4", "4.0"]).summary == "both columns agree on 4"
    assert agreement(["4", "5"]).summary == "the 2 columns disagree"
    assert agreement(["4", "5", "6"]).summary == "no two of 3 columns agree"
    assert agreement(["cold", "Cold.", "hot"]).groups == [0, 0, 1]
    assert agreement([None, None]).summary == "no column has an answer"
    assert agreement(["x"]).summary == ""
