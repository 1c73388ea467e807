"""Running variants: prepare every prompt, generate them batched, stream into the live view.

A *variant* is one column of a comparison: the messages to send, the model (and adapter) to send
them to, and how to read the answer. Variants that share a model and generation settings run as
one batch; everything is validated before the first token is generated.

With ``--logprobs K`` every column's :attr:`~lmwidgets.core.results.Result.tokens_detail` holds
its generated tokens (self-consistency: the representative sample's, the one whose answer won
the vote) and :attr:`~lmwidgets.core.results.Result.confidence` the probability of the answer's
tokens (:func:`answer_confidence`); records keep a bounded copy
(:func:`lmwidgets.run.records.bounded_tokens`). A fork variant
(:mod:`lmwidgets.run.fork`) carries the forced start of its answer to the engine.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from lmwidgets.checks import Throttle
from lmwidgets.core import axis_kinds
from lmwidgets.core.results import Comparison, Result
from lmwidgets.core.safe_text import STATIC_TEXT_LIMIT
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import (
    BatchOutcome,
    PromptRow,
    RowOutput,
    StopSignal,
    adapter_record,
    batch_seed,
    finish_reason,
    sample_seed,
)
from lmwidgets.errors import (
    GenerationError,
    InvalidArgumentError,
    LmWidgetsError,
    PromptTooLongError,
)
from lmwidgets.media.base import Deferred, MediaInput, is_deferred, resolved
from lmwidgets.media.boxes import Box, Frame, parse_boxes
from lmwidgets.notebook.ui_events import UiPump
from lmwidgets.run.cache import SETTINGS as CACHE_SETTINGS
from lmwidgets.run.cache import RunCache
from lmwidgets.run.cache_keys import CachedColumn
from lmwidgets.run.choices import is_choice_run, run_choice_variants
from lmwidgets.run.flow import conclude, error_message, open_view, run_status, split_batches
from lmwidgets.run.records import RUN_RECORD_SCHEMA, bounded_tokens, library_versions, now_iso
from lmwidgets.run.tokens import answer_confidence, token_dicts

_RECORD_TEXT_LIMIT = 4 * STATIC_TEXT_LIMIT


def check_token_logprobs(variants: Sequence[Variant]) -> None:
    """Refuse, before anything runs, ``--logprobs K`` or a fork on a model that cannot report
    token log-probabilities (its capabilities say so), naming the model."""
    for variant in variants:
        engine = variant.engine
        wants = variant.settings.logprobs > 0 or variant.fork is not None
        if wants and not engine.capabilities.token_logprobs:
            what = "fork at a token" if variant.settings.logprobs == 0 else "--logprobs"
            raise InvalidArgumentError(
                f"{engine.name} ({engine.engine} engine) cannot report token probabilities, so "
                f"{what} does not work with it (column {variant.label!r}). Drop --logprobs "
                "(logprobs=0), or use a model loaded into the kernel or a server that returns "
                "logprobs."
            )


def prepare(variant: Variant, notes: list[str]) -> None:
    """Render the variant's prompt through its engine (with its media); check it fits the
    model's context, lowering the answer budget (with a note) when only the answer does not."""
    engine = variant.engine
    variant.rendered = engine.render(variant.messages, resolved(variant.media))
    variant.max_new_tokens = variant.settings.max_new_tokens
    context = engine.capabilities.context_length
    if context is None:
        return
    length = variant.rendered.n_tokens
    if length >= context:
        raise PromptTooLongError(
            f"The prompt for {variant.label!r} has {length:,} tokens, but {engine.name} reads at "
            f"most {context:,}. Shorten the prompt (fewer examples with --shots, a shorter system "
            "text) or load a model with a longer context."
        )
    if length + variant.max_new_tokens > context:
        variant.max_new_tokens = context - length
        note = (
            f"{variant.label}: --max-new-tokens lowered to {variant.max_new_tokens} so that the "
            f"prompt ({length} tokens) and the answer fit {engine.name}'s context of {context}."
        )
        if note not in notes:
            notes.append(note)


