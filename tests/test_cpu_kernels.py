"""Packed oneDNN linear layers: same numbers as PyTorch's, safe fallbacks, reversible."""

import pytest
import torch

import lmwidgets
from lmwidgets import cpu_kernels

pytestmark = pytest.mark.skipif(
    not cpu_kernels.supported(), reason="no oneDNN packed linear in this torch"
)


def _linear(rows=3, bias=True):
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 48, bias=bias)
    return layer, torch.randn(rows, 5, 64)


@pytest.mark.parametrize("bias", [True, False])
def test_packed_matches_dense(bias):
    layer, x = _linear(bias=bias)
    with torch.inference_mode():
        dense = layer(x)
    assert cpu_kernels.prepack_linear_layers(torch.nn.Sequential(layer)) == 1
    with torch.inference_mode():
        packed = layer(x)
    assert packed.shape == dense.shape
    torch.testing.assert_close(packed, dense, rtol=1e-5, atol=1e-5)


def test_gradients_use_the_dense_path():
    layer, x = _linear()
    cpu_kernels.prepack_linear_layers(torch.nn.Sequential(layer))
    out = layer(x).sum()
    out.backward()
    assert layer.weight.grad is not None


def test_in_place_weight_change_is_repacked():
    layer, x = _linear()
    cpu_kernels.prepack_linear_layers(torch.nn.Sequential(layer))
    with torch.no_grad():
        layer.weight.mul_(2)
    with torch.inference_mode():
        torch.testing.assert_close(
            layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5
        )


def test_other_dtypes_are_left_alone():
    layer = torch.nn.Linear(8, 8).to(torch.bfloat16)
    assert cpu_kernels.prepack_linear_layers(torch.nn.Sequential(layer)) == 0
    assert "forward" not in vars(layer)


def test_unpack_and_dense_context():
    layer, _ = _linear()
    model = torch.nn.Sequential(layer)
    cpu_kernels.prepack_linear_layers(model)
    with cpu_kernels.dense_linear(model):
        assert "forward" not in vars(layer)
    assert "forward" in vars(layer)
    assert cpu_kernels.unpack_linear_layers(model) == 1
    assert "forward" not in vars(layer) and not hasattr(layer, "_lmw_packed")


def test_models_load_packed_and_answer_like_dense(tiny_dir, registry):
    packed = lmwidgets.load_model(str(tiny_dir), name="packed")
    plain = lmwidgets.load_model(str(tiny_dir), name="plain", prepack=False, dtype="float32")
    assert packed.prepacked_layers > 0 and plain.prepacked_layers == 0
    assert "packed for CPU" in packed.summary()
    assert packed.memory_bytes > plain.memory_bytes
    texts = [
        lmwidgets.prompt("Hello there", model=m, max_new_tokens=24, display=False).text
        for m in ("packed", "plain")
    ]
    assert texts[0] == texts[1]


def test_auto_mode_skips_packing_when_memory_is_short(tiny_dir, registry, monkeypatch):
    monkeypatch.setattr(cpu_kernels, "available_memory", lambda: 1000)  # bytes
    loaded = lmwidgets.load_model(str(tiny_dir), name="short")
    assert loaded.prepacked_layers == 0
    forced = lmwidgets.load_model(str(tiny_dir), name="forced", dtype="float32", prepack=True)
    assert forced is not loaded and forced.prepacked_layers > 0
