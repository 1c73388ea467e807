"""The judge pass (issue 20): scripted judges for the exact verdict paths (pointwise, pairwise in
both orders, the judged model as its own judge, --score judge, unreadable verdicts, a failing
judge, Stop), records that round-trip and a rerun that gives the same verdicts, and a tiny real
transformers model judging a batched dataset run."""

from __future__ import annotations

import json

import pytest

import lmwidgets
from lmwidgets.core.results import Comparison
from lmwidgets.engines.base import StopSignal
from lmwidgets.run.records import validate_records

CAPITALS = [
    {"input": "France", "expected": "Paris"},
    {"input": "Spain", "expected": "Madrid"},
    {"input": "Italy", "expected": "Rome"},
]


def _answer_of(prompt: str) -> str:
    """The answer a judge prompt shows (between [Answer] and its end)."""
    return prompt.split("[Answer]\n", 1)[1].split("\n[End of answer]", 1)[0]


def fair_judge(prompt: str, adapter) -> str:
    """Scores an answer naming a capital 5, anything else 2; pairwise it prefers the answer
    that names Paris, whichever position it is in."""
    if "[Answer A]" in prompt:
        a = prompt.split("[Answer A]\n", 1)[1].split("\n[End of answer A]", 1)[0]
        b = prompt.split("[Answer B]\n", 1)[1].split("\n[End of answer B]", 1)[0]
        if ("Paris" in a) == ("Paris" in b):
            return "They are alike.\n[[tie]]"
        return "Names the capital.\n[[A]]" if "Paris" in a else "Names the capital.\n[[B]]"
    if "[Expected answer]" in prompt:
        expected = prompt.split("[Expected answer]\n", 1)[1].split("\n", 1)[0]
        ok = expected in _answer_of(prompt)
        return f"Compared with {expected}.\nVerdict: {'PASS' if ok else 'FAIL'}"
    answer = _answer_of(prompt)
    good = any(city in answer for city in ("Paris", "Madrid", "Rome"))
    return f"It {'names' if good else 'misses'} the capital.\n**Score:** {5 if good else 2}"


@pytest.fixture
def models(registry):
    lmwidgets.load_model(
        engine="scripted",
        name="right",
        replies={"France": "Paris.", "Spain": "Madrid.", "*": "Rome."},
    )
    lmwidgets.load_model(engine="scripted", name="wrong", replies={"*": "Lyon."})
    lmwidgets.load_model(engine="scripted", name="judge", replies=fair_judge)
    return registry


def test_pointwise_verdicts_go_into_results_records_and_notes(models):
    c = lmwidgets.prompt(
        "Capital of {input}?", models="right,wrong", dataset=CAPITALS, judge="judge"
    )
    assert [r.judge["label"] for r in c] == ["5/5", "2/5"] * 3
    assert [r.judge_score for r in c] == [1.0, 0.25] * 3
    first = c[0].judge
    assert first["model"]["name"] == "judge" and first["rubric"]["name"] == "quality"
    assert first["mode"] == "pointwise" and first["generation"]["temperature"] == 0.0
    assert first["reasoning"] == "It names the capital."
    assert first["raw"] == "It names the capital.\n**Score:** 5"
    prompt = first["prompt"]["messages"][0]["content"]
    assert "[Question]\nCapital of France?\n" in prompt and "[Answer]\nParis.\n" in prompt
    assert "<|user|>" in first["prompt"]["rendered"]  # the exact text the judge read
    assert "Judge judge (quality): right mean 5.0/5 over 3; wrong mean 2.0/5 over 3" in c.notes
    # The scores stay the dataset scorer's (auto) unless --score judge.
    assert [r.correct for r in c] == [True, False] * 3
    frame = c.to_pandas()
    assert list(frame["judge_verdict"]) == ["5/5", "2/5"] * 3
    assert list(frame["judge_reasoning"])[1] == "It misses the capital."


def test_score_judge_makes_the_verdicts_the_dataset_score(models):
    c = lmwidgets.prompt(
        "Capital of {input}?",
        models="right,wrong",
        dataset=CAPITALS,
        judge="judge",
        rubric="correctness",
        score="judge",
    )
    assert [r.judge["label"] for r in c] == ["pass", "fail"] * 3
    assert c.scores == {"right": 1.0, "wrong": 0.0}
    assert [r.verdict for r in c][:2] == ["by the judge"] * 2
    assert [r.compared for r in c][:2] == ["pass", "fail"]
    assert c[0].record["scorer"] == "judge" and c[1].record["correct"] is False
    assert "[Expected answer]\nParis\n" in c[0].judge["prompt"]["messages"][0]["content"]