def media_data(variants: Sequence[Variant]) -> list[dict[str, Any]]:
    """Previews of the prompt's media (every kind, as :meth:`~lmwidgets.media.base.MediaInput.
    widget_data` says), from the first variant that has any: what the widget's gallery and the
    static copy show. A dataset item's own media are previewed in its row (:func:`row_media`)."""
    return [item.widget_data() for item in shared_media(variants)]


def shared_media(variants: Sequence[Variant]) -> list[MediaInput]:
    """The prompt's media items (not a dataset item's own), from the first variant that has
    any, in the order :func:`media_data` previews them (the widget's play control asks for an
    audio clip by its place here)."""
    for variant in variants:
        shared = [item for item in variant.media if not isinstance(item, Deferred)]
        if shared:
            return shared
    return []


#: The old name of :func:`media_data`.
image_data = media_data


def row_media(variant: Variant) -> list[dict[str, Any]]:
    """Previews of a dataset item's own media read so far (small; kept once per row in the
    saved grid); none before its batch ran."""
    return [
        item.item_preview()
        for item in variant.media
        if isinstance(item, Deferred) and item.item is not None
    ]


def find_boxes(variant: Variant, text: str) -> list[Box]:
    """Boxes the answer names, in pixels of the image each refers to (none without images).
    Media whose items have a ``box_frame()`` (images) can carry boxes."""
    framed = [item for item in resolved_items(variant) if hasattr(item, "box_frame")]
    if not framed:
        return []
    processed = variant.rendered.processed_size if variant.rendered else None
    frames = []
    for index, item in enumerate(framed):
        offset, size = item.box_frame()
        frames.append(
            Frame(
                width=size[0],
                height=size[1],
                processed=processed if index == 0 else None,
                offset=offset,
                model_type=variant.engine.box_convention(),
            )
        )
    return parse_boxes(text, frames[0], frames=frames)


def resolved_items(variant: Variant) -> list[Any]:
    """The variant's media items, a dataset item's as decoded (or released) after its batch."""
    return [(item.item or item) if isinstance(item, Deferred) else item for item in variant.media]


def _generation_record(variant: Variant, seed: int | None, batch_size: int) -> dict[str, Any]:
    generation = variant.settings.as_dict()
    generation.update(
        seed=seed,
        seed_given=variant.settings.seed is not None and not variant.seed_drawn,
        max_new_tokens=variant.max_new_tokens,
        max_new_tokens_asked=variant.settings.max_new_tokens,
        samples=variant.samples,
        batch_size=batch_size,
    )
    return generation


def _timing_record(outputs: list[RowOutput]) -> dict[str, Any]:
    tokens = sum(o.n_tokens for o in outputs)
    seconds = max((o.seconds for o in outputs), default=0.0)
    firsts = [o.first_token_seconds for o in outputs if o.first_token_seconds is not None]
    return {
        "seconds": round(seconds, 4),
        "first_token_seconds": round(min(firsts), 4) if firsts else None,
        "tokens_per_second": round(tokens / seconds, 3) if seconds > 0 else 0.0,
    }


