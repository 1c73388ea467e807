"""Mixed-adapter batches in one pass per layer: every row's LoRA delta from one gathered bmm.

peft's mixed batches (``adapter_names``) loop over the adapters in every LoRA layer, slicing out
each adapter's rows: many small operations per layer and step. Here each LoRA layer stacks its
adapters' A and B matrices once per generation (zero-padded to the largest rank; index 0 is the
base model, all zeros) and computes ``x @ A[row]^T @ B[row]^T * scale[row]`` for all rows with two
batched matmuls. Base rows add an exact zero, so they equal the model without adapters.

Plain LoRA only: layers with DoRA or other variants, or adapters that are not ``lora.Linear``,
fall back to peft's own mixed-batch path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


def _lora_layers(model: Any) -> list[Any]:
    from peft.tuners.lora import Linear as LoraLinear

    return [m for m in model.modules() if isinstance(m, LoraLinear)]


def supported(model: Any, adapters: Sequence[str]) -> bool:
    """Whether every LoRA layer is a plain LoRA linear layer for these adapters."""
    for layer in _lora_layers(model):
        for name in adapters:
            if name in layer.lora_A and (
                layer.use_dora.get(name) or getattr(layer, "lora_variant", {}).get(name)
            ):
                return False
    return True


def _stacks(layer: Any, adapters: Sequence[str]):
    import torch

    base = layer.get_base_layer()
    present = [name for name in adapters if name in layer.lora_A]
    rank = max((layer.lora_A[name].weight.shape[0] for name in present), default=1)
    count = len(adapters) + 1
    dtype, device = base.weight.dtype, base.weight.device
    a = torch.zeros(count, rank, base.in_features, dtype=dtype, device=device)
    b = torch.zeros(count, base.out_features, rank, dtype=dtype, device=device)
    scale = torch.zeros(count, dtype=dtype, device=device)
    for index, name in enumerate(adapters, start=1):
        if name not in present:
            continue
        weight_a = layer.lora_A[name].weight
        weight_b = layer.lora_B[name].weight
        a[index, : weight_a.shape[0]] = weight_a
        b[index, :, : weight_b.shape[1]] = weight_b
        scale[index] = layer.scaling[name]
    # Fold the scale into B: one multiply less per step.
    return a.transpose(1, 2).contiguous(), (b * scale[:, None, None]).transpose(1, 2).contiguous()


@contextlib.contextmanager
def routed(model: Any, adapters: Sequence[str], rows: Sequence[str | None]) -> Iterator[None]:
    """Within the block, row ``i`` of every batch runs with adapter ``rows[i]`` (None: base)."""
    import torch

    order = list(dict.fromkeys(adapters))
    index = torch.tensor([0 if r is None else order.index(r) + 1 for r in rows], dtype=torch.long)
    layers = _lora_layers(model)
    prepared = []
    for layer in layers:
        a, b = _stacks(layer, order)
        device = a.device
        prepared.append(
            (layer, a.index_select(0, index.to(device)), b.index_select(0, index.to(device)))
        )

    def make_forward(layer, a_rows, b_rows):
        base = layer.get_base_layer()

        def forward(x, *args, **kwargs):
            kwargs.pop("adapter_names", None)
            result = base(x, *args, **kwargs)
            if x.dim() != 3 or x.shape[0] != a_rows.shape[0]:
                raise RuntimeError(
                    "lmwidgets' batched LoRA expects [rows, tokens, features] inputs"
                )
            delta = torch.bmm(torch.bmm(x.to(a_rows.dtype), a_rows), b_rows)
            return result + delta.to(result.dtype)

        return forward

    try:
        for layer, a_rows, b_rows in prepared:
            layer.forward = make_forward(layer, a_rows, b_rows)
        yield
    finally:
        for layer, _, _ in prepared:
            layer.__dict__.pop("forward", None)
