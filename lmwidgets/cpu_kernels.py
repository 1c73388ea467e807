"""Faster CPU decoding: linear layers with weights pre-packed for oneDNN.

PyTorch's default CPU matmul re-packs a layer's weight on every call; for the few rows of a
decoding step that costs about as much as the product itself, and more so for a batch of
side-by-side rows. Packing each ``nn.Linear`` weight once (``torch.ops.mkldnn``) makes batch-1
decoding about 1.5x faster and a 4-row batch cost about what one row costs (see ``benchmarks/``).

The modules stay ``nn.Linear`` (peft adapters wrap them as usual); only their forward changes, and
only for inference on CPU in float32. With gradients enabled, on another device or dtype, or after
the weight was modified in place (it is repacked then), the dense path runs. Trade-off: the packed
copy doubles the memory of the linear weights, so the automatic mode packs only when that copy
takes at most a quarter of the memory available; ``prepack=False`` (``--no-prepack``) turns it off.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

#: Auto-packing only when the packed copy takes at most this share of the available memory.
AUTO_MEMORY_SHARE = 0.25


def available_memory() -> int | None:
    """Bytes of memory available now (None when unknown)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def linear_bytes(model: Any) -> int:
    """Bytes of the float32 CPU linear weights that packing would copy."""
    import torch

    return sum(
        m.weight.numel() * m.weight.element_size()
        for m in model.modules()
        if type(m) is torch.nn.Linear
        and m.weight.dtype == torch.float32
        and m.weight.device.type == "cpu"
    )


def worth_packing(model: Any) -> bool:
    """Auto mode: pack when the copy fits comfortably in the memory available now."""
    available = available_memory()
    return (
        supported()
        and available is not None
        and linear_bytes(model) <= AUTO_MEMORY_SHARE * available
    )


def supported() -> bool:
    """Whether this torch build has the oneDNN packed-linear operators."""
    import torch

    return bool(
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def _pack(module: Any, batch_hint: int) -> None:
    import torch

    module._lmw_packed = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), batch_hint)
    module._lmw_packed_version = module.weight._version
    module._lmw_packed_data = module.weight.data_ptr()


def _packed_forward(self, x):
    import torch

    weight = self.weight
    if (
        torch.is_grad_enabled()
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or weight.device.type != "cpu"
    ):
        return torch.nn.functional.linear(x, weight, self.bias)
    if weight._version != self._lmw_packed_version or weight.data_ptr() != self._lmw_packed_data:
        _pack(self, self._lmw_batch_hint)  # the weight changed in place: pack it again
    shape = x.shape
    bias = None if self.bias is None else self.bias.detach()
    out = torch.ops.mkldnn._linear_pointwise(
        x.reshape(-1, shape[-1]), self._lmw_packed, bias, "none", [], ""
    )
    return out.reshape(*shape[:-1], out.shape[-1])


def prepack_linear_layers(model: Any, batch_hint: int = 4) -> int:
    """Pack every float32 CPU ``nn.Linear`` weight of ``model``; returns how many were packed."""
    import torch

    if not supported():
        return 0
    count = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear or hasattr(module, "_lmw_packed"):
            continue
        if module.weight.dtype != torch.float32 or module.weight.device.type != "cpu":
            continue
        module._lmw_batch_hint = batch_hint
        _pack(module, batch_hint)
        module.forward = types.MethodType(_packed_forward, module)
        count += 1
    return count


def unpack_linear_layers(model: Any) -> int:
    """Undo :func:`prepack_linear_layers`; returns how many layers were restored."""
    count = 0
    for module in model.modules():
        if hasattr(module, "_lmw_packed"):
            del module.forward  # back to the class's forward
            for name in (
                "_lmw_packed",
                "_lmw_packed_version",
                "_lmw_packed_data",
                "_lmw_batch_hint",
            ):
                delattr(module, name)
            count += 1
    return count


def packed_bytes(model: Any) -> int:
    """Memory held by packed weight copies."""
    total = 0
    for module in model.modules():
        packed = getattr(module, "_lmw_packed", None)
        if packed is not None:
            total += module.weight.numel() * module.weight.element_size()
    return total


@contextlib.contextmanager
def dense_linear(model: Any) -> Iterator[None]:
    """Run ``model`` with PyTorch's plain linear layers for a while (baselines, comparisons)."""
    patched = [m for m in model.modules() if "forward" in vars(m) and hasattr(m, "_lmw_packed")]
    saved = [m.__dict__.pop("forward") for m in patched]
    try:
        yield
    finally:
        for module, forward in zip(patched, saved, strict=True):
            module.forward = forward
