"""Per-row seeds: every row of a batch samples with its own seed, so a sampled column gives the
same text in any batch (beside greedy rows, other temperatures, top-ps and seeds, other prompt
lengths, shared prefixes, other adapters) as alone with the same seed."""

import pytest
from tiny_models import build_lora

import lmwidgets
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import (
    DRAWN_SEED_LIMIT,
    GenerationSettings,
    PromptRow,
    Rendered,
    StopSignal,
    row_seeds,
    sample_seed,
)
from lmwidgets.engines.transformers.generation import Row, generate_batch
from lmwidgets.run.runner import run_variants


def _ids(loaded, text, system=None):
    from lmwidgets.engines.transformers.chat import encode, render_text

    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return encode(loaded.tokenizer, render_text(loaded.tokenizer, messages))


def _alone(loaded, row, settings, **options):
    return generate_batch(loaded.model, loaded.tokenizer, [row], settings, **options).outputs[0]


# The seed helpers (no model) -----------------------------------------------------------------
def test_sample_seed_keeps_sample_zero_and_derives_the_others():
    assert sample_seed(7, 0) == 7 and sample_seed(2**63 - 1, 0) == 2**63 - 1
    later = [sample_seed(7, s) for s in range(1, 6)]
    assert len(set(later)) == 5 and 7 not in later
    assert later == [sample_seed(7, s) for s in range(1, 6)]  # reproducible
    assert sample_seed(7, 1) == 104027378  # pinned: records rely on it across versions
    assert all(0 <= s < DRAWN_SEED_LIMIT for s in later)
    assert sample_seed(8, 1) != sample_seed(7, 1)
    assert sample_seed(None, 3) is None


def test_row_seeds_own_derived_drawn_and_greedy():
    batch, seeds = row_seeds([0.7, 0.7, 0.0, 1.0], [5, None, None, None], 11)
    assert batch == 11 and seeds == [5, sample_seed(11, 1), None, sample_seed(11, 3)]
    batch, seeds = row_seeds([0.7, 0.0], [None, None], None)  # sampling without a seed
    assert isinstance(batch, int) and seeds == [batch, None]
    assert row_seeds([0.0, 0.0], [None, 4], None) == (None, [None, 4])  # nothing drawn
    assert row_seeds([1.0], [9], None) == (None, [9])  # every sampled row has its own


@pytest.mark.parametrize("bad", [-1, "7", 1.5, True, 2**63])
def test_bad_row_seeds_are_refused_clearly(bad):
    with pytest.raises(lmwidgets.InvalidArgumentError, match="--seed"):
        PromptRow(Rendered("x", 1), seed=bad)
    with pytest.raises(lmwidgets.InvalidArgumentError, match="--seed"):
        sample_seed(bad, 1)


def test_a_bad_sample_index_is_refused_clearly():
    with pytest.raises(lmwidgets.InvalidArgumentError, match="sample index"):
        sample_seed(3, -1)


# The transformers engine ---------------------------------------------------------------------
PROMPTS = ["Hi", "What is the capital of France? Think step by step.", "2 + 2 = ?", "Zwölf 東京 🚀"]


def test_sampled_rows_in_a_mixed_batch_equal_their_runs_alone_float32(tiny):
    assert tiny.dtype == "float32"
    rows = [
        Row(_ids(tiny, PROMPTS[0]), temperature=0.7, seed=5),
        Row(_ids(tiny, PROMPTS[1])),  # greedy (the batch's temperature)
        Row(_ids(tiny, PROMPTS[2]), temperature=1.3, top_p=0.9, seed=11),
        Row(_ids(tiny, PROMPTS[3]), temperature=1.0, seed=5),
        Row(_ids(tiny, PROMPTS[0]), temperature=1.0, top_p=0.5, seed=2**63 - 1),
    ]
    assert len({len(r.input_ids) for r in rows}) > 1  # padding is in play
    settings = GenerationSettings(max_new_tokens=24)
    batched = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
    assert batched.row_seeds == [5, None, 11, 5, 2**63 - 1]
    assert batched.seed is None  # every sampled row brought its own seed: nothing drawn
    for row, output in zip(rows, batched.outputs, strict=True):
        alone = _alone(tiny, row, settings)
        assert output.token_ids == alone.token_ids
        assert output.finish_reason == alone.finish_reason
    assert batched.outputs[0].token_ids != batched.outputs[4].token_ids  # same prompt, seeds differ


