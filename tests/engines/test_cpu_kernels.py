"""Packed oneDNN linear layers: same numbers as PyTorch's, safe fallbacks, reversible."""

from pathlib import Path

import pytest
import torch

import lmwidgets
from lmwidgets.engines.transformers import cpu_kernels

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
    packed = lmwidgets.load_model(str(tiny_dir), name="packed", cpu_kernels="packed")
    plain = lmwidgets.load_model(str(tiny_dir), name="plain", prepack=False, dtype="float32")
    assert packed.prepacked_layers > 0 and plain.prepacked_layers == 0
    assert "CPU kernels packed, fused (asked)" in packed.summary()
    assert "CPU kernels plain (asked)" in plain.summary()
    # The dense weights' pages went back to the OS (the weights are mapped from the file), so the
    # packed model holds about one copy of the weights, not two.
    assert packed.memory_bytes < 1.5 * plain.memory_bytes
    texts = [
        lmwidgets.prompt("Hello there", model=m, max_new_tokens=24, display=False).text
        for m in ("packed", "plain")
    ]
    assert texts[0] == texts[1]


def test_auto_mode_skips_packing_when_memory_is_short(tiny_dir, registry, monkeypatch):
    monkeypatch.setattr(cpu_kernels, "available_memory", lambda: 1000)  # bytes
    loaded = lmwidgets.load_model(str(tiny_dir), name="short")
    assert loaded.prepacked_layers == 0
    assert loaded.cpu_kernels.label() == "plain (memory)"
    forced = lmwidgets.load_model(str(tiny_dir), name="forced", dtype="float32", prepack=True)
    assert forced is not loaded and forced.prepacked_layers > 0


_RELEASE_SCRIPT = """
import json, sys
import torch
from safetensors.torch import load_file
import lmwidgets

def resident_weight_file_bytes():
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            inside = fields[-1].endswith(".safetensors")
        elif inside and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total

directory = sys.argv[1]
loaded = lmwidgets.load_model(directory, name="m", prepack=sys.argv[2] == "packed")
with torch.inference_mode():
    for module in loaded.model.modules():  # touch every dense weight, as packing does
        if isinstance(module, torch.nn.Linear):
            float(module.weight.sum())
    if sys.argv[2] == "packed":
        from lmwidgets.engines.transformers.cpu_kernels import release_dense_pages
        released_again = release_dense_pages(loaded.model)
    else:
        released_again = 0
resident = resident_weight_file_bytes()
modified_kept = None
if sys.argv[2] == "packed":
    # A weight changed in place holds private copies of its pages: they must survive a release.
    weight = loaded.model.lm_head.weight
    with torch.no_grad():
        weight.mul_(2)
    expected = weight.clone()
    release_dense_pages(loaded.model)
    modified_kept = torch.equal(weight, expected)
    with torch.no_grad():
        weight.div_(2)
text = lmwidgets.prompt("Hello there", max_new_tokens=16, display=False).text
on_disk = load_file(directory + "/model.safetensors")
intact = all(
    torch.equal(param, on_disk[name])
    for name, param in loaded.model.named_parameters()
    if name in on_disk
)
print(json.dumps({"resident": resident, "released": released_again, "text": text,
                  "intact": intact, "checked": len(on_disk), "modified_kept": modified_kept}))
"""


def _run_release_script(directory, mode):
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _RELEASE_SCRIPT, str(directory), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_packing_gives_the_dense_pages_back(tiny_dir):
    packed = _run_release_script(tiny_dir, "packed")
    dense = _run_release_script(tiny_dir, "dense")
    file_size = (tiny_dir / "model.safetensors").stat().st_size
    assert dense["resident"] > 0.5 * file_size, dense  # unpacked: the dense weights are in use
    assert packed["released"] > 0.5 * file_size, packed
    # packed: the linear weights are left on disk (the embedding is still read from the file)
    assert packed["resident"] <= file_size - packed["released"] + 8 * 4096, packed
    assert packed["resident"] < 0.5 * dense["resident"], (packed, dense)
    assert packed["intact"] and dense["intact"] and packed["checked"] > 0
    assert packed["modified_kept"] is True
    assert packed["text"] == dense["text"]


def test_release_ignores_memory_that_is_not_file_backed():
    layer, _ = _linear()
    model = torch.nn.Sequential(layer)
    cpu_kernels.prepack_linear_layers(model)
    before = layer.weight.clone()
    assert cpu_kernels.release_dense_pages(model) == 0  # anonymous memory: nothing to give back
    assert torch.equal(layer.weight, before)


def test_weight_file_ranges_reads_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f80 r--p 00000000 fe:00 1 /models/a/model.safetensors\n"
        "7f80-7f90 rw-p 00000000 00:00 0 \n"
        "8000-9000 r-xp 00000000 fe:00 2 /usr/lib/libc.so.6\n"
        "a000-b000 rw-p 00000000 fe:00 3 /models/with space/b.safetensors\n"
    )
    assert cpu_kernels._weight_file_ranges(str(maps)) == [(0x7F00, 0x7F80), (0xA000, 0xB000)]
    assert cpu_kernels._weight_file_ranges(str(tmp_path / "missing")) == []
