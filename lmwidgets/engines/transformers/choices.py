"""Scoring given choices with a model in the kernel: two forward passes per batch of prompts.

The prompts of a batch (each with its own choices, adapter and length) run once, left-padded,
through the model (the *prefix pass*); their keys and values are then repeated for each of
their choices, and every choice of every prompt runs in one more pass (the *choice pass*),
right-padded, attending to its prompt's cache. A prompt is computed once however many choices
it has. Positions follow the attention mask, so padding is invisible and a prompt scores the
same in any batch as alone (up to float rounding of the batched matrix products).

Tokenization and numbers follow lm-evaluation-harness (:mod:`lmwidgets.engines.choices`):
``log_softmax`` in float32 of the model's logits, the choice's tokens those of prompt+choice
after the prompt's. Models whose cache cannot be repeated per row (sliding-window layers)
score every (prompt, choice) sequence whole instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lmwidgets.engines.choices import ChoiceRequest, ChoiceScore, ScoringStopped, split_pair
from lmwidgets.errors import PromptTooLongError


@dataclass
class _Pair:
    """One choice of one prompt as tokens: the prompt's (shared by its choices) and its own."""

    request: int
    head: list[int]
    tail: list[int]
    adapter: str | None


def pair_tokens(tokenizer: Any, context: str, choice: str) -> tuple[list[int], list[int]]:
    """(prompt tokens, choice tokens) as lm-eval's ``_encode_pair`` makes them."""
    from lmwidgets.engines.transformers.chat import encode

    head_text, tail_text = split_pair(context, choice)
    whole = encode(tokenizer, head_text + tail_text)
    head = encode(tokenizer, head_text)
    return head, whole[len(head) :]


def _pairs(loaded: Any, requests: Sequence[ChoiceRequest]) -> list[_Pair]:
    pairs = []
    for index, request in enumerate(requests):
        for choice in request.choices:
            head, tail = pair_tokens(loaded.tokenizer, request.prompt.text, choice)
            if not tail:  # a choice that merges into the prompt's last token
                tail, head = head[-1:], head[:-1]
            limit = loaded.context_length
            if limit is not None and len(head) + len(tail) > limit:
                raise PromptTooLongError(
                    f"The prompt and the choice {choice[:40]!r} have {len(head) + len(tail):,} "
                    f"tokens, but {loaded.name} reads at most {limit:,}."
                )
            pairs.append(_Pair(index, head, tail, request.adapter))
    return pairs


def _routing(
    model: Any, loaded: Any, adapters: Sequence[str | None], kwargs: dict[str, Any]
) -> Any:
    """The context routing row ``i`` through ``adapters[i]`` (peft's ``adapter_names`` when
    lmwidgets' batched LoRA does not apply); nothing for a model without adapters."""
    if not loaded.adapters:
        return contextlib.nullcontext()
    from lmwidgets.engines.transformers import lora_batch
    from lmwidgets.engines.transformers.generation import BASE_ADAPTER

    names = sorted({a for a in adapters if a})
    if lora_batch.supported(model, names):
        return lora_batch.routed(model, names, list(adapters))
    kwargs["adapter_names"] = [a or BASE_ADAPTER for a in adapters]
    return contextlib.nullcontext()


