"""Your own ratings: thumbs up or down on a column, and which of two columns is better.

Ratings live in the run records, so a saved notebook keeps them and
:meth:`Comparison.from_records <lmwidgets.core.results.Comparison.from_records>` (a kernel
restart, :func:`lmwidgets.history`) finds them again; the records are the only copy, and the
:class:`Comparison` reads them back. A record may carry:

* ``rating``: ``{"value": "up" | "down", "time": ISO 8601}``, the thumbs on that column (that
  dataset item); absent when unrated;
* ``preferences``: a list of ``{"vs": <other column's label>, "outcome": "win" | "loss" |
  "tie", "blind": bool, "time": ...}`` (blind pairwise mode adds ``"seed"``, the shuffle's seed,
  and ``"shown"``, the two labels in the order they were shown as A and B). A preference is kept
  in the record of the column named first, against a column of the same dataset item; rating the
  same pair again replaces it. It names the columns by label, never by position.

Who rates: :meth:`Comparison.rate` and :meth:`Comparison.prefer` from code, the live view's
thumbs and blind pairwise mode from the browser (both end here). Views that show a comparison
follow its ratings through :func:`watch`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmwidgets.errors import RatingError

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result

#: The values a rating takes.
RATINGS = ("up", "down")
#: How a preference ends, seen from the column that holds it.
OUTCOMES = ("win", "loss", "tie")
#: The axes that name a variant across comparisons (the leaderboard's identity), in order;
#: ``strategy``, ``model`` and ``adapter`` always, the others when the run varied them.
IDENTITY_AXES = ("model", "adapter", "strategy", "prompt", "system", "temperature", "top_p")

#: The attribute of a Comparison that holds its watchers (on the object itself, so that a
#: view that watches the comparison it holds is collected with it).
_WATCHERS = "_rating_watchers"


@dataclass(frozen=True)
class Preference:
    """One pairwise judgment between two columns of the same dataset item: ``winner`` is the
    label of the better one, None for a tie."""

    a: str
    b: str
    winner: str | None
    row: int = 0
    blind: bool = False
    seed: int | None = None
    time: str = ""

    @property
    def tie(self) -> bool:
        return self.winner is None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def rating_value(value: Any) -> str | None:
    """``"up"``, ``"down"`` or None (clear) from what a user may pass: those words (any case),
    ``1`` / ``-1``, ``True`` / ``False`` or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "up" if value else "down"
    if isinstance(value, int) and value in (1, -1):
        return "up" if value == 1 else "down"
    if isinstance(value, str) and value.strip().lower() in RATINGS:
        return value.strip().lower()
    try:
        shown = f"{type(value).__name__} {value!r:.40}"
    except Exception:  # a user's object with a broken __repr__
        shown = type(value).__name__
    raise RatingError(f"A rating is 'up' or 'down' (or 1 / -1), or None to clear it, not {shown}.")


def rating_of(record: Any) -> str | None:
    """A record's thumbs (``"up"``, ``"down"``, None); anything malformed reads as unrated."""
    rating = record.get("rating") if isinstance(record, dict) else None
    value = rating.get("value") if isinstance(rating, dict) else None
    return value if value in RATINGS else None


def _check_open(comparison: Comparison) -> None:
    if comparison.status == "running":
        raise RatingError(
            "This comparison is still running: rate it once it has finished (or been stopped)."
        )


def locate(comparison: Comparison, column: Any, row: int | None) -> int:
    """The index in ``comparison.results`` of ``column`` (a label or a position among
    ``comparison.variants``) on dataset item ``row``; a clear :class:`RatingError` otherwise."""
    labels = comparison.variants
    if isinstance(column, bool) or not isinstance(column, (str, int)):
        raise RatingError(f"Name a column by its label or position, not {type(column).__name__}.")
    if isinstance(column, int):
        if not 0 <= column < len(labels):
            raise RatingError(
                f"No column {column}: this comparison has {len(labels)} (0 to {len(labels) - 1})."
            )
        position = column
    elif column in labels:
        position = labels.index(column)
    else:
        raise RatingError(f"No column {column!r} (columns: {', '.join(map(repr, labels))}).")
    rows = comparison.rows
    if row is None and len(rows) > 1:
        raise RatingError(
            f"This comparison has {len(rows)} dataset items: say which with row=0..{len(rows) - 1}."
        )
    index = 0 if row is None else row
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(rows):
        raise RatingError(
            f"row must be a dataset item index from 0 to {len(rows) - 1}, not {row!r}."
        )
    return index * len(labels) + position


