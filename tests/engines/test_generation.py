"""Batched streaming generation on a tiny real Llama: equality, stop, seeds, settings."""

import pytest

import lmwidgets
from lmwidgets.core.variant import Variant
from lmwidgets.engines.transformers.generation import (
    GenerationSettings,
    Row,
    StopSignal,
    generate_batch,
)
from lmwidgets.run.runner import run_variants


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_new_tokens": 0},
        {"max_new_tokens": -5},
        {"max_new_tokens": 2.5},
        {"max_new_tokens": True},
        {"temperature": -0.1},
        {"temperature": float("nan")},
        {"top_p": 0},
        {"top_p": 1.5},
        {"top_p": -1},
        {"seed": -1},
        {"seed": "7"},
    ],
)
def test_invalid_settings_are_rejected(kwargs):
    with pytest.raises(lmwidgets.InvalidArgumentError) as info:
        GenerationSettings(**kwargs)
    flag = next(iter(kwargs)).replace("_", "-")
    assert flag in str(info.value)


def _ids(loaded, text):
    from lmwidgets.engines.transformers.chat import encode, render_text

    return encode(
        loaded.tokenizer, render_text(loaded.tokenizer, [{"role": "user", "content": text}])
    )


PROMPTS = ["Hi", "What is the capital of France? Think step by step.", "2 + 2 = ?", "Zwölf 東京 🚀"]


def test_batched_equals_alone_greedy_float32(tiny):
    settings = GenerationSettings(max_new_tokens=16)
    rows = [Row(_ids(tiny, p)) for p in PROMPTS]
    batched = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
    assert len({len(r.input_ids) for r in rows}) > 1  # really different lengths (padding used)
    for row, output in zip(rows, batched.outputs, strict=True):
        alone = generate_batch(tiny.model, tiny.tokenizer, [row], settings).outputs[0]
        assert output.token_ids == alone.token_ids
        assert output.finish_reason == alone.finish_reason
    assert any(len(o.token_ids) > 0 for o in batched.outputs)


def test_ignore_eos_runs_past_an_end_token_the_model_picks(tiny):
    """``ignore_eos`` (benchmarks) masks the end tokens at every step; without it the row ends
    at the first one."""
    settings = GenerationSettings(max_new_tokens=10)
    rows = [Row(_ids(tiny, "Hi"))]
    free = generate_batch(tiny.model, tiny.tokenizer, rows, settings, ignore_eos=True)
    ending = free.outputs[0].token_ids[3]  # make a token the model picks an end token
    config = tiny.model.generation_config
    saved = config.eos_token_id
    config.eos_token_id = ending
    try:
        stopped = generate_batch(tiny.model, tiny.tokenizer, rows, settings).outputs[0]
        forced = generate_batch(tiny.model, tiny.tokenizer, rows, settings, ignore_eos=True)
    finally:
        config.eos_token_id = saved
    assert stopped.finish_reason == "eos"
    first = free.outputs[0].token_ids.index(ending)
    assert stopped.token_ids == free.outputs[0].token_ids[:first]  # the end token not shown
    assert len(forced.outputs[0].token_ids) == 10
    assert ending not in forced.outputs[0].token_ids
    assert forced.outputs[0].finish_reason == "length"


def test_stop_signal_ends_generation_within_a_token(tiny):
    stop = StopSignal()
    steps = []

    def on_step(outputs):
        steps.append(len(outputs[0].token_ids))
        if len(outputs[0].token_ids) >= 3:
            stop.set("test")

    outcome = generate_batch(
        tiny.model,
        tiny.tokenizer,
        [Row(_ids(tiny, "Hello")), Row(_ids(tiny, "Hello there"))],
        GenerationSettings(max_new_tokens=200),
        stop=stop,
        on_step=on_step,
    )
    assert [o.finish_reason for o in outcome.outputs] == ["stopped", "stopped"]
    assert all(3 <= len(o.token_ids) <= 4 for o in outcome.outputs)
    assert max(steps) <= 4


def test_seed_makes_sampling_repeatable(tiny):
    rows = [Row(_ids(tiny, "Tell me a story"))]
    texts = []
    for seed in (1, 1, 2, 3):
        settings = GenerationSettings(max_new_tokens=20, temperature=1.5, seed=seed)
        texts.append(
            generate_batch(tiny.model, tiny.tokenizer, rows, settings).outputs[0].token_ids
        )
    assert texts[0] == texts[1]
    assert texts[0] != texts[2] or texts[0] != texts[3]


def test_sampling_without_seed_records_the_seed_used(tiny):
    rows = [Row(_ids(tiny, "Tell me a story"))]
    settings = GenerationSettings(max_new_tokens=8, temperature=1.0)
    first = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
    assert isinstance(first.seed, int)
    again = generate_batch(
        tiny.model,
        tiny.tokenizer,
        rows,
        GenerationSettings(max_new_tokens=8, temperature=1.0, seed=first.seed),
    )
    assert again.outputs[0].token_ids == first.outputs[0].token_ids


def test_greedy_has_no_seed(tiny):
    outcome = generate_batch(
        tiny.model, tiny.tokenizer, [Row(_ids(tiny, "x"))], GenerationSettings(max_new_tokens=2)
    )
    assert outcome.seed is None


def test_empty_batch(tiny):
    outcome = generate_batch(tiny.model, tiny.tokenizer, [], GenerationSettings())
    assert outcome.outputs == []


def test_run_variants_streams_and_counts(tiny):
    updates = []

    class View:
        def start(self, stream, stop, notes):
            pass

        def update_running(self, stream):
            updates.append(stream.live_text(0))

        def progress(self, done, total):
            updates.append(("progress", done, total))

        def finish(self, comparison, message):
            updates.append(("final", comparison.status))

    settings = GenerationSettings(max_new_tokens=12)
    variant = Variant(
        label="a", messages=[{"role": "user", "content": "Hello"}], engine=tiny, settings=settings
    )
    comparison = run_variants([variant], view=View(), update_interval=0.0)
    assert updates[-1] == ("final", "done")
    assert ("progress", 0, 1) in updates and ("progress", 1, 1) in updates
    streamed = [u for u in updates if isinstance(u, str)]
    assert len(streamed) >= 2 and streamed[-1] == comparison.text.rstrip("\ufffd")
    result = comparison[0]
    assert result.tokens == 12 if result.finish_reason == "length" else 0 < result.tokens < 12
    assert result.record["output"]["tokens"] == result.tokens
    assert result.seconds > 0 and result.first_token_seconds is not None