def _record(
    variant: Variant,
    text: str,
    answer: str | None,
    outputs: list[RowOutput],
    seed: int | None,
    extras: dict[str, Any],
    batch_size: int,
    run_id: str,
    boxes: Sequence[Box] = (),
    tokens: Sequence[dict[str, Any]] = (),
    confidence: float | None = None,
    cached: CachedColumn | None = None,
) -> dict[str, Any]:
    engine = variant.engine
    model = engine.record()
    shown = text[:_RECORD_TEXT_LIMIT]
    record = {
        "schema": RUN_RECORD_SCHEMA,
        "run": run_id,
        "created": now_iso(),
        "variant": variant.label,
        "model": model,
        "adapter": adapter_record(engine, variant.adapter),
        "strategy": {"name": variant.strategy, **variant.strategy_info},
        "prompt": {
            "template": variant.template,
            "messages": variant.messages,
            "rendered": variant.prompt_text,
            "tokens": variant.rendered.n_tokens if variant.rendered else 0,
            "chat_template": engine.capabilities.chat,
            "media": [item.record() for item in variant.media],
        },
        "generation": _generation_record(variant, seed, batch_size),
        "input": variant.item,
        "expected": variant.expected,
        "output": {
            "text": shown,
            "text_truncated": len(text) > len(shown),
            "answer": answer,
            "tokens": sum(o.n_tokens for o in outputs),
            "finish_reasons": [o.finish_reason for o in outputs],
            **extras,
            **({"boxes": [box.as_dict() for box in boxes]} if boxes else {}),
            **_tokens_record(variant, tokens, confidence),
        },
        "timing": _timing_record(outputs),
        "versions": library_versions(),
        "device": model.get("device"),
        "dtype": model.get("dtype"),
    }
    if variant.coords:
        record["axes"] = dict(variant.coords)
    if variant.item_index is not None:  # the grid's row (items may share their question)
        record["item_index"] = variant.item_index
    if variant.fork is not None:
        record["fork"] = variant.fork
    # What axis kinds keep (a probe's attack and canary, so that a rerun repeats it).
    record.update(variant.recorded)
    if cached is not None:  # the timing is the generating run's, named here
        record["cached"] = True
        record["timing"]["cached_from"] = {"run": cached.run, "created": cached.created}
    return record


def _tokens_record(
    variant: Variant, tokens: Sequence[dict[str, Any]], confidence: float | None
) -> dict[str, Any]:
    """The token fields of a record's output: its bounded tokens (with ``--logprobs``) and the
    answer's confidence (when known); nothing for runs without them, so old readers see the
    records they know."""
    fields: dict[str, Any] = {}
    if variant.settings.logprobs > 0:
        fields.update(bounded_tokens(tokens))
    if confidence is not None:
        fields["confidence"] = round(confidence, 4)
    return fields


class _Stream:
    """Maps batch rows to variants, decodes their text and pushes it to the live view."""

    def __init__(self, variants: Sequence[Variant], view: Any, interval: float) -> None:
        self.variants = variants
        self.view = view
        self.outputs: list[list[RowOutput]] = [[] for _ in variants]
        #: Variants (by index) answered from the response cache.
        self.cached: set[int] = set()
        self._throttle = Throttle(interval)

    def decode(self, index: int, streaming: bool = False) -> list[str]:
        engine = self.variants[index].engine
        return [engine.text_of(output, streaming=streaming) for output in self.outputs[index]]

    def live_text(self, index: int) -> str:
        texts = self.decode(index, streaming=True)
        if len(texts) <= 1:
            return texts[0] if texts else ""
        return "\n\n".join(f"── sample {i + 1} ──\n{t}" for i, t in enumerate(texts))

    def push(self, force: bool = False) -> None:
        if self.view is not None and self._throttle.ready(force):
            self.view.update_running(self)

    def collect(self, batch: list[tuple[int, int]], outputs: list[RowOutput]) -> None:
        """Put a batch's row outputs where their (variant, sample) belong."""
        for (v, s), output in zip(batch, outputs, strict=False):
            bucket = self.outputs[v]
            while len(bucket) <= s:
                bucket.append(RowOutput())
            bucket[s] = output


def _group(variants: Sequence[Variant], batch_size: int) -> list[list[tuple[int, int]]]:
    """Batches of (variant index, sample index) rows that can run in one generate call."""
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for index, variant in enumerate(variants):
        if variant.precomputed is not None:  # shown as it is (an earlier run): not generated
            continue
        # Sampling settings and seeds may differ per row (each row samples with its own seed);
        # rows only need the same model, budget and number of alternatives per token.
        key = (id(variant.engine), variant.max_new_tokens, variant.settings.logprobs)
        groups.setdefault(key, []).extend((index, s) for s in range(variant.samples))
    return split_batches(groups.values(), batch_size)


