"""A decoding step's Llama-family decoder layers without transformers' per-layer machinery.

At batch 1 on a CPU, the default 135M model's linear layers take about 33 ms of a 47 ms step;
most of the rest is Python and small tensor operations around them: module calls, keyword
plumbing, rotary embeddings applied to queries and keys separately, each projection's output
reshaped and transposed. For one new token per row (a decoding step), :func:`lean_layer_forward`
does the same arithmetic, operation for operation (so the numbers are equal, bit for bit), with
about half the operations: the fused q/k/v product (:mod:`.fused_linear`) gives queries and
keys in one tensor, which are rotated together; the attention is transformers' own function for
the model's attention implementation; the cache is the model's cache.

It runs only where that is certain to be the same computation: a layer class listed in
:data:`LAYER_CLASSES`, in inference, on the CPU in float32, one new token per row, with the
attention's q/k/v fused (the MLP's gate/up fused, or plain layers where fusing them measured
slower), no hook, adapter or wrapper on any module inside the layer, and each RMSNorm
transformers' own with its own forward (a hook on the layer itself still runs). Anything else
(the prompt's pass, training, an attached LoRA adapter, a forward hook) runs transformers'
own forward.

Where :mod:`.kernel_choice` measured them faster, the step's small operations run as compiled
loops instead (:func:`_compiled_step`, :mod:`.lean_ops`): the same formulas in five calls a
layer, whose sums round in another order (greedy tokens equal, the last bits of scores not). They
run a batch of one (the case timed); a batch keeps the ATen step above.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def _no_more(attn: Any) -> dict[str, Any]:
    return {}


def _own_window(attn: Any) -> dict[str, Any]:
    return {"sliding_window": attn.sliding_window}


def _config_window(attn: Any) -> dict[str, Any]:
    return {"sliding_window": getattr(attn.config, "sliding_window", None)}


#: Decoder layer classes whose forward :func:`lean_layer_forward` reproduces exactly (their
#: attention, MLP and RMSNorm are the Llama ones; tests compare each with transformers bit for
#: bit), with what else their attention passes to the attention function.
LAYER_CLASSES = {
    "LlamaDecoderLayer": _no_more,
    "Qwen2DecoderLayer": _own_window,
    "MistralDecoderLayer": _config_window,
    "Qwen3DecoderLayer": _own_window,
}


class _Parts:
    """What a layer's lean step uses, looked up once at install, and what tells that it is all
    still in place. (``nn.Module`` finds a submodule through ``__getattr__``, about a
    microsecond a lookup: looking them up each step cost ~20 us a layer, 2% of a step.)"""

    def __init__(self, layer: Any) -> None:
        import torch

        attn, mlp = layer.self_attn, layer.mlp
        self.attn = attn
        self.q_proj, self.o_proj = attn.q_proj, attn.o_proj
        self.gate_proj, self.up_proj, self.down_proj = mlp.gate_proj, mlp.up_proj, mlp.down_proj
        self.input_norm, self.post_norm = layer.input_layernorm, layer.post_attention_layernorm
        q_norm, k_norm = attn._modules.get("q_norm"), attn._modules.get("k_norm")
        self.head_norms = (q_norm, k_norm) if q_norm is not None and k_norm is not None else None
        self.norms = [self.input_norm, self.post_norm, *(self.head_norms or ())]
        self.act_fn = mlp.act_fn
        self.inner = [m for m in layer.modules() if m is not layer]
        # modules whose own forward the lean step replaces (the projections' instance forwards
        # are lmwidgets' packed and fused products; the norms are checked by _own_norm)
        activation = [mlp.act_fn] if isinstance(mlp.act_fn, torch.nn.Module) else []
        self.wrappers = [attn, mlp, *activation]
        # (mapping, key, value): every submodule where its parent holds it (peft replaces the
        # layers an adapter targets), and a function activation where the MLP holds it
        self.slots = [
            (parent._modules, name, child)
            for parent in [layer, *self.inner]
            for name, child in parent._modules.items()
        ]
        if "act_fn" in vars(mlp):
            self.slots.append((vars(mlp), "act_fn", mlp.act_fn))
        self.extra = LAYER_CLASSES[type(layer).__name__]
        self.ops: Any = None  # the compiled small operations (lean_ops.library()), if used
        self.silu = type(self.act_fn).__name__ in ("SiLUActivation", "SiLU")
        kv_heads = getattr(attn.config, "num_key_value_heads", None) or 1
        self.grouped = attn.config.num_attention_heads % kv_heads == 0

    def compilable(self) -> bool:
        """What :func:`_compiled_step` computes is this layer's: SiLU, no per-head norms,
        grouped heads, transformers' own attention function (the plain softmax one)."""
        implementation = self.attn.config._attn_implementation
        plain = implementation in ("sdpa", "eager")
        return plain and self.silu and self.grouped and self.head_norms is None

    def in_place(self) -> bool:
        """Nothing replaced, no hook anywhere inside (nor a global module hook, which would
        run for each inner module transformers calls), plain projections, transformers' own
        norms."""
        import torch
        from torch.nn.modules import module as torch_module

        if any(held.get(name) is not value for held, name, value in self.slots):
            return False
        if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
            return False
        if any(m._forward_hooks or m._forward_pre_hooks for m in self.inner):
            return False
        if any("forward" in vars(m) for m in self.wrappers):
            return False  # a forward patched onto the attention, the MLP or the activation
        linear = torch.nn.Linear
        if type(self.o_proj) is not linear or type(self.down_proj) is not linear:
            return False
        return all(map(_own_norm, self.norms))


