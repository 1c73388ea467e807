"""Batched, streaming, stoppable generation.

All rows of one call run as **one** ``model.generate`` batch (left padding and an attention mask),
so side-by-side variants cost roughly what one costs. A :class:`StopSignal` ends generation within
a token; the text generated so far is kept. Rows may name peft adapters: they are routed per row
with peft's ``adapter_names`` (``__base__`` for the base model).
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lmwidgets.errors import InvalidArgumentError

BASE_ADAPTER = "__base__"


@dataclass(frozen=True)
class GenerationSettings:
    """Generation settings; invalid values raise :class:`InvalidArgumentError` at construction.

    ``temperature == 0`` is greedy decoding; ``> 0`` samples (with ``top_p`` nucleus
    filtering). ``seed`` makes sampling reproducible; when sampling without a seed, a seed is
    drawn and recorded so the run can be repeated.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise InvalidArgumentError(
                f"--max-new-tokens must be a whole number, not {self.max_new_tokens!r}."
            )
        if self.max_new_tokens < 1:
            raise InvalidArgumentError(
                f"--max-new-tokens must be at least 1, not {self.max_new_tokens}."
            )
        if not _finite(self.temperature) or self.temperature < 0:
            raise InvalidArgumentError(
                f"--temperature must be >= 0 (0 means greedy), not {self.temperature}."
            )
        if not _finite(self.top_p) or not 0 < self.top_p <= 1:
            raise InvalidArgumentError(f"--top-p must be in (0, 1], not {self.top_p}.")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0
        ):
            raise InvalidArgumentError(f"--seed must be a non-negative integer, not {self.seed!r}.")

    @property
    def sampling(self) -> bool:
        """True when tokens are sampled rather than chosen greedily."""
        return self.temperature > 0

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for records)."""
        return {**asdict(self), "do_sample": self.sampling}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class StopSignal:
    """Set it (from a Stop button, another thread, a test) to end generation within a token."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stopped") -> None:
        """Ask generation to stop."""
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()


@dataclass
class Row:
    """One sequence of a batch: prompt token ids, adapter (None: base) and its own sampling.

    ``temperature``/``top_p`` override the batch settings for this row, so greedy and sampled
    rows (a zero-shot column beside self-consistency samples) still share one batch.
    """

    input_ids: list[int]
    adapter: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    extra: dict[str, Any] | None = None  # processor inputs of this row (pixel values, ...)


@dataclass
class RowOutput:
    """What one row produced."""

    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "running"  # eos | length | stopped | error
    first_token_seconds: float | None = None
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        """Whether this row stopped producing tokens."""
        return self.finish_reason != "running"


@dataclass
class BatchOutcome:
    """The outputs of one batch plus how it ended."""

    outputs: list[RowOutput]
    seconds: float
    seed: int | None
    error: BaseException | None = None


class _RowStreamer:
    """A transformers streamer that splits each step's tokens into per-row outputs."""

    def __init__(self, n_rows: int, eos_ids: set[int], started: float, on_step) -> None:
        self.outputs = [RowOutput() for _ in range(n_rows)]
        self._eos = eos_ids
        self._started = started
        self._on_step = on_step
        self._saw_prompt = False

    def put(self, value) -> None:
        if not self._saw_prompt:  # generate() first hands over the prompt
            self._saw_prompt = True
            return
        now = time.perf_counter() - self._started
        tokens = value.reshape(-1).tolist()
        for output, token in zip(self.outputs, tokens, strict=False):
            if output.finished:
                continue
            if output.first_token_seconds is None:
                output.first_token_seconds = now
            output.seconds = now
            if token in self._eos:
                output.finish_reason = "eos"
            else:
                output.token_ids.append(token)
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


def _generation_config(model: Any, settings: GenerationSettings, pad_id: int, eos: set[int]):
    from transformers import GenerationConfig

    base = model.generation_config
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.sampling,
        "pad_token_id": pad_id,
        "eos_token_id": sorted(eos) or None,
        "bos_token_id": getattr(base, "bos_token_id", None),
        "use_cache": True,
    }
    if settings.sampling:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    return GenerationConfig(**kwargs)


class _PerRowSampling:
    """A logits processor applying each row's temperature and top-p; temperature 0 is greedy.

    Greedy rows keep only their arg-max token, so sampling picks it with certainty.
    """

    def __init__(self, temperatures: list[float], top_ps: list[float]) -> None:
        self.temperatures = temperatures
        self.top_ps = top_ps

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float()
        temps = torch.tensor(self.temperatures, device=scores.device).unsqueeze(1)
        greedy = temps == 0
        top = scores.argmax(dim=-1, keepdim=True)
        one_hot = torch.full_like(scores, float("-inf")).scatter(1, top, 0.0)
        scaled = scores / torch.where(greedy, torch.ones_like(temps), temps)
        top_p = torch.tensor(self.top_ps, device=scores.device).unsqueeze(1)
        ordered, order = scaled.sort(dim=-1, descending=True)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = (cumulative - ordered.softmax(dim=-1)) >= top_p  # keep the first token
        drop = drop_sorted.scatter(1, order, drop_sorted)
        filtered = scaled.masked_fill(drop, float("-inf"))
        return torch.where(greedy, one_hot, filtered)


