"""Running given choices (issue 20) on the scripted engine and a tiny Llama: no generation, one
batched scoring call per batch of prompts, the same numbers batched as alone, adapters and
models as axes, records that restore and re-run, the view's bars and the static copy."""

import json

import pytest

import lmwidgets
from lmwidgets.core.results import Comparison
from lmwidgets.engines.base import GenerationSettings, StopSignal
from lmwidgets.engines.registry import REGISTRY
from lmwidgets.errors import GenerationError, OutOfMemoryError
from lmwidgets.notebook.live import LiveView
from lmwidgets.prompting.strategies import build_variants
from lmwidgets.run.choices import choice_bars
from lmwidgets.run.runner import run_variants

CHOICES = ["Lyon", "Paris", "Nice"]
DATASET = [
    {"input": "Capital of France?", "expected": "Paris"},
    {"input": "Where is the Promenade des Anglais?", "expected": 2},
    {"input": "Where do the Canuts come from?", "expected": "0"},
]


@pytest.fixture
def scripted(registry):
    replies = {"France": "Paris", "Promenade": "Nice", "Canuts": "Paris"}
    return lmwidgets.load_model(
        engine="scripted", name="s", replies=replies, adapters={"loud": str.upper}
    )


def prompt(text="{input}", **options):
    options.setdefault("display", False)
    return lmwidgets.prompt(text, **options)


def test_shared_choices_score_without_generating(scripted):
    comparison = prompt(dataset=DATASET, choices=CHOICES)
    assert scripted.calls == []  # nothing generated
    assert [len(call) for call in scripted.choice_calls] == [3]  # one batch of three prompts
    assert [r.answer for r in comparison] == ["Paris", "Nice", "Paris"]
    assert [r.expected for r in comparison] == ["Paris", "Nice", "Lyon"]
    assert [r.correct for r in comparison] == [True, True, False]
    assert comparison.scores == {"zero-shot": pytest.approx(2 / 3)}
    for result in comparison:
        assert len(result.choice_logprobs) == 3 and all(v < 0 for v in result.choice_logprobs)
        assert result.answer == CHOICES[result.extras["acc"]]
        assert result.record["scorer"] == "likelihood"
        assert result.record["choices"]["options"] == CHOICES
    assert any(note.startswith("acc_norm") for note in comparison.notes)
    frame = comparison.to_pandas()
    assert list(frame["answer"]) == ["Paris", "Nice", "Paris"]
    assert frame["choices"][0] == CHOICES and len(frame["choice_logprobs"][0]) == 3
    assert set(frame["acc_norm_answer"]) <= set(CHOICES)


def test_batched_equals_alone_and_batch_size_splits(scripted):
    together = prompt(dataset=DATASET, choices=CHOICES)
    alone = [prompt(dataset=[item], choices=CHOICES)[0] for item in DATASET]
    assert [r.choice_logprobs for r in together] == [r.choice_logprobs for r in alone]
    scripted.choice_calls.clear()
    prompt(dataset=DATASET, choices=CHOICES, batch_size=2)
    assert [len(call) for call in scripted.choice_calls] == [2, 1]


def test_per_item_choices_column(scripted):
    dataset = [
        {"input": "Capital of France?", "choices": ["Paris", "Rome"], "expected": 0},
        {"input": "Where do the Canuts come from?", "choices": ["Lyon", "Paris", "Lille"]},
    ]
    comparison = prompt(dataset=dataset)
    assert [r.extras["choices"] for r in comparison] == [["Paris", "Rome"], dataset[1]["choices"]]
    assert comparison[0].correct is True and comparison[1].correct is None


