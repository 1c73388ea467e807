"""Batched LoRA routing equals peft's own mixed-batch path, and unsupported variants fall back."""

import pytest
from tiny_models import build_lora

from lmwidgets.engines.transformers import lora_batch
from lmwidgets.engines.transformers.adapters import generation_model, load_adapter
from lmwidgets.engines.transformers.chat import encode, render_text
from lmwidgets.engines.transformers.generation import GenerationSettings, Row, generate_batch


def _rows(loaded, adapters):
    ids = encode(
        loaded.tokenizer, render_text(loaded.tokenizer, [{"role": "user", "content": "Hello"}])
    )
    return [Row(ids, a) for a in adapters]


def test_routed_equals_peft_adapter_names(tiny, tiny_dir, tmp_path, monkeypatch):
    load_adapter(tiny, build_lora(tiny_dir, tmp_path / "x", seed=1), name="x")
    load_adapter(
        tiny,
        build_lora(tiny_dir, tmp_path / "y", seed=2, rank=8, targets=("q_proj", "down_proj")),
        name="y",
    )
    model = generation_model(tiny)
    rows = _rows(tiny, [None, "x", "y", "x"])
    settings = GenerationSettings(max_new_tokens=10)
    assert lora_batch.supported(model, ["x", "y"])
    ours = [
        o.token_ids
        for o in generate_batch(model, tiny.tokenizer, rows, settings, route_adapters=True).outputs
    ]
    monkeypatch.setattr(
        lora_batch, "supported", lambda *a: False
    )  # force peft's adapter_names path
    peft = [
        o.token_ids
        for o in generate_batch(model, tiny.tokenizer, rows, settings, route_adapters=True).outputs
    ]
    assert ours == peft
    assert ours[1] == ours[3] and ours[0] != ours[1]
    assert not any("forward" in vars(m) for m in lora_batch._lora_layers(model))  # restored


def test_dora_adapters_are_refused_clearly(tiny, tiny_dir, tmp_path):
    import lmwidgets

    with pytest.raises(lmwidgets.AdapterError, match="DoRA"):
        load_adapter(tiny, build_lora(tiny_dir, tmp_path / "d", seed=3, dora=True), name="d")
    assert not tiny.adapters and "peft_model" not in tiny.extras