class _Stopper:
    """A stopping criterion that ends every row once the signal is set."""

    def __init__(self, signal: StopSignal) -> None:
        self.signal = signal

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full(
            (input_ids.shape[0],), self.signal.is_set(), dtype=torch.bool, device=input_ids.device
        )


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error from torch (CUDA or CPU allocator)."""
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError)
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

    ``prefix_cache`` (a :class:`~lmwidgets.engines.transformers.prefix_cache.PrefixCache`) reuses the keys/values of
    the prefix all rows share; ``adapter_keys[i]`` identifies row ``i``'s adapter weights.
    ``static_cache`` (``%lm load --compile``) decodes with a fixed-size cache whose length is
    rounded up to a bucket, so that transformers compiles the decoding step once per bucket.

    ``on_step(outputs)`` runs after every decoding step (keep it cheap; throttle inside it).
    Errors during generation (out of memory, an interrupt) do not raise here: the outcome holds
    the partial outputs and the error, and the caller decides how to report it.
    """
    import torch
    from transformers import StoppingCriteriaList

    if not rows:
        return BatchOutcome(outputs=[], seconds=0.0, seed=settings.seed)
    stop = stop or StopSignal()
    eos = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = min(eos) if eos else 0
    started = time.perf_counter()  # the time to first token includes computing a prefix
    names = sorted({row.adapter for row in rows if row.adapter})
    routed_ok = True
    if route_adapters or names:
        from lmwidgets.engines.transformers import lora_batch

        routed_ok = lora_batch.supported(model, names)
    prefix = None
    reuse = prefix_cache is not None and not static_cache
    if reuse and routed_ok and not any(row.extra for row in rows):
        from lmwidgets.engines.transformers.prefix_cache import batched_prefix

        prefix = batched_prefix(
            model,
            rows,
            device=device,
            cache=prefix_cache,
            keys=list(adapter_keys or ["base"] * len(rows)),
            run_as=lambda adapter: _route_one(model, adapter, route_adapters or bool(names)),
        )
    cached = prefix[0] if prefix else [0] * len(rows)
    head = max(cached)
    width = head + max(len(row.input_ids) - c for row, c in zip(rows, cached, strict=True))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, (row, own) in enumerate(zip(rows, cached, strict=True)):
        # [padding | cached prefix] [padding | the rest]: positions follow the mask, so padding
        # is invisible (without cached prefixes this is plain left padding).
        tokens = torch.tensor(row.input_ids, dtype=torch.long)
        input_ids[index, head - own : head] = tokens[:own]
        attention[index, head - own : head] = 1
        rest = len(row.input_ids) - own
        input_ids[index, width - rest :] = tokens[own:]
        attention[index, width - rest :] = 1
    input_ids = input_ids.to(device)
    attention = attention.to(device)
    kwargs: dict[str, Any] = {}
    if prefix is not None:
        kwargs["past_key_values"] = prefix[1]
    elif static_cache:
        from transformers import StaticCache

        length = cache_bucket(width + settings.max_new_tokens)
        kwargs["past_key_values"] = StaticCache(config=model.config, max_cache_len=length)
    model_inputs: dict[str, Any] = {}
    if any(row.extra for row in rows):
        from lmwidgets.engines.transformers.multimodal import merge_row_inputs

        merged = merge_row_inputs(
            [row.extra for row in rows], [len(row.input_ids) for row in rows], width
        )
        dtype = getattr(model, "dtype", None)
        for key, value in merged.items():
            if value.is_floating_point() and dtype is not None:
                value = value.to(dtype)
            model_inputs[key] = value.to(device)

    temperatures = [settings.temperature if r.temperature is None else r.temperature for r in rows]
    top_ps = [settings.top_p if r.top_p is None else r.top_p for r in rows]
    seed = settings.seed
    if seed is None and any(t > 0 for t in temperatures):
        seed = random.randrange(2**31)  # recorded, so the run can be repeated
    if seed is not None:
        torch.manual_seed(seed)
        if device.startswith("cuda"):
            torch.cuda.manual_seed_all(seed)

    streamer = _RowStreamer(len(rows), eos, started, on_step or (lambda outputs: None))
    if len(set(zip(temperatures, top_ps, strict=True))) > 1:
        from transformers import LogitsProcessorList

        # Mixed sampling in one batch: sample every row through a per-row processor.
        generation_config = _generation_config(model, settings, pad_id, eos)
        generation_config.do_sample = True
        generation_config.temperature, generation_config.top_p, generation_config.top_k = (
            1.0,
            1.0,
            0,
        )
        kwargs["logits_processor"] = LogitsProcessorList([_PerRowSampling(temperatures, top_ps)])
    else:
        uniform = GenerationSettings(settings.max_new_tokens, temperatures[0], top_ps[0], seed)
        generation_config = _generation_config(model, uniform, pad_id, eos)
    if ignore_eos:
        generation_config.min_new_tokens = settings.max_new_tokens  # end-of-sequence is masked
    routing: Any = contextlib.nullcontext()
    if route_adapters or names:
        from lmwidgets.engines.transformers import lora_batch

        if routed_ok:
            routing = lora_batch.routed(model, names, [row.adapter for row in rows])
        else:
            kwargs["adapter_names"] = [row.adapter or BASE_ADAPTER for row in rows]
    error: BaseException | None = None
    try:
        with torch.inference_mode(), routing:
            model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=generation_config,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_Stopper(stop)]),
                **model_inputs,
                **kwargs,
            )
    except (KeyboardInterrupt, RuntimeError, MemoryError) as exc:
        if not (isinstance(exc, KeyboardInterrupt) or is_out_of_memory(exc)):
            raise
        error = exc
        release_memory(device)
    elapsed = time.perf_counter() - started
    for output in streamer.outputs:
        if output.finished:
            continue
        if error is not None:
            output.finish_reason = "stopped" if isinstance(error, KeyboardInterrupt) else "error"
        elif stop.is_set():
            output.finish_reason = "stopped"
        else:
            output.finish_reason = "length"
        output.seconds = output.seconds or elapsed
    return BatchOutcome(outputs=streamer.outputs, seconds=elapsed, seed=seed, error=error)
