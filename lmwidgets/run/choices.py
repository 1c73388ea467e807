"""Running columns of given choices: score every choice, pick, score against ``expected``.

No generation: the variants (each with :attr:`~lmwidgets.core.variant.Variant.choices`) are
rendered, grouped by model into batches of ``batch_size`` prompts, and every batch goes to the
engine's ``score_choices`` at once (the transformers engine computes each prompt once and all
the batch's choices in one more pass). A column's answer is lm-eval's ``acc`` pick, with the
``acc_norm`` pick beside it (:mod:`lmwidgets.engines.choices`); with ``expected`` (a choice's
text) it is right when the ``acc`` pick is that choice, and ``Comparison.notes`` says each
column's ``acc_norm`` accuracy too. ``--score perplexity`` columns report ``expected``'s
log-likelihood per token and its perplexity instead.

Records keep everything under ``record["choices"]``: ``options`` (the choices),
``logprobs`` (rounded to 6 decimals), ``n_tokens``, ``greedy``, ``acc``, ``acc_norm``,
``acc_norm_correct``, ``perplexity`` and ``per_token``; :func:`lmwidgets.rerun` scores them
again.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast

from lmwidgets.core.results import Comparison, Result, choice_extras
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import RowOutput, StopSignal
from lmwidgets.engines.choices import (
    ChoiceRequest,
    ChoiceScore,
    ChoiceScorer,
    ScoringStopped,
    acc_norm_pick,
    acc_pick,
)
from lmwidgets.errors import PromptTooLongError
from lmwidgets.run.flow import conclude, error_message, open_view, run_status, split_batches

#: Decimals a record keeps of each choice's log-probability.
CHOICE_DIGITS = 6


def is_choice_run(variants: Sequence[Variant]) -> bool:
    """Whether ``variants`` score given choices (then :func:`run_choice_variants` runs them)."""
    return any(v.choices is not None and v.precomputed is None for v in variants)


def recorded_choices(record: dict[str, Any]) -> dict[str, Any]:
    """The :class:`Variant` fields a record of given choices re-runs with (``choices``,
    ``perplexity``); none for a generated column."""
    choices = record.get("choices")
    if not isinstance(choices, dict) or not isinstance(choices.get("options"), list):
        return {}
    return {
        "choices": [str(c) for c in choices["options"]],
        "perplexity": bool(choices.get("perplexity")),
    }


def _prepare(variant: Variant) -> None:
    engine = variant.engine
    variant.rendered = engine.render(variant.messages, variant.media)
    variant.max_new_tokens = variant.settings.max_new_tokens
    context = engine.capabilities.context_length
    if context is not None and variant.rendered.n_tokens >= context:
        raise PromptTooLongError(
            f"The prompt for {variant.label!r} has {variant.rendered.n_tokens:,} tokens, but "
            f"{engine.name} reads at most {context:,}: there is no room for the choices."
        )


def _batches(variants: Sequence[Variant], batch_size: int) -> list[list[int]]:
    """Indexes of the variants scored together: per model, ``batch_size`` prompts at a time."""
    groups: dict[int, list[int]] = {}
    for index, variant in enumerate(variants):
        if variant.precomputed is None:
            groups.setdefault(id(variant.engine), []).append(index)
    return split_batches(groups.values(), batch_size)


def run_choice_variants(
    variants: Sequence[Variant],
    *,
    title: str = "",
    view: Any = None,
    stop: StopSignal | None = None,
    batch_size: int = 16,
    finalize: Callable[[Comparison], None] | None = None,
) -> Comparison:
    """Score every variant's choices (batched) and return the :class:`Comparison`; a failure
    or an interrupt keeps the columns scored so far, as generation does. A stop (the Stop
    button) ends the batch being scored where the engine can (a model in the kernel: at its
    next layer), keeping the batch's prompts scored whole before it."""
    from lmwidgets.notebook.ui_events import UiPump
    from lmwidgets.run.runner import _Stream

    stop = stop or StopSignal()
    for variant in variants:
        if variant.precomputed is None:
            _prepare(variant)
    batches = _batches(variants, batch_size)
    notes: list[str] = []
    open_view(view, _Stream(variants, view, 0.1), stop, notes, len(batches))
    scored: dict[int, tuple[list[ChoiceScore], float]] = {}
    error: BaseException | None = None
    started = time.perf_counter()
    with UiPump() as pump:
        for done, batch in enumerate(batches, start=1):
            pump.poll(force=True)  # a Stop click between batches (kernels that need polling)
            if stop.is_set():
                break
            began = time.perf_counter()
            try:
                scored.update(_score_batch(variants, batch, stop))
            except ScoringStopped as stopped:  # during the batch: its prompts scored whole
                seconds = time.perf_counter() - began
                scored.update((batch[n], (s, seconds)) for n, s in enumerate(stopped.partial))
                break
            except (Exception, KeyboardInterrupt) as exc:  # said on the failed columns, kept
                error = exc
                break
            if view is not None:
                view.progress(done, len(batches))
    return _finish(variants, scored, error, stop, title, batch_size, view, finalize, notes, started)


