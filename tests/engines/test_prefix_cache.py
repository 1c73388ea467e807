"""Prefix KV reuse: same tokens as recomputing, reuse across rows and runs, keyed on adapter
weights and exact tokens, bounded memory."""

import lmwidgets
from lmwidgets.engines.transformers.generation import GenerationSettings
from lmwidgets.engines.transformers.prefix_cache import MIN_PREFIX_TOKENS, PrefixCache, row_prefixes
from lmwidgets.prompting.strategies import build_variants
from lmwidgets.run.runner import run_variants

EXAMPLES = [(f"Example question {i}: what comes after {i}?", f"{i + 1}") for i in range(6)]
ITEMS = [{"input": f"What comes after {n}?"} for n in (7, 12, 30)]


def _plan(**kwargs):
    kwargs.setdefault("examples", EXAMPLES)
    kwargs.setdefault("dataset", ITEMS)
    return build_variants(
        "{input}",
        registry=lmwidgets.REGISTRY,
        model=None,
        system=None,
        settings=GenerationSettings(max_new_tokens=10),
        **kwargs,
    )


def _texts(comparison):
    return [r.text for r in comparison]


def test_reuse_gives_the_same_tokens_in_mixed_batches(tiny):
    plan = _plan(compare="zero-shot,few-shot")
    plain = run_variants(_plan(compare="zero-shot,few-shot").variants, prefix_reuse=False)
    cache = tiny.prefix_cache()
    assert len(cache) == 0
    reused = run_variants(plan.variants)
    assert _texts(reused) == _texts(plain)
    assert len(cache) >= 1 and cache.nbytes > 0  # the examples' prefix is kept
    # Each question alone, as separate runs: the examples come from the cache.
    before = cache.reused_tokens
    for index, item in enumerate(ITEMS):
        alone = lmwidgets.prompt("{input}", strategy="few-shot", examples=EXAMPLES, dataset=[item],
                                 max_new_tokens=10, display=False)  # fmt: skip
        assert alone[0].text == plain[2 * index + 1].text
    assert cache.reused_tokens - before >= 3 * MIN_PREFIX_TOKENS


def test_prefix_is_keyed_on_adapter_weights(tiny, tiny_dir, tmp_path):
    from tiny_models import build_lora

    lmwidgets.load_adapter(build_lora(tiny_dir, tmp_path / "a", seed=1), name="a")
    plain = run_variants(_plan(adapters="base,a").variants, prefix_reuse=False)
    assert _texts(run_variants(_plan(adapters="base,a").variants)) == _texts(plain)
    # Same name, other weights: the cached prefix of the old adapter must not be used.
    lmwidgets.unload_adapter("a")
    lmwidgets.load_adapter(build_lora(tiny_dir, tmp_path / "a2", seed=2), name="a")
    fresh = run_variants(_plan(adapters="base,a").variants, prefix_reuse=False)
    assert _texts(run_variants(_plan(adapters="base,a").variants)) == _texts(fresh)
    assert _texts(fresh) != _texts(plain)


def test_rows_choose_their_prefix_and_short_ones_get_none():
    cache = PrefixCache()
    shared = list(range(100))
    rows = [[*shared, 1000, 1001], [*shared, 2000], list(range(500, 510))]
    assert row_prefixes(rows, cache, ["base"] * 3) == [100, 100, 0]
    assert row_prefixes([shared], cache, ["base"]) == [99]  # a lone row keeps its own prompt
    assert row_prefixes([shared[:10], shared[:12]], cache, ["base"] * 2) == [0, 0]


def test_memory_is_bounded_least_recently_used_first():
    import torch

    layer = (torch.zeros(1, 2, 64, 8), torch.zeros(1, 2, 64, 8))  # 8 KB per entry
    cache = PrefixCache(max_bytes=20_000)
    for start in range(3):
        cache.store("base", list(range(start, start + 64)), [layer])
    assert len(cache) == 2 and cache.nbytes <= 20_000
    assert cache.lookup("base", list(range(0, 64)))[0] == 0  # the oldest went first
    assert cache.lookup("base", list(range(2, 66)))[0] == 64
    assert cache.lookup("other-adapter", list(range(2, 66)))[0] == 0
    cache.store("base", list(range(10_000)), [(torch.zeros(1, 2, 10_000, 8),) * 2])
    assert len(cache) == 2  # larger than the whole budget: not kept


def test_unloading_the_model_drops_its_cache(tiny, registry):
    run_variants(_plan(strategy="few-shot").variants)
    cache = tiny.prefix_cache()
    assert len(cache)
    registry.remove("tiny")
    assert "prefix_cache" not in tiny.extras
