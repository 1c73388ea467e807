"""Sibling linear layers that read the same input run as one packed product on the CPU.

A decoder layer calls ``q_proj``, ``k_proj`` and ``v_proj`` (and ``gate_proj`` and ``up_proj``)
on the same hidden states. At batch 1 each oneDNN call costs more than its arithmetic (a
576x192 product streams its weights at half the speed of a large one), so one product with the
weights stacked (576x960) does the group's work in one call and gives the numbers of the
layers packed separately, bit for bit: each output is the same dot product. :mod:`.kernel_choice` times both on this CPU and
fuses a group only where that measured faster.

The modules stay ``nn.Linear`` (peft wraps them as usual). The first member called with an
input computes the whole group's product and keeps its siblings' slices for that very tensor
(same object, unmodified; a member with a forward pre-hook, which may change its input in
place, splits the group); a sibling called with another input (cross-attention, a wrapper that
changed it) computes on its own, and after :data:`MISSES_BEFORE_SPLIT` such calls the group
goes back to separate layers. A slice is handed out once and then dropped, so a long prompt's
outputs are not kept. Gradients, another device or dtype run PyTorch's plain product, and a
weight changed in place (a merged adapter) is stacked and packed again.
"""

from __future__ import annotations

import types
import weakref
from dataclasses import dataclass, field
from typing import Any

from lmwidgets.engines.transformers import cpu_kernels

#: Children of one module that a forward pass calls on the same input, in call order.
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
#: Calls of a member with an input its group did not compute before it goes back to separate
#: layers (a cross-attention's keys read another tensor: fusing only doubles the work there).
MISSES_BEFORE_SPLIT = 2


@dataclass
class _Pending:
    """A group's outputs for one input, waiting for the siblings that have not asked yet."""

    x: Any  # a weak reference to the input
    version: int
    outputs: dict[int, Any]


@dataclass
class FusedGroup:
    """Sibling ``nn.Linear`` layers of one parent whose weights are packed as one matrix."""

    parent: str  # the parent module's name in the model (for messages and tests)
    names: tuple[str, ...]
    members: list[Any]
    bf16: bool = False
    packed: Any = None
    bias: Any = None
    versions: list = field(default_factory=list)
    pending: _Pending | None = None
    misses: int = 0
    split: bool = False
    sizes: list[int] = field(default_factory=list)
    plans: list[tuple[bool, bool]] = field(default_factory=list)  # members' own, before fusing

    @property
    def key(self) -> str:
        """What kernel plans call this kind of group: ``"q_proj+k_proj+v_proj 576x960"``."""
        return f"{'+'.join(self.names)} {self.members[0].in_features}x{sum(self.sizes)}"

    def pack(self, batch_hint: int = 4) -> None:
        import torch

        weights = [m.weight.detach() for m in self.members]
        stacked = torch.cat(weights)
        if self.bf16:
            stacked = stacked.to(torch.bfloat16)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(stacked, batch_hint)
        biases = [m.bias for m in self.members]
        self.bias = None if biases[0] is None else torch.cat([b.detach() for b in biases])
        self.versions = self._weight_versions()

    def _weight_versions(self) -> list:
        versions = []
        for m in self.members:
            params = m._parameters  # not nn.Module's __getattr__: this runs every step
            weight, bias = params["weight"], params["bias"]
            versions += (weight._version, weight.data_ptr(), bias is None or bias._version)
        return versions

    def stacked(self, x: Any) -> Any:
        """The members' outputs for ``x`` side by side in the last dimension (one product)."""
        if self._weight_versions() != self.versions:
            self.pack()  # a weight changed in place: stack and pack again
        return cpu_kernels.packed_product(x, self.packed, self.bias, self.bf16)

    def product(self, x: Any) -> list[Any]:
        """Every member's output for ``x``, laid out as a separate layer's would be: a slice of
        several rows is copied (for one row it already is), since an elementwise function's
        vector loop on a strided slice computes each row's tail apart, which can change the
        last bit of e.g. SiLU where a width is not a multiple of the vector loop."""
        return [part.contiguous() for part in self.stacked(x).split(self.sizes, dim=-1)]

    def take(self, index: int, x: Any) -> Any | None:
        """Member ``index``'s output kept for this very ``x``, else None (handed out once)."""
        pending = self.pending
        if pending is None or pending.x() is not x or pending.version != _version(x):
            return None
        out = pending.outputs.pop(index, None)
        if not pending.outputs and self.pending is pending:
            self.pending = None
        return out

    def keep(self, x: Any, outputs: list[Any], computed_by: int) -> None:
        """Keep the siblings' outputs for ``x``; a group whose last outputs went unasked is
        not being called on one input (see :data:`MISSES_BEFORE_SPLIT`)."""
        if self.pending is not None and self.pending.outputs:
            self.misses += 1
        rest = {i: out for i, out in enumerate(outputs) if i != computed_by}
        pending = _Pending(None, _version(x), rest)
        # Only while ``x`` lives: a sibling that was never called (an error or an interrupt
        # between siblings) does not keep the product once the input is gone, nor count as a
        # sibling reading another input.
        pending.x = weakref.ref(x, lambda _, pending=pending: self._forget(pending))
        self.pending = pending

    def _forget(self, pending: _Pending) -> None:
        if self.pending is pending:
            self.pending = None


