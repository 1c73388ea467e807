"""Running variants: prepare every prompt, generate them batched, stream into the live view.

A *variant* is one column of a comparison: the messages to send, the model (and adapter) to send
them to, and how to read the answer. Variants that share a model and generation settings run as
one batch; everything is validated before the first token is generated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lmwidgets.engines.registry import LoadedModel
from lmwidgets.engines.transformers.adapters import generation_model
from lmwidgets.engines.transformers.chat import Message, encode, render_text
from lmwidgets.engines.transformers.generation import (
    GenerationSettings,
    Row,
    RowOutput,
    StopSignal,
    generate_batch,
)
from lmwidgets.engines.transformers.prefix_cache import PrefixCache, adapter_key
from lmwidgets.errors import (
    GenerationError,
    GenerationInterrupted,
    OutOfMemoryError,
    PromptTooLongError,
)
from lmwidgets.media.boxes import Box, Frame, parse_boxes
from lmwidgets.media.images import ImageInput
from lmwidgets.notebook.ui_events import UiPump
from lmwidgets.run.records import library_versions, now_iso
from lmwidgets.run.results import Comparison, Result
from lmwidgets.sharing.safe_text import STATIC_TEXT_LIMIT

#: ``postprocess(texts) -> (text, answer, extras)``: turns a variant's sample texts into a column.
Postprocess = Callable[[list[str]], tuple[str, str | None, dict[str, Any]]]

_RECORD_TEXT_LIMIT = 4 * STATIC_TEXT_LIMIT


def _single_text(texts: list[str]) -> tuple[str, str | None, dict[str, Any]]:
    return texts[0], None, {}


@dataclass
class Variant:
    """One column to generate: a label, the chat messages, the model, adapter and settings."""

    label: str
    messages: list[Message]
    loaded: LoadedModel
    settings: GenerationSettings
    strategy: str = "zero-shot"
    strategy_info: dict[str, Any] = field(default_factory=dict)
    adapter: str | None = None
    template: str = ""
    samples: int = 1
    postprocess: Postprocess = _single_text
    item: dict[str, Any] | None = None
    input: str | None = None
    expected: str | None = None
    images: list[ImageInput] = field(default_factory=list)
    # Filled by prepare():
    prompt_text: str = ""
    input_ids: list[int] = field(default_factory=list)
    max_new_tokens: int = 0
    extra_inputs: dict[str, Any] | None = None
    processed_size: tuple[int, int] | None = None


def prepare(variant: Variant, notes: list[str]) -> None:
    """Render and tokenize the variant's prompt (with its images, through the model's processor);
    check it fits the model's context."""
    loaded = variant.loaded
    if loaded.processor is not None:
        from lmwidgets.engines.transformers import multimodal

        variant.prompt_text = render_text(loaded.processor, variant.messages)
        variant.input_ids, extra, variant.processed_size = multimodal.encode(
            loaded, variant.prompt_text, variant.images
        )
        variant.extra_inputs = extra or None
    else:
        variant.prompt_text = render_text(loaded.tokenizer, variant.messages)
        variant.input_ids = encode(loaded.tokenizer, variant.prompt_text)
    variant.max_new_tokens = variant.settings.max_new_tokens
    context = loaded.context_length
    if context is None:
        return
    length = len(variant.input_ids)
    if length >= context:
        raise PromptTooLongError(
            f"The prompt for {variant.label!r} has {length:,} tokens, but {loaded.name} reads at "
            f"most {context:,}. Shorten the prompt (fewer examples with --shots, a shorter system "
            "text) or load a model with a longer context."
        )
    if length + variant.max_new_tokens > context:
        variant.max_new_tokens = context - length
        note = (
            f"{variant.label}: --max-new-tokens lowered to {variant.max_new_tokens} so that the "
            f"prompt ({length} tokens) and the answer fit {loaded.name}'s context of {context}."
        )
        if note not in notes:
            notes.append(note)


def image_data(variants: Sequence[Variant]) -> list[dict[str, Any]]:
    """Thumbnails (and regions) of the prompt's images, from the first variant that has them."""
    for variant in variants:
        if variant.images:
            return [image.widget_data() for image in variant.images]
    return []


def prefix_cache_of(loaded: LoadedModel) -> PrefixCache:
    """The loaded model's prefix cache (made on first use; dropped when the model is unloaded)."""
    cache = loaded.extras.get("prefix_cache")
    if cache is None:
        cache = loaded.extras["prefix_cache"] = PrefixCache()
    return cache


def find_boxes(variant: Variant, text: str) -> list[Box]:
    """Boxes the answer names, in pixels of the prompt's first image (none without images)."""
    if not variant.images:
        return []
    first = variant.images[0]
    offset, size = (0, 0), (first.width, first.height)
    if first.region is not None and first.region_mode == "crop":
        region = first.region
        offset, size = (region.x1, region.y1), (region.x2 - region.x1, region.y2 - region.y1)
    frame = Frame(
        width=size[0],
        height=size[1],
        processed=variant.processed_size,
        offset=offset,
        model_type=getattr(variant.loaded.model.config, "model_type", "") or "",
    )
    return parse_boxes(text, frame)


