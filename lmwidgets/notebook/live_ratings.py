"""Ratings from the live view: thumbs on a cell, and blind pairwise mode.

The browser sends ``{"type": "rate", "index": cell, "value": "up" | "down" | None}`` (a thumbs
button, or ``+`` / ``u`` and ``-`` / ``d`` on a focused cell) and, in blind mode,
``{"type": "prefer", "a": cell, "b": cell, "choice": "a" | "b" | "tie" | "skip", "revealed":
bool}``. Both are checked here and recorded in the finished :class:`Comparison`
(:mod:`lmwidgets.core.ratings`: its records), which the cells and the static copy then follow;
what cannot be recorded (a run still going, a stale pair) is said in the view's message line.

Blind pairwise mode (the ``blind`` trait, toggled in the view) shows two columns at a time as A
and B, their labels hidden until the user reveals them. The kernel draws the pairs: every pair of
columns of the same question (a dataset item; all cells of a matrix) not judged yet, shuffled,
each pair's order too, by ``random.Random(seed)`` with a fresh seed per session of the mode. A
preference records the seed, the two labels in the order shown, and whether the labels were
hidden when it was given (``blind``).
"""

from __future__ import annotations

import itertools
import random
import secrets
from typing import TYPE_CHECKING, Any

from lmwidgets.core.ratings import set_preference, set_rating, watch
from lmwidgets.errors import LmWidgetsError

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison
    from lmwidgets.notebook.live import LiveView

_OUTCOMES = {"a": "win", "b": "loss", "tie": "tie"}


class LiveRatings:
    """Records a live view's ratings in the comparison it shows, and runs its blind mode."""

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self.comparison: Comparison | None = None
        self.seed = 0
        #: Blind mode's pairs (result indexes, the first shown as A) and the current one.
        self.pairs: list[tuple[int, int]] = []
        self.position = 0
        view.widget.on_rating(self.receive)
        view.widget.observe(self._blind_changed, "blind")

    @property
    def widget(self) -> Any:
        return self.view.widget

    def started(self) -> None:
        """A run (re)starts in the view: no ratings until it ends."""
        self.comparison = None
        self.widget.can_rate = False
        self.widget.blind = False

    def finished(self, comparison: Comparison) -> None:
        """The run ended: rate ``comparison`` (once watched, its changes reach the view)."""
        if comparison is not self.comparison:
            self.comparison = comparison
            watch(comparison, lambda: self.refresh(comparison))
        self.widget.can_rate = getattr(comparison, "status", "done") != "running"

    def refresh(self, comparison: Comparison) -> None:
        """Show ``comparison``'s ratings in the cells and write them into the static copy."""
        if comparison is not self.comparison:
            return  # an earlier run of this view
        results = comparison.results
        cells = [
            {**cell, "rating": results[index].rating}
            for cell, index in zip(self.widget.columns, self.view.shown, strict=False)
        ]
        self.widget.set_columns(cells)
        self.view.update_copy(comparison)

    # Messages ---------------------------------------------------------------------------------

    def receive(self, content: dict[str, Any]) -> None:
        """A ``rate`` or ``prefer`` message: recorded, or why not in the message line."""
        if self.comparison is None or self.widget.status == "running":
            self.widget.message = "Rate the columns once the run has finished."
            return
        try:
            if content.get("type") == "rate":
                self._rate(content)
            else:
                self._prefer(content)
        except LmWidgetsError as exc:
            self.widget.message = f"Cannot record that rating: {exc}"

    def _cell(self, value: Any) -> int:
        """The result index of cell ``value`` (checked)."""
        shown = self.view.shown
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(shown):
            raise LmWidgetsError("the browser named no cell of this view")
        return shown[value]

    def _rate(self, content: dict[str, Any]) -> None:
        assert self.comparison is not None
        set_rating(self.comparison, self._cell(content.get("index")), content.get("value"))

    def _prefer(self, content: dict[str, Any]) -> None:
        assert self.comparison is not None
        if not self.widget.blind or self.position >= len(self.pairs):
            raise LmWidgetsError("blind pairwise mode is not on")
        first, second = self.pairs[self.position]
        if (self._cell(content.get("a")), self._cell(content.get("b"))) != (first, second):
            raise LmWidgetsError("that pair is no longer the one shown; answer the current pair")
        choice = content.get("choice")
        if choice != "skip":
            if choice not in _OUTCOMES:
                raise LmWidgetsError(f"the answer is A, B, tie or skip, not {choice!r}")
            results = self.comparison.results
            set_preference(
                self.comparison,
                first,
                second,
                _OUTCOMES[choice],
                blind=content.get("revealed") is not True,
                seed=self.seed,
                shown=(results[first].variant, results[second].variant),
            )
        self.position += 1
        self._show_pair()

    # Blind mode -------------------------------------------------------------------------------

    def _blind_changed(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            self.pairs, self.position = [], 0
            self.widget.blind_pair = {}
            return
        if self.comparison is None or self.widget.status == "running":
            self.widget.message = "Blind pairwise mode starts once the run has finished."
            self.widget.blind = False
            return
        self.seed = secrets.randbelow(2**31)
        self.pairs, self.position = schedule(self.comparison, self.view, self.seed), 0
        if not self.pairs and not self.comparison.preferences:
            self.widget.message = "Blind pairwise mode needs two columns or more to compare."
            self.widget.blind = False
            return
        self._show_pair()

    def _show_pair(self) -> None:
        total = len(self.pairs)
        if self.position >= total:
            self.widget.blind_pair = {"done": True, "total": total, "seed": self.seed}
            return
        first, second = self.pairs[self.position]
        shown = self.view.shown
        assert self.comparison is not None
        self.widget.blind_pair = {
            "a": shown.index(first),
            "b": shown.index(second),
            "number": self.position + 1,
            "total": total,
            "seed": self.seed,
            "item": self.comparison.results[first].input or "",
        }


def schedule(comparison: Comparison, view: LiveView, seed: int) -> list[tuple[int, int]]:
    """Blind mode's pairs of result indexes: every pair of shown columns of this run (not an
    earlier run's, ``--vs``) of one question (a dataset item; everything otherwise) that has no
    preference yet, shuffled by ``seed``, each
    pair's order too (the first is shown as A)."""
    questions: dict[int, list[int]] = {}
    for index in view.shown:
        if comparison.results[index].record.get("shown_as") == "previous":
            continue  # an earlier run shown beside (--vs): its own run's, not this one's
        question = view.positions[index][0] if view.grid else 0
        questions.setdefault(question, []).append(index)
    results = comparison.results
    judged = {(p.row, frozenset((p.a, p.b))) for p in comparison.preferences}
    width = len(comparison.variants) or 1
    pairs = [
        (i, j)
        for indexes in questions.values()
        for i, j in itertools.combinations(indexes, 2)
        if results[i].variant != results[j].variant
        and (i // width, frozenset((results[i].variant, results[j].variant))) not in judged
    ]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    return [(j, i) if rng.random() < 0.5 else (i, j) for i, j in pairs]
