"""Sibling linear layers fused into one packed product: same numbers, safe when misused."""

import pytest
import torch

import lmwidgets
from lmwidgets.engines.transformers import cpu_kernels, fused_linear

pytestmark = pytest.mark.skipif(
    not cpu_kernels.supported(), reason="no oneDNN packed linear in this torch"
)


class Attention(torch.nn.Module):
    """q/k/v siblings (with bias, as Qwen2's) and an output layer, called like a decoder's."""

    def __init__(self, width=32, kv=16, bias=True):
        super().__init__()
        torch.manual_seed(0)
        self.q_proj = torch.nn.Linear(width, width, bias=bias)
        self.k_proj = torch.nn.Linear(width, kv, bias=bias)
        self.v_proj = torch.nn.Linear(width, kv, bias=bias)

    def forward(self, x, other=None):
        keys_from = x if other is None else other  # cross-attention reads another tensor
        return self.q_proj(x), self.k_proj(keys_from), self.v_proj(keys_from)


def _dense(module, x, other=None):
    keys_from = x if other is None else other
    return (
        torch.nn.functional.linear(x, module.q_proj.weight, module.q_proj.bias),
        torch.nn.functional.linear(keys_from, module.k_proj.weight, module.k_proj.bias),
        torch.nn.functional.linear(keys_from, module.v_proj.weight, module.v_proj.bias),
    )


def _fused(module):
    (group,) = fused_linear.find_groups(module)
    fused_linear.fuse(group)
    return group


@pytest.mark.parametrize("rows", [1, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_outputs_equal_the_separate_packed_ones_bit_for_bit(rows, bias):
    separate, fused = Attention(bias=bias), Attention(bias=bias)
    cpu_kernels.prepack_linear_layers(separate)
    group = _fused(fused)
    assert group.key == "q_proj+k_proj+v_proj 32x64" and group.sizes == [32, 16, 16]
    x = torch.randn(rows, 3, 32)
    with torch.inference_mode():
        for mine, theirs, dense in zip(fused(x), separate(x), _dense(fused, x), strict=True):
            assert torch.equal(mine, theirs)
            torch.testing.assert_close(mine, dense, rtol=1e-5, atol=1e-5)
    assert group.pending is None  # every slice was handed out: nothing is kept


def test_a_sibling_given_another_input_computes_its_own_then_the_group_splits():
    module = Attention()
    # The kernel plan packs q (32x32) and keeps k and v (32x16) on PyTorch's plain product.
    cpu_kernels.prepack_linear_layers(module, plan={"32x32": (True, True)})
    group = _fused(module)
    x, memory = torch.randn(2, 32), torch.randn(5, 32)
    with torch.inference_mode():
        for call in range(fused_linear.MISSES_BEFORE_SPLIT + 1):
            for got, want in zip(module(x, memory), _dense(module, x, memory), strict=True):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            if call + 1 >= fused_linear.MISSES_BEFORE_SPLIT:
                assert group.split
    assert group.split and group.packed is None
    assert not any(hasattr(member, "_lmw_group") for member in group.members)
    # separate layers again, each with the kernel its plan gave it before the fusion
    assert [hasattr(member, "_lmw_packed") for member in group.members] == [True, False, False]
    with torch.inference_mode():
        for got, want in zip(module(x, memory), _dense(module, x, memory), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_an_input_changed_in_place_between_siblings_is_not_served_stale():
    module = Attention()
    _fused(module)
    x = torch.randn(2, 32)
    with torch.no_grad():
        module.q_proj(x)
        x.mul_(3)  # the kept k/v slices were computed from the old values
        got = module.k_proj(x)
    torch.testing.assert_close(
        got, torch.nn.functional.linear(x, module.k_proj.weight, module.k_proj.bias)
    )


def test_weights_changed_in_place_are_stacked_and_packed_again():
    module = Attention()
    _fused(module)
    with torch.no_grad():
        module.v_proj.weight.mul_(2)  # a merged adapter does this
        module.q_proj.bias.add_(1)
    x = torch.randn(3, 32)
    with torch.inference_mode():
        for got, want in zip(module(x), _dense(module, x), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gradients_run_the_dense_layers():
    module = Attention()
    _fused(module)
    x = torch.randn(2, 32)
    sum(out.sum() for out in module(x)).backward()
    assert all(member.weight.grad is not None for member in (module.q_proj, module.v_proj))


def test_unpack_and_the_dense_context_take_the_fusion_off():
    module = Attention()
    group = _fused(module)
    assert cpu_kernels.packed_layers(module) == 3
    assert cpu_kernels.packed_bytes(module) == sum(m.weight.numel() * 4 for m in group.members)
    with cpu_kernels.dense_linear(module):
        assert all("forward" not in vars(m) for m in group.members)
    assert all("forward" in vars(m) for m in group.members)
    assert cpu_kernels.unpack_linear_layers(module) == 3
    assert not any(hasattr(m, "_lmw_group") or "forward" in vars(m) for m in group.members)
    assert fused_linear.find_groups(module)  # can be fused again


def test_groups_need_plain_float32_siblings_of_one_width():
    module = Attention()
    module.k_proj = torch.nn.Linear(8, 16)  # another input width: not siblings
    assert fused_linear.find_groups(module) == []
    module = Attention().to(torch.bfloat16)
    assert fused_linear.find_groups(module) == []


def test_a_packed_model_with_an_adapter_answers_like_the_plain_one(tiny_dir, tmp_path, registry):
    from tests.tiny_models import build_lora

    adapter = build_lora(tiny_dir, tmp_path / "lora", targets=("q_proj", "v_proj", "up_proj"))
    texts = []
    for name, kernels in (("fused", "packed"), ("plain", "plain")):
        loaded = lmwidgets.load_model(str(tiny_dir), name=name, cpu_kernels=kernels)
        assert bool(fused_linear.fused_groups(loaded.model)) is (kernels == "packed")
        lmwidgets.load_adapter(str(adapter), name="style", model=name)
        texts.append(
            lmwidgets.prompt(
                "Hello there", model=name, adapter="style", max_new_tokens=16, display=False
            ).text
        )
    assert texts[0] == texts[1]