def test_the_same_seed_repeats_and_neighbours_do_not_matter(tiny):
    settings = GenerationSettings(max_new_tokens=16, temperature=1.2, seed=3)
    story = _ids(tiny, "Tell me a story")
    alone = _alone(tiny, Row(story), settings).token_ids
    neighbours = [Row(_ids(tiny, "x" * n), temperature=t) for n, t in ((3, 0.4), (40, 1.5))]
    for others in ([], neighbours, neighbours[::-1]):
        rows = [*others, Row(story, seed=3)]
        batched = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
        assert batched.outputs[-1].token_ids == alone
    twins = generate_batch(tiny.model, tiny.tokenizer, [Row(story), Row(story)], settings)
    assert twins.row_seeds == [3, sample_seed(3, 1)]  # rows without own seeds differ
    assert twins.outputs[0].token_ids == alone
    assert twins.outputs[1].token_ids != alone


def test_a_fresh_seed_is_drawn_per_row_and_reported(tiny):
    rows = [Row(_ids(tiny, p), temperature=1.0) for p in PROMPTS[:3]]
    outcome = generate_batch(
        tiny.model, tiny.tokenizer, rows, GenerationSettings(max_new_tokens=10)
    )
    assert isinstance(outcome.seed, int) and len(set(outcome.row_seeds)) == 3
    assert outcome.row_seeds[0] == outcome.seed
    for row, seed, output in zip(rows, outcome.row_seeds, outcome.outputs, strict=True):
        again = _alone(tiny, Row(row.input_ids, temperature=1.0, seed=seed), GenerationSettings(10))
        assert again.token_ids == output.token_ids


def test_forced_tokens_win_in_sampled_rows(tiny):
    prompt = _ids(tiny, "Hello")
    forced = tuple(tiny.tokenizer.encode(" Paris", add_special_tokens=False))
    rows = [Row(prompt, temperature=1.5, seed=1, forced=forced), Row(prompt, temperature=0.9)]
    settings = GenerationSettings(max_new_tokens=8, logprobs=2)
    outcome = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
    first = outcome.outputs[0]
    assert tuple(first.token_ids[: len(forced)]) == forced
    assert len(first.logprobs) == len(first.token_ids)  # the hook still reads the raw logits
    assert first.token_ids == _alone(tiny, rows[0], settings).token_ids


def test_sampled_rows_with_a_shared_prefix_equal_alone(tiny):
    """The engine's path with the prefix cache: rows share a long system prompt."""
    system = "You are a careful assistant. " * 12
    rows = [
        PromptRow(tiny.render(_messages(system, q)), temperature=t, seed=s)
        for q, t, s in (("Hi", 0.8, 4), ("Tell me more", 0.0, None), ("Why?", 1.1, 9))
    ]
    settings = GenerationSettings(max_new_tokens=12)
    tiny.prefix_cache().clear()
    batched = tiny.generate(rows, settings, stop=StopSignal())
    assert len(tiny.prefix_cache()) == 1  # the shared prefix was computed and kept
    for row, output in zip(rows, batched.outputs, strict=True):
        alone = tiny.generate([row], settings, stop=StopSignal(), prefix_reuse=False)
        assert output.token_ids == alone.outputs[0].token_ids


def _messages(system, question):
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def test_sampled_rows_across_adapters_equal_alone(tiny, tiny_dir, tmp_path):
    lmwidgets.load_adapter(build_lora(tiny_dir, tmp_path / "a", seed=1), name="a")
    rendered = tiny.render([{"role": "user", "content": "Tell me a story"}])
    rows = [
        PromptRow(rendered, None, temperature=1.0, seed=2),
        PromptRow(rendered, "a", temperature=1.0, seed=2),
        PromptRow(rendered, "a", temperature=0.0),
    ]
    settings = GenerationSettings(max_new_tokens=12)
    batched = tiny.generate(rows, settings, stop=StopSignal())
    for row, output in zip(rows, batched.outputs, strict=True):
        alone = tiny.generate([row], settings, stop=StopSignal())
        assert output.token_ids == alone.outputs[0].token_ids
    assert batched.outputs[0].token_ids != batched.outputs[1].token_ids  # the adapter counts


