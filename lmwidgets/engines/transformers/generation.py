"""Batched, streaming, stoppable generation.

All rows of one call run as **one** ``model.generate`` batch (left padding and an attention mask),
so side-by-side variants cost roughly what one costs. A :class:`StopSignal` ends generation within
a token; the text generated so far is kept. Rows may name peft adapters: they are routed per row
with peft's ``adapter_names`` (``__base__`` for the base model).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lmwidgets.checks import is_out_of_memory
from lmwidgets.engines.base import (
    BatchOutcome,
    GenerationSettings,
    RowOutput,
    StopSignal,
    close_outputs,
    row_seeds,
)
from lmwidgets.engines.transformers.logprobs import ForcedStart, TokenRecorder, complete_texts
from lmwidgets.engines.transformers.quiet import quiet_libraries

BASE_ADAPTER = "__base__"


@dataclass
class Row:
    """One sequence of a batch: prompt token ids, adapter (None: base) and its own sampling.

    ``temperature``/``top_p`` override the batch settings for this row, so greedy and sampled
    rows (a zero-shot column beside self-consistency samples) still share one batch; ``seed``
    is the row's own sampling seed (see :class:`~lmwidgets.engines.base.PromptRow`).
    """

    input_ids: list[int]
    adapter: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    extra: dict[str, Any] | None = None  # processor inputs of this row (pixel values, ...)
    #: Tokens the answer must begin with (a fork): decoded as if generated, then generation goes on.
    forced: tuple[int, ...] = ()
    #: An llguidance matcher this row's tokens must follow (None: free); see :mod:`.constrained`.
    matcher: Any = None
    seed: int | None = None


class _RowStreamer:
    """A transformers streamer that splits each step's tokens into per-row outputs."""

    def __init__(
        self, n_rows: int, eos_ids: set[int], started: float, on_step, recorder: Any = None
    ) -> None:
        self.outputs = [RowOutput() for _ in range(n_rows)]
        self._eos = eos_ids
        self._started = started
        self._on_step = on_step
        self._saw_prompt = False
        self._recorder = recorder  # a TokenRecorder when log-probabilities were asked for

    def put(self, value) -> None:
        if not self._saw_prompt:  # generate() first hands over the prompt
            self._saw_prompt = True
            return
        now = time.perf_counter() - self._started
        tokens = value.reshape(-1).tolist()
        step = self._recorder.take_step() if self._recorder is not None else None
        for index, (output, token) in enumerate(zip(self.outputs, tokens, strict=False)):
            if output.finished:
                continue
            if output.first_token_seconds is None:
                output.first_token_seconds = now
            output.seconds = now
            if token in self._eos:
                output.finish_reason = "eos"
            else:
                output.token_ids.append(token)
                if step is not None:
                    self._recorder.record(index, output, step)
        self._on_step(self.outputs)

    def end(self) -> None:
        pass


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token id that ends a sequence for this model."""
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def _generation_config(model: Any, max_new_tokens: int, pad_id: int, eos: set[int]):
    """The batch's generation config: greedy decoding (sampled rows choose their token in a
    :class:`_RowSampler` before transformers takes the arg-max)."""
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad_id,
        eos_token_id=sorted(eos) or None,
        bos_token_id=getattr(model.generation_config, "bos_token_id", None),
        use_cache=True,
    )


class _NoEnding:
    """A logits processor that masks the end-of-sequence tokens at every step (``ignore_eos``,
    for benchmarks): transformers' ``min_new_tokens`` does the same with a vocabulary-wide
    ``isin``, ``arange`` and ``where`` each step, about 1 ms of a CPU step that a benchmark would
    count as decoding."""

    def __init__(self, eos: set[int]) -> None:
        self.ids = sorted(eos)
        self._tensor: Any = None  # the ids on the scores' device, built at the first step

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if not self.ids:
            return scores
        if self._tensor is None or self._tensor.device != scores.device:
            self._tensor = torch.tensor(self.ids, device=scores.device)
        return scores.index_fill(1, self._tensor, float("-inf"))


class _RowSampler:
    """A logits processor that samples every sampled row with a generator of its own.

    Each sampled row's scores are divided by its temperature, filtered to its top-p nucleus and
    sampled with a ``torch.Generator`` seeded with the row's seed; the row then keeps only the
    chosen token, so transformers' greedy decoding takes it. Greedy rows are left untouched.
    What a row draws depends only on its own scores and seed, never on its batch neighbours, so
    a sampled row gives the same tokens in any batch as alone with the same seed. Sampling is
    torch's ``multinomial`` for one sample (the arg-max of ``p / q`` with ``q ~ Exp(1)``), done
    here so that every row consumes its own generator. Forced tokens (forks) are applied after
    it and win; the log-probability recorder reads the model's logits before any processor.
    """

    def __init__(self, temperatures: list[float], top_ps: list[float], seeds: list[Any]) -> None:
        self.rows = [i for i, t in enumerate(temperatures) if t > 0]
        self.temperatures = [float(temperatures[i]) for i in self.rows]
        self.top_ps = [float(top_ps[i]) for i in self.rows]
        self.seeds = [int(seeds[i]) for i in self.rows]
        # Made on the scores' device at the first step:
        self._generators: list[Any] | None = None
        self._rows: Any = None
        self._temperatures: Any = None

    def __call__(self, input_ids, scores):
        import torch

        if self._generators is None:
            device = scores.device
            self._generators = [torch.Generator(device=device).manual_seed(s) for s in self.seeds]
            self._rows = torch.tensor(self.rows, device=device)
            self._temperatures = torch.tensor(self.temperatures, device=device).unsqueeze(1)
        rows = self._rows
        scaled = scores[rows].float() / self._temperatures
        if any(p < 1 for p in self.top_ps):
            scaled = _nucleus(scaled, self.top_ps)
        probs = scaled.softmax(dim=-1)
        noise = torch.empty_like(probs)
        for index, generator in enumerate(self._generators):
            noise[index].exponential_(generator=generator)
        chosen = (probs / noise.clamp_min_(torch.finfo(noise.dtype).tiny)).argmax(dim=-1)
        scores = scores.clone()
        scores[rows] = float("-inf")
        scores[rows, chosen] = 0.0
        return scores


def _nucleus(scaled: Any, top_ps: list[float]) -> Any:
    """``scaled`` with every token outside each row's top-p nucleus masked (the most likely
    token always stays)."""
    import torch

    top_p = torch.tensor(top_ps, device=scaled.device).unsqueeze(1)
    ordered, order = scaled.sort(dim=-1, descending=True)
    probs = ordered.softmax(dim=-1)
    drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p  # keep the first token
    drop = drop_sorted.scatter(1, order, drop_sorted)
    return scaled.masked_fill(drop, float("-inf"))


class _Stopper:
    """A stopping criterion that ends every row once the signal is set."""

    def __init__(self, signal: StopSignal) -> None:
        self.signal = signal

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full(
            (input_ids.shape[0],), self.signal.is_set(), dtype=torch.bool, device=input_ids.device
        )


def release_memory(device: str) -> None:
    """Free cached allocator memory after an error."""
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


#: Static caches are sized in multiples of this many tokens (one compiled graph per bucket).
CACHE_BUCKET = 256


def cache_bucket(length: int) -> int:
    """``length`` rounded up to a multiple of :data:`CACHE_BUCKET`."""
    return -(-length // CACHE_BUCKET) * CACHE_BUCKET


def _route_one(model: Any, adapter: str | None, routed: bool):
    """A context that runs a batch-1 forward pass through ``adapter`` (None: the base model)."""
    if not routed:
        return contextlib.nullcontext()
    from lmwidgets.engines.transformers import lora_batch

    return lora_batch.routed(model, [adapter] if adapter else [], [adapter])


def generate_batch(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Row],
    settings: GenerationSettings,
    *,
    device: str = "cpu",
    stop: StopSignal | None = None,
    on_step: Callable[[list[RowOutput]], None] | None = None,
    ignore_eos: bool = False,
    route_adapters: bool = False,
    prefix_cache: Any = None,
    adapter_keys: Sequence[str] | None = None,
    static_cache: bool = False,
) -> BatchOutcome:
    """Generate for every row in one batched ``generate`` call, streaming through ``on_step``.

    ``ignore_eos`` makes every row produce exactly ``max_new_tokens`` (for benchmarks): the
    end-of-sequence tokens are masked out, as transformers' ``min_new_tokens`` does.
    ``route_adapters`` (always on once a model has adapters) names every row's adapter, so a
    base row never runs with whichever adapter peft considers active.

    ``prefix_cache`` (a :class:`~lmwidgets.engines.transformers.prefix_cache.PrefixCache`) reuses
    the keys/values of the prefix all rows share; ``adapter_keys[i]`` identifies row ``i``'s
    adapter weights. ``static_cache`` (``%lm load --compile``) decodes with a fixed-size cache
    whose length is rounded up to a bucket, so that transformers compiles the decoding step once
    per bucket.

    ``settings.logprobs`` (K > 0) records every generated token's log-probability and its K
    most likely alternatives in ``RowOutput.logprobs`` (see :mod:`.logprobs`: the model's raw
    distribution, before temperature and top-p). A row's ``forced`` tokens start its answer: they
    are decoded one step each as if generated (they are in ``token_ids``, with log-probabilities),
    then generation goes on from them; they count towards ``max_new_tokens``.

    Sampled rows draw with generators of their own, seeded with each row's seed (its ``seed``,
    else one derived from ``settings.seed``, drawn when there is none), so a sampled row gives
    the same tokens in any batch as alone; the outcome reports every row's seed.

    ``on_step(outputs)`` runs after every decoding step (keep it cheap; throttle inside it).
    Errors during generation (out of memory, an interrupt) do not raise here: the outcome holds
    the partial outputs and the error, and the caller decides how to report it.
    """
    if not rows:
        return BatchOutcome(outputs=[], seconds=0.0, seed=settings.seed)
    stop = stop or StopSignal()
    eos = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos, default=0)
    started = time.perf_counter()  # the time to first token includes computing a prefix
    routing = _Routing(model, rows, route_adapters)
    kwargs: dict[str, Any] = {}
    reuse = prefix_cache if routing.ok and not static_cache else None
    keys = list(adapter_keys or ["base"] * len(rows))
    input_ids, attention, width = _batch_inputs(
        model, rows, settings, routing, pad_id, device, reuse, keys, static_cache, kwargs
    )
    decoding = _Decoding(model, tokenizer, rows, settings, (pad_id, eos, width, ignore_eos), kwargs)
    recorder = decoding.recorder
    streamer = _RowStreamer(len(rows), eos, started, on_step or (lambda outputs: None), recorder)
    error = _run_generate(
        model,
        routing.context(kwargs),
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        generation_config=decoding.config,
        streamer=streamer,
        stop=stop,
        device=device,
        recorder=recorder,
        **_processor_inputs(model, rows, width, device),
        **kwargs,
    )
    elapsed = time.perf_counter() - started
    if recorder is not None:
        complete_texts(tokenizer, streamer.outputs)
    close_outputs(streamer.outputs, error, stop.is_set(), elapsed)
    outputs = streamer.outputs
    return BatchOutcome(outputs, elapsed, decoding.seed, error, row_seeds=decoding.seeds)


def _batch_inputs(
    model: Any,
    rows: Sequence[Row],
    settings: GenerationSettings,
    routing: _Routing,
    pad_id: int,
    device: str,
    prefix_cache: Any,
    adapter_keys: list[str],
    static_cache: bool,
    kwargs: dict[str, Any],
):
    """(input ids, attention mask, width) of the batch; the cache it starts from (a cached
    shared prefix, or a static cache sized to a bucket) goes into ``kwargs``."""
    prefix = None
    if prefix_cache is not None and not any(r.extra for r in rows):
        from lmwidgets.engines.transformers.prefix_cache import batched_prefix

        prefix = batched_prefix(
            model, rows, device=device, cache=prefix_cache, keys=adapter_keys, run_as=routing.one
        )
    if prefix is not None:
        kwargs["past_key_values"] = prefix[1]
    input_ids, attention, width = _layout(rows, prefix[0] if prefix else [0] * len(rows), pad_id)
    if static_cache and prefix is None:
        from transformers import StaticCache

        length = cache_bucket(width + settings.max_new_tokens)
        kwargs["past_key_values"] = StaticCache(config=model.config, max_cache_len=length)
    elif not static_cache and len(rows) > 1:  # a batch of one gains nothing (see kv_cache)
        from lmwidgets.engines.transformers.kv_cache import growing_cache

        cache = growing_cache(kwargs.get("past_key_values"), model.config, settings.max_new_tokens)
        if cache is not None:
            kwargs["past_key_values"] = cache
    return input_ids, attention, width


class _Decoding:
    """How a batch decodes: its generation config, its rows' seeds and sampling, forced starts
    (forks) and the log-probability recorder (logits processors go into ``kwargs``).
    ``layout`` is (pad id, end-of-sequence ids, prompt width, ignore end-of-sequence)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        rows: Sequence[Row],
        settings: GenerationSettings,
        layout: tuple[int, set[int], int, bool],
        kwargs: dict[str, Any],
    ) -> None:
        pad_id, eos, width, ignore_eos = layout
        self.config, self.seed, self.seeds = _sampling(model, rows, settings, pad_id, eos, kwargs)
        if ignore_eos:
            _add_processor(kwargs, _NoEnding(eos), first=True)
        if any(row.forced for row in rows):
            _add_processor(kwargs, ForcedStart([row.forced for row in rows], width))
        constrained = None
        if any(row.matcher is not None for row in rows):
            from lmwidgets.engines.transformers.constrained import ConstrainedRows

            constrained = ConstrainedRows([row.matcher for row in rows], width, eos)
            _add_processor(kwargs, constrained, first=True)
        self.recorder: TokenRecorder | None = None
        if settings.logprobs:
            self.recorder = TokenRecorder(tokenizer, settings.logprobs, len(rows))
            self.recorder.constrained = constrained  # marks the tokens the mask forced
            # The forward hook cannot run inside a compiled decoding step: decode eagerly.
            self.config.disable_compile = True


