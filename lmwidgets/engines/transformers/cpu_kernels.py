"""Faster CPU decoding: linear layers with weights pre-packed for oneDNN.

PyTorch's default CPU matmul re-packs a layer's weight on every call; for the few rows of a
decoding step that costs about as much as the product itself, and more so for a batch of
side-by-side rows. Packing each ``nn.Linear`` weight once (``torch.ops.mkldnn``) made batch-1
decoding about 1.5x faster and a 4-row batch cost about what one row costs on an AMD EPYC (see
``benchmarks/``), but is slower at batch 1 on some Intel Xeons: so each layer can run packed for
one row, for more rows, or both, and :mod:`.kernel_choice` decides which by measurement.

The modules stay ``nn.Linear`` (peft adapters wrap them as usual); only their forward changes, and
only for inference on CPU in float32. With gradients enabled, on another device or dtype, or after
the weight was modified in place (it is repacked then), the dense path runs.

Memory: the packed copy would double the memory of the linear weights. Weights loaded from a
safetensors file (the default model's cache, any float32 checkpoint) are memory-mapped from that
file, so after packing :func:`release_dense_pages` drops their pages from the process: they stay
in the file (and the page cache) and are mapped again only if ever needed (training, merging,
saving), and the process holds one copy of the weights. Weights that are not file-backed
(converted from another dtype) do double, so the automatic mode packs only when the copy takes
at most a quarter of the memory available; ``--cpu-kernels plain`` turns it off. A layer that
still runs its plain product for some row counts keeps its dense pages.
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


def bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 products natively (oneDNN's AVX-512 BF16 or AMX)."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(supported() and check is not None and check())


def _pack(module: Any, batch_hint: int) -> None:
    import torch

    weight = module.weight.detach()
    if module._lmw_bf16:
        weight = weight.to(torch.bfloat16)
    module._lmw_packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch_hint)
    module._lmw_packed_version = module.weight._version
    module._lmw_packed_data = module.weight.data_ptr()


def packable(x: Any, weight: Any) -> bool:
    """Whether ``x`` times ``weight`` may run a packed copy: inference, on the CPU, in float32
    (gradients, another device or dtype run PyTorch's plain product)."""
    import torch

    return not (
        torch.is_grad_enabled()
        or not x.is_cpu
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or not weight.is_cpu
    )


def packed_product(x: Any, packed: Any, bias: Any, bf16: bool) -> Any:
    """``x`` times a oneDNN-packed weight, plus ``bias`` (detached, or None), for any leading
    shape of ``x``; ``bf16``: bfloat16 products, float32 accumulation inside oneDNN."""
    import torch

    if not bf16 and x.dim() == 2:  # a decoding step's rows: no reshaping (~2 us a call)
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    if bf16:
        out = torch.ops.mkldnn._linear_pointwise(
            flat.to(torch.bfloat16), packed, None, "none", [], ""
        ).float()
        if bias is not None:
            out = out + bias
    else:
        out = torch.ops.mkldnn._linear_pointwise(flat, packed, bias, "none", [], "")
    return out.reshape(*shape[:-1], out.shape[-1])


def _packed_forward(self, x):
    import torch

    # the parameters straight from their dict: nn.Module's __getattr__ costs ~1 us a lookup,
    # and a decoding step calls this ~120 times
    params = self._parameters
    weight, bias = params["weight"], params["bias"]
    if not packable(x, weight):
        return torch.nn.functional.linear(x, weight, bias)
    rows = x.numel() // max(1, x.shape[-1])
    if not (self._lmw_multi if rows > 1 else self._lmw_single):  # plain is faster here
        return torch.nn.functional.linear(x, weight, bias)
    if weight._version != self._lmw_packed_version or weight.data_ptr() != self._lmw_packed_data:
        _pack(self, self._lmw_batch_hint)  # the weight changed in place: pack it again
    bias = None if bias is None else bias.detach()
    return packed_product(x, self._lmw_packed, bias, self._lmw_bf16)


def shape_key(module: Any) -> str:
    """A linear layer's shape as kernel plans name it: ``"IN x OUT"`` (``"576x1536"``)."""
    return f"{module.in_features}x{module.out_features}"


def prepack_linear_layers(
    model: Any,
    batch_hint: int = 4,
    plan: dict[str, tuple[bool, bool]] | None = None,
    bf16: bool = False,
) -> int:
    """Pack every float32 CPU ``nn.Linear`` weight of ``model``; returns how many were packed.

    ``plan`` maps a layer shape (:func:`shape_key`) to (packed for 1 row, packed for more rows);
    a layer runs PyTorch's plain product where its plan says False, and a shape packed for
    neither (or missing from a given plan) is not packed at all. ``bf16`` packs bfloat16 copies
    (lower precision, opt-in). Layers packed already are left as they are.
    """
    import torch

    if not supported():
        return 0
    count = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear or hasattr(module, "_lmw_packed"):
            continue
        if module.weight.dtype != torch.float32 or module.weight.device.type != "cpu":
            continue
        single, multi = (True, True) if plan is None else plan.get(shape_key(module), (0, 0))
        if not (single or multi):
            continue
        module._lmw_batch_hint = batch_hint
        module._lmw_single, module._lmw_multi, module._lmw_bf16 = bool(single), bool(multi), bf16
        _pack(module, batch_hint)
        module.forward = types.MethodType(_packed_forward, module)
        count += 1
    return count


def unpack_layer(module: Any) -> None:
    """Give one packed layer back its class's forward and drop its packed copy."""
    del module.forward  # back to the class's forward
    for name in (
        "_lmw_packed",
        "_lmw_packed_version",
        "_lmw_packed_data",
        "_lmw_batch_hint",
        "_lmw_single",
        "_lmw_multi",
        "_lmw_bf16",
    ):
        delattr(module, name)


def unpack_linear_layers(model: Any) -> int:
    """Undo :func:`prepack_linear_layers`; returns how many layers were restored."""
    from lmwidgets.engines.transformers import lean_decode
    from lmwidgets.engines.transformers.fused_linear import unfuse

    lean_decode.remove(model)
    count = 0
    for module in model.modules():
        if hasattr(module, "_lmw_packed"):
            unpack_layer(module)
            count += 1
        elif unfuse(module):
            count += 1
    return count


def apply_plan(model: Any, plan: dict[str, tuple[bool, bool]]) -> int:
    """Set packed layers' kernels by ``plan`` (see :func:`prepack_linear_layers`); a shape
    packed for neither 1 row nor more is unpacked. Returns how many layers stay packed."""
    kept = 0
    for module in list(model.modules()):
        if not hasattr(module, "_lmw_packed"):
            continue
        single, multi = plan.get(shape_key(module), (False, False))
        if single or multi:
            module._lmw_single, module._lmw_multi = bool(single), bool(multi)
            kept += 1
        else:
            unpack_layer(module)
    return kept


def is_packed(module: Any) -> bool:
    """Whether ``module`` runs a packed product (its own, or its fused group's)."""
    return hasattr(module, "_lmw_packed") or hasattr(module, "_lmw_group")


def packed_layers(model: Any) -> int:
    """How many layers of ``model`` are packed (alone or in a fused group)."""
    return sum(1 for module in model.modules() if is_packed(module))


def packed_bytes(model: Any) -> int:
    """Memory held by packed weight copies."""
    from lmwidgets.engines.transformers.fused_linear import fused_groups

    total = sum(
        sum(m.weight.numel() for m in group.members) * (2 if group.bf16 else 4)
        for group in fused_groups(model)
        if group.packed is not None
    )
    for module in model.modules():
        packed = getattr(module, "_lmw_packed", None)
        if packed is not None:
            size = 2 if module._lmw_bf16 else module.weight.element_size()
            total += module.weight.numel() * size
    return total


#: Linux ``madvise`` advice: drop these pages from the process. Pages of a file mapping stay in
#: the page cache (the next load reads them from memory, not disk) and are mapped again from the
#: file on access; a privately modified page would be lost, so only unmodified pages are advised.
_MADV_DONTNEED = 4
_PAGEMAP_PRESENT = 1 << 63
_PAGEMAP_SWAPPED = 1 << 62
_PAGEMAP_FILE = 1 << 61


def _weight_file_ranges(maps: str = "/proc/self/maps") -> list[tuple[int, int]]:
    """Address ranges of this process that are mapped from ``.safetensors`` files."""
    ranges = []
    try:
        with open(maps) as handle:
            for line in handle:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].rstrip().endswith(".safetensors"):
                    start, end = (int(part, 16) for part in fields[0].split("-"))
                    ranges.append((start, end))
    except OSError:
        return []
    return ranges