# Through the runner ---------------------------------------------------------------------------
def _variant(engine, label, temperature, seed=None, text="Tell me a story", samples=1):
    settings = GenerationSettings(max_new_tokens=12, temperature=temperature, seed=seed)
    messages = [{"role": "user", "content": text}]
    return Variant(label, messages, engine, settings, samples=samples)


def test_a_temperature_sweep_runs_as_one_batch_and_each_column_equals_alone(tiny):
    temperatures = (0.3, 0.7, 1.0, 1.3)
    sweep = [_variant(tiny, f"t{t}", t, seed=21) for t in temperatures]
    batched = run_variants(sweep)
    for t, result in zip(temperatures, batched.results, strict=True):
        assert result.record["generation"]["seed"] == 21
        assert result.text == run_variants([_variant(tiny, "alone", t, seed=21)])[0].text
    assert len({r.text for r in batched.results}) > 1


def test_self_consistency_samples_differ_and_reproduce(tiny):
    def ask(seed=None):
        return lmwidgets.prompt(
            "Story",
            strategy="self-consistency",
            samples=3,
            temperature=1.0,
            seed=seed,
            max_new_tokens=10,
            display=False,
        )[0]

    first = ask(7)
    texts = [s["text"] for s in first.extras["samples"]]
    assert len(set(texts)) > 1  # the samples of one column differ
    assert [s["text"] for s in ask(7).extras["samples"]] == texts
    assert first.record["generation"]["seed"] == 7
    cot = lmwidgets.prompt(
        "Story", strategy="cot", temperature=1.0, seed=7, max_new_tokens=10, display=False
    )[0]
    assert cot.prompt == first.prompt and cot.text == texts[0]  # sample 0 uses the seed itself
    drawn = ask()
    seed = drawn.record["generation"]["seed"]
    assert isinstance(seed, int) and drawn.record["generation"]["seed_given"] is False
    assert [s["text"] for s in ask(seed).extras["samples"]] == [
        s["text"] for s in drawn.extras["samples"]
    ]


def test_an_old_records_seed_is_read_and_used(tiny):
    """A record written before per-row seeds (schema 1) re-runs with its seed."""
    from pathlib import Path

    from lmwidgets.run.records import load_records
    from lmwidgets.run.replay import _variant_from

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    old = next(
        r for r in load_records(fixtures / "records_v0_1_list.json") if r["generation"]["seed"]
    )
    variant = _variant_from(old, tiny)
    assert (variant.settings.seed, variant.settings.temperature) == (3, 0.7)
    record = run_variants([variant])[0].record["generation"]
    assert (record["seed"], record["seed_given"]) == (3, True)


# The scripted engine ----------------------------------------------------------------------------
def test_scripted_rows_carry_their_seeds_in_one_batch(registry):
    engine = lmwidgets.load_model(engine="scripted", name="s", replies={"*": "hello there"})
    variants = [
        _variant(engine, "a", 0.7, seed=1),
        _variant(engine, "b", 0.7, seed=2),
        _variant(engine, "c", 0.9),
        _variant(engine, "d", 0.0),
        _variant(engine, "sc", 0.8, seed=5, samples=3),
    ]
    comparison = run_variants(variants)
    (call,) = engine.calls  # different seeds no longer split the batch
    drawn = comparison["c"].record["generation"]["seed"]
    assert isinstance(drawn, int) and not comparison["c"].record["generation"]["seed_given"]
    assert [row.seed for row in call] == [
        1,
        2,
        drawn,
        None,
        5,
        sample_seed(5, 1),
        sample_seed(5, 2),
    ]
    assert [r.record["generation"]["seed"] for r in comparison] == [1, 2, drawn, None, 5]
    outcome = engine.generate(
        [PromptRow(engine.render([{"role": "user", "content": "x"}]), temperature=1.0, seed=8)],
        GenerationSettings(max_new_tokens=2),
        stop=StopSignal(),
    )
    assert outcome.row_seeds == [8]