class _Routing:
    """How a batch's rows reach their adapters: lmwidgets' batched LoRA routing where it
    applies, peft's ``adapter_names`` otherwise, nothing for a model without adapters."""

    def __init__(self, model: Any, rows: Sequence[Row], route_adapters: bool) -> None:
        self.model = model
        self.rows = rows
        self.names = sorted({row.adapter for row in rows if row.adapter})
        self.active = route_adapters or bool(self.names)
        self.ok = True
        if self.active:
            from lmwidgets.engines.transformers import lora_batch

            self.ok = lora_batch.supported(model, self.names)

    def one(self, adapter: str | None):
        """A context that runs a batch-1 forward pass through ``adapter`` (None: the base)."""
        return _route_one(self.model, adapter, self.active)

    def context(self, kwargs: dict[str, Any]):
        """The context the whole batch runs in (or ``adapter_names`` added to ``kwargs``)."""
        if not self.active:
            return contextlib.nullcontext()
        from lmwidgets.engines.transformers import lora_batch

        if self.ok:
            return lora_batch.routed(self.model, self.names, [row.adapter for row in self.rows])
        kwargs["adapter_names"] = [row.adapter or BASE_ADAPTER for row in self.rows]
        return contextlib.nullcontext()


def _layout(rows: Sequence[Row], cached: Sequence[int], pad_id: int):
    """(input ids, attention mask, width): ``[padding | cached prefix][padding | the rest]``.

    Positions follow the mask, so padding is invisible (without cached prefixes this is plain
    left padding).
    """
    import torch

    head = max(cached)
    width = head + max(len(row.input_ids) - c for row, c in zip(rows, cached, strict=True))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, (row, own) in enumerate(zip(rows, cached, strict=True)):
        tokens = torch.tensor(row.input_ids, dtype=torch.long)
        input_ids[index, head - own : head] = tokens[:own]
        attention[index, head - own : head] = 1
        rest = len(row.input_ids) - own
        input_ids[index, width - rest :] = tokens[own:]
        attention[index, width - rest :] = 1
    return input_ids, attention, width