def _version(x: Any) -> int:
    """``x``'s in-place change counter; an inference tensor has none (-1: identity decides)."""
    return -1 if x.is_inference() else x._version


def _fused_forward(self, x):
    import torch

    group: FusedGroup = self._lmw_group
    params = self._parameters  # not nn.Module's __getattr__ (~1 us a lookup)
    if group.split or not cpu_kernels.packable(x, params["weight"]):
        return torch.nn.functional.linear(x, params["weight"], params["bias"])
    if self._forward_pre_hooks:  # may change the input in place (steering): no kept slices
        split(group)
        return self.forward(x)
    index = self._lmw_index
    kept = group.take(index, x)
    if kept is not None:
        return kept
    outputs = group.product(x)
    group.keep(x, outputs, index)
    if group.misses >= MISSES_BEFORE_SPLIT:
        split(group)  # not called on one input: separate layers from now on
    return outputs[index]


def split(group: FusedGroup) -> None:
    """Run ``group``'s members as separate packed layers again."""
    import torch

    group.split, group.pending, group.packed = True, None, None
    for module, plan in zip(group.members, group.plans, strict=True):
        unfuse(module)
        if any(plan):  # as the kernel plan had it before the fusion
            only = torch.nn.ModuleList([module])
            shape = {cpu_kernels.shape_key(module): plan}
            cpu_kernels.prepack_linear_layers(only, plan=shape, bf16=group.bf16)


def find_groups(model: Any, bf16: bool = False) -> list[FusedGroup]:
    """Every sibling group of float32 CPU ``nn.Linear`` layers in ``model`` (see
    :data:`SIBLINGS`): same input width, all with bias or none, none fused yet."""
    import torch

    groups = []
    for parent_name, parent in model.named_modules():
        for names in SIBLINGS:
            members = [getattr(parent, name, None) for name in names]
            if not all(type(m) is torch.nn.Linear for m in members):
                continue
            if any(hasattr(m, "_lmw_group") for m in members):
                continue
            widths = {m.in_features for m in members}
            biased = {m.bias is not None for m in members}
            ok = all(
                m.weight.dtype == torch.float32 and m.weight.device.type == "cpu" for m in members
            )
            if len(widths) == 1 and len(biased) == 1 and ok:
                sizes = [m.out_features for m in members]
                groups.append(FusedGroup(parent_name, names, members, bf16, sizes=sizes))
    return groups


def fuse(group: FusedGroup) -> None:
    """Run ``group`` as one packed product (its members' own packed copies are dropped)."""
    group.plans = [
        (getattr(m, "_lmw_single", False), getattr(m, "_lmw_multi", False)) for m in group.members
    ]
    for module in group.members:
        if hasattr(module, "_lmw_packed"):
            cpu_kernels.unpack_layer(module)
    group.pack()
    for index, module in enumerate(group.members):
        module._lmw_group, module._lmw_index = group, index
        module.forward = types.MethodType(_fused_forward, module)


def unfuse(module: Any) -> bool:
    """Give a fused member back its class's forward; True if it was fused."""
    if not hasattr(module, "_lmw_group"):
        return False
    vars(module).pop("forward", None)
    del module._lmw_group, module._lmw_index
    return True


def fused_groups(model: Any) -> list[FusedGroup]:
    """The fused groups of ``model``, each once."""
    seen: dict[int, FusedGroup] = {}
    for module in model.modules():
        group = getattr(module, "_lmw_group", None)
        if group is not None:
            seen.setdefault(id(group), group)
    return list(seen.values())