#: The RMSNorm classes whose arithmetic :func:`_rms_norm` repeats.
NORM_CLASSES = frozenset({"LlamaRMSNorm", "Qwen2RMSNorm", "MistralRMSNorm", "Qwen3RMSNorm"})


def _own_norm(norm: Any) -> bool:
    """transformers' own RMSNorm with its class's forward: a hub kernel swapped in by the
    ``kernels`` package (``kernelize``) or any wrapper replaces the instance's forward, and
    then that module must run, not the formula."""
    cls = type(norm)
    return (
        cls.__name__ in NORM_CLASSES
        and cls.__module__.startswith("transformers.models.")
        and "forward" not in vars(norm)
    )


def _group(module: Any) -> Any | None:
    """The fused group of a plain, fused projection (None otherwise)."""
    import torch

    group = vars(module).get("_lmw_group")
    if type(module) is not torch.nn.Linear or group is None or group.split:
        return None
    return group if "forward" in vars(module) else None  # a baseline took the fusion off


def _lean_ready(
    parts: _Parts, layer: Any, hidden_states: Any, past_key_values: Any, kwargs
) -> tuple:
    """(q/k/v group, gate/up group) when the lean step applies, else (None, None)."""
    import torch

    if (
        kwargs
        or past_key_values is None
        or hidden_states.dim() != 3
        or hidden_states.shape[1] != 1
        or hidden_states.dtype != torch.float32
        or not hidden_states.is_cpu
        or torch.is_grad_enabled()
        or layer.training
    ):
        return None, None
    qkv, gate_up = _group(parts.q_proj), _group(parts.gate_proj)
    if qkv is None or len(qkv.sizes) != 3 or not parts.in_place():
        return None, None
    if gate_up is None and not _plain(parts.gate_proj, parts.up_proj):
        return None, None  # gate/up not fused (measured slower here) and not plain layers
    return qkv, gate_up


def _plain(*modules: Any) -> bool:
    import torch

    return all(type(m) is torch.nn.Linear and "_lmw_group" not in vars(m) for m in modules)


def _rms_norm(norm: Any, x: Any) -> Any:
    """LlamaRMSNorm's arithmetic for float32 input (its casts are no-ops there)."""
    import torch

    variance = x.pow(2).mean(-1, keepdim=True)
    return norm.weight * (x * torch.rsqrt(variance + norm.variance_epsilon))