def _processor_inputs(model: Any, rows: Sequence[Row], width: int, device: str) -> dict[str, Any]:
    """The batch's processor inputs (pixel values...), in the model's dtype, on ``device``."""
    if not any(row.extra for row in rows):
        return {}
    from lmwidgets.engines.transformers.multimodal import merge_row_inputs

    merged = merge_row_inputs(
        [row.extra for row in rows], [len(row.input_ids) for row in rows], width
    )
    dtype = getattr(model, "dtype", None)
    inputs: dict[str, Any] = {}
    for key, value in merged.items():
        if value.is_floating_point() and dtype is not None:
            value = value.to(dtype)
        inputs[key] = value.to(device)
    return inputs


def _sampling(
    model: Any,
    rows: Sequence[Row],
    settings: GenerationSettings,
    pad_id: int,
    eos: set[int],
    kwargs: dict[str, Any],
) -> tuple[Any, int | None, list[int | None]]:
    """(generation config, batch seed, row seeds): the batch decodes greedily, and sampled rows
    choose their tokens in a :class:`_RowSampler` (added to ``kwargs``) with their own seeds
    (:func:`~lmwidgets.engines.base.row_seeds`: a row's own, else one derived from the batch's,
    drawn when sampling without one and reported, so the run can be repeated)."""
    temperatures = [settings.temperature if r.temperature is None else r.temperature for r in rows]
    top_ps = [settings.top_p if r.top_p is None else r.top_p for r in rows]
    seed, seeds = row_seeds(temperatures, [r.seed for r in rows], settings.seed)
    config = _generation_config(model, settings.max_new_tokens, pad_id, eos)
    if any(t > 0 for t in temperatures):
        _add_processor(kwargs, _RowSampler(temperatures, top_ps, seeds))
    return config, seed, seeds


