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
    assert lean_decode._lean_ready(layer, hidden, object(), {}) == (None, None)


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
    import transformers

    from lmwidgets.engines.transformers.demo_models import save_pretrained, text_config
    from tests.tiny_models import build_tokenizer

    tokenizer = build_tokenizer()
    config = text_config(getattr(transformers, f"{family}Config"), tokenizer, context=256)
    torch.manual_seed(1)
    model = getattr(transformers, f"{family}ForCausalLM")(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.2)  # biases too: a zero bias would hide a misplaced one
    directory = save_pretrained(tmp_path / family, model.eval(), tokenizer)
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


def test_the_lean_step_runs_where_only_q_k_v_measured_faster_fused(tiny_dir, registry, lean_steps):
    """On a CPU where fusing gate/up measured slower, the MLP runs its own layers (still lean)."""
    from lmwidgets.engines.transformers import kernel_choice

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
