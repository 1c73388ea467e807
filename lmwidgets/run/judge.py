"""The judge pass: after generation, the judge model judges every column (batched on its engine).

The judge's calls run through :func:`lmwidgets.run.runner.run_variants` like any columns: in
batches on the judge's engine (a served judge's rows go out as concurrent requests), greedy with
a fixed seed so that ``rerun`` gives the same verdicts, answered from the response cache when it
holds them, and stopped by the run's Stop button. The live view's message line says how far the
pass is. A call that fails or a verdict that cannot be read leaves that column unjudged with a
note; the run itself never fails because of its judge.

Each column's record gains ``judge`` (:func:`judge_record`): the judge model, rubric, template
and settings, the exact prompt, the raw reply, the verdict read from it and the reasoning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmwidgets.core.progress import batch_progress
from lmwidgets.core.results import Comparison, Result
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import StopSignal
from lmwidgets.errors import GenerationError, GenerationInterrupted, LmWidgetsError
from lmwidgets.prompting.judge_format import verdict_constraint, verdict_part
from lmwidgets.prompting.judging import (
    LARGE_JUDGE_RUN,
    JudgeSpec,
    pairwise_messages,
    pairwise_outcome,
    parse_pick,
    pointwise_messages,
    pointwise_verdict,
    reasoning_of,
)

if TYPE_CHECKING:
    from lmwidgets.engines.base import Message

#: Unjudged columns named one by one in the notes before they are counted.
_NOTED = 5


@dataclass
class _Call:
    """One judge call: the column it judges and, pairwise, which order it asks."""

    index: int
    messages: list[Message]
    order: int = 0


def cost_note(spec: JudgeSpec, variants: Sequence[Variant]) -> str | None:
    """What a large judge run costs, said before it starts (None for a small one)."""
    calls = spec.calls(_rows(variants))
    if calls < LARGE_JUDGE_RUN:
        return None
    per = "two per column after the first (both orders)" if spec.pairwise else "one per column"
    return (
        f"Judging adds {calls:,} generations on {spec.engine.name} ({per}), after the "
        f"{sum(v.samples for v in variants):,} of the run itself."
    )


def _rows(items: Sequence[Any]) -> list[list[Any]]:
    """Variants or results per dataset item, as :attr:`Comparison.rows` makes them (item-major,
    one per column)."""
    width = len(dict.fromkeys(_label(item) for item in items)) or 1
    return [list(items[start : start + width]) for start in range(0, len(items), width)]


def _label(item: Any) -> str:
    return str(getattr(item, "variant", None) or getattr(item, "label", ""))


def judged(
    spec: JudgeSpec,
    *,
    view: Any,
    stop: StopSignal,
    cache: bool | None,
    batch_size: int,
    finalize: Callable[[Comparison], None] | None,
) -> Callable[[Comparison], None]:
    """A run's finalizer that judges the comparison first, then runs ``finalize``."""

    def finish(comparison: Comparison) -> None:
        run_judge(comparison, spec, view=view, stop=stop, cache=cache, batch_size=batch_size)
        if finalize is not None:
            finalize(comparison)

    return finish


def run_judge(
    comparison: Comparison,
    spec: JudgeSpec,
    *,
    view: Any = None,
    stop: StopSignal | None = None,
    cache: bool | None = False,
    batch_size: int = 16,
) -> None:
    """Judge every column of ``comparison`` in place (records, notes and, with ``--score
    judge``, its scores)."""
    stop = stop or StopSignal()
    calls = _plan(comparison, spec)
    missing = "not judged: judging was stopped"
    if stop.is_set():
        replies: list[Result | None] = [None] * len(calls)
        comparison.notes.append("The run was stopped before judging: no column was judged.")
    else:
        replies, failure = _generate(calls, spec, view, stop, cache, batch_size)
        if failure is not None:
            comparison.notes.append(f"Judging ended early: {failure}")
            missing = f"not judged: the judge failed ({failure[:160]})"
    replies += [None] * (len(calls) - len(replies))
    if spec.pairwise:
        _apply_pairwise(comparison, spec, calls, replies, missing)
    else:
        _apply_pointwise(comparison, spec, calls, replies, missing)
    if spec.score:
        score_by_judge(comparison)
    comparison.notes.extend(summary_lines(comparison))
    if spec.constraint is None and spec.free and spec.free.startswith("cannot enforce"):
        comparison.notes.append(
            f"The judge's verdict format was not enforced ({spec.free[len('cannot enforce: ') :]}"
            "): its replies are free text, read by the robust parser."
        )