def _add_processor(kwargs: dict[str, Any], processor: Any, first: bool = False) -> None:
    """Append ``processor`` to the batch's logits processors (after per-row sampling, so that
    a forced token wins whatever the row's temperature); ``first`` puts it before them (a
    constraint's mask, so that sampling and greedy picks only see allowed tokens)."""
    from transformers import LogitsProcessorList

    processors = kwargs.setdefault("logits_processor", LogitsProcessorList())
    if first:
        processors.insert(0, processor)
    else:
        processors.append(processor)


def _run_generate(
    model: Any,
    routing: Any,
    *,
    stop: StopSignal,
    device: str,
    recorder: TokenRecorder | None = None,
    **kwargs: Any,
):
    """Run ``model.generate``; an interrupt or out-of-memory error is returned, not raised.
    Library notices (generation-config notes, deprecations) are not shown while it runs.
    ``recorder`` watches the model's forward passes only while this batch generates."""
    import torch
    from transformers import StoppingCriteriaList

    criteria = [_Stopper(stop)]
    hook = None
    if recorder is not None:
        criteria.append(recorder.criterion)
        hook = recorder.attach(model)
    try:
        with torch.inference_mode(), routing, quiet_libraries():
            model.generate(stopping_criteria=StoppingCriteriaList(criteria), **kwargs)
    except (KeyboardInterrupt, RuntimeError, MemoryError) as exc:
        if not (isinstance(exc, KeyboardInterrupt) or is_out_of_memory(exc)):
            raise
        release_memory(device)
        return exc
    finally:
        if hook is not None:
            hook.remove()
    return None