def _run_batch(
    variants: Sequence[Variant],
    batch: list[tuple[int, int]],
    seeds: dict[int, int | None],
    on_step: Callable[[list[RowOutput]], None],
    stop: StopSignal,
    *,
    ignore_eos: bool,
    prefix_reuse: bool,
) -> BatchOutcome:
    """Generate one batch through its engine, streaming every step into ``on_step``.

    Every row carries its column's seed (``seeds[v]``; sample ``s`` of a self-consistency
    column ``sample_seed(seed, s)``), so a column gives the same text in any batch as alone.
    """
    first = variants[batch[0][0]]
    rows = [
        PromptRow(
            variants[v].rendered,
            variants[v].adapter,
            temperature=variants[v].settings.temperature,
            top_p=variants[v].settings.top_p,
            forced_ids=variants[v].forced_ids,
            forced_text=variants[v].forced_text,
            constraint=variants[v].constraint if variants[v].enforced else None,
            seed=sample_seed(seeds.get(v), s),
        )
        for v, s in batch
    ]
    # The budget may have been lowered to fit the context (see prepare()); the seeds are the
    # rows' own, not the first column's.
    settings = replace(first.settings, max_new_tokens=first.max_new_tokens, seed=None)
    outcome = first.engine.generate(
        rows, settings, stop=stop, on_step=on_step, ignore_eos=ignore_eos, prefix_reuse=prefix_reuse
    )
    on_step(outcome.outputs)
    return outcome