def test_the_judged_model_can_judge_itself(registry):
    def both(prompt: str, adapter) -> str:
        return "Looks fine.\nScore: 4" if "[Answer]" in prompt else "Paris."

    lmwidgets.load_model(engine="scripted", name="self", replies=both)
    c = lmwidgets.prompt("Capital of France?", judge="self")
    assert c.text == "Paris." and c[0].judge["label"] == "4/5"
    assert c[0].judge["model"]["name"] == "self"


def test_pairwise_asks_both_orders_and_a_disagreement_is_a_tie(models):
    c = lmwidgets.prompt(
        "Capital of {input}?",
        models="wrong,right",
        dataset=CAPITALS[:1],
        judge="judge",
        judge_pairwise=True,
    )
    baseline, other = c.results
    assert baseline.judge["baseline"] is True and baseline.judge_outcome is None
    assert other.judge_outcome == "better" and other.judge["against"] == "wrong"
    calls = other.judge["calls"]
    assert [call["pick"] for call in calls] == ["A", "B"]
    assert "[Answer A]\nParis." in calls[0]["prompt"]["messages"][0]["content"]
    assert "[Answer B]\nParis." in calls[1]["prompt"]["messages"][0]["content"]
    assert "Judge judge (quality): right better on 1 vs wrong" in c.notes

    lmwidgets.load_model(engine="scripted", name="biased", replies={"*": "The first.\n[[A]]"})
    c = lmwidgets.prompt(
        "Capital of France?", models="wrong,right", judge="biased", judge_pairwise=True
    )
    assert c[1].judge_outcome == "tie" and c[1].judge["label"] == "tie (orders disagree)"


