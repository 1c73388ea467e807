"""A model as judge (issue 20), the parts that need no run: reading verdicts in every form a
judge writes them, the rubrics and their wording, the judge's prompts, how a verdict shows, and
the options refused before anything runs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmwidgets
from lmwidgets.errors import DatasetError, InvalidArgumentError, LmWidgetsError
from lmwidgets.prompting.judging import (
    JudgeError,
    JudgeTemplates,
    pairwise_outcome,
    parse_pass,
    parse_pick,
    parse_score,
    pointwise_messages,
    pointwise_verdict,
    reasoning_of,
    resolve_judge,
    resolve_rubric,
    shown_verdict,
)


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("The answer is right.\nScore: 4", 4),
        ("Good answer, 4/5", 4),
        ("**Rating:** 4", 4),
        ('{"score": 4, "reason": "fine"}', 4),
        ('{"rating": "2"}', 2),
        ("Rating: 3 out of 5", 3),
        ("It deserves [[5]]", 5),
        ("Reasoning...\n1", 1),
        ("Score: 2\n...on reflection\nFinal score = 3", 3),  # the last verdict counts
        ("score 5", None),  # no separator: not a verdict
        ("Score: 7", None),  # out of range
        ("Score: 3.5", None),  # not a whole score
        ("I cannot judge this.", None),
        ("", None),
    ],
)
def test_scores_are_read_in_every_form_a_judge_writes_them(reply, score):
    found, why = parse_score(reply)
    assert found == score
    assert (why is None) == (score is not None)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("The answer matches.\nVerdict: PASS", True),
        ("It is wrong.\nVerdict: fail", False),
        ("**Verdict**: Passed", True),
        ('{"verdict": "fail"}', False),
        ('{"pass": true}', True),
        ("It does not fail to mention Paris. PASS", True),
        ("Wrong capital.\n\nFAIL", False),
        ("fail.", False),
        ("It is correct.", None),
        ("", None),
    ],
)
def test_pass_and_fail_are_read_robustly(reply, verdict):
    assert parse_pass(reply)[0] is verdict


@pytest.mark.parametrize(
    ("reply", "pick"),
    [
        ("A is more precise.\n[[A]]", "A"),
        ("[[B]]", "B"),
        ("Both are equally good. [[tie]]", "tie"),
        ("[[C]]", "tie"),  # MT-Bench writes a tie as [[C]]
        ("First [[A]], no wait, [[B]]", "B"),
        ('{"winner": "A"}', "A"),
        ("Winner: B", "B"),
        ("Reasoning\nTie", "tie"),
        ("Answer A is nicer", None),
        ("", None),
    ],
)
def test_pairwise_picks_are_read(reply, pick):
    assert parse_pick(reply)[0] == pick


def test_both_orders_must_agree_or_it_is_a_tie():
    # The column is A in the first order and B in the second.
    assert pairwise_outcome(["A", "B"]) == "better"
    assert pairwise_outcome(["B", "A"]) == "worse"
    assert pairwise_outcome(["tie", "tie"]) == "tie"
    assert pairwise_outcome(["A", "A"]) == "tie"  # position bias: always the first answer
    assert pairwise_outcome(["A", None]) is None


def test_a_verdict_keeps_the_reasoning_without_its_verdict_line():
    verdict = pointwise_verdict("1-5", "Clear and correct.\nIt names Paris.\nScore: 5")
    assert verdict["score"] == 5 and verdict["value"] == 1.0 and verdict["label"] == "5/5"
    assert verdict["reasoning"] == "Clear and correct.\nIt names Paris."
    assert verdict["raw"].endswith("Score: 5")
    failed = pointwise_verdict("pass/fail", "Wrong city.\nVerdict: FAIL")
    assert failed["pass"] is False and failed["value"] == 0.0 and failed["label"] == "fail"
    unread = pointwise_verdict("1-5", "Hmm, hard to say.")
    assert unread["value"] is None and unread["label"] is None
    assert unread["note"] == "not judged: no score from 1 to 5 in the reply"
    assert reasoning_of("Only one line: Score: 3") == "Only one line: Score: 3"


def test_built_in_rubrics_and_your_own():
    templates = JudgeTemplates()
    quality = resolve_rubric(None, None, templates)
    assert (quality.name, quality.scale, quality.needs) == ("quality", "1-5", None)
    correctness = resolve_rubric("correctness", None, templates)
    assert (correctness.scale, correctness.needs) == ("pass/fail", "expected")
    faithful = resolve_rubric("faithfulness:context", None, templates)
    assert (faithful.needs, faithful.column) == ("reference", "context")
    assert resolve_rubric("faithfulness", None, templates).column == "reference"
    own = resolve_rubric("Is it polite?", "pass/fail", templates)
    assert (own.name, own.text, own.scale) == ("custom", "Is it polite?", "pass/fail")


def test_the_wording_is_overridable_like_the_strategy_templates(registry):
    lmwidgets.load_model(engine="scripted", name="j")
    spec = resolve_judge(
        "j",
        registry=registry,
        templates={"quality": "Is it short?", "pointwise": "{rubric} | {question} | {answer}"},
    )
    assert spec is not None and spec.rubric.text == "Is it short?"
    record = {"prompt": {"messages": [{"role": "user", "content": "Say {answer} hi"}]}}
    # Fields are filled once: an answer or question holding {answer} is not filled again.
    messages = pointwise_messages(spec, record, "Hi {question}")
    assert messages == [
        {"role": "user", "content": "Is it short? | Say {answer} hi | Hi {question}"}
    ]
    with pytest.raises(JudgeError, match="Unknown judge template field"):
        resolve_judge("j", registry=registry, templates={"qualty": "x"})
    with pytest.raises(JudgeError, match="non-empty text"):
        resolve_judge("j", registry=registry, templates={"quality": 3})


def test_the_prompt_names_the_expected_answer_or_the_reference(registry):
    lmwidgets.load_model(engine="scripted", name="j")
    record = {
        "prompt": {
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}]
        },
        "expected": "Paris",
        "input": {"input": "Q?", "context": "Paris is the capital."},
    }
    correct = resolve_judge("j", registry=registry, rubric="correctness")
    text = pointwise_messages(correct, record, "Lyon")[0]["content"]
    assert "[Question]\nQ?\n" in text and "[Expected answer]\nParis\n" in text
    assert "[Answer]\nLyon\n" in text and '"Verdict: PASS" or "Verdict: FAIL"' in text
    faithful = resolve_judge("j", registry=registry, rubric="faithfulness:context")
    text = pointwise_messages(faithful, record, "Lyon")[0]["content"]
    assert "[Reference]\nParis is the capital.\n" in text and "Score: N" in text


def test_how_a_verdict_shows():
    base = {"model": {"name": "j"}, "rubric": {"name": "quality", "scale": "1-5"}}
    assert shown_verdict({**base, "label": "4/5", "value": 0.75, "reasoning": "ok"}) == {
        "chip": "judge 4/5",
        "tone": "good",
        "title": "judged by j · rubric quality (1-5)",
        "reasoning": "ok",
    }
    assert shown_verdict({**base, "label": "2/5", "value": 0.25})["tone"] == "bad"
    enforced = shown_verdict({**base, "label": "4/5", "value": 0.75, "enforced": True})
    assert (
        enforced["title"] == "judged by j · rubric quality (1-5) · format enforced while decoding"
    )
    free = {**base, "label": "4/5", "enforced": False, "free": "asked (--judge-free)"}
    assert shown_verdict(free)["title"].endswith(" · free text (asked (--judge-free))")
    cannot = {**free, "free": "cannot enforce: the scripted engine of j cannot enforce a format"}
    assert shown_verdict(cannot)["title"].endswith(
        " · free text (the scripted engine of j cannot enforce a format)"
    )
    unsaid = shown_verdict({**base, "label": None, "enforced": False, "note": "not judged: x"})
    assert "free text" in unsaid["title"] and unsaid["title"].endswith("not judged: x")
    unjudged = shown_verdict({**base, "label": None, "note": "not judged: no score"})
    assert unjudged["chip"] == "not judged" and unjudged["tone"] == "none"
    assert unjudged["title"].endswith("not judged: no score")
    pair = {**base, "mode": "pairwise", "against": "A", "outcome": "tie"}
    assert shown_verdict({**pair, "label": "tie (orders disagree)"})["chip"] == (
        "tie with A (orders disagree)"
    )
    baseline = shown_verdict({**base, "mode": "pairwise", "baseline": True})
    assert baseline["chip"] == "pairwise baseline" and baseline["tone"] == "base"
    assert shown_verdict(None) is None


@pytest.mark.parametrize("outcome", [None, "maybe", ["better"], 3])
def test_a_pairwise_record_without_a_known_outcome_shows_not_judged(outcome):
    # A hand-made or damaged record: a label, but no outcome to say (it was a KeyError).
    pair = {"model": {"name": "j"}, "rubric": {"name": "quality"}, "mode": "pairwise"}
    record = {**pair, "label": "better", "against": "A", "reasoning": "B is clearer."}
    if outcome is not None:
        record["outcome"] = outcome
    found = shown_verdict(record)
    assert found["chip"] == "not judged" and found["tone"] == "none"
    assert found["title"].startswith("judged by j · rubric quality (pairwise) · not judged: ")
    said = "no pairwise outcome" if outcome is None else f"unknown pairwise outcome {outcome!r}"
    assert said in found["title"]
    # A known outcome still shows; without "against" it names the first column.
    shown_pair = shown_verdict({**record, "outcome": "worse"})
    assert (shown_pair["chip"], shown_pair["tone"]) == ("worse than A", "bad")
    unnamed = {k: v for k, v in record.items() if k != "against"}
    assert shown_verdict({**unnamed, "outcome": "tie"})["chip"] == "tie with the first column"


# Bad input: refused before anything runs ------------------------------------------------------
def test_a_judge_that_is_not_loaded_is_refused_before_anything_runs(registry):
    calls = []
    lmwidgets.load_model(engine="scripted", name="m", replies=lambda t, a: calls.append(t) or "x")
    with pytest.raises(JudgeError, match=r"--judge big: no model called 'big' is loaded.*m"):
        lmwidgets.prompt("Hi", judge="big", display=False)
    assert calls == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"judge": "m", "rubric": 42}, "--rubric takes text"),
        ({"judge": "m", "rubric": ["a"]}, "--rubric takes text"),
        ({"judge": "m", "rubric": "  "}, "--rubric is empty"),
        ({"judge": "m", "judge_scale": "1-10"}, "--judge-scale takes 1-5 or pass/fail"),
        ({"judge": "m", "judge_pairwise": "yes"}, "judge_pairwise must be True or False"),
        ({"judge": 3}, "--judge takes a model's name"),
        ({"rubric": "quality"}, "--rubric needs a judge"),
        ({"judge_pairwise": True}, "--judge-pairwise needs a judge"),
        ({"judge": "m", "judge_pairwise": True}, "this run has one column"),
        ({"judge": "m", "rubric": "correctness"}, "give a dataset"),
        ({"judge": "m", "rubric": "faithfulness"}, "'reference'"),
        ({"judge": "m", "score": "judge"}, "score=judge scores dataset items"),
        # the judge's own option is named, not the run's --max-new-tokens
        ({"judge": "m", "judge_tokens": 0}, "--judge-tokens must be at least 1, not 0"),
        ({"judge": "m", "judge_tokens": -3}, "--judge-tokens must be at least 1"),
        ({"judge": "m", "judge_tokens": "12"}, "--judge-tokens must be a whole number"),
        ({"judge": "m", "judge_tokens": True}, "--judge-tokens must be a whole number"),
        ({"judge": "m", "judge_tokens": 2.5}, "--judge-tokens must be a whole number"),
    ],
)
def test_bad_judge_options_are_clear_errors(registry, options, message):
    calls = []
    lmwidgets.load_model(engine="scripted", name="m", replies=lambda t, a: calls.append(t) or "x")
    with pytest.raises(LmWidgetsError, match=message):
        lmwidgets.prompt("Hi", display=False, **options)
    assert calls == []


def test_dataset_columns_a_rubric_needs_are_checked(registry):
    lmwidgets.load_model(engine="scripted", name="m")
    items = [{"input": "a"}, {"input": "b"}]
    with pytest.raises(DatasetError, match="'reference' column, which no dataset item has"):
        lmwidgets.prompt("{input}", dataset=items, judge="m", rubric="faithfulness", display=False)
    with pytest.raises(LmWidgetsError, match="--judge-pairwise"):
        lmwidgets.prompt("{input}", dataset=items, judge="m", score="judge", judge_pairwise=True)


def test_judge_calls_count_in_the_size_limits(registry):
    lmwidgets.load_model(engine="scripted", name="m")
    items = [{"input": str(i)} for i in range(1500)]
    lmwidgets.prompt("{input}", dataset=items[:10], display=False)  # small: fine
    with pytest.raises(
        InvalidArgumentError, match=r"1,500 item\(s\) x 1 column\(s\) \+ 1,500 judge"
    ):
        lmwidgets.prompt("{input}", dataset=items, judge="m", display=False)


# Fuzzing: any value of any judge option is a result or a clear error ----------------------------

_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=True),
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.sampled_from(["j", "m", "quality", "correctness", "faithfulness:ctx", "1-5", "pass/fail"]),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.sampled_from(["quality", "pairwise", "x"]), st.text(max_size=5), max_size=2),
)
_JUDGE_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "judge": _ANY,
        "rubric": _ANY,
        "judge_scale": _ANY,
        "judge_pairwise": _ANY,
        "judge_templates": _ANY,
        "judge_tokens": _ANY,
        "score": st.sampled_from(["judge", "auto", None]),
        "models": st.sampled_from(["m,j", None]),
        "dataset": st.sampled_from([None, [{"input": "a", "expected": "b", "ctx": "c"}]]),
    },
)


@settings(
    deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(options=_JUDGE_OPTIONS)
def test_fuzzed_judge_options_give_a_result_or_a_clear_error(registry, options):
    if "m" not in registry:
        lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
        lmwidgets.load_model(engine="scripted", name="j", replies={"*": "Fine.\nScore: 4"})
    try:
        c = lmwidgets.prompt("Capital of {input}?", display=False, **options)
    except LmWidgetsError as exc:
        assert str(exc)
        return
    assert c.status == "done"
    if options.get("judge") in ("j", "m"):
        assert all(r.judge is not None for r in c)