def _checked(
    variant: Variant, text: str, answer: str | None, extras: dict[str, Any]
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """The answer, record extras and Result fields (``parsed``, ``valid``) after every
    registered axis kind's check of the text."""
    fields: dict[str, Any] = {}
    for kind in axis_kinds.all_kinds():
        check = kind.hook("check")
        if check is not None:
            answer, extras, more = check(variant, text, answer, extras)
            fields.update(more)
    return answer, extras, fields


def _result(
    variant: Variant,
    outputs: list[RowOutput],
    texts: list[str],
    seed: int | None,
    batch_size: int,
    run_id: str,
    error: str | None = None,
    cached: CachedColumn | None = None,
) -> Result:
    """One column's :class:`Result` (and its record) from its rows' outputs (``cached``: the
    response cache's entry they came from)."""
    for output in outputs:
        if output.finish_reason == "running":
            output.finish_reason = "stopped"
    text, answer, extras = variant.postprocess(texts)
    reason = finish_reason(outputs)
    if reason == "error":  # a failed column's partial text has no answer to show or score
        answer = None
    checked: dict[str, Any] = {}
    if reason != "error":  # axis kinds' checks of the text (a structured answer's verdict)
        answer, extras, checked = _checked(variant, text, answer, extras)
    boxes = find_boxes(variant, text)
    tokens = _representative_tokens(variant, outputs, texts, text)
    confidence = _confidence(variant, answer, tokens, extras)
    record = _record(
        variant,
        text,
        answer,
        outputs,
        seed,
        extras,
        batch_size,
        run_id,
        boxes,
        tokens,
        confidence,
        cached,
    )
    return Result(
        variant=variant.label,
        text=text,
        prompt=variant.prompt_text,
        tokens=record["output"]["tokens"],
        seconds=record["timing"]["seconds"],
        record=record,
        answer=answer,
        strategy=variant.strategy,
        model=variant.engine.name,
        adapter=variant.adapter,
        first_token_seconds=record["timing"]["first_token_seconds"],
        finish_reason=reason,
        error=None if reason != "error" else error,
        input=variant.input,
        expected=variant.expected,
        extras=extras,
        tokens_detail=tokens,
        confidence=confidence,
        boxes=boxes,
        media=[item.record() for item in variant.media],
        item_media=[item.item_preview() for item in variant.media if isinstance(item, Deferred)],
        cached=cached is not None,
        **checked,
    )


def _representative_tokens(
    variant: Variant, outputs: list[RowOutput], texts: list[str], text: str
) -> list[dict[str, Any]]:
    """The tokens of the sample the column shows (self-consistency: the first sample whose
    text is the representative one), or none without ``--logprobs``."""
    if variant.settings.logprobs <= 0 or not outputs:
        return []
    index = texts.index(text) if text in texts else 0
    index = min(index, len(outputs) - 1)
    return token_dicts(variant.engine, outputs[index].logprobs)


def _confidence(
    variant: Variant,
    answer: str | None,
    tokens: list[dict[str, Any]],
    extras: dict[str, Any],
) -> float | None:
    """Self-consistency: the vote share of its answer; every other strategy: the probability
    of the answer's tokens (:func:`answer_confidence`)."""
    if answer is None:
        return None
    if variant.strategy == "self-consistency":
        share = extras.get("agreement")
        return float(share) if isinstance(share, (int, float)) else None
    return answer_confidence(answer, tokens)


def run_variants(
    variants: Sequence[Variant],
    *,
    title: str = "",
    view: Any = None,
    stop: StopSignal | None = None,
    batch_size: int = 16,
    update_interval: float = 0.1,
    on_batch_done: Callable[[int, int], None] | None = None,
    finalize: Callable[[Comparison], None] | None = None,
    ignore_eos: bool = False,
    prefix_reuse: bool = True,
    cache: bool | None = False,
    judge: Any = None,
) -> Comparison:
    """Generate every variant (batched) and return the :class:`Comparison`.

    ``view`` (a :class:`~lmwidgets.notebook.live.LiveView` or None) receives the streamed text.
    On an out-of-memory error the partial comparison is kept and an :class:`OutOfMemoryError`
    carrying it is raised; on a kernel interrupt the partial comparison is finalized and the
    interrupt re-raised. ``ignore_eos`` makes every row generate exactly its token budget
    (benchmarks). ``prefix_reuse`` lets engines compute a prefix the rows share once and keep it
    for later runs (see :mod:`lmwidgets.engines.transformers.prefix_cache`).

    ``cache`` answers columns from the response cache (:mod:`lmwidgets.run.cache`) and keeps
    the whole ones generated: True, False (the default here: benchmarks and re-runs generate),
    or None for the process default (``%config LmMagics.cache``; :func:`lmwidgets.prompt`).

    ``judge`` (a :class:`~lmwidgets.prompting.judging.JudgeSpec`) judges the columns after
    generation, before ``finalize`` (:mod:`lmwidgets.run.judge`).
    """
    if cache is not None and not isinstance(cache, bool):
        raise InvalidArgumentError(f"cache must be True, False or None, not {cache!r}.")
    if is_choice_run(variants):  # given choices: scored, not generated
        return run_choice_variants(
            variants,
            title=title,
            view=view,
            stop=stop,
            batch_size=batch_size,
            finalize=finalize,
        )
    notes: list[str] = []
    generated = [variant for variant in variants if variant.precomputed is None]
    check_token_logprobs(generated)
    for variant in generated:
        if is_deferred(variant.media):  # a dataset item's media: read when its batch runs
            variant.rendered, variant.max_new_tokens = None, variant.settings.max_new_tokens
        else:
            prepare(variant, notes)
    enabled = CACHE_SETTINGS.enabled if cache is None else cache
    responses = RunCache(variants, enabled=enabled, ignore_eos=ignore_eos, notes=notes)
    stop = stop or StopSignal()
    if judge is not None:
        from lmwidgets.run.judge import cost_note, judged

        notes.extend(note for note in [cost_note(judge, variants)] if note)
        finalize = judged(
            judge, view=view, stop=stop, cache=cache, batch_size=batch_size, finalize=finalize
        )
    try:
        return _run_prepared(
            variants,
            responses,
            title=title,
            view=view,
            stop=stop,
            batch_size=batch_size,
            update_interval=update_interval,
            on_batch_done=on_batch_done,
            finalize=finalize,
            notes=notes,
            options={"ignore_eos": ignore_eos, "prefix_reuse": prefix_reuse},
        )
    finally:
        responses.close()


def _run_prepared(
    variants: Sequence[Variant],
    responses: RunCache,
    *,
    title: str,
    view: Any,
    stop: StopSignal,
    batch_size: int,
    update_interval: float,
    on_batch_done: Callable[[int, int], None] | None,
    finalize: Callable[[Comparison], None] | None,
    notes: list[str],
    options: dict[str, bool],
) -> Comparison:
    """Answer what the cache holds, generate the rest (batched), and finish the comparison."""
    stream = _Stream(variants, view, update_interval)
    hits = _rendered_hits(variants, responses.lookup(), notes)
    responses.hits = hits
    for index, column in hits.items():
        stream.outputs[index] = column.outputs
        stream.cached.add(index)
    pending = [i for i in range(len(variants)) if i not in hits]
    batches = [
        [(pending[v], s) for v, s in batch]
        for batch in _group([variants[i] for i in pending], batch_size)
    ]
    open_view(view, stream, stop, notes, len(batches))
    stream.push(force=True)  # cached columns show at once
    schedule = _Schedule(variants, batches, stream, stop, view, on_batch_done, notes)
    schedule.seeds.update((i, column.seed) for i, column in hits.items())
    with UiPump() as pump:
        if len({id(variants[batch[0][0]].engine) for batch in batches}) > 1:
            schedule.run_concurrently(pump, **options)
        else:
            schedule.run_in_turn(pump, **options)
    return _finish(
        variants,
        stream,
        schedule.seeds,
        schedule.error,
        stop,
        title,
        batch_size,
        view,
        finalize,
        notes,
        responses,
        schedule.failed,
    )


def _rendered_hits(
    variants: Sequence[Variant], hits: dict[int, CachedColumn], notes: list[str]
) -> dict[int, CachedColumn]:
    """The cache's answers, each dataset item among them read and its prompt rendered one at
    a time (its record and row show the prompt and the item; the item is released again). An
    item that cannot be read now is left to its batch, which says why."""
    kept: dict[int, CachedColumn] = {}
    for index, column in hits.items():
        variant = variants[index]
        if variant.rendered is None and is_deferred(variant.media):
            try:
                prepare(variant, notes)
            except LmWidgetsError:
                variant.rendered = None
                continue
            finally:
                for item in variant.media:
                    item.release()
            variant.rendered.payload = None
        kept[index] = column
    return kept


class _Schedule:
    """Runs a comparison's batches: in turn on one engine, or one worker per engine when the
    comparison spans several models (a served model's requests do not wait for the kernel's
    model). Only the calling thread talks to the view and the kernel's UI events."""

    def __init__(
        self,
        variants: Sequence[Variant],
        batches: list[list[tuple[int, int]]],
        stream: _Stream,
        stop: StopSignal,
        view: Any,
        on_batch_done: Callable[[int, int], None] | None,
        notes: list[str] | None = None,
    ) -> None:
        self.variants = variants
        self.notes = notes if notes is not None else []
        #: Columns whose dataset item could not be read when their batch came (by index): why.
        self.failed: dict[int, str] = {}
        self.batches = batches
        self.stream = stream
        self.stop = stop
        self.view = view
        self.on_batch_done = on_batch_done
        # Each column's seed: its own, or (sampling without one) one drawn now and recorded, so
        # that the column, all its samples included, can be run again.
        self.seeds: dict[int, int | None] = {
            index: batch_seed([variant.settings.temperature], variant.settings.seed)
            for index, variant in enumerate(variants)
        }
        self.error: BaseException | None = None
        self.done = 0
        self._lock = threading.Lock()

    def _record(self, batch: list[tuple[int, int]], outcome: BatchOutcome) -> None:
        with self._lock:
            for (v, s), used in zip(batch, outcome.row_seeds, strict=False):
                if s == 0 and used is not None:  # the seed the engine says it sampled with
                    self.seeds[v] = used
            self.done += 1
            if outcome.error is not None and self.error is None:
                self.error = outcome.error

    def _ready(self, batch: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The batch's rows whose prompts are ready: a dataset item's media are read now (a
        column whose item cannot be read is marked failed, with a note, and left out)."""
        for v in dict.fromkeys(v for v, _ in batch):
            variant = self.variants[v]
            if variant.rendered is not None or v in self.failed:
                continue
            try:
                with self._lock:
                    prepare(variant, self.notes)
            except LmWidgetsError as exc:
                with self._lock:
                    self.failed[v] = str(exc)
                    note = (
                        f"{variant.label} · {variant.input}: its item's media could not be read "
                        f"({exc}); its cells are marked, the other items ran."
                    )
                    if note not in self.notes:
                        self.notes.append(note)
        return [(v, s) for v, s in batch if v not in self.failed]

    def _release(self, batch: list[tuple[int, int]]) -> None:
        """Drop what a dataset item's media decoded to once its batch is done (the previews,
        records and prompt text stay)."""
        for v in dict.fromkeys(v for v, _ in batch):
            variant = self.variants[v]
            if is_deferred(variant.media):
                for item in variant.media:
                    item.release()
                if variant.rendered is not None:
                    variant.rendered.payload = None

    def _generate(
        self,
        batch: list[tuple[int, int]],
        on_step: Callable[[list[RowOutput]], None],
        options: dict[str, bool],
    ) -> BatchOutcome:
        """One batch: its items' media read, generated, and released again."""
        rows = self._ready(batch)

        def in_batch(outputs: list[RowOutput]) -> list[RowOutput]:
            """The rows' outputs in the batch's order (a failed item's rows: an error)."""
            if len(rows) == len(batch):
                return outputs
            by_row = dict(zip(rows, outputs, strict=False))
            return [by_row.get(row, RowOutput(finish_reason="error")) for row in batch]

        try:
            if not rows:
                on_step(in_batch([]))
                return BatchOutcome(outputs=in_batch([]), seconds=0.0, seed=None)
            outcome = _run_batch(
                self.variants,
                rows,
                self.seeds,
                lambda o: on_step(in_batch(o)),
                self.stop,
                **options,
            )
            seeds = dict(zip(rows, outcome.row_seeds, strict=False))
            outcome.outputs = in_batch(outcome.outputs)
            outcome.row_seeds = [seeds.get(row) for row in batch]
            return outcome
        finally:
            self._release(batch)

    def _report_progress(self) -> None:
        if self.view is not None:
            self.view.progress(self.done, len(self.batches))
        if self.on_batch_done is not None:
            self.on_batch_done(self.done, len(self.batches))

    def run_in_turn(self, pump: UiPump, **options: bool) -> None:
        """One batch after another; UI events are polled between decoding steps."""
        for batch in self.batches:
            if self.stop.is_set():
                break

            def on_step(outputs: list[RowOutput], batch: list[tuple[int, int]] = batch) -> None:
                self.stream.collect(batch, outputs)
                pump.poll()
                self.stream.push()

            try:
                outcome = self._generate(batch, on_step, options)
            except Exception as exc:  # a failing engine (or reply function): said, kept
                outcome = BatchOutcome(outputs=[], seconds=0.0, seed=None, error=exc)
            self._record(batch, outcome)
            self.stream.push(force=True)
            self._report_progress()
            if self.error is not None:
                break

    def run_concurrently(self, pump: UiPump, **options: bool) -> None:
        """One worker thread per engine; this thread streams their text and polls the UI."""
        by_engine: dict[int, list[list[tuple[int, int]]]] = {}
        for batch in self.batches:
            by_engine.setdefault(id(self.variants[batch[0][0]].engine), []).append(batch)
        workers = [
            threading.Thread(
                target=self._work, args=(batches, options), name="lmwidgets-engine", daemon=True
            )
            for batches in by_engine.values()
        ]
        reported = 0
        try:
            for worker in workers:
                worker.start()
            while any(worker.is_alive() for worker in workers):
                time.sleep(0.02)
                pump.poll()
                self.stream.push()
                if self.done != reported:
                    reported = self.done
                    self._report_progress()
        except KeyboardInterrupt as exc:
            self.stop.set()
            with self._lock:
                self.error = self.error or exc
        finally:
            for worker in workers:  # a worker that failed leaves the others' columns running
                worker.join()
        self.stream.push(force=True)
        self._report_progress()

    def _work(self, batches: list[list[tuple[int, int]]], options: dict[str, bool]) -> None:
        for batch in batches:
            if self.stop.is_set() or self.error is not None:
                return

            def on_step(outputs: list[RowOutput], batch: list[tuple[int, int]] = batch) -> None:
                self.stream.collect(batch, outputs)

            try:
                outcome = self._generate(batch, on_step, options)
            except BaseException as exc:  # reported by the calling thread, never lost
                outcome = BatchOutcome(outputs=[], seconds=0.0, seed=None, error=exc)
            self._record(batch, outcome)


def _shown_in(result: Result, run_id: str) -> Result:
    """A column shown as it ran. An earlier run's (``--vs``) stays that run's; a forked row's
    joins this run (its record's ``run``; where it was generated stays in ``generated_in``),
    so that re-running the fork's records re-runs the row and its fork together."""
    from lmwidgets.run.fork import KEPT

    if result.record.get("shown_as") != KEPT:
        return result
    record = {**result.record, "run": run_id}
    record.setdefault("generated_in", result.record.get("run"))
    return replace(result, record=record)  # the variant's copy stays as the fork made it


def _finish(
    variants: Sequence[Variant],
    stream: _Stream,
    seeds: dict[int, int | None],
    error: BaseException | None,
    stop: StopSignal,
    title: str,
    batch_size: int,
    view: Any,
    finalize: Callable[[Comparison], None] | None,
    notes: list[str],
    responses: RunCache | None = None,
    failed: dict[int, str] | None = None,
) -> Comparison:
    """Turn the streamed outputs into the :class:`Comparison`, keep its whole generated columns
    in the response cache, show it, and raise what ended it."""
    run_id = uuid.uuid4().hex[:16]
    message = error_message(error)
    hits = responses.hits if responses is not None else {}
    results = []
    for index, variant in enumerate(variants):
        if variant.precomputed is not None:
            results.append(_shown_in(variant.precomputed, run_id))
            continue
        why = (failed or {}).get(index)
        outputs = stream.outputs[index] or [RowOutput(finish_reason="stopped")]
        if why is not None:
            outputs = [RowOutput(finish_reason="error")]
        texts = stream.decode(index) or [""]
        results.append(
            _result(
                variant,
                outputs,
                texts,
                seeds.get(index),
                batch_size,
                run_id,
                why or message,
                hits.get(index),
            )
        )
        if why is not None:  # the item's media could not be read: said in its cells
            results[-1].extras["media_error"] = why
            results[-1].record["output"]["media_error"] = why
    if responses is not None:
        responses.store(variants, stream.outputs, seeds, run_id, now_iso())
    status = run_status(error, stop)
    comparison = Comparison(
        results, title=title, status=status, notes=notes, media=media_data(variants)
    )
    return conclude(comparison, error, message, view, finalize)


__all__ = [
    "GenerationError",
    "Variant",
    "answer_confidence",
    "check_token_logprobs",
    "prepare",
    "run_variants",
    "token_dicts",
]
