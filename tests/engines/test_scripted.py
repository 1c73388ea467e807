"""Everything above the engine, on the scripted engine: no torch, milliseconds per test.

The scripted engine is registered like the transformers engine (``engine="scripted"``), so these
tests drive the same API, strategies, runner, records and replay that real models go through.
"""

import json
import math

import pytest

import lmwidgets
from lmwidgets.engines import ENGINES, engine_loader, register_engine
from lmwidgets.engines.base import Engine, GenerationSettings, PromptRow, StopSignal
from lmwidgets.engines.scripted import ScriptedEngine, pieces
from lmwidgets.errors import GenerationInterrupted

REPLIES = {
    "7 + 8": "Seven plus eight. The answer is 15.",
    "capital of France": "The capital of France is Paris.",
    "*": "I do not know.",
}


@pytest.fixture
def scripted(registry):
    return lmwidgets.load_model(engine="scripted", name="script", replies=REPLIES)


def ask(text, **options):
    return lmwidgets.prompt(text, display=False, **options)


def test_scripted_engine_is_registered_like_a_real_one(scripted):
    assert set(ENGINES) >= {"transformers", "scripted"}
    assert isinstance(scripted, Engine) and isinstance(scripted, ScriptedEngine)
    assert engine_loader("scripted").__module__ == "lmwidgets.engines.scripted"
    assert lmwidgets.models() == [scripted]
    assert "scripted" in scripted.summary()


def test_registering_a_new_engine_is_one_call(registry):
    def load(source, *, name, registry, progress=None, **options):
        return ScriptedEngine(name or "mine", replies={"*": f"from {source}"})

    register_engine("mine", load)
    try:
        engine = lmwidgets.load_model("here", engine="mine")
        assert ask("Hi").text == "from here" and engine.name == "mine"
    finally:
        del ENGINES["mine"]


def test_unknown_engine_is_a_clear_error(registry):
    with pytest.raises(lmwidgets.InvalidArgumentError, match=r"Unknown engine 'nope'.*scripted"):
        lmwidgets.load_model(engine="nope")


def test_streams_one_piece_per_step_and_stops_at_the_budget(scripted):
    steps = []
    row = PromptRow(scripted.render([{"role": "user", "content": "capital of France?"}]))
    outcome = scripted.generate(
        [row],
        GenerationSettings(max_new_tokens=3),
        stop=StopSignal(),
        on_step=lambda outputs: steps.append(scripted.text_of(outputs[0])),
    )
    assert steps == ["The", "The capital", "The capital of"]
    assert outcome.outputs[0].finish_reason == "length"
    full = ask("capital of France?")[0]
    assert full.text == "The capital of France is Paris." and full.finish_reason == "eos"
    assert full.tokens == len(pieces(full.text))


def test_strategies_side_by_side_in_one_batch(scripted):
    cmp = ask("What is 7 + 8?", compare="zero-shot,few-shot,cot", examples=[("1 + 1", "2")])
    assert cmp.variants == ["zero-shot", "few-shot", "cot"]
    assert len(scripted.calls) == 1 and len(scripted.calls[0]) == 3
    assert cmp["cot"].answer == "15"
    few = cmp["few-shot"].record["prompt"]["messages"]
    assert [m["role"] for m in few] == ["user", "assistant", "user"]


def test_dataset_scores_each_strategy(scripted):
    items = [
        {"input": "capital of France", "expected": "The capital of France is Paris."},
        {"input": "7 + 8", "expected": "15"},
        {"input": "something else", "expected": "yes"},
    ]
    cmp = ask("{input}", compare="zero-shot,cot", dataset=items)
    assert cmp.scores == {"zero-shot": 2 / 3, "cot": 2 / 3}
    assert [r.correct for r in cmp.results] == [True, True, True, True, False, False]
    assert [r.input for r in cmp.results][::2] == ["capital of France", "7 + 8", "something else"]


def test_self_consistency_votes_and_records_the_seed(scripted):
    cmp = ask("7 + 8", strategy="self-consistency", samples=3)
    result = cmp[0]
    assert result.answer == "15" and result.extras["votes"] == {"15": 3}
    assert isinstance(result.record["generation"]["seed"], int)
    assert result.record["generation"]["seed_given"] is False


