"""Reusing the KV cache of a shared prompt prefix across columns, dataset rows and runs.

Few-shot prompts repeat a long prefix (system text and examples) in every column, every dataset
item and every re-run. Its keys and values are computed once per (model, adapter, exact prefix
tokens) and kept, bounded, in the loaded model's :class:`PrefixCache`; a batch whose rows share
a prefix then only computes the rest. A new prompt reuses the longest cached prefix it shares
(the cache is cut to the shared length), so changing the question keeps the examples' cache.

A batch that reuses prefixes is laid out as ``[padding | row's cached prefix]`` (the cache,
as wide as the longest prefix) followed by ``[padding | the row's other tokens]``, padding masked:
positions come from the attention mask, so every row sees exactly the tokens and positions it
would see alone. Rows of one batch may reuse different prefixes (few-shot beside zero-shot).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: Shorter shared prefixes are computed with the rest (reuse would not pay off).
MIN_PREFIX_TOKENS = 32
#: Default memory bound of one model's cache.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


@dataclass
class _Entry:
    tokens: tuple[int, ...]
    layers: list[tuple[Any, Any]]  # per layer: keys, values (batch 1)
    nbytes: int


def shared_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` have in common."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


class PrefixCache:
    """Prefix keys/values of one model, by adapter and exact tokens, least recently used first out."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, tuple[int, ...]], _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0
        #: Prefix tokens taken from the cache instead of computed.
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Memory held by the cached keys and values."""
        return sum(entry.nbytes for entry in self._entries.values())

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def lookup(self, adapter_key: str, tokens: Sequence[int]) -> tuple[int, _Entry | None]:
        """The entry sharing the longest prefix with ``tokens`` and that length."""
        best, best_length = None, 0
        for (key, _), entry in self._entries.items():
            if key != adapter_key:
                continue
            length = shared_length(entry.tokens, tokens)
            if length > best_length:
                best, best_length = entry, length
        if best is not None:
            self._entries.move_to_end((adapter_key, best.tokens))
        return best_length, best

    def store(self, adapter_key: str, tokens: Sequence[int], layers: list[tuple[Any, Any]]) -> None:
        """Keep ``layers`` (batch-1 keys/values of ``tokens``), evicting old entries to fit."""
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if nbytes > self.max_bytes:
            return
        key = (adapter_key, tuple(tokens))
        self._entries[key] = _Entry(tuple(tokens), layers, nbytes)
        self._entries.move_to_end(key)
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            self._entries.popitem(last=False)


def adapter_key(loaded: Any, adapter: str | None) -> str:
    """Identifies the weights a prefix ran through: base, or an adapter's name, files and scale."""
    from lmwidgets.engines.base import adapter_record

    if adapter is None:
        return "base"
    return json.dumps(adapter_record(loaded, adapter), sort_keys=True, default=str)


def _layers_of(cache: Any) -> list[tuple[Any, Any]] | None:
    """Keys/values per layer of a plain (non-sliding) DynamicCache, else None."""
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer).__name__ != "DynamicLayer" for layer in layers):
        return None
    return [(layer.keys, layer.values) for layer in layers]


def _prefix_layers(
    model: Any,
    tokens: list[int],
    device: str,
    cache: PrefixCache,
    key: str,
    run_as: Callable[[], Any],
) -> list[tuple[Any, Any]] | None:
    """Batch-1 keys/values of ``tokens``: from the cache, extended or computed as needed."""
    import torch
    from transformers import DynamicCache

    length, entry = cache.lookup(key, tokens)
    if entry is not None and length == len(tokens):
        cache.hits += 1
        cache.reused_tokens += length
        return [(k[:, :, :length], v[:, :, :length]) for k, v in entry.layers]
    cache.misses += 1
    past = None
    start = 0
    if entry is not None and length >= MIN_PREFIX_TOKENS:
        past = DynamicCache()
        for index, (k, v) in enumerate(entry.layers):
            past.update(k[:, :, :length].clone(), v[:, :, :length].clone(), index)
        start = length
        cache.reused_tokens += length
    ids = torch.tensor([tokens[start:]], dtype=torch.long, device=device)
    positions = torch.arange(start, len(tokens), device=device).unsqueeze(0)
    with torch.inference_mode(), run_as():
        output = model(
            input_ids=ids,
            past_key_values=past if past is not None else DynamicCache(),
            position_ids=positions,
            use_cache=True,
        )
    layers = _layers_of(output.past_key_values)
    if layers is None:
        return None
    cache.store(key, tokens, layers)
    return layers


def _left_padded(like: Any, tensor: Any, width: int) -> Any:
    """One row's keys or values (``None``: none) after zeros, ``width`` positions in all."""
    import torch

    length = 0 if tensor is None else tensor.shape[2]
    shape = (1, like.shape[1], width - length, like.shape[3])
    pad = torch.zeros(shape, dtype=like.dtype, device=like.device)
    return pad if tensor is None else torch.cat([pad, tensor], dim=2)


def row_prefixes(rows: Sequence[Sequence[int]], cache: PrefixCache, keys: Sequence[str]):
    """How many leading tokens of each row to take from a cached prefix (0: none).

    A row reuses the longest prefix it shares with another row of the batch or with a cached
    entry (of its adapter), if that is at least :data:`MIN_PREFIX_TOKENS` long. A batch of one
    row caches its whole prompt but the last token, for later runs.
    """
    lengths = []
    for index, row in enumerate(rows):
        if len(rows) == 1:
            best = len(row) - 1
        else:
            best = max(shared_length(row, other) for j, other in enumerate(rows) if j != index)
            best = min(max(best, cache.lookup(keys[index], row)[0]), len(row) - 1)
        lengths.append(best if best >= MIN_PREFIX_TOKENS else 0)
    return lengths


def batched_prefix(
    model: Any,
    rows: Sequence[Any],
    *,
    device: str,
    cache: PrefixCache,
    keys: Sequence[str],
    run_as: Callable[[str | None], Any],
) -> tuple[list[int], Any] | None:
    """Per-row prefix lengths and a DynamicCache holding each row's prefix (left-padded to the
    longest one), or None when no row has a prefix worth reusing.

    ``keys[i]`` identifies row ``i``'s adapter weights; ``run_as(adapter)`` is a context manager
    that routes a batch-1 forward pass through that adapter.
    """
    import torch
    from transformers import DynamicCache

    ids = [list(row.input_ids) for row in rows]
    lengths = row_prefixes(ids, cache, keys)
    if not any(lengths):
        return None
    computed: dict[tuple[str, tuple[int, ...]], list[tuple[Any, Any]]] = {}
    per_row: list[list[tuple[Any, Any]] | None] = []
    for row, key, length, tokens in zip(rows, keys, lengths, ids, strict=True):
        if not length:
            per_row.append(None)
            continue
        prefix = tuple(tokens[:length])
        if (key, prefix) not in computed:
            layers = _prefix_layers(
                model, list(prefix), device, cache, key, lambda row=row: run_as(row.adapter)
            )
            if layers is None:
                return None
            computed[(key, prefix)] = layers
        per_row.append(computed[(key, prefix)])
    width = max(lengths)
    sample = next(layers for layers in per_row if layers is not None)
    batch = DynamicCache()
    for index, (k0, v0) in enumerate(sample):
        own = [None if layers is None else layers[index] for layers in per_row]
        keys_ = [_left_padded(k0, None if kv is None else kv[0], width) for kv in own]
        values = [_left_padded(v0, None if kv is None else kv[1], width) for kv in own]
        batch.update(torch.cat(keys_, dim=0), torch.cat(values, dim=0), index)
    return lengths, batch