def _judgeable(result: Result) -> str | None:
    """Why ``result`` cannot be judged (None: it can)."""
    if result.error is not None or result.finish_reason == "error":
        return "not judged: the column failed"
    if result.finish_reason in ("stopped", "running"):
        return "not judged: the column was stopped"
    return None


def _judged_by(result: Result, spec: JudgeSpec, first: Result) -> bool:
    """Whether ``result`` is shown as it ran (a forked row's column, an earlier run's beside
    this one) with a verdict of this very judge: the same model, rubric, wording and settings,
    and pairwise against the same first column (a fresh column has none). Greedy judging
    would give that verdict again."""
    judge = result.record.get("judge")
    if not result.record.get("shown_as") or not isinstance(judge, dict):
        return False
    if spec.pairwise:
        if judge.get("outcome") is None or judge.get("against") != first.variant:
            return False
    elif judge.get("value") is None:
        return False
    return all(judge.get(key) == value for key, value in spec.record().items())


def _plan(comparison: Comparison, spec: JudgeSpec) -> list[_Call]:
    """The judge calls of every column that can be judged; the others are marked unjudged."""
    results = comparison.results
    position = {id(result): index for index, result in enumerate(results)}
    calls: list[_Call] = []
    for row in _rows(results):
        first = row[0]
        for result in row:
            why = _judgeable(result)
            if spec.pairwise and result is first:
                result.record["judge"] = {**spec.record(), "baseline": True, "label": None}
                continue
            if spec.pairwise and why is None:
                why = _judgeable(first) and "not judged: the first column did not finish"
            if why is None and _judged_by(result, spec, first):
                continue  # a forked row's column, judged as it ran: its verdict stands
            if why is not None:
                result.record["judge"] = {**spec.record(), "value": None, "label": None}
                result.record["judge"]["note"] = why
                continue
            index = position[id(result)]
            if not spec.pairwise:
                calls.append(_Call(index, pointwise_messages(spec, result.record, result.text)))
                continue
            calls.append(
                _Call(index, pairwise_messages(spec, result.record, result.text, first.text), 0)
            )
            calls.append(
                _Call(index, pairwise_messages(spec, result.record, first.text, result.text), 1)
            )
    return calls