def test_adapters_are_a_comparison_axis(registry):
    lmwidgets.load_model(engine="scripted", replies={"*": "hello"}, adapters={"loud": str.upper})
    cmp = ask("Hi", adapters="base,loud")
    assert [r.text for r in cmp] == ["hello", "HELLO"]
    assert cmp["loud"].record["adapter"] == {"name": "loud", "scripted": True}
    with pytest.raises(lmwidgets.AdapterError, match="No adapter called 'quiet'"):
        ask("Hi", adapters="base,quiet")


def test_stop_keeps_the_partial_text(registry):
    lmwidgets.load_model(engine="scripted", replies={"*": "one two three four five"})
    stop = StopSignal()

    class View:  # the runner's view interface, stopping after the second step
        def start(self, stream, signal, notes):
            self.stream = stream

        def progress(self, done, total):
            pass

        def update_running(self, stream):
            if len(stream.live_text(0).split()) >= 2:
                stop.set()

        def finish(self, comparison, message):
            self.finished = comparison

    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    plan = build_variants(
        "go", registry=registry, model=None, system=None, settings=GenerationSettings()
    )
    view = View()
    cmp = run_variants(plan.variants, view=view, stop=stop, update_interval=0)
    assert cmp.status == "stopped" and cmp[0].finish_reason == "stopped"
    assert cmp[0].text == "one two" and view.finished is cmp


def test_out_of_memory_keeps_the_partial_comparison(registry):
    lmwidgets.load_model(engine="scripted", replies={"*": "a b c d"}, fail_after=2)
    with pytest.raises(lmwidgets.OutOfMemoryError) as caught:
        ask("go")
    partial = caught.value.partial
    assert partial.status == "error" and partial[0].text == "a b"
    assert partial[0].finish_reason == "error"
    assert ask.__name__  # the registry still works afterwards:
    assert lmwidgets.models()[0].name == "scripted"


def test_context_length_is_checked_before_generation(registry):
    engine = lmwidgets.load_model(engine="scripted", context_length=6)
    with pytest.raises(lmwidgets.PromptTooLongError, match="reads at most 6"):
        ask("one two three four five six seven")
    assert engine.calls == []
    lowered = ask("hi", max_new_tokens=50)
    assert "lowered" in lowered.notes[0]


def test_media_kinds_are_checked_against_the_engine(registry, tmp_path):
    from PIL import Image

    path = tmp_path / "red.png"
    Image.new("RGB", (8, 8), "red").save(path)
    lmwidgets.load_model(engine="scripted", name="text-only")
    with pytest.raises(lmwidgets.ImageError, match="text-only model"):
        ask("What is this?", images=[str(path)])
    lmwidgets.load_model(engine="scripted", name="sees", media=("image",), max_media=1)
    seen = ask("What is this?", model="sees", images=[str(path)])
    assert "[image]" in seen[0].prompt
    (entry,) = seen[0].record["prompt"]["media"]
    assert entry["kind"] == "image" and entry["location"] == str(path)
    assert seen.media[0]["kind"] == "image" and seen.images == seen.media
    with pytest.raises(lmwidgets.ImageError, match="at most 1"):
        ask("Both?", model="sees", images=[str(path), str(path)])


def test_records_name_the_engine_and_rerun_finds_it(scripted):
    cmp = ask("capital of France?", compare="zero-shot,cot")
    record = cmp[0].record
    assert record["schema"] == 2
    assert record["model"]["engine"] == "scripted"
    assert record["model"]["weights_sha256"] == scripted.script_sha256()
    report = lmwidgets.rerun(json.loads(cmp.to_json())["results"][0]["record"])
    assert report.matched


def test_rerun_of_an_unloaded_served_engine_says_what_to_do(scripted):
    record = ask("hi")[0].record
    lmwidgets.unload_model("script")
    with pytest.raises(lmwidgets.RecordError, match="scripted engine"):
        lmwidgets.rerun(record)


def test_replies_file_and_its_errors(registry, tmp_path):
    good = tmp_path / "replies.json"
    good.write_text(json.dumps({"*": "from a file"}))
    lmwidgets.load_model(str(good), engine="scripted")
    assert ask("x").text == "from a file"
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(lmwidgets.InvalidArgumentError, match="JSON object"):
        lmwidgets.load_model(str(bad), engine="scripted", name="bad")
    with pytest.raises(lmwidgets.ModelNotFoundError):
        lmwidgets.load_model(str(tmp_path / "none.json"), engine="scripted", name="none")
    with pytest.raises(lmwidgets.InvalidArgumentError, match="Unknown option"):
        lmwidgets.load_model(engine="scripted", name="odd", colour="blue")