def set_rating(comparison: Comparison, index: int, value: Any) -> str | None:
    """Record thumbs ``value`` (None clears) on result ``index``; returns the value stored."""
    _check_open(comparison)
    rating = rating_value(value)
    record = comparison.results[index].record
    if rating is None:
        record.pop("rating", None)
    else:
        record["rating"] = {"value": rating, "time": _now()}
    _changed(comparison)
    return rating


def set_preference(
    comparison: Comparison,
    first: int,
    second: int,
    outcome: str,
    *,
    blind: bool = False,
    seed: int | None = None,
    shown: tuple[str, str] | None = None,
) -> Preference:
    """Record that result ``first`` wins, loses or ties (``outcome``) against ``second`` (the
    same dataset item), replacing an earlier judgment of the same pair."""
    _check_open(comparison)
    if outcome not in OUTCOMES:
        raise RatingError(
            f"A preference's outcome is one of {', '.join(OUTCOMES)}, not {outcome!r}."
        )
    results = comparison.results
    a, b = results[first], results[second]
    if first == second or a.variant == b.variant:
        raise RatingError(f"Prefer one column over another, not {a.variant!r} over itself.")
    width = len(comparison.variants) or 1
    if first // width != second // width:
        raise RatingError("A preference compares two columns of the same dataset item.")
    _forget_pair(a, b.variant)
    _forget_pair(b, a.variant)
    entry: dict[str, Any] = {"vs": b.variant, "outcome": outcome, "blind": blind, "time": _now()}
    if seed is not None:
        entry["seed"] = seed
    if shown is not None:
        entry["shown"] = list(shown)
    a.record.setdefault("preferences", []).append(entry)
    _changed(comparison)
    return _preference(a.variant, entry, first // width)


def _forget_pair(result: Result, other: str) -> None:
    kept = [p for p in _entries(result.record) if p.get("vs") != other]
    if kept:
        result.record["preferences"] = kept
    else:
        result.record.pop("preferences", None)


def _entries(record: Any) -> list[dict[str, Any]]:
    found = record.get("preferences") if isinstance(record, dict) else None
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def _preference(label: str, entry: dict[str, Any], row: int) -> Preference:
    other = str(entry["vs"])
    winner = {"win": label, "loss": other}.get(entry["outcome"])
    seed = entry.get("seed")
    return Preference(
        a=label,
        b=other,
        winner=winner,
        row=row,
        blind=entry.get("blind") is True,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        time=str(entry.get("time", "")),
    )


def preferences(comparison: Comparison) -> list[Preference]:
    """Every preference the comparison's records hold, in result order (entries that name no
    column of the same item, or no known outcome, are left out)."""
    found = []
    for row, results in enumerate(comparison.rows):
        labels = {r.variant for r in results}
        for result in results:
            for entry in _entries(result.record):
                vs, outcome = entry.get("vs"), entry.get("outcome")
                if isinstance(vs, str) and vs in labels - {result.variant} and outcome in OUTCOMES:
                    found.append(_preference(result.variant, entry, row))
    return found


def identity(result: Result) -> dict[str, str]:
    """What names ``result``'s variant across comparisons: its model, adapter (``base``
    without one) and strategy, and the prompt wording, system prompt, temperature and top-p
    when its run varied them (the trial, dataset fields and input are not part of it)."""
    coords = result.coords
    found = {
        "model": coords.get("model") or result.model,
        "adapter": coords.get("adapter") or result.adapter or "base",
        "strategy": coords.get("strategy") or result.strategy,
    }
    for axis in IDENTITY_AXES[3:]:
        if coords.get(axis) is not None:
            found[axis] = str(coords[axis])
    return {k: str(v) for k, v in found.items()}


def watch(comparison: Comparison, callback: Callable[[], None]) -> None:
    """Call ``callback()`` after each change of ``comparison``'s ratings (a live view follows
    them: its cells and its static copy)."""
    watchers = getattr(comparison, _WATCHERS, None)
    if watchers is None:
        watchers = []
        setattr(comparison, _WATCHERS, watchers)
    watchers.append(callback)


def _changed(comparison: Comparison) -> None:
    for callback in list(getattr(comparison, _WATCHERS, ())):
        callback()