def _score_batch(
    variants: Sequence[Variant], batch: list[int], stop: StopSignal
) -> dict[int, tuple[list[ChoiceScore], float]]:
    engine = cast(ChoiceScorer, variants[batch[0]].engine)
    requests = [
        ChoiceRequest(variants[i].rendered, tuple(variants[i].choices or ()), variants[i].adapter)
        for i in batch
    ]
    began = time.perf_counter()
    results = engine.score_choices(requests, stop=stop)
    seconds = time.perf_counter() - began
    return {index: (list(scores), seconds) for index, scores in zip(batch, results, strict=True)}


def _finish(
    variants: Sequence[Variant],
    scored: dict[int, tuple[list[ChoiceScore], float]],
    error: BaseException | None,
    stop: StopSignal,
    title: str,
    batch_size: int,
    view: Any,
    finalize: Callable[[Comparison], None] | None,
    notes: list[str],
    started: float,
) -> Comparison:
    """The comparison of the scored columns (unscored ones stopped or failed), shown, and
    what ended the run raised with it."""
    run_id = uuid.uuid4().hex[:16]
    message = error_message(error)
    results = []
    for index, variant in enumerate(variants):
        if variant.precomputed is not None:
            results.append(variant.precomputed)
        elif index in scored:
            scores, seconds = scored[index]
            results.append(choice_result(variant, scores, seconds, batch_size, run_id))
        else:
            reason = "error" if error is not None and not _interrupt(error) else "stopped"
            results.append(_unscored(variant, reason, message, batch_size, run_id))
    comparison = Comparison(results, title=title, status=run_status(error, stop), notes=notes)
    comparison.seconds = time.perf_counter() - started
    summarize(comparison)
    return conclude(comparison, error, message, view, finalize)


def _interrupt(error: BaseException) -> bool:
    return isinstance(error, KeyboardInterrupt)


def _choice_record(variant: Variant, scores: list[ChoiceScore]) -> dict[str, Any]:
    """What a record keeps of a column's choices (see the module docstring)."""
    options = list(variant.choices or [])
    logprobs = [round(s.logprob, CHOICE_DIGITS) for s in scores]
    record: dict[str, Any] = {
        "options": options,
        "logprobs": logprobs,
        "n_tokens": [s.n_tokens for s in scores],
        "greedy": [s.greedy for s in scores],
        "acc": acc_pick([s.logprob for s in scores]),
        "acc_norm": acc_norm_pick([s.logprob for s in scores], options),
        "perplexity": variant.perplexity,
    }
    if variant.perplexity:
        per_token = scores[0].logprob / max(scores[0].n_tokens, 1)
        record["per_token"] = round(per_token, CHOICE_DIGITS)
    elif variant.expected is not None and variant.expected in options:
        record["acc_norm_correct"] = record["acc_norm"] == options.index(variant.expected)
    return record


def choice_result(
    variant: Variant, scores: list[ChoiceScore], seconds: float, batch_size: int, run_id: str
) -> Result:
    """One column's :class:`Result` (and record) from its choices' scores."""
    from lmwidgets.run.runner import _record

    choices = _choice_record(variant, scores)
    if variant.perplexity:
        text, answer = perplexity_text(choices["per_token"], scores[0].n_tokens), None
    else:
        text = answer = choices["options"][choices["acc"]]
    output = RowOutput(finish_reason="eos", seconds=seconds)
    record = _record(variant, text, answer, [output], None, {}, batch_size, run_id)
    record["choices"] = choices
    record["scorer"] = "perplexity" if variant.perplexity else "likelihood"
    result = Result(
        variant=variant.label,
        text=text,
        prompt=variant.prompt_text,
        tokens=0,
        seconds=record["timing"]["seconds"],
        record=record,
        answer=answer,
        strategy=variant.strategy,
        model=variant.engine.name,
        adapter=variant.adapter,
        input=variant.input,
        expected=variant.expected,
        extras=choice_extras(record),
        choice_logprobs=[s.logprob for s in scores],
        media=[item.record() for item in variant.media],
    )
    _score(result, choices)
    return result