@contextlib.contextmanager
def _stoppable(model: Any, stop: Any) -> Iterator[None]:
    """Within it, a forward pass ends with :class:`ScoringStopped` at the next layer once
    ``stop`` is set. Generation checks its stop signal between decoding steps; scoring is two
    passes of a whole batch, so the check runs before each layer (a forward pre-hook on every
    member of the model's layer lists, removed on the way out)."""
    if stop is None:
        yield
        return
    import torch

    def check(module: Any, args: Any) -> None:
        if stop.is_set():
            raise ScoringStopped()

    handles = [
        layer.register_forward_pre_hook(check)
        for layers in model.modules()
        if isinstance(layers, torch.nn.ModuleList)
        for layer in layers
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _scores(logprobs: Any, tokens: Sequence[int]) -> ChoiceScore:
    """A choice's score from the log-probabilities at its positions ([n, vocab], float32)."""
    import torch

    ids = torch.tensor(tokens, dtype=torch.long, device=logprobs.device)
    picked = logprobs.gather(1, ids[:, None]).squeeze(1)
    greedy = bool((logprobs.argmax(dim=-1) == ids).all())
    return ChoiceScore(logprob=float(picked.sum()), n_tokens=len(tokens), greedy=greedy)


def score_requests(
    loaded: Any, requests: Sequence[ChoiceRequest], stop: Any = None
) -> list[list[ChoiceScore]]:
    """Every choice of every request scored (see the module docstring); :class:`ScoringStopped`
    once ``stop`` is set, between two layers of a pass (:func:`_stoppable`)."""
    from lmwidgets.engines.transformers.adapters import generation_model

    if not requests:
        return []
    if stop is not None and stop.is_set():
        raise ScoringStopped()
    model = generation_model(loaded)
    pairs = _pairs(loaded, requests)
    with _stoppable(model, stop):
        flat = _shared_prompt(model, loaded, requests, pairs)
        if flat is None:
            flat = _whole_sequences(model, loaded, pairs)
    out: list[list[ChoiceScore]] = [[] for _ in requests]
    for pair, score in zip(pairs, flat, strict=True):
        out[pair.request].append(score)
    return out


def _prefix_pass(
    model: Any, loaded: Any, heads: list[list[int]], adapters: list[str | None]
) -> tuple[Any, Any, Any]:
    """The prompts, left-padded, through the model: (last logits [B, vocab], cache, mask)."""
    import torch
    from transformers import DynamicCache

    width = max(len(h) for h in heads)
    pad = loaded.tokenizer.pad_token_id or 0
    ids = torch.full((len(heads), width), pad, dtype=torch.long)
    mask = torch.zeros((len(heads), width), dtype=torch.long)
    for row, head in enumerate(heads):
        ids[row, width - len(head) :] = torch.tensor(head, dtype=torch.long)
        mask[row, width - len(head) :] = 1
    ids, mask = ids.to(loaded.device), mask.to(loaded.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    kwargs: dict[str, Any] = {}
    with _routing(model, loaded, adapters, kwargs):
        output = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=DynamicCache(),
            use_cache=True,
            logits_to_keep=1,  # only the last position's: it predicts each choice's first token
            **kwargs,
        )
    return output.logits[:, -1, :].float(), output.past_key_values, mask


def _shared_prompt(
    model: Any, loaded: Any, requests: Sequence[ChoiceRequest], pairs: list[_Pair]
) -> list[ChoiceScore] | None:
    """Scores with each prompt computed once; None when the cache cannot be repeated."""
    import torch

    from lmwidgets.engines.transformers.prefix_cache import _layers_of

    heads: list[list[int]] = [[] for _ in requests]
    for pair in pairs:
        heads[pair.request] = heads[pair.request] or pair.head
    if any(pair.head != heads[pair.request] for pair in pairs):
        return None  # a choice merged into the prompt's last token: scored whole
    with torch.inference_mode():
        last, cache, mask = _prefix_pass(
            model, loaded, heads, [request.adapter for request in requests]
        )
        layers = _layers_of(cache)
        if layers is None:
            return None
        first = torch.log_softmax(last, dim=-1)
        width = max(len(pair.tail) - 1 for pair in pairs)
        rest = _choice_pass(model, loaded, pairs, layers, mask, heads, width) if width else None
        scores = []
        for row, pair in enumerate(pairs):
            steps = [first[pair.request : pair.request + 1]]
            if len(pair.tail) > 1 and rest is not None:
                steps.append(rest[row, : len(pair.tail) - 1])
            scores.append(_scores(torch.cat(steps, dim=0), pair.tail))
    return scores


def _choice_pass(
    model: Any,
    loaded: Any,
    pairs: list[_Pair],
    layers: list[tuple[Any, Any]],
    mask: Any,
    heads: list[list[int]],
    width: int,
) -> Any:
    """Every choice's tokens but its last, right-padded, attending to its prompt's cache
    repeated per choice: log-probabilities [rows, width, vocab] (float32)."""
    import torch
    from transformers import DynamicCache

    device = loaded.device
    index = torch.tensor([pair.request for pair in pairs], dtype=torch.long, device=device)
    cache = DynamicCache()
    for number, (keys, values) in enumerate(layers):
        cache.update(keys.index_select(0, index), values.index_select(0, index), number)
    pad = loaded.tokenizer.pad_token_id or 0
    ids = torch.full((len(pairs), width), pad, dtype=torch.long)
    own = torch.zeros((len(pairs), width), dtype=torch.long)
    positions = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, pair in enumerate(pairs):
        tokens = pair.tail[:-1]
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        own[row, : len(tokens)] = 1
        start = len(heads[pair.request])
        positions[row] = torch.arange(start, start + width)
    attention = torch.cat([mask.index_select(0, index), own.to(device)], dim=1)
    kwargs: dict[str, Any] = {}
    with _routing(model, loaded, [pair.adapter for pair in pairs], kwargs):
        output = model(
            input_ids=ids.to(device),
            attention_mask=attention,
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
            **kwargs,
        )
    return torch.log_softmax(output.logits.float(), dim=-1)


def _whole_sequences(model: Any, loaded: Any, pairs: list[_Pair]) -> list[ChoiceScore]:
    """Scores of whole (prompt + choice) sequences, right-padded, as lm-eval computes them."""
    import torch

    sequences = [(pair.head + pair.tail)[:-1] for pair in pairs]
    width = max(len(s) for s in sequences)
    pad = loaded.tokenizer.pad_token_id or 0
    ids = torch.full((len(pairs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, tokens in enumerate(sequences):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
    kwargs: dict[str, Any] = {}
    with torch.inference_mode(), _routing(model, loaded, [p.adapter for p in pairs], kwargs):
        output = model(
            input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device), **kwargs
        )
        logprobs = torch.log_softmax(output.logits.float(), dim=-1)
        scores = []
        for row, pair in enumerate(pairs):
            start = len(pair.head) - 1
            scores.append(_scores(logprobs[row, start : start + len(pair.tail)], pair.tail))
    return scores