def adapter_record(loaded: LoadedModel, adapter: str | None) -> dict[str, Any] | None:
    """What a record says about an adapter (None for the base model)."""
    if adapter is None:
        return None
    info = loaded.adapters.get(adapter)
    return info.record() if hasattr(info, "record") else {"name": adapter}


def _record(
    variant: Variant,
    text: str,
    answer,
    outputs: list[RowOutput],
    seed,
    extras,
    batch_size: int,
    run_id: str,
    boxes: list[Box] = (),
) -> dict:
    loaded = variant.loaded
    tokens = sum(len(o.token_ids) for o in outputs)
    seconds = max((o.seconds for o in outputs), default=0.0)
    firsts = [o.first_token_seconds for o in outputs if o.first_token_seconds is not None]
    shown = text[:_RECORD_TEXT_LIMIT]
    generation = variant.settings.as_dict()
    generation.update(
        seed=seed,
        seed_given=variant.settings.seed is not None,
        max_new_tokens=variant.max_new_tokens,
        max_new_tokens_asked=variant.settings.max_new_tokens,
        samples=variant.samples,
        batch_size=batch_size,
    )
    return {
        "schema": 1,
        "run": run_id,
        "created": now_iso(),
        "variant": variant.label,
        "model": loaded.record(),
        "adapter": adapter_record(loaded, variant.adapter),
        "strategy": {"name": variant.strategy, **variant.strategy_info},
        "prompt": {
            "template": variant.template,
            "messages": variant.messages,
            "rendered": variant.prompt_text,
            "tokens": len(variant.input_ids),
            "chat_template": loaded.has_chat_template,
            "images": [image.record() for image in variant.images],
        },
        "generation": generation,
        "input": variant.item,
        "expected": variant.expected,
        "output": {
            "text": shown,
            "text_truncated": len(text) > len(shown),
            "answer": answer,
            "tokens": tokens,
            "finish_reasons": [o.finish_reason for o in outputs],
            **extras,
            **({"boxes": [box.as_dict() for box in boxes]} if boxes else {}),
        },
        "timing": {
            "seconds": round(seconds, 4),
            "first_token_seconds": round(min(firsts), 4) if firsts else None,
            "tokens_per_second": round(tokens / seconds, 3) if seconds > 0 else 0.0,
        },
        "versions": library_versions(),
        "device": loaded.device,
        "dtype": loaded.dtype,
    }


def _finish_reason(outputs: list[RowOutput]) -> str:
    reasons = {o.finish_reason for o in outputs}
    for reason in ("error", "stopped", "running", "length"):
        if reason in reasons:
            return "stopped" if reason == "running" else reason
    return "eos"


class _Stream:
    """Maps batch rows to variants, decodes their text and pushes it to the live view."""

    def __init__(self, variants: Sequence[Variant], view, interval: float) -> None:
        self.variants = variants
        self.view = view
        self.interval = interval
        self.outputs: list[list[RowOutput]] = [[] for _ in variants]
        self._last = 0.0

    def decode(self, index: int, streaming: bool = False) -> list[str]:
        tokenizer = self.variants[index].loaded.tokenizer
        texts = []
        for output in self.outputs[index]:
            text = tokenizer.decode(output.token_ids, skip_special_tokens=True)
            if streaming:
                text = text.rstrip("\ufffd")  # an unfinished multi-byte character
            texts.append(text)
        return texts

    def live_text(self, index: int) -> str:
        texts = self.decode(index, streaming=True)
        if len(texts) <= 1:
            return texts[0] if texts else ""
        return "\n\n".join(f"── sample {i + 1} ──\n{t}" for i, t in enumerate(texts))

    def push(self, force: bool = False) -> None:
        if self.view is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.view.update_running(self)


def _group(variants: Sequence[Variant], batch_size: int) -> list[list[tuple[int, int]]]:
    """Batches of (variant index, sample index) rows that can run in one generate call."""
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for index, variant in enumerate(variants):
        # Sampling settings may differ per row; rows only need the same model, budget and seed.
        key = (id(variant.loaded), variant.max_new_tokens, variant.settings.seed)
        groups.setdefault(key, []).extend((index, s) for s in range(variant.samples))
    batches = []
    for rows in groups.values():
        for start in range(0, len(rows), batch_size):
            batches.append(rows[start : start + batch_size])
    return batches