def test_scripted_engine_cannot_train_or_attach(scripted):
    with pytest.raises(lmwidgets.AdapterError, match="cannot attach adapters"):
        lmwidgets.load_adapter("somewhere")


def test_rerun_finds_every_model_before_running_any(registry):
    first = lmwidgets.load_model(engine="scripted", name="first", replies={"*": "one"})
    lmwidgets.load_model(engine="scripted", name="second", replies={"*": "two"})
    records = [ask("a", model="first")[0].record, ask("b", model="second")[0].record]
    lmwidgets.unload_model("second")
    first.calls.clear()
    with pytest.raises(lmwidgets.RecordError, match="'second'"):
        lmwidgets.rerun(records)
    assert first.calls == []  # the first run was not generated before the second failed


def test_an_interrupt_keeps_the_partial_text(registry):
    """Interrupting the kernel mid-answer (a KeyboardInterrupt during a step) keeps the text so
    far, as the real engines do, and the run raises GenerationInterrupted with it."""
    engine = lmwidgets.load_model(engine="scripted", replies={"*": "one two three four five"})
    steps = []

    def on_step(outputs):
        steps.append(1)
        if len(steps) == 2:
            raise KeyboardInterrupt

    row = PromptRow(engine.render([{"role": "user", "content": "go"}]))
    outcome = engine.generate([row], GenerationSettings(), stop=StopSignal(), on_step=on_step)
    assert isinstance(outcome.error, KeyboardInterrupt)
    assert outcome.outputs[0].finish_reason == "stopped"
    assert engine.text_of(outcome.outputs[0]).split() == ["one", "two"]

    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    class View:  # the runner's view interface; one interrupt arrives during the second step
        interrupted = False

        def start(self, stream, signal, notes):
            pass

        def progress(self, done, total):
            pass

        def update_running(self, stream):
            if len(stream.live_text(0).split()) >= 2 and not self.interrupted:
                self.interrupted = True
                raise KeyboardInterrupt

        def finish(self, comparison, message):
            pass

    plan = build_variants(
        "go", registry=registry, model=None, system=None, settings=GenerationSettings()
    )
    with pytest.raises(GenerationInterrupted) as caught:
        run_variants(plan.variants, view=View(), stop=StopSignal(), update_interval=0)
    assert caught.value.partial[0].text == "one two"
    assert caught.value.partial[0].finish_reason == "stopped"


def _row(engine, text="capital of France?", **fork):
    return PromptRow(engine.render([{"role": "user", "content": text}]), **fork)


def _generate(engine, row, k):
    return engine.generate([row], GenerationSettings(logprobs=k), stop=StopSignal()).outputs[0]


def test_logprobs_are_deterministic_with_the_scripted_piece_most_likely(scripted):
    assert scripted.capabilities.token_logprobs
    out = _generate(scripted, _row(scripted), 5)
    assert [t.text for t in out.logprobs] == out.pieces
    for token in out.logprobs:
        assert len(token.top) == 5 and token.top[0][:2] == (token.id, token.text)
        probs = [math.exp(lp) for _, _, lp in token.top]
        assert probs == sorted(probs, reverse=True) and sum(probs) < 1
    again = _generate(scripted, _row(scripted), 2)
    assert [t.top for t in again.logprobs] == [t.top[:2] for t in out.logprobs]
    assert _generate(scripted, _row(scripted), 0).logprobs == []


def test_a_forced_start_then_the_rest_of_the_script(scripted):
    out = _generate(scripted, _row(scripted), 3)
    alt = out.logprobs[4].top[1]
    ids = (*(t.id for t in out.logprobs[:4]), alt[0])
    forked = _generate(scripted, _row(scripted, forced_ids=ids), 3)
    assert scripted.text_of(forked) == "The capital of France" + alt[1] + " Paris."
    assert forked.logprobs[4].logprob == alt[2] and forked.logprobs[4].top == out.logprobs[4].top
    # a fresh engine (a record replayed after a restart) goes by the forced text
    fresh = ScriptedEngine(replies=REPLIES)
    text = fresh.text_of(_generate(fresh, _row(fresh, forced_text="Nope, it"), 0))
    assert text == "Nope, it of France is Paris."
    with pytest.raises(lmwidgets.InvalidArgumentError, match="forced token ids"):
        _generate(fresh, _row(fresh, forced_ids=(1, 2)), 0)


def test_a_scripted_model_can_lack_token_logprobs(registry):
    engine = lmwidgets.load_model(engine="scripted", name="plain", token_logprobs=False)
    assert not engine.capabilities.token_logprobs