def test_adapters_and_models_as_axes(scripted, registry):
    lmwidgets.load_model(engine="scripted", name="t", replies={"France": "Lyon"})
    comparison = prompt(
        "Capital of France?", models="s,t", adapters="base,loud", choices=["Lyon", "Paris"]
    )
    by_label = {r.variant: r for r in comparison}
    assert by_label["s · base"].answer == "Paris" and by_label["t · base"].answer == "Lyon"
    # the loud adapter answers PARIS: neither choice is its own, the scores differ from base
    assert by_label["s · loud"].choice_logprobs != by_label["s · base"].choice_logprobs
    assert by_label["s · loud"].record["adapter"]["name"] == "loud"


def test_records_restore_and_rerun(scripted):
    comparison = prompt(dataset=DATASET, choices=CHOICES)
    saved = json.loads(json.dumps(comparison.records))
    restored = Comparison.from_records(saved)
    for old, new in zip(comparison, restored, strict=True):
        assert new.choice_logprobs == pytest.approx(old.choice_logprobs, abs=1e-6)
        assert new.extras["acc"] == old.extras["acc"]
        assert new.extras["acc_norm"] == old.extras["acc_norm"]
        assert (new.answer, new.correct, new.verdict) == (old.answer, old.correct, old.verdict)
        new_bars, old_bars = choice_bars(new), choice_bars(old)
        assert new_bars["probs"] == pytest.approx(old_bars["probs"], abs=1e-5)
        assert {**new_bars, "probs": 0} == {**old_bars, "probs": 0}
    assert restored.scores == comparison.scores
    report = lmwidgets.rerun(saved)
    assert report.matched
    again = report.comparisons[0]
    assert [r.choice_logprobs for r in again] == [r.choice_logprobs for r in comparison]
    assert again.scores == comparison.scores


def test_malformed_choice_records_are_refused(scripted):
    from lmwidgets.errors import RecordError
    from lmwidgets.run.records import validate_record

    record = json.loads(json.dumps(prompt("Capital of France?", choices=CHOICES)[0].record))
    validate_record(record)
    for bad in ({"options": CHOICES, "logprobs": [-1.0]}, {"options": [1, 2], "logprobs": [0, 0]}):
        with pytest.raises(RecordError, match="choices"):
            validate_record({**record, "choices": bad})


def test_perplexity_reports_expected_per_token(scripted):
    dataset = [
        {"input": "Capital of France?", "expected": "Paris"},
        {"input": "Capital of France?", "expected": "Lyon is it"},
    ]
    comparison = prompt(dataset=dataset, score="perplexity")
    assert scripted.calls == []
    first, second = comparison
    assert first.extras["per_token"] > second.extras["per_token"]  # the scripted answer
    assert first.correct is None and "per token" in first.verdict
    assert second.extras["n_tokens"] == [3]
    assert "perplexity" in first.text
    assert any(note.startswith("Mean log-likelihood per token") for note in comparison.notes)
    assert choice_bars(first) is None
    assert lmwidgets.rerun(comparison).matched


def test_a_failing_engine_keeps_the_scored_columns(registry):
    engine = lmwidgets.load_model(engine="scripted", name="broken", fail_after=0)
    with pytest.raises(OutOfMemoryError) as caught:
        prompt("Capital of France?", choices=["Paris", "Lyon"])
    partial = caught.value.partial
    assert partial.status == "error" and partial[0].finish_reason == "error"
    assert partial[0].choice_logprobs is None
    assert isinstance(caught.value, GenerationError) and engine.calls == []


def test_stop_before_scoring(scripted):
    stop = StopSignal()
    stop.set()
    comparison = prompt(dataset=DATASET, choices=CHOICES, stop=stop)
    assert comparison.status == "stopped" and scripted.choice_calls == []
    assert all(r.finish_reason == "stopped" for r in comparison)


