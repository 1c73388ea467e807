"""Integration tests with the real embedded default model (SmolLM2-135M-Instruct, GGUF)."""

import pytest

import lmwidgets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    from lmwidgets.engines.registry import REGISTRY

    loaded = lmwidgets.load_model(name="smol")
    yield loaded
    if "smol" in REGISTRY:
        REGISTRY.remove("smol")


def test_default_source_is_the_packaged_gguf():
    from lmwidgets.engines.transformers.sources import default_model_source

    source = default_model_source()
    assert source.kind == "gguf" and source.gguf_file.endswith(".gguf")


def test_loads_offline_with_summary(smol, monkeypatch):
    assert smol.source.spec == "default"
    assert 130e6 < smol.n_params < 140e6
    assert smol.dtype == "float32" and smol.device == "cpu"
    weights = sum(p.numel() * p.element_size() for p in smol.model.parameters())
    assert weights < 1e9  # the default model's float32 weights stay under 1 GB
    # The CPU kernels were chosen at load (packing adds at most one copy of the linear weights),
    # and the summary says which.
    assert smol.cpu_kernels is not None and weights <= smol.memory_bytes < 2.2 * weights
    assert f"CPU kernels {smol.cpu_kernels.kernel}" in smol.summary()
    assert len(smol.weights_sha256) == 64
    assert smol.has_chat_template


def test_answers_paris(smol):
    comparison = lmwidgets.prompt(
        "What is the capital of France? Answer in one word.",
        model="smol",
        max_new_tokens=16,
        display=False,
    )
    assert "Paris" in comparison.text
    assert comparison[0].finish_reason == "eos"


def test_second_load_uses_the_dequantized_cache(smol):
    again = lmwidgets.load_model(name="smol-again")
    try:
        assert again.from_cache
        assert again.weights_sha256 == smol.weights_sha256
        import torch

        for (name, a), (_, b) in zip(
            smol.model.state_dict().items(), again.model.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), name
    finally:
        lmwidgets.unload_model("smol-again")


def test_batched_equals_alone_on_the_default_model(smol):
    from lmwidgets.engines.transformers.chat import encode, render_text
    from lmwidgets.engines.transformers.generation import GenerationSettings, Row, generate_batch

    prompts = ["Name a fruit.", "What is 2 + 2?", "Translate 'cat' to French.", "Say hello."]
    rows = [
        Row(encode(smol.tokenizer, render_text(smol.tokenizer, [{"role": "user", "content": p}])))
        for p in prompts
    ]
    settings = GenerationSettings(max_new_tokens=12)
    batched = generate_batch(smol.model, smol.tokenizer, rows, settings).outputs
    for row, output in zip(rows, batched, strict=True):
        alone = generate_batch(smol.model, smol.tokenizer, [row], settings).outputs[0]
        assert output.token_ids == alone.token_ids


