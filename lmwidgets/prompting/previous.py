"""``--vs previous`` and ``--vs VAR``: an earlier run's columns beside this run's, each new
column compared with its earlier counterpart (the same coordinates, else the same label).

The earlier columns are shown as they are (nothing re-runs): they are variants with a
``precomputed`` result, marked ``previous`` on the ``run`` axis (this run's columns are
``this``), so the layout puts them side by side like any other axis. Their records keep the
run they came from and say ``"shown_as": "previous"``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lmwidgets.core.layout import coordinates
from lmwidgets.core.results import Comparison, Result
from lmwidgets.errors import InvalidArgumentError

if TYPE_CHECKING:
    from lmwidgets.prompting.strategies import Plan

#: The ``run`` axis' values.
THIS, PREVIOUS = "this", "previous"
#: How many changed answers a run's note names.
NOTE_EXAMPLES = 3


def _key(result_or_variant: Any, indexed: bool = False) -> tuple[tuple[str, str], ...]:
    """What pairs a column with its earlier counterpart: its coordinates but the run, and its
    dataset item (its input, and with ``indexed`` its number: items may share a question)."""
    coords = coordinates(result_or_variant)
    coords.pop("run", None)
    item = [("input", str(getattr(result_or_variant, "input", None)))]
    if indexed:
        item.append(("item", str(getattr(result_or_variant, "item_index", None))))
    return (*sorted(coords.items()), *item)


def previous_result(result: Result) -> Result:
    """A copy of an earlier column, marked as the previous run's."""
    record = copy.deepcopy(result.record)
    label = f"{result.variant} · previous"
    axes = dict(record.get("axes") or coordinates(result))
    axes["run"] = PREVIOUS
    record.update(variant=label, axes=axes, shown_as=PREVIOUS)
    return replace(result, variant=label, record=record)


def with_previous(plan: Plan, previous: Comparison) -> None:
    """Add ``previous``'s columns to ``plan`` beside its own (all marked on the ``run`` axis)
    and a finisher that compares each new column with its counterpart."""
    if not isinstance(previous, Comparison):
        raise InvalidArgumentError(
            f"--vs takes 'previous' or a variable holding a Comparison (an earlier %%prompt "
            f"--out), not {type(previous).__name__}."
        )
    if not previous.results:
        raise InvalidArgumentError("--vs: the earlier run has no columns to compare with.")
    for variant in plan.variants:
        variant.coords = {**variant.coords, "run": THIS}
    engine = plan.variants[0].engine
    own = [r for r in previous.results if r.record.get("shown_as") != PREVIOUS]
    earlier = [previous_result(result) for result in own]
    plan.variants.extend(
        replace(
            plan.variants[0],
            label=result.variant,
            precomputed=result,
            coords=dict(result.record["axes"]),
            input=result.input,
            item_index=result.item_index,
            expected=result.expected,
            engine=engine,
            fork=None,
            media=[],
        )
        for result in earlier
    )
    plan.finishers.append(_compare_with(earlier))


def pairs(results: Sequence[Result], earlier: Sequence[Result]) -> list[tuple[Result, Result]]:
    """Each new result with its earlier counterpart: the same coordinates (and item), else the
    same label, else (same number of columns) the same position."""
    indexed = bool(earlier) and all(r.item_index is not None for r in earlier)
    by_key = {_key(r, indexed): r for r in earlier}
    by_label = {r.variant.removesuffix(" · previous"): r for r in earlier}
    found = []
    for index, result in enumerate(results):
        match = by_key.get(_key(result, indexed)) or by_label.get(result.variant)
        if match is None and len(results) == len(earlier):
            match = earlier[index]
        if match is not None:
            found.append((result, match))
    return found


def _compare_with(earlier: list[Result]) -> Callable[[Comparison], None]:
    def compare(comparison: Comparison) -> None:
        new = [r for r in comparison.results if r.record.get("shown_as") != PREVIOUS]
        changed = []
        for result, before in pairs(new, earlier):
            answer_changed = (result.answer or "").strip() != (before.answer or "").strip()
            result.extras["vs"] = {
                "label": before.variant,
                "text_changed": result.text != before.text,
                "answer_changed": answer_changed,
                "previous_answer": before.answer,
            }
            result.record["vs"] = dict(result.extras["vs"])
            result.extras["vs"]["previous_text"] = before.text  # for the diff, not the record
            if answer_changed:
                changed.append(f"{result.variant}: {before.answer!r} → {result.answer!r}")
        note = f"vs previous: {len(changed)} of {len(new)} answers changed"
        if changed:
            shown = "; ".join(changed[:NOTE_EXAMPLES])
            more = (
                f" (+{len(changed) - NOTE_EXAMPLES} more)" if len(changed) > NOTE_EXAMPLES else ""
            )
            note += f" ({shown}{more})"
        comparison.notes.append(note)

    return compare