def test_static_copy_and_view_show_the_bars(scripted):
    hostile = "<img src=x onerror=alert(1)>"
    comparison = prompt("Capital of France?", choices=["Paris", hostile])
    html = comparison.to_html()
    assert 'class="lmw-choices"' in html and "<img" not in html
    assert "&lt;img" in html
    text = comparison.to_text()
    assert "Choices:" in text and "Paris" in text and "likeliest" in text
    bars = choice_bars(comparison[0])
    assert bars["texts"] == ["Paris", hostile] and bars["acc"] == 0
    assert sum(bars["probs"]) == pytest.approx(1.0, abs=1e-5)
    plan = build_variants(
        "Capital of France?",
        registry=REGISTRY,
        model=None,
        system=None,
        settings=GenerationSettings(),
        choices=["Paris", "Lyon"],
    )
    view = LiveView(plan.variants, "t", show=False)
    run_variants(plan.variants, view=view)
    cell = view.widget.columns[0]
    assert cell["choices"]["texts"] == ["Paris", "Lyon"] and cell["choices"]["acc"] == 0


def test_tiny_llama_choices_batched_equal_alone(tiny):
    dataset = [
        {"input": "Capital of France?", "expected": "Paris"},
        {"input": "Two plus two?", "expected": "four"},
    ]
    choices = ["Paris", "four", "a longer choice"]
    together = prompt(dataset=dataset, choices=choices)
    alone = [prompt(dataset=[item], choices=choices)[0] for item in dataset]
    for a, b in zip(together, alone, strict=True):
        assert a.choice_logprobs == pytest.approx(b.choice_logprobs, abs=1e-4)
        assert a.answer == b.answer


def test_a_stop_during_a_batch_keeps_the_prompts_scored_before_it(registry):
    """Stop pressed while a batch is scored: the batch's prompts scored whole keep their
    picks, the rest of it and later batches are marked stopped."""
    stop = StopSignal()

    def replies(text, adapter):
        if "Promenade" in text:  # the second prompt: the Stop button, pressed mid-batch
            stop.set()
        return "Paris"

    engine = lmwidgets.load_model(engine="scripted", name="s", replies=replies)
    more = [*DATASET, {"input": "Capital of Italy?", "expected": 0}]
    comparison = prompt(dataset=more, choices=CHOICES, stop=stop, batch_size=3)
    assert comparison.status == "stopped"
    assert [len(call) for call in engine.choice_calls] == [3]  # the second batch never ran
    assert [r.finish_reason for r in comparison] == ["eos", "eos", "stopped", "stopped"]
    assert [r.answer for r in comparison][:2] == ["Paris", "Paris"]
    assert comparison[2].choice_logprobs is None


def test_a_stop_ends_a_tiny_llama_batch_between_layers(tiny):
    """The model's scoring checks the stop signal before each layer: a stop set while the
    second batch's prompts run through the first layer ends it before the next one; the first
    batch's columns are kept as scored alone."""
    import torch

    layers = next(m for m in tiny.model.modules() if isinstance(m, torch.nn.ModuleList))
    stop = StopSignal()
    seen = {"first": 0, "last": 0}

    def first_layer(module, args, output):
        seen["first"] += 1
        if seen["first"] == 3:  # the second batch's prompt pass (two passes a batch)
            stop.set()

    def last_layer(module, args, output):
        seen["last"] += 1

    handles = [
        layers[0].register_forward_hook(first_layer),
        layers[-1].register_forward_hook(last_layer),
    ]
    try:
        stopped = prompt(dataset=DATASET, choices=CHOICES, stop=stop, batch_size=1)
    finally:
        for handle in handles:
            handle.remove()
    assert seen == {"first": 3, "last": 2}  # the second batch ended after its first layer
    assert stopped.status == "stopped"
    assert [r.finish_reason for r in stopped] == ["eos", "stopped", "stopped"]
    alone = prompt(dataset=DATASET[:1], choices=CHOICES)
    assert stopped[0].choice_logprobs == pytest.approx(alone[0].choice_logprobs, abs=1e-4)
    again = prompt(dataset=DATASET, choices=CHOICES, batch_size=1)  # the hooks are gone
    assert all(r.finish_reason == "eos" for r in again)
