"""The judge's verdict format enforced while decoding: a real transformers judge (tiny random
weights, and the default model, slow) writes a readable verdict in every reply, pointwise,
pass/fail and pairwise; ``judge_free`` and an engine that cannot enforce leave the reply free
(the record says which); the cache keeps free and enforced replies apart; rerun repeats it."""

from __future__ import annotations

import re

import pytest

import lmwidgets
from lmwidgets.prompting.judge_format import (
    VERDICT_TOKENS,
    verdict_constraint,
    verdict_part,
)
from lmwidgets.prompting.judging import JudgeError

ITEMS = [{"input": w, "expected": w.upper()} for w in ("red", "green", "blue", "cyan")]


def _judged(**options):
    return lmwidgets.prompt(
        "Name a thing that is {input}.",
        dataset=ITEMS,
        judge="tiny",
        max_new_tokens=6,
        batch_size=4,
        display=False,
        **options,
    )


def test_verdict_patterns_bound_the_reasoning_to_the_token_budget():
    assert verdict_constraint("1-5", False, 256).source == r"([ -~]{1,240}\n)?Score: [1-5]"
    assert verdict_constraint("1-5", False, 4096).source.startswith(r"([ -~]{1,300}\n)?")
    assert verdict_constraint("pass/fail", False, 8).source == "Verdict: (PASS|FAIL)"
    assert verdict_constraint("1-5", True, VERDICT_TOKENS + 1).source == (
        r"([ -~]{1,1}\n)?\[\[(A|B|tie)\]\]"
    )
    # The reasoning line of an enforced reply cannot outvote its verdict line.
    assert verdict_part('{"score": 1} is wrong\nScore: 4', True) == "Score: 4"
    assert verdict_part("Score: 4\nmore", False) == "Score: 4\nmore"


@pytest.mark.parametrize(
    ("options", "key", "labels"),
    [
        ({}, "score", {f"{n}/5" for n in range(1, 6)}),
        ({"rubric": "correctness"}, "pass", {"pass", "fail"}),
        ({"judge_scale": "pass/fail", "judge_tokens": 40}, "pass", {"pass", "fail"}),
    ],
)
def test_an_enforced_tiny_judge_gives_every_column_a_verdict(tiny, options, key, labels):
    c = _judged(**options)
    assert c.status == "done" and len(c) == 4
    for result in c:
        judge = result.judge
        assert judge["enforced"] is True and "free" not in judge
        assert judge["format"]["kind"] == "regex"
        assert judge["label"] in labels and judge[key] is not None
        last = judge["raw"].strip().splitlines()[-1]
        assert re.fullmatch(judge["format"]["pattern"], judge["raw"]), judge["raw"]
        assert last.startswith(("Score: ", "Verdict: "))
    assert not any("not enforced" in n for n in c.notes)


def test_a_judge_context_too_short_for_its_budget_narrows_the_reasoning(tiny):
    """The tiny model reads 512 tokens: after a correctness prompt fewer than 256 are left, so
    each call's reasoning line is bounded by what is left (its record says so), and the
    verdict still fits."""
    c = _judged(rubric="correctness")
    for result in c:
        bound = re.match(r"\(\[ -~\]\{1,(\d+)\}", result.judge["format"]["pattern"])
        assert bound and int(bound.group(1)) < 240 - VERDICT_TOKENS
        assert result.judge["label"] in ("pass", "fail")


def test_an_enforced_pairwise_tiny_judge_reads_both_orders(tiny):
    c = lmwidgets.prompt(
        "Name a thing that is {input}.",
        dataset=ITEMS[:2],
        judge="tiny",
        judge_pairwise=True,
        judge_templates={"pairwise": "{question}\nA: {answer_a}\nB: {answer_b}\nBetter?"},
        compare=["zero-shot", "cot"],
        max_new_tokens=6,
        display=False,
    )
    compared = [r for r in c if not r.judge.get("baseline")]
    assert len(compared) == 2
    for result in compared:
        assert result.judge["enforced"] is True
        assert result.judge["outcome"] in ("better", "worse", "tie")
        assert all(call["pick"] in ("A", "B", "tie") for call in result.judge["calls"])
        calls = result.judge["calls"]
        assert all(call["raw"].endswith(("[[A]]", "[[B]]", "[[tie]]")) for call in calls)