def _attention(parts: _Parts, qkv: Any, x: Any, attention_mask, past_key_values, cos_sin) -> Any:
    """The attention block of one decoding step: its output before the residual."""
    import torch

    attn = parts.attn
    rows, head = x.shape[0], attn.head_dim
    stacked = qkv.stacked(x.view(rows, -1))
    n_q, n_k = qkv.sizes[0] // head, qkv.sizes[1] // head
    rotated = stacked[:, : (n_q + n_k) * head].view(rows, n_q + n_k, 1, head)
    if parts.head_norms is not None:  # Qwen3: each head normed before rotation
        q_norm, k_norm = parts.head_norms
        query = _rms_norm(q_norm, rotated[:, :n_q])
        rotated = torch.cat((query, _rms_norm(k_norm, rotated[:, n_q:])), dim=1)
    half = head // 2
    cos, signed_sin = _rotary_factors(cos_sin, half)
    turned = torch.cat((rotated[..., half:], rotated[..., :half]), dim=-1)
    rotated = (rotated * cos) + (turned * signed_sin)  # transformers' rotate_half, signs moved
    query, key = rotated[:, :n_q], rotated[:, n_q:]
    value = stacked[:, (n_q + n_k) * head :].view(rows, n_k, 1, head)
    key, value = past_key_values.update(key, value, attn.layer_idx)
    attend = _attention_function(attn)
    out, _ = attend(
        attn,
        query,
        key,
        value,
        attention_mask,
        dropout=0.0,
        scaling=attn.scaling,
        **parts.extra(attn),
    )
    flat = out.reshape(rows, -1).contiguous()  # 2-D: a packed product takes it as it is
    return parts.o_proj.forward(flat).view(rows, 1, -1)  # no hooks: checked


#: The last step's rotary factors: (its cos tensor, (cos, signed sin)). Every layer of a step
#: gets the same position embeddings, so they are prepared once per step.
_STEP_FACTORS: list[Any] = [None, None]


def _rotary_factors(cos_sin: tuple[Any, Any], half: int) -> tuple[Any, Any]:
    """(cos, sin with its first half negated), broadcast over heads.

    transformers multiplies ``cat(-x2, x1)`` by ``sin``; multiplying ``cat(x2, x1)`` by
    ``cat(-sin1, sin2)`` gives the same numbers (a product's rounding ignores signs) with one
    operation less per layer."""
    import torch

    cos, sin = cos_sin
    seen, factors = _STEP_FACTORS
    if seen is cos and factors is not None:
        return factors
    factors = (cos.unsqueeze(1), torch.cat((-sin[..., :half], sin[..., half:]), -1).unsqueeze(1))
    _STEP_FACTORS[:] = [cos, factors]
    return factors


def _attention_function(attn: Any):
    """What the attention module itself would call (transformers' registry by implementation),
    looked up once per implementation."""
    implementation = attn.config._attn_implementation
    known = getattr(attn, "_lmw_attention", None)
    if known is not None and known[0] == implementation:
        return known[1]
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    eager = sys.modules[type(attn).__module__].eager_attention_forward
    function = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager)
    attn._lmw_attention = (implementation, function)
    return function


def _mlp(parts: _Parts, gate_up: Any, x: Any) -> Any:
    """The MLP block: gate and up from one fused product, or (``gate_up`` None: fusing them
    measured slower on this CPU) from their own layers, as transformers calls them."""
    act_fn = parts.act_fn
    activation = getattr(act_fn, "forward", act_fn)  # a module (hooks checked) or not
    if gate_up is None:
        gate = parts.gate_proj.forward(x)
        return parts.down_proj.forward(activation(gate) * parts.up_proj.forward(x))
    rows = x.shape[0]
    both = gate_up.stacked(x.view(rows, -1))
    width = gate_up.sizes[0]
    # contiguous, as the fused gate_proj hands it out: an activation's vector loop then
    # splits the rows as it would a separate layer's output (the same last bits)
    gate = both[:, :width].contiguous()
    return parts.down_proj.forward(activation(gate) * both[:, width:]).view(rows, 1, -1)