def _unmodified_runs(pagemap: Any, first: int, last: int, page: int) -> list[tuple[int, int]]:
    """(start, length) runs of pages in [first, last) that still equal the file's contents:
    not yet touched, or mapped straight from the page cache (not a private copy, not swapped)."""
    import numpy as np

    pagemap.seek(first // page * 8)
    entries = np.frombuffer(pagemap.read((last - first) // page * 8), dtype=np.uint64)
    swapped = (entries & np.uint64(_PAGEMAP_SWAPPED)) != 0
    present = (entries & np.uint64(_PAGEMAP_PRESENT)) != 0
    from_file = (entries & np.uint64(_PAGEMAP_FILE)) != 0
    clean = np.concatenate(([False], ~swapped & (~present | from_file), [False]))
    edges = np.flatnonzero(np.diff(clean.astype(np.int8)))  # run starts and ends, alternating
    return [
        (first + int(start) * page, int(end - start) * page)
        for start, end in zip(edges[::2], edges[1::2], strict=True)
    ]


def release_dense_pages(model: Any) -> int:
    """Drop the pages of packed layers' file-backed dense weights from this process.

    Returns the bytes released. Only pages that still equal the weight file are dropped, so
    nothing can be lost: a page needed again (training, merging, saving) is mapped again from the
    file. A no-op where ``madvise`` or ``/proc/self/pagemap`` is missing (not Linux).
    """
    import ctypes
    import mmap

    ranges = _weight_file_ranges()
    if not ranges:
        return 0
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        pagemap = open("/proc/self/pagemap", "rb", buffering=0)  # noqa: SIM115
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE
    released = 0
    with pagemap:
        for module in model.modules():
            fused = hasattr(module, "_lmw_group")
            both = getattr(module, "_lmw_single", False) and getattr(module, "_lmw_multi", False)
            if not (fused or both):
                continue  # not packed, or its plain product still runs for some batch sizes
            weight = module.weight
            start = weight.data_ptr()
            end = start + weight.numel() * weight.element_size()
            if not any(low <= start and end <= high for low, high in ranges):
                continue
            first, last = -(-start // page) * page, end // page * page  # whole pages inside
            if last <= first:
                continue
            for run, length in _unmodified_runs(pagemap, first, last, page):
                if madvise(run, length, _MADV_DONTNEED) == 0:
                    released += length
    return released


@contextlib.contextmanager
def dense_linear(model: Any) -> Iterator[None]:
    """Run ``model`` with PyTorch's plain linear layers for a while (baselines, comparisons)."""
    patched = [m for m in model.modules() if "forward" in vars(m) and is_packed(m)]
    saved = [m.__dict__.pop("forward") for m in patched]
    try:
        yield
    finally:
        for module, forward in zip(patched, saved, strict=True):
            module.forward = forward