def test_mixed_adapters_equal_each_alone_on_the_default_model(smol, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.run import _random_adapter
    from lmwidgets.engines.transformers.adapters import load_adapter, unload_adapter

    before = lmwidgets.prompt("Name a color.", model="smol", max_new_tokens=12, display=False).text
    paths = [_random_adapter(smol, tmp_path / f"r{i}", seed=i) for i in range(2)]
    for index, path in enumerate(paths):
        load_adapter(smol, path, name=f"r{index}")
    try:
        mixed = lmwidgets.prompt(
            "Name a color.", model="smol", adapters="base,r0,r1", max_new_tokens=12, display=False
        )
        assert mixed["base"].text == before
        for name in ("r0", "r1"):
            alone = lmwidgets.prompt(
                "Name a color.", model="smol", adapter=name, max_new_tokens=12, display=False
            )
            assert mixed[name].text == alone.text
    finally:
        for index in range(2):
            unload_adapter(smol, f"r{index}")


_UNLOAD_SCRIPT = """
import gc, json, sys, lmwidgets
from pathlib import Path

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

# A first load and unload imports every module loading needs: modules are not the model's memory.
lmwidgets.load_model(name="warm-up")
lmwidgets.prompt("Hello", max_new_tokens=4, display=False)
lmwidgets.unload_model("warm-up")
gc.collect()
baseline = rss()
loaded = lmwidgets.load_model(name="m", cpu_kernels=sys.argv[1])
lmwidgets.prompt("Hello", max_new_tokens=4, display=False)
held = rss()
lmwidgets.unload_model("m")
del loaded
gc.collect()
print(json.dumps({"baseline": baseline, "held": held, "after": rss()}))
"""


@pytest.mark.parametrize("kernels", ["packed", "auto"])
def test_unload_returns_the_memory(kernels):
    """One copy of the weights while loaded (packed: the dense pages are given back after
    packing), and the memory given back after unloading, whatever kernels were chosen."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _UNLOAD_SCRIPT, kernels], capture_output=True, text=True, check=True
    )
    sizes = json.loads(out.stdout.strip().splitlines()[-1])
    grew = sizes["held"] - sizes["baseline"]
    left = sizes["after"] - sizes["baseline"]
    if kernels == "packed":  # the packed copy is the process's own memory
        assert grew > 400e6, sizes
    assert grew < 1e9, sizes  # one copy, not two
    assert left < 80e6, sizes  # and given back after unloading


def test_cache_is_a_standard_checkpoint_and_old_caches_are_upgraded(smol, tmp_path, monkeypatch):
    """The de-quantized cache stores the tied embedding as save_pretrained does, so a vLLM
    server can load it; a format-1 cache (only ``lm_head.weight``) still loads, and is
    rewritten in the standard form once."""
    import json
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    from lmwidgets.engines.registry import ModelRegistry
    from lmwidgets.engines.transformers import loading

    cache = loading.served_checkpoint()
    assert (
        loading.cache_format(cache) >= loading.CACHE_FORMAT
    )  # (a newer release may have written it)
    with safe_open(cache / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names

    # An old cache in a private cache dir: the tied weight only under lm_head.weight.
    monkeypatch.setenv("LMWIDGETS_CACHE", str(tmp_path))
    old = loading._gguf_cache_path(smol.weights_sha256)
    shutil.copytree(cache, old)
    with safe_open(old / "model.safetensors", "pt") as weights:
        tensors = {n: weights.get_tensor(n) for n in weights.keys()}  # noqa: SIM118
    tensors["lm_head.weight"] = tensors.pop("model.embed_tokens.weight")
    save_file(tensors, str(old / "model.safetensors"))
    (old / "lmwidgets-cache.json").write_text(json.dumps({"complete": True}))
    assert loading.cache_format(old) == 1

    registry = ModelRegistry()
    again = lmwidgets.load_model(name="old-cache", registry=registry)
    assert again.from_cache
    text = lmwidgets.prompt(
        "What is the capital of France?", max_new_tokens=8, registry=registry, display=False
    ).text
    assert text.startswith("The capital of France is Paris")
    assert loading.cache_format(old) == loading.CACHE_FORMAT
    with safe_open(old / "model.safetensors", "pt") as weights:
        assert "model.embed_tokens.weight" in set(weights.keys())
    registry.remove("old-cache")


_FIRST_LOAD_SCRIPT = """
import json, lmwidgets
loaded = lmwidgets.load_model(name="first", cpu_kernels="packed")
text = lmwidgets.prompt("What is the capital of France?", max_new_tokens=8, display=False).text
print(json.dumps({"memory": loaded.memory_bytes, "cached": loaded.from_cache, "text": text}))
"""


def test_a_first_load_holds_one_copy_as_later_loads_do(tmp_path):
    """The first load de-quantizes the GGUF into the cache and then reads the cache file, so
    packing gives the dense pages back as on every later load (it held 1.1 GB, later 0.54)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "LMWIDGETS_CACHE": str(tmp_path)}  # no cache yet: a first load
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_LOAD_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    first = json.loads(out.stdout.strip().splitlines()[-1])
    assert not first["cached"] and (tmp_path / "gguf").is_dir()
    assert first["memory"] < 0.8e9, first  # one copy of the 540 MB of weights, not two
    assert first["text"].startswith("The capital of France is Paris")