def test_an_unreadable_verdict_leaves_the_column_unjudged_not_the_run_failed(registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    lmwidgets.load_model(engine="scripted", name="vague", replies={"[Answer]": "Hard to say."})
    c = lmwidgets.prompt("Capital of France?", model="m", judge="vague")
    assert c.status == "done" and c.text == "Paris."
    judge = c[0].judge
    assert judge["label"] is None and judge["raw"] == "Hard to say."
    assert judge["note"] == "not judged: no score from 1 to 5 in the reply"
    assert "m: not judged: no score from 1 to 5 in the reply" in c.notes


def test_a_failing_judge_is_a_note_and_the_answers_are_kept(registry):
    def broken(prompt: str, adapter) -> str:
        raise RuntimeError("judge server down")

    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    lmwidgets.load_model(engine="scripted", name="broken", replies=broken)
    c = lmwidgets.prompt("Capital of France?", model="m", judge="broken")
    assert c.status == "done" and c.text == "Paris."
    assert c[0].judge["label"] is None
    assert c[0].judge["note"].startswith("not judged: the judge failed")
    assert any(n.startswith("Judging ended early: ") and "judge server down" in n for n in c.notes)


def test_stop_during_judging_leaves_the_rest_unjudged(registry):
    stop = StopSignal()
    seen = []

    def stops(prompt: str, adapter) -> str:
        seen.append(prompt)
        stop.set("stopped by user")
        return "Fine.\nScore: 3"

    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    lmwidgets.load_model(engine="scripted", name="stopper", replies=stops)
    c = lmwidgets.prompt(
        "Capital of {input}?", model="m", dataset=CAPITALS, judge="stopper", batch_size=1, stop=stop
    )
    assert [r.text for r in c] == ["Paris."] * 3  # the answers are kept
    assert len(seen) == 1  # the judge's later batches never ran
    labels = [r.judge["label"] for r in c]
    assert labels[1:] == [None, None]
    assert all("not judged" in r.judge["note"] for r in c.results[1:])


def test_a_stopped_column_is_not_judged(registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    lmwidgets.load_model(engine="scripted", name="j", replies={"*": "Score: 5"})
    stop = StopSignal()
    stop.set()
    c = lmwidgets.prompt("Capital?", model="m", judge="j", stop=stop)
    assert c[0].judge["label"] is None
    assert "The run was stopped before judging: no column was judged." in c.notes


def test_records_round_trip_and_rerun_reproduces_the_verdicts(models):
    c = lmwidgets.prompt(
        "Capital of {input}?", models="right,wrong", dataset=CAPITALS, judge="judge", score="judge"
    )
    validate_records(c.records)
    saved = json.loads(c.to_json())
    again = Comparison.from_records([r["record"] for r in saved["results"]])
    assert [r.judge["label"] for r in again] == [r.judge["label"] for r in c]
    assert [r.judge_score for r in again] == [r.judge_score for r in c]
    assert again.scores == c.scores
    report = lmwidgets.rerun(c)
    assert report.matched
    assert [(row.old_judge, row.new_judge) for row in report.rows] == [
        ("5/5", "5/5"),
        ("2/5", "2/5"),
    ] * 3
    assert report.summary() == "6 of 6 texts match; 6 of 6 judge verdicts match"
    rerun = report.comparisons[0]
    assert rerun.scores == c.scores
    assert rerun[0].judge["prompt"] == c[0].judge["prompt"]


def test_rerun_of_a_pairwise_run_reproduces_it(models):
    c = lmwidgets.prompt(
        "Capital of France?", models="wrong,right", judge="judge", judge_pairwise=True
    )
    report = lmwidgets.rerun(c.records)
    assert report.summary() == "2 of 2 texts match; 1 of 1 judge verdicts match"
    assert report.comparisons[0][1].judge_outcome == "better"


def test_rerun_needs_the_judge_loaded(models):
    from lmwidgets.errors import RecordError

    c = lmwidgets.prompt("Capital of France?", model="right", judge="judge")
    records = json.loads(json.dumps(c.records))
    records[0]["judge"]["model"]["name"] = "gone"
    with pytest.raises(RecordError, match="'gone'"):
        lmwidgets.rerun(records)


def test_a_large_judge_run_says_what_it_costs(models):
    items = [{"input": f"country {i}"} for i in range(30)]
    c = lmwidgets.prompt("Capital of {input}?", models="right,wrong", dataset=items, judge="judge")
    assert (
        "Judging adds 60 generations on judge (one per column), after the 60 of the run itself."
        in c.notes
    )
    small = lmwidgets.prompt("Capital of France?", judge="judge", model="right")
    assert not any(n.startswith("Judging adds") for n in small.notes)


def test_a_tiny_transformers_judge_runs_batched_and_reproduces(tiny):
    items = [{"input": w} for w in ("red", "green", "blue", "cyan")]
    c = lmwidgets.prompt(
        "Name a thing that is {input}.",
        dataset=items,
        judge="tiny",
        judge_tokens=8,
        max_new_tokens=6,
        batch_size=4,
    )
    assert c.status == "done" and len(c) == 4
    for result in c:
        judge = result.judge
        assert judge["model"]["name"] == "tiny"
        assert judge["prompt"]["rendered"] and isinstance(judge["raw"], str)
        # Random weights rarely write a verdict: unjudged, with the reason, never an error.
        assert judge["label"] is not None or judge["note"].startswith("not judged")
    report = lmwidgets.rerun(c)
    assert report.matched
    assert [r.judge["raw"] for r in report.comparisons[0]] == [r.judge["raw"] for r in c]


def test_the_view_shows_a_progress_line_while_judging_and_the_verdicts_after(models):
    from lmwidgets.engines.base import GenerationSettings
    from lmwidgets.notebook.live import LiveView
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    plan = build_variants(
        "Capital of {input}?",
        registry=models,
        model=None,
        system=None,
        settings=GenerationSettings(),
        models="right,wrong",
        dataset=CAPITALS,
        judge="judge",
    )
    view = LiveView(plan.variants, "judged", show=False, grid=True)
    messages, bars = [], []
    view.widget.observe(lambda change: messages.append(change["new"]), names="message")
    view.widget.observe(lambda change: bars.append(change["new"]), names="progress")
    run_variants(plan.variants, view=view, batch_size=2, finalize=plan.finish, judge=plan.judge)
    progress = [m for m in messages if m.startswith("Judging 6 answer(s) with judge")]
    assert progress[0].endswith("batch 0 of 3…") and progress[-1].endswith("batch 3 of 3…")
    # The bar says its count beside it: the generation's batches, then the judge's.
    texts = [bar["text"] for bar in bars if bar]
    assert texts[0] == "0 of 4 batches" and "4 of 4 batches" in texts
    judging = texts[texts.index("0 of 3 batches") :]
    assert judging[-1] == "3 of 3 batches" and "about" in judging[1]  # its own pace
    assert all(bar["done"] <= bar["total"] for bar in bars if bar)
    cells = view.widget.columns
    assert [c["judge"]["chip"] for c in cells] == ["judge 5/5", "judge 2/5"] * 3
    assert cells[0]["judge"]["reasoning"] == "It names the capital."
    assert cells[0]["judge"]["title"].endswith(
        "· free text (the scripted engine of judge cannot enforce a format while decoding)"
    )
    assert "Judge judge (quality)" in view.widget.message


def test_the_views_tokens_rerun_is_judged_again(registry):
    from lmwidgets import api
    from lmwidgets.notebook.live import LiveView

    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    lmwidgets.load_model(engine="scripted", name="j", replies={"*": "Good.\nScore: 4"})
    checks = api._Checks(confirm=False, notes=[], earlier=None, cache=False)
    job = api._PromptRun(
        "Capital?",
        system=None,
        settings=api.GenerationSettings(),
        namespace={},
        registry=registry,
        model="m",
        options={"judge": "j", "score": None},
        checks=checks,
    )
    plan = job.build()
    job.view = LiveView(plan.variants, "t", show=False)
    again = []
    api._wire_view(job.view, job, again.append)
    assert job.run(plan)[0].judge["label"] == "4/5"
    job.view.widget._on_tokens[0]()  # the view's tokens toggle: "get them"
    assert again[0][0].tokens_detail and again[0][0].judge["label"] == "4/5"


def test_the_static_copy_says_the_verdicts_escaped(registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris."})
    reply = "It is <script>alert(1)</script> fine.\nScore: 4"
    lmwidgets.load_model(engine="scripted", name="j", replies={"*": reply})
    c = lmwidgets.prompt("Capital?", model="m", judge="j")
    html = c.to_html()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; fine." in html
    assert 'class="lmw-judge" data-tone="good"' in html and ">judge 4/5</span>" in html
    assert "judge's reasoning" in html
    assert (
        "Judge: judge 4/5 \\(judged by j · rubric quality \\(1\\-5\\) · free text \\(the "
        "scripted engine of j cannot enforce a format while decoding\\)\\)" in c.to_markdown()
    )
    assert 'title="judged by j · rubric quality (1-5) · free text (the scripted' in html
    assert "Judge: judge 4/5" in c.to_text()


def test_a_hand_made_pairwise_record_without_outcome_reads_and_shows_not_judged(models, tmp_path):
    from lmwidgets.notebook.widgets.prompt_view import _judge_cell
    from lmwidgets.run.records import load_records

    c = lmwidgets.prompt("Capital of France?", models="wrong,right", display=False)
    records = c.records
    judge = {"model": {"name": "judge"}, "rubric": {"name": "quality"}, "mode": "pairwise"}
    records[0]["judge"] = {**judge, "baseline": True, "label": None}
    # Written by hand: a label and an "against", but no "outcome" (shown_verdict's KeyError).
    records[1]["judge"] = {**judge, "label": "better <b>", "against": "wrong"}
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    read = validate_records(load_records(path))
    again = Comparison.from_records(read)
    assert again[1].judge_outcome is None and again[1].judge["label"] == "better <b>"
    html = again.to_html()
    assert 'data-tone="none"' in html and ">not judged</span>" in html
    assert "the record has no pairwise outcome" in html and "<b>" not in html
    assert ">pairwise baseline</span>" in html
    assert "Judge: not judged" in again.to_text() and "not judged" in again.to_markdown()
    cell = _judge_cell(again[1].judge)
    assert cell is not None and (cell["chip"], cell["tone"]) == ("not judged", "none")


def test_a_tiny_judge_reads_a_rubric_with_unreadable_characters_cleaned(tiny):
    c = lmwidgets.prompt(
        "Hi", judge="tiny", rubric="Is it \udcffpolite\x00?", max_new_tokens=2, judge_tokens=2
    )
    assert c[0].judge["rubric"]["text"] == "Is it \ufffdpolite\ufffd?"
    assert any(n.startswith("--rubric held 2 characters") for n in c.notes)
    assert c[0].judge["raw"] is not None


def test_a_judge_prompt_too_long_for_the_judge_is_a_note(registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "word " * 300})
    lmwidgets.load_model(engine="scripted", name="short", context_length=64, replies={"*": "4"})
    c = lmwidgets.prompt("Hi", model="m", judge="short")
    assert c.status == "done" and c[0].judge["label"] is None
    assert c[0].judge["note"].startswith("not judged: the judge failed")
    assert any(n.startswith("Judging ended early:") and "short" in n for n in c.notes)


def test_an_earlier_runs_columns_keep_the_verdicts_of_the_same_judge(models):
    judge = models.get("judge")
    first = lmwidgets.prompt("Capital of France?", models="right,wrong", judge="judge")
    calls = sum(len(rows) for rows in judge.calls)
    again = lmwidgets.prompt("Capital of Spain?", models="right,wrong", judge="judge", vs=first)
    earlier = [r for r in again if r.record.get("shown_as") == "previous"]
    assert len(earlier) == 2 and [r.judge["label"] for r in earlier] == ["5/5", "2/5"]
    assert sum(len(rows) for rows in judge.calls) - calls == 2  # this run's two columns only
    # Another rubric is another judge: the earlier columns are judged by it too.
    other = lmwidgets.prompt(
        "Capital of Spain?", models="right,wrong", judge="judge", rubric="Is it short?", vs=first
    )
    assert all(r.judge["rubric"] == other[0].judge["rubric"] for r in other)
    assert sum(len(rows) for rows in judge.calls) - calls == 6