def _generate(
    calls: list[_Call],
    spec: JudgeSpec,
    view: Any,
    stop: StopSignal,
    cache: bool | None,
    batch_size: int,
) -> tuple[list[Result | None], str | None]:
    """Every call's reply as a :class:`Result` (None where the pass ended before it), and what
    ended the pass early (None: nothing did, or Stop)."""
    from lmwidgets.run.runner import run_variants

    if not calls:
        return [], None
    variants = [
        Variant(
            label=f"judge {number}",
            messages=call.messages,
            engine=spec.engine,
            settings=spec.settings,
            strategy="judge",
            constraint=_format(spec, call.messages),
            enforced=spec.constraint is not None,
        )
        for number, call in enumerate(calls, start=1)
    ]
    progress = _Progress(view, spec.engine.name, len(calls), -(-len(calls) // batch_size))
    try:
        judged = run_variants(
            variants,
            title="judge",
            stop=stop,
            batch_size=batch_size,
            on_batch_done=progress,
            cache=cache,
        )
    except GenerationInterrupted as exc:  # the kernel was interrupted: as Stop
        stop.set("interrupted")
        partial = exc.partial
        return (list(partial.results) if partial is not None else []), None
    except GenerationError as exc:
        partial = exc.partial
        return (list(partial.results) if partial is not None else []), str(exc)[:300]
    except LmWidgetsError as exc:  # e.g. a judge prompt longer than the judge's context
        return [], str(exc)[:300]
    except Exception as exc:  # a judge that cannot even render its prompt: said, not raised
        return [], f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        progress.done()
    return list(judged.results), None


def _format(spec: JudgeSpec, messages: list[Message]) -> Any:
    """The verdict format one call is held to: the spec's, or, where the judge's context leaves
    less than ``judge_tokens`` after this prompt, one whose reasoning fits what is left (so the
    verdict is never cut off)."""
    if spec.constraint is None:
        return None
    tokens = spec.settings.max_new_tokens or 0
    context = spec.engine.capabilities.context_length
    if context is None:
        return spec.constraint
    try:
        left = context - spec.engine.render(messages).n_tokens
    except Exception:  # the runner says what is wrong with this prompt
        return spec.constraint
    if left >= tokens:
        return spec.constraint
    return verdict_constraint(spec.rubric.scale, spec.pairwise, max(0, left))


class _Progress:
    """The live view's progress line while the judge runs."""

    def __init__(self, view: Any, judge: str, calls: int, batches: int) -> None:
        self.view, self.judge, self.calls = view, judge, calls
        self._message = ""
        self._started = time.perf_counter()
        if view is not None:
            self._message = getattr(view.widget, "message", "")
            self(0, batches)

    def __call__(self, done: int, total: int) -> None:
        if self.view is None:
            return
        line = f"Judging {self.calls} answer(s) with {self.judge}: batch {done} of {total}…"
        self.view.widget.message = "\n".join(m for m in (line, self._message) if m)
        text = batch_progress(done, total, time.perf_counter() - self._started)
        self.view.widget.progress = {"done": done, "total": total, "text": text}

    def done(self) -> None:
        if self.view is not None:
            self.view.widget.message = self._message


def _reply(result: Result | None, missing: str) -> tuple[str | None, str | None]:
    """A judge call's reply text, or None and why there is none (``missing``: why a reply
    that did not finish is missing: Stop, or the judge's failure)."""
    if result is None or result.finish_reason in ("stopped", "running"):
        return None, missing
    if result.finish_reason == "error":
        return None, f"not judged: the judge failed ({str(result.error or '')[:160]})"
    return result.text, None


def _call_record(call: _Call, result: Result | None, spec: JudgeSpec) -> dict[str, Any]:
    """The exact prompt (messages and rendered text) and raw reply of one judge call, and the
    format it was held to where the judge's context narrowed it (see :func:`_format`)."""
    record = result.record if result is not None else {}
    return {
        "prompt": {
            "messages": call.messages,
            "rendered": (record.get("prompt") or {}).get("rendered"),
        },
        "raw": result.text if result is not None else None,
        "cached": bool(record.get("cached")),
        **_narrowed(record, spec),
    }


def _narrowed(record: dict[str, Any], spec: JudgeSpec) -> dict[str, Any]:
    """``{"format": ...}`` when this call's format is not the spec's own, else nothing."""
    structured = (record.get("output") or {}).get("structured")
    used = structured.get("constraint") if isinstance(structured, dict) else None
    if used is None or spec.constraint is None or used == spec.constraint.record():
        return {}
    return {"format": used}


def _apply_pointwise(
    comparison: Comparison,
    spec: JudgeSpec,
    calls: list[_Call],
    replies: list[Result | None],
    missing: str,
) -> None:
    for call, reply in zip(calls, replies, strict=True):
        result = comparison.results[call.index]
        text, why = _reply(reply, missing)
        verdict: dict[str, Any] = {"value": None, "label": None, "note": why}
        if text is not None:
            verdict = pointwise_verdict(spec.rubric.scale, text, spec.constraint is not None)
        result.record["judge"] = {**spec.record(), **_call_record(call, reply, spec), **verdict}


def _apply_pairwise(
    comparison: Comparison,
    spec: JudgeSpec,
    calls: list[_Call],
    replies: list[Result | None],
    missing: str,
) -> None:
    by_column: dict[int, list[tuple[_Call, Result | None]]] = {}
    for call, reply in zip(calls, replies, strict=True):
        by_column.setdefault(call.index, []).append((call, reply))
    for index, pair in by_column.items():
        result = comparison.results[index]
        orders, picks, notes = [], [], []
        for call, reply in sorted(pair, key=lambda p: p[0].order):
            text, why = _reply(reply, missing)
            read = None if text is None else verdict_part(text, spec.constraint is not None)
            pick, unread = parse_pick(read) if read is not None else (None, why)
            picks.append(pick)
            if pick is None:
                notes.append(why or f"not judged: {unread}")
            orders.append(
                {
                    **_call_record(call, reply, spec),
                    "order": "column first" if call.order == 0 else "column second",
                    "pick": pick,
                    "reasoning": reasoning_of(text or ""),
                }
            )
        outcome = pairwise_outcome(picks)
        first = next(r for r in _rows(comparison.results) if any(x is result for x in r))[0]
        record = {**spec.record(), "against": first.variant, "calls": orders, "outcome": outcome}
        record["label"] = None if outcome is None else _pairwise_label(outcome, picks)
        record["reasoning"] = "\n\n".join(
            f"({o['order']}) {o['reasoning']}" for o in orders if o["reasoning"]
        )
        if outcome is None:
            record["note"] = notes[0]
        result.record["judge"] = record


def _pairwise_label(outcome: str, picks: list[str | None]) -> str:
    """``better``, ``worse``, ``tie``, or ``tie (orders disagree)`` when position bias made it."""
    if outcome == "tie" and "tie" not in picks:
        return "tie (orders disagree)"
    return outcome


def score_by_judge(comparison: Comparison) -> None:
    """``--score judge``: each column's judge verdict is its score (``4/5`` is 0.75, pass 1);
    an unjudged column is unscored, with the judge's note as the reason."""
    marks: dict[str, list[float]] = {}
    for result in comparison.results:
        verdict = result.record.get("judge") or {}
        value = verdict.get("value")
        result.record["scorer"] = "judge"
        if value is None:
            result.score = result.correct = result.compared = result.verdict = None
            result.score_error = str(verdict.get("note") or "not judged")
        else:
            result.score, result.correct = float(value), float(value) >= 0.5
            result.compared = verdict.get("label")
            result.verdict, result.score_error = "by the judge", None
            marks.setdefault(result.variant, []).append(float(value))
        result.record.update(
            score=result.score,
            correct=result.correct,
            compared=result.compared,
            verdict=result.verdict,
        )
        if result.score_error is not None:
            result.record["score_error"] = result.score_error
        else:
            result.record.pop("score_error", None)
    comparison.scores = {label: sum(v) / len(v) for label, v in marks.items()}


def summary_lines(comparison: Comparison) -> list[str]:
    """The judge's verdicts in a few lines: per column its mean score (or pass rate, or
    pairwise record against the first) and the columns left unjudged."""
    lines, unjudged = [], []
    per: dict[str, list[dict[str, Any]]] = {}
    judge_name, rubric = "", ""
    for result in comparison.results:
        verdict = result.record.get("judge")
        if not isinstance(verdict, dict) or verdict.get("baseline"):
            continue
        judge_name = str((verdict.get("model") or {}).get("name", ""))
        rubric = str((verdict.get("rubric") or {}).get("name", ""))
        if verdict.get("label") is None:
            where = f"{result.variant}" + (f" ({result.input[:40]!r})" if result.input else "")
            unjudged.append(f"{where}: {verdict.get('note') or 'not judged'}")
            continue
        per.setdefault(result.variant, []).append(verdict)
    parts = [f"{label} {_said(verdicts)}" for label, verdicts in per.items()]
    if parts:
        lines.append(f"Judge {judge_name} ({rubric}): " + "; ".join(parts))
    lines += unjudged[:_NOTED]
    if len(unjudged) > _NOTED:
        lines.append(f"…and {len(unjudged) - _NOTED} more unjudged.")
    return lines


def _said(verdicts: list[dict[str, Any]]) -> str:
    """One column's verdicts in words: ``mean 3.8/5 over 6``, ``passed 4 of 6``, ``better
    on 3, worse on 1, tie on 2 (vs A)``."""
    first = verdicts[0]
    if first.get("mode") == "pairwise":
        counts = {
            k: sum(v.get("outcome") == k for v in verdicts) for k in ("better", "worse", "tie")
        }
        said = ", ".join(f"{k} on {n}" for k, n in counts.items() if n)
        return f"{said} vs {first.get('against')}"
    if first.get("score") is not None or "score" in first:
        scores = [v["score"] for v in verdicts if v.get("score") is not None]
        return f"mean {sum(scores) / len(scores):.1f}/5 over {len(scores)}"
    passed = sum(bool(v.get("pass")) for v in verdicts)
    return f"passed {passed} of {len(verdicts)}"