def run_variants(
    variants: Sequence[Variant],
    *,
    title: str = "",
    view=None,
    stop: StopSignal | None = None,
    batch_size: int = 16,
    update_interval: float = 0.1,
    on_batch_done: Callable[[int, int], None] | None = None,
    finalize: Callable[[Comparison], None] | None = None,
    ignore_eos: bool = False,
    prefix_reuse: bool = True,
) -> Comparison:
    """Generate every variant (batched) and return the :class:`Comparison`.

    ``view`` (a :class:`~lmwidgets.notebook.live.LiveView` or None) receives the streamed text. On an
    out-of-memory error the partial comparison is kept and an :class:`OutOfMemoryError` carrying
    it is raised; on a kernel interrupt the partial comparison is finalized and the interrupt
    re-raised. ``ignore_eos`` makes every row generate exactly its token budget (benchmarks).
    ``prefix_reuse`` computes a prefix the rows share once and keeps it for later runs (see
    :mod:`lmwidgets.engines.transformers.prefix_cache`).
    """
    notes: list[str] = []
    for variant in variants:
        prepare(variant, notes)
    stop = stop or StopSignal()
    stream = _Stream(variants, view, update_interval)
    batches = _group(variants, batch_size)
    seeds: dict[int, int | None] = {}
    error: BaseException | None = None
    pump = UiPump()
    if view is not None:
        view.start(stream, stop, notes)
        view.progress(0, len(batches))
    with pump:
        for number, batch in enumerate(batches):
            if stop.is_set():
                break
            first = variants[batch[0][0]]
            rows = [
                Row(
                    variants[v].input_ids,
                    variants[v].adapter,
                    temperature=variants[v].settings.temperature,
                    top_p=variants[v].settings.top_p,
                    extra=variants[v].extra_inputs,
                )
                for v, _ in batch
            ]
            for v, _ in batch:
                stream.outputs[v] = []

            def on_step(outputs: list[RowOutput], batch=batch) -> None:
                for (v, s), output in zip(batch, outputs, strict=False):
                    bucket = stream.outputs[v]
                    while len(bucket) <= s:
                        bucket.append(RowOutput())
                    bucket[s] = output
                pump.poll()
                stream.push()

            # The budget may have been lowered to fit the context (see prepare()).
            settings = replace(first.settings, max_new_tokens=first.max_new_tokens)
            outcome = generate_batch(
                generation_model(first.loaded),
                first.loaded.tokenizer,
                rows,
                settings,
                device=first.loaded.device,
                stop=stop,
                on_step=on_step,
                ignore_eos=ignore_eos,
                route_adapters=bool(first.loaded.adapters),
                prefix_cache=prefix_cache_of(first.loaded) if prefix_reuse else None,
                adapter_keys=[adapter_key(first.loaded, variants[v].adapter) for v, _ in batch],
                static_cache=bool(first.loaded.extras.get("static_cache")),
            )
            on_step(outcome.outputs)
            for v, _ in batch:
                seeds[v] = outcome.seed
            if view is not None:
                view.progress(number + 1, len(batches))
            if on_batch_done is not None:
                on_batch_done(number + 1, len(batches))
            if outcome.error is not None:
                error = outcome.error
                break
    results = []
    run_id = uuid.uuid4().hex[:16]
    for index, variant in enumerate(variants):
        outputs = stream.outputs[index] or [RowOutput(finish_reason="stopped")]
        for output in outputs:
            if output.finish_reason == "running":
                output.finish_reason = "stopped"
        text, answer, extras = variant.postprocess(stream.decode(index))
        reason = _finish_reason(outputs)
        boxes = find_boxes(variant, text)
        record = _record(
            variant, text, answer, outputs, seeds.get(index), extras, batch_size, run_id, boxes
        )
        tokens = record["output"]["tokens"]
        results.append(
            Result(
                variant=variant.label,
                text=text,
                prompt=variant.prompt_text,
                tokens=tokens,
                seconds=record["timing"]["seconds"],
                record=record,
                answer=answer,
                strategy=variant.strategy,
                model=variant.loaded.name,
                adapter=variant.adapter,
                first_token_seconds=record["timing"]["first_token_seconds"],
                finish_reason=reason,
                error=None if reason != "error" else "out of memory",
                input=variant.input,
                expected=variant.expected,
                extras=extras,
                boxes=boxes,
                images=[image.record() for image in variant.images],
            )
        )
    status = "done"
    if error is not None:
        status = "stopped" if isinstance(error, KeyboardInterrupt) else "error"
    elif stop.is_set():
        status = "stopped"
    comparison = Comparison(
        results, title=title, status=status, notes=notes, images=image_data(variants)
    )
    if finalize is not None:
        finalize(comparison)
    message = ""
    if status == "error":
        message = (
            "Out of memory during generation: the text so far is kept. Try fewer columns, "
            "a smaller --max-new-tokens, or unload other models (`%lm unload NAME`)."
        )
    if view is not None:
        view.finish(comparison, message)
    if isinstance(error, KeyboardInterrupt):
        raise GenerationInterrupted(partial=comparison) from error
    if error is not None:
        raise OutOfMemoryError(message, partial=comparison) from error
    return comparison


__all__ = ["GenerationError", "Variant", "prepare", "run_variants"]
