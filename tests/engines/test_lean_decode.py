"""The lean decoding step: transformers' numbers bit for bit, and only where it applies."""

import pytest
import torch

import lmwidgets
from lmwidgets.engines.transformers import cpu_kernels, fused_linear, lean_decode
from tests.engines.left_padded import greedy

pytestmark = pytest.mark.skipif(
    not cpu_kernels.supported(), reason="no oneDNN packed linear in this torch"
)


@pytest.fixture
def packed(tiny_dir, registry):
    loaded = lmwidgets.load_model(str(tiny_dir), name="packed", cpu_kernels="packed")
    assert lean_decode.lean_layers(loaded.model) == loaded.model.config.num_hidden_layers
    assert loaded.cpu_kernels.record()["lean_decode_layers"] == 2
    return loaded


@pytest.mark.parametrize("rows", [[[5, 9, 14, 3]], [[5, 9, 14, 3], [7, 2], [11, 12, 13]]])
def test_lean_steps_equal_transformers_bit_for_bit(packed, lean_steps, rows):
    model, pad = packed.model, packed.tokenizer.pad_token_id
    lean_tokens, lean_scores = greedy(model, rows, pad)
    assert len(lean_steps) == 11 * model.config.num_hidden_layers  # every step after the first
    lean_decode.remove(model)
    stock_tokens, stock_scores = greedy(model, rows, pad)
    assert torch.equal(lean_tokens, stock_tokens)
    assert torch.equal(lean_scores, stock_scores)  # the same arithmetic, not merely close


def test_a_hook_inside_the_layer_runs_transformers_forward(packed, lean_steps):
    model, pad = packed.model, packed.tokenizer.pad_token_id
    seen = []
    handle = model.model.layers[0].self_attn.register_forward_hook(lambda *a: seen.append(1))
    try:
        hooked, _ = greedy(model, [[5, 9, 14, 3]], pad, steps=6)
    finally:
        handle.remove()
    assert len(seen) == 6  # the prompt's pass and every step went through the module
    assert len(lean_steps) == 5  # the other layer stayed lean
    plain, _ = greedy(model, [[5, 9, 14, 3]], pad, steps=6)
    assert torch.equal(hooked, plain)


def test_a_global_module_hook_sees_every_inner_call(packed, lean_steps):
    """A hook registered for all modules (``register_module_forward_hook``) runs for each inner
    module transformers calls: the lean step, which calls none of them, stays off meanwhile."""
    from torch.nn.modules.module import register_module_forward_hook

    model, pad = packed.model, packed.tokenizer.pad_token_id
    seen = []
    target = model.model.layers[1].post_attention_layernorm
    handle = register_module_forward_hook(
        lambda module, *a: seen.append(1) if module is target else None
    )
    try:
        hooked, _ = greedy(model, [[5, 9, 14, 3]], pad, steps=6)
    finally:
        handle.remove()
    assert len(seen) == 6 and lean_steps == []
    plain, _ = greedy(model, [[5, 9, 14, 3]], pad, steps=6)
    assert torch.equal(hooked, plain) and len(lean_steps) > 0  # lean again once removed


def test_a_replaced_inner_module_is_the_one_that_runs(packed, lean_steps):
    """The lean step keeps the layer's modules from its install: one replaced afterwards (a
    norm with other weights here; peft does it to projections) must be used, as transformers
    would, so the layer takes transformers' forward."""
    model, pad = packed.model, packed.tokenizer.pad_token_id
    layer = model.model.layers[0]
    original = layer.input_layernorm
    replacement = type(original)(original.weight.shape[0], eps=original.variance_epsilon)
    with torch.no_grad():
        replacement.weight.copy_(original.weight * 3.0)
    layer.input_layernorm = replacement
    try:
        lean, lean_scores = greedy(model, [[5, 9, 14, 3]], pad, steps=6)
        assert len(lean_steps) == 5  # the other layer stayed lean
        lean_decode.remove(model)
        try:
            stock, stock_scores = greedy(model, [[5, 9, 14, 3]], pad, steps=6)
        finally:
            lean_decode.install(model)
    finally:
        layer.input_layernorm = original
    assert torch.equal(lean, stock) and torch.equal(lean_scores, stock_scores)
    _, unreplaced = greedy(model, [[5, 9, 14, 3]], pad, steps=6)
    assert not torch.equal(unreplaced, stock_scores)  # the replacement changed the numbers


def test_a_forward_patched_onto_the_mlp_runs(packed, lean_steps):
    """Steering code often replaces a module's forward on the instance: the layer must then
    run transformers' forward, which calls it (the lean step would skip it)."""
    import types

    model, pad = packed.model, packed.tokenizer.pad_token_id
    mlp = model.model.layers[0].mlp
    calls = []

    def steered(self, x):
        calls.append(1)
        return 0.5 * type(self).forward(self, x)

    mlp.forward = types.MethodType(steered, mlp)
    try:
        greedy(model, [[5, 9, 14, 3]], pad, steps=6)
    finally:
        del mlp.forward
    assert len(calls) == 6  # the prompt's pass and every step
    assert len(lean_steps) == 5  # the other layer stayed lean