def test_judge_free_leaves_the_reply_free_and_the_cache_apart(tiny):
    enforced = _judged(cache=True)
    free = _judged(cache=True, judge_free=True)
    for a, b in zip(enforced, free, strict=True):
        assert b.judge["enforced"] is False and b.judge["free"] == "asked (--judge-free)"
        assert "format" not in b.judge
        # The free judge call is not answered from the enforced one's cache entry.
        assert b.judge["cached"] is False
        assert a.judge["raw"] != b.judge["raw"]
    # The chip's tooltip says so, in the static copy as in the live view (the same title).
    assert "rubric quality (1-5) · format enforced while decoding" in enforced.to_html()
    assert "rubric quality (1-5) · free text (asked (--judge-free))" in free.to_html()
    again = _judged(cache=True)
    assert all(r.judge["cached"] for r in again)
    assert [r.judge["raw"] for r in again] == [r.judge["raw"] for r in enforced]


def test_rerun_of_an_enforced_and_a_free_judge_reproduces_them(tiny):
    for free in (False, True):
        c = _judged(judge_free=free, judge_tokens=30)
        report = lmwidgets.rerun(c)
        assert report.matched
        rerun = report.comparisons[0]
        assert [r.judge["enforced"] for r in rerun] == [not free] * 4
        assert [r.judge["raw"] for r in rerun] == [r.judge["raw"] for r in c]


def test_a_judge_that_cannot_enforce_falls_back_to_free_text_and_says_so(registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    lmwidgets.load_model(engine="scripted", name="j", replies={"*": "Fine.\n**Rating:** 4"})
    c = lmwidgets.prompt("Capital of France?", model="m", judge="j", display=False)
    judge = c[0].judge
    assert judge["enforced"] is False and judge["free"].startswith("cannot enforce: the scripted")
    assert judge["label"] == "4/5"  # the robust parser reads the free reply
    assert any(n.startswith("The judge's verdict format was not enforced (") for n in c.notes)
    # Asked free: no such note.
    c = lmwidgets.prompt("Capital of France?", model="m", judge="j", judge_free=True, display=False)
    assert c[0].judge["free"] == "asked (--judge-free)"
    assert not any("not enforced" in n for n in c.notes)


def test_judge_free_is_checked_before_anything_runs(registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    with pytest.raises(JudgeError, match="--judge-free needs a judge"):
        lmwidgets.prompt("Hi", model="m", judge_free=True, display=False)
    with pytest.raises(JudgeError, match="judge_free must be True or False"):
        lmwidgets.prompt("Hi", model="m", judge="m", judge_free="yes", display=False)


@pytest.mark.slow
def test_the_default_model_judges_every_column_when_enforced(registry):
    """The 135M default wrote no readable verdict free; enforced, every reply holds one (its
    judgement is still poor: this checks the format, not the verdicts' quality)."""
    model = lmwidgets.load_model()
    capitals = [
        {"input": "France", "expected": "Paris"},
        {"input": "Spain", "expected": "Madrid"},
        {"input": "Italy", "expected": "Rome"},
    ]
    for rubric in ("quality", "correctness"):
        c = lmwidgets.prompt(
            "Capital of {input}? One word.",
            dataset=capitals,
            judge=model.name,
            rubric=rubric,
            max_new_tokens=12,
            display=False,
        )
        assert [r.judge["enforced"] for r in c] == [True] * 3
        assert all(r.judge["label"] is not None for r in c), [r.judge["raw"] for r in c]