def perplexity_text(per_token: float, n_tokens: int) -> str:
    """``expected``'s log-likelihood per token and its perplexity, in words."""
    return (
        f"log-likelihood per token {per_token:.4f} over {n_tokens} token"
        f"{'' if n_tokens == 1 else 's'} (perplexity {_perplexity(per_token):.3g})"
    )


def _perplexity(per_token: float) -> float:
    """``exp(-per_token)``, infinite rather than an overflow."""
    return math.exp(-per_token) if per_token > -700 else math.inf


def _score(result: Result, choices: dict[str, Any]) -> None:
    """A column with ``expected``: right when the ``acc`` pick is it (perplexity: no verdict,
    its numbers)."""
    if result.expected is None:
        return
    if choices["perplexity"]:
        result.verdict = f"{choices['per_token']:.3f} per token"
        result.record.update(verdict=result.verdict, score=None, correct=None, compared=None)
        return
    right = result.answer == result.expected
    result.score, result.correct, result.compared = float(right), right, result.answer
    result.verdict = f"chose {result.answer}"
    result.record.update(
        score=result.score, correct=right, compared=result.compared, verdict=result.verdict
    )


def _unscored(
    variant: Variant, reason: str, message: str | None, batch_size: int, run_id: str
) -> Result:
    from lmwidgets.run.runner import _record

    output = RowOutput(finish_reason=reason)
    record = _record(variant, "", None, [output], None, {}, batch_size, run_id)
    return Result(
        variant=variant.label,
        text="",
        prompt=variant.prompt_text,
        tokens=0,
        seconds=0.0,
        record=record,
        strategy=variant.strategy,
        model=variant.engine.name,
        adapter=variant.adapter,
        finish_reason=reason,
        error=message if reason == "error" else None,
        input=variant.input,
        expected=variant.expected,
    )


def summarize(comparison: Comparison) -> None:
    """Each column's accuracy by ``acc`` (``Comparison.scores``) and a note with its
    ``acc_norm`` accuracy; for ``--score perplexity`` a note with each column's mean
    log-likelihood per token."""
    acc: dict[str, list[float]] = {}
    norm: dict[str, list[bool]] = {}
    per_token: dict[str, list[float]] = {}
    for result in comparison.results:
        choices = result.record.get("choices") if result.choice_logprobs is not None else None
        if not isinstance(choices, dict):
            continue
        if "per_token" in choices:
            per_token.setdefault(result.variant, []).append(float(choices["per_token"]))
        if result.score is not None:
            acc.setdefault(result.variant, []).append(result.score)
        if "acc_norm_correct" in choices:
            norm.setdefault(result.variant, []).append(bool(choices["acc_norm_correct"]))
    comparison.scores.update({label: sum(v) / len(v) for label, v in acc.items()})
    if norm:
        shown = ", ".join(f"{label} {sum(v) / len(v):.0%}" for label, v in norm.items())
        comparison.notes.append(f"acc_norm (length-normalized pick, as lm-eval): {shown}.")
    if per_token:
        shown = ", ".join(
            f"{label} {sum(v) / len(v):.4f} (perplexity {_perplexity(sum(v) / len(v)):.3g})"
            for label, v in per_token.items()
        )
        comparison.notes.append(f"Mean log-likelihood per token of expected: {shown}.")


#: Most choices a cell (and the static copy) draws as bars; the rest are counted.
MAX_CHOICE_BARS = 26


def choice_bars(result: Result, limit: int = MAX_CHOICE_BARS) -> dict[str, Any] | None:
    """What the view and the static copy draw for a column of given choices: each choice's
    text, probability among the choices and log-probability, the ``acc`` and ``acc_norm``
    picks, the expected choice (-1: none) and how many choices were left out; None for a
    generated (or perplexity) column."""
    from lmwidgets.engines.choices import probabilities

    logprobs = getattr(result, "choice_logprobs", None)  # stand-ins in tests have none
    texts = result.extras.get("choices")
    if logprobs is None or not isinstance(texts, list) or result.extras.get("perplexity"):
        return None
    texts = [str(t) for t in texts]
    expected = texts.index(result.expected) if result.expected in texts else -1
    return {
        "texts": texts[:limit],
        "probs": [round(p, 6) for p in probabilities(logprobs)][:limit],
        "logprobs": [round(float(v), 4) for v in logprobs][:limit],
        "acc": int(result.extras.get("acc", 0)),
        "acc_norm": int(result.extras.get("acc_norm", 0)),
        "expected": expected,
        "more": max(0, len(texts) - limit),
    }