def test_an_attached_adapter_and_gradients_take_the_full_forward(
    packed, lean_steps, tiny_dir, tmp_path
):
    from tests.tiny_models import build_lora

    adapter = build_lora(tiny_dir, tmp_path / "lora")
    lmwidgets.load_adapter(str(adapter), name="style", model="packed")
    text = lmwidgets.prompt(
        "Hello", model="packed", adapter="style", max_new_tokens=8, display=False
    ).text
    assert lean_steps == []  # peft wraps q/v: not plain layers any more
    plain = lmwidgets.load_model(str(tiny_dir), name="plain", cpu_kernels="plain")
    lmwidgets.load_adapter(str(adapter), name="style", model="plain")
    assert (
        text
        == lmwidgets.prompt(
            "Hello", model="plain", adapter="style", max_new_tokens=8, display=False
        ).text
    )
    layer = plain.model.model.layers[0]
    assert not lean_decode.install(torch.nn.Linear(2, 2))  # nothing to give it to
    hidden = torch.randn(1, 1, plain.model.config.hidden_size, requires_grad=True)
    parts = lean_decode._Parts(layer)
    assert lean_decode._lean_ready(parts, layer, hidden, object(), {}) == (None, None)


def test_unpacking_takes_the_lean_step_off(packed):
    cpu_kernels.unpack_linear_layers(packed.model)
    assert lean_decode.lean_layers(packed.model) == 0
    assert not fused_linear.fused_groups(packed.model)
    assert all("forward" not in vars(layer) for layer in packed.model.model.layers)


def test_the_dense_baseline_context_is_not_lean(packed, lean_steps):
    with cpu_kernels.dense_linear(packed.model):
        greedy(packed.model, [[5, 9, 14, 3]], packed.tokenizer.pad_token_id, steps=4)
    assert lean_steps == []


@pytest.mark.parametrize("family", ["Qwen2", "Mistral", "Qwen3"])
def test_other_llama_family_layers_are_lean_and_equal(family, tmp_path, registry, lean_steps):
    """Qwen2 (q/k/v with biases) and Mistral pass a sliding window to the attention; Qwen3
    norms each query and key head before rotating them."""
    from tests.tiny_models import build_family

    directory, config, tokenizer = build_family(tmp_path / family, family)
    loaded = lmwidgets.load_model(str(directory), name=family, cpu_kernels="packed")
    assert lean_decode.lean_layers(loaded.model) == config.num_hidden_layers
    rows, pad = [[5, 9, 14, 3], [7, 2]], tokenizer.pad_token_id
    lean_tokens, lean_scores = greedy(loaded.model, rows, pad)
    assert len(lean_steps) == 11 * config.num_hidden_layers
    has_bias = fused_linear.fused_groups(loaded.model)[0].bias is not None
    assert has_bias is (family == "Qwen2")
    lean_decode.remove(loaded.model)
    stock_tokens, stock_scores = greedy(loaded.model, rows, pad)
    assert torch.equal(lean_tokens, stock_tokens) and torch.equal(lean_scores, stock_scores)


def test_the_lean_step_runs_where_only_q_k_v_measured_faster_fused(
    tiny_dir, registry, lean_steps, monkeypatch
):
    """On a CPU where fusing gate/up measured slower, the MLP runs its own layers (still lean)."""
    from lmwidgets.engines.transformers import kernel_choice, small_ops_choice

    # ATen's small operations (compiled ones: tests/engines/test_lean_ops.py), not timed here
    tie = {"aten_us": 1.0, "compiled_us": 1.0, "agree": True, "compiled_layers": 2}
    monkeypatch.setattr(small_ops_choice, "measure", lambda model, library: dict(tie))
    loaded = lmwidgets.load_model(str(tiny_dir), name="qkv-only", cpu_kernels="plain")
    shapes = kernel_choice._shapes(loaded.model)
    packed_faster = {s: {"plain": {1: 2.0, 4: 2.0}, "packed": {1: 1.0, 4: 1.0}} for s in shapes}
    fusion = {}
    for group in fused_linear.find_groups(loaded.model):
        fused = 1.0 if group.names[0] == "q_proj" else 3.0
        fusion[group.key] = {"separate": {1: 2.0, 4: 2.0}, "fused": {1: fused, 4: fused}}
    choice = kernel_choice.choose_kernels(
        loaded.model, "auto", timings=packed_faster, fusion_timings=fusion
    )
    assert sorted(choice.fusion.values()) == [False, True]
    assert all(g.names[0] == "q_proj" for g in fused_linear.fused_groups(loaded.model))
    pad = loaded.tokenizer.pad_token_id
    lean_tokens, lean_scores = greedy(loaded.model, [[5, 9, 14, 3], [7, 2]], pad)
    assert len(lean_steps) == 11 * loaded.model.config.num_hidden_layers
    lean_decode.remove(loaded.model)
    stock_tokens, stock_scores = greedy(loaded.model, [[5, 9, 14, 3], [7, 2]], pad)
    assert torch.equal(lean_tokens, stock_tokens) and torch.equal(lean_scores, stock_scores)