def lean_layer_forward(
    self,
    hidden_states,
    attention_mask=None,
    position_ids=None,
    past_key_values=None,
    use_cache=False,
    position_embeddings=None,
    **kwargs,
):
    """A Llama-family decoder layer's forward: the lean step where it applies, else the
    class's."""
    parts = self._lmw_parts
    qkv, gate_up = _lean_ready(parts, self, hidden_states, past_key_values, kwargs)
    if qkv is not None and position_embeddings is not None and parts.ops is not None:
        out = _compiled_step(
            parts, qkv, gate_up, hidden_states, attention_mask, past_key_values, position_embeddings
        )
        if out is not None:
            return out
    if qkv is None or position_embeddings is None:
        return type(self).forward(
            self,
            hidden_states,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
    normed = _rms_norm(parts.input_norm, hidden_states)
    x = hidden_states + _attention(
        parts, qkv, normed, attention_mask, past_key_values, position_embeddings
    )
    return x + _mlp(parts, gate_up, _rms_norm(parts.post_norm, x))


def _compiled_step(parts: _Parts, qkv, gate_up, hidden_states, mask, past_key_values, cos_sin):
    """The lean step with its small operations compiled (:mod:`.lean_ops`), where they apply:
    a batch of one (what the load-time timing measured; a batch runs its attention on every
    core in ATen) attending to the whole cache (no mask, no sliding window in reach) with
    transformers' own attention (sdpa or eager), no per-head norms, SiLU. Else None."""
    import torch

    attn = parts.attn
    if hidden_states.shape[0] != 1 or mask is not None or not parts.compilable():
        return None
    window = parts.extra(attn).get("sliding_window")
    if window is not None and past_key_values.get_seq_length(attn.layer_idx) + 1 > window:
        return None
    from lmwidgets.engines.transformers import lean_ops

    ops = parts.ops
    rows, _, width = hidden_states.shape
    h = hidden_states.contiguous()
    norm = parts.input_norm
    normed = lean_ops.rms_norm(ops, h, norm.weight, norm.variance_epsilon)
    stacked = qkv.stacked(normed.view(rows, width))
    head = attn.head_dim
    n_q, n_k = qkv.sizes[0] // head, qkv.sizes[1] // head
    cos, signed_sin = _rotary_factors(cos_sin, head // 2)
    lean_ops.rotate_(ops, stacked, n_q + n_k, head, cos, signed_sin)
    key = stacked[:, n_q * head : (n_q + n_k) * head].view(rows, n_k, 1, head)
    value = stacked[:, (n_q + n_k) * head :].view(rows, n_k, 1, head)
    key, value = past_key_values.update(key, value, attn.layer_idx)
    out = lean_ops.attend(ops, stacked, key, value, n_q, attn.scaling)
    attended = parts.o_proj.forward(out)
    post = parts.post_norm
    x, normed = lean_ops.add_rms_norm(ops, h, attended, post.weight, post.variance_epsilon)
    if gate_up is None:
        flat = normed.view(rows, width)
        gate, up = parts.gate_proj.forward(flat), parts.up_proj.forward(flat)
    else:
        both = gate_up.stacked(normed.view(rows, width))
        gate, up = both[:, : gate_up.sizes[0]], both[:, gate_up.sizes[0] :]
    down = parts.down_proj.forward(lean_ops.silu_mul(ops, gate, up))
    return torch.add(x, down.view(rows, 1, width))


def _supported(module: Any) -> bool:
    """One of transformers' own classes in :data:`LAYER_CLASSES` (remote code often ships a
    class of the same name with another forward, even another signature)."""
    cls = type(module)
    return cls.__name__ in LAYER_CLASSES and cls.__module__.startswith("transformers.models.")


def install(model: Any) -> int:
    """Give every supported decoder layer of ``model`` the lean step; returns how many."""
    count = 0
    for module in model.modules():
        if _supported(module) and "forward" not in vars(module):
            module.forward = types.MethodType(lean_layer_forward, module)
            module._lmw_parts = _Parts(module)  # marks it too
            count += 1
    return count


def use_ops(model: Any, ops: Any) -> int:
    """Run the small operations of ``model``'s lean layers compiled (``ops``,
    :func:`.lean_ops.library`) or, ``ops`` None, as ATen's; returns how many layers."""
    parts = [vars(m).get("_lmw_parts") for m in model.modules()]
    for part in parts:
        if part is not None:
            part.ops = ops
    return sum(1 for part in parts if part is not None)


def compiled_layers(model: Any) -> int:
    """How many layers of ``model`` have the lean step with compiled small operations."""
    parts = [vars(m).get("_lmw_parts") for m in model.modules()]
    return sum(1 for p in parts if p is not None and p.ops is not None)


def remove(model: Any) -> int:
    """Take the lean step off every layer of ``model``; returns how many had it."""
    count = 0
    for module in model.modules():
        if "_lmw_parts" in vars(module):
            vars(module).pop("forward", None)
            del module._lmw_parts
            count += 1
    return count


def lean_layers(model: Any) -> int:
    """How many layers of ``model`` have the lean step."""
    return sum(1 for module in model.modules() if "_lmw_parts" in vars(module))
