"""The leaderboard of your own ratings: every rated variant across the notebook's comparisons.

A *variant* is what a column was made with, across comparisons
(:func:`lmwidgets.core.ratings.identity`): its model, adapter and strategy, and the prompt
wording, system prompt, temperature and top-p when its run varied them. Two columns of different
runs with the same identity are the same variant.

Two kinds of rating, kept apart because they measure different things:

* **Pairwise preferences** (blind pairwise mode, :meth:`Comparison.prefer`) feed a
  Bradley-Terry model, fitted by ``choix.ilsr_pairwise_dense`` on the matrix of win counts with
  a small regularization (:data:`ALPHA`) so that a variant that always wins still gets a finite
  score. A tie counts as half a win for each side.
  ``score`` is the fitted log-strength on the Elo scale (``1000 + 400 / ln 10 · θ``, centred on
  1000): a 400-point gap means 10:1 odds of being preferred. ``score_low`` and ``score_high``
  are a 95% percentile bootstrap interval: the judgments are resampled with replacement
  ``samples`` times (seeded, so the table is reproducible) and refitted.
* **Thumbs** (up / down on one column) are not comparisons: ``liked`` is the share of thumbs
  that were up, with a 95% Wilson interval (``scipy.stats.binomtest``).

Judgments between two columns of the same variant (two trials) say nothing about variants and
are left out (counted in :attr:`Leaderboard.notes`). An earlier run shown beside a new one
(``--vs``) carries that run's ratings; they count with that run, once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lmwidgets.core.layout import value_label
from lmwidgets.core.ratings import IDENTITY_AXES, identity
from lmwidgets.core.results import Comparison
from lmwidgets.core.safe_text import escape_html
from lmwidgets.errors import InvalidArgumentError

#: choix's regularization: a tiny prior pull towards equal strength.
ALPHA = 0.01
#: Bootstrap resamples for the score's interval.
SAMPLES = 200
#: Elo points per unit of Bradley-Terry log-strength.
ELO_SCALE = 400 / math.log(10)

#: The leaderboard's columns, in order (identity columns appear only when some variant has them).
COLUMNS = (
    "rank",
    "variant",
    *IDENTITY_AXES,
    "score",
    "score_low",
    "score_high",
    "wins",
    "losses",
    "ties",
    "judgments",
    "ups",
    "downs",
    "liked",
    "liked_low",
    "liked_high",
    "runs",
)

Key = tuple[tuple[str, str], ...]


@dataclass
class _Tally:
    """What was said about one variant."""

    identity: dict[str, str]
    wins: int = 0
    losses: int = 0
    ties: int = 0
    ups: int = 0
    downs: int = 0
    runs: set[int] = field(default_factory=set)


def variant_label(found: dict[str, str]) -> str:
    """``'t · loud · cot · prompt B · T=0.7'``: the identity in a few words (the adapter only
    when there is one)."""
    parts = [found.get("model", ""), found.get("adapter", "base"), found.get("strategy", "")]
    if parts[1] == "base":
        parts.pop(1)
    for axis in IDENTITY_AXES[3:]:
        if axis in found:
            words = {"prompt": "prompt ", "system": "system "}.get(axis)
            parts.append(words + found[axis] if words else value_label(axis, found[axis]))
    return " · ".join(p for p in parts if p)


def _key(found: dict[str, str]) -> Key:
    return tuple((axis, found[axis]) for axis in IDENTITY_AXES if axis in found)


def _gather(
    comparisons: list[Comparison],
) -> tuple[dict[Key, _Tally], list[tuple[Key, Key, str]], int]:
    """Tallies per variant, the judgments ``(a, b, outcome)`` and how many were left out."""
    tallies: dict[Key, _Tally] = {}
    judgments: list[tuple[Key, Key, str]] = []
    skipped = 0

    def tally(result: Any, run: int) -> Key:
        found = identity(result)
        key = _key(found)
        tallies.setdefault(key, _Tally(found)).runs.add(run)
        return key

    for run, comparison in enumerate(comparisons):
        for result in comparison.results:
            if result.rating is not None and not _earlier(result):
                entry = tallies[tally(result, run)]
                entry.ups += result.rating == "up"
                entry.downs += result.rating == "down"
        rows = comparison.rows
        for preference in comparison.preferences:
            by_label = {r.variant: r for r in rows[preference.row]}
            a, b = by_label[preference.a], by_label[preference.b]
            if _earlier(a) or _earlier(b):
                continue  # counted with the run it is from
            if _key(identity(a)) == _key(identity(b)):
                skipped += 1
                continue
            ka, kb = tally(a, run), tally(b, run)
            outcome = (
                "tie" if preference.tie else "win" if preference.winner == a.variant else "loss"
            )
            judgments.append((ka, kb, outcome))
            _count(tallies[ka], tallies[kb], outcome)
    return tallies, judgments, skipped


def _earlier(result: Any) -> bool:
    """An earlier run's column shown beside this one (``--vs``): its ratings are its own run's
    (they come with the copy), so they count there, once."""
    return result.record.get("shown_as") == "previous"


def _count(a: _Tally, b: _Tally, outcome: str) -> None:
    if outcome == "tie":
        a.ties += 1
        b.ties += 1
    elif outcome == "win":
        a.wins += 1
        b.losses += 1
    else:
        a.losses += 1
        b.wins += 1


def _fit(n: int, a: Any, b: Any, wins: Any, weights: Any) -> Any:
    """Bradley-Terry log-strengths (mean 0) of ``n`` items from judgments ``a[k]`` vs ``b[k]``
    (``wins[k]``: 1 a won, 0 b won, 0.5 a tie), each counted ``weights[k]`` times."""
    import choix
    import numpy as np

    counts = np.zeros((n, n))
    np.add.at(counts, (a, b), weights * wins)
    np.add.at(counts, (b, a), weights * (1 - wins))
    params = np.asarray(choix.ilsr_pairwise_dense(counts, alpha=ALPHA), dtype=float)
    return params - params.mean()


def _scores(
    keys: list[Key], judgments: list[tuple[Key, Key, str]], samples: int, seed: int
) -> dict[Key, tuple[float, float, float]]:
    """Each compared variant's Elo-scaled score and its bootstrap interval (the judgments
    resampled with replacement: multinomial counts, one refit per sample)."""
    import numpy as np

    if not judgments:
        return {}
    index = {key: i for i, key in enumerate(keys)}
    a = np.array([index[j[0]] for j in judgments])
    b = np.array([index[j[1]] for j in judgments])
    wins = np.array([{"win": 1.0, "loss": 0.0, "tie": 0.5}[j[2]] for j in judgments])
    theta = _fit(len(keys), a, b, wins, np.ones(len(judgments)))
    rng = np.random.default_rng(seed)
    draws = np.empty((samples, len(keys)))
    uniform = np.full(len(judgments), 1 / len(judgments))
    for s in range(samples):
        draws[s] = _fit(len(keys), a, b, wins, rng.multinomial(len(judgments), uniform))
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    elo = lambda v: round(1000 + ELO_SCALE * float(v), 1)  # noqa: E731
    return {key: (elo(theta[i]), elo(low[i]), elo(high[i])) for key, i in index.items()}


def _wilson(ups: int, downs: int) -> tuple[float | None, float | None, float | None]:
    total = ups + downs
    if not total:
        return None, None, None
    from scipy.stats import binomtest

    interval = binomtest(ups, total).proportion_ci(0.95, method="wilson")
    return round(ups / total, 4), round(float(interval.low), 4), round(float(interval.high), 4)


class Leaderboard:
    """Every rated variant ranked: :meth:`to_pandas` (the columns are :data:`COLUMNS`; see
    :func:`leaderboard`), shown in a notebook as a small escaped table."""

    def __init__(self, rows: list[dict[str, Any]], notes: list[str]) -> None:
        self.rows = rows
        #: What was left out and why (judgments of a variant against itself).
        self.notes = notes

    def __len__(self) -> int:
        return len(self.rows)

    def to_pandas(self) -> Any:
        import pandas as pd

        shown = [c for c in COLUMNS if any(c in row for row in self.rows)] or list(COLUMNS)
        return pd.DataFrame(self.rows, columns=shown)

    def _cells(self, row: dict[str, Any]) -> list[str]:
        def interval(value: Any, low: Any, high: Any, percent: bool) -> str:
            if value is None:
                return "–"
            if percent:
                return f"{value:.0%} ({low:.0%}–{high:.0%})"
            return f"{value:.0f} ({low:.0f}–{high:.0f})"

        return [
            str(row["rank"]),
            row["variant"],
            interval(row["score"], row["score_low"], row["score_high"], False),
            f"{row['wins']}–{row['losses']}–{row['ties']}",
            interval(row["liked"], row["liked_low"], row["liked_high"], True),
            f"{row['ups']} ▲ {row['downs']} ▼" if row["ups"] + row["downs"] else "–",
        ]

    _HEADS = ("#", "variant", "score (95% CI)", "won–lost–tied", "liked (95% CI)", "thumbs")

    def __repr__(self) -> str:
        if not self.rows:
            return _EMPTY
        lines = [" | ".join(self._HEADS)]
        lines += [" | ".join(self._cells(row)) for row in self.rows]
        return "\n".join([*lines, *self.notes])

    def _repr_html_(self) -> str:
        style = "border:1px solid var(--jp-border-color2,#ddd);padding:3px 8px;text-align:left"
        head_style = (
            f"{style};background:var(--jp-layout-color2,#eee);color:var(--jp-ui-font-color0,#000)"
        )
        root = "color:var(--jp-ui-font-color1,#222);font-size:13px"
        if not self.rows:
            return f'<div class="lmw-leaderboard" style="{root}">{escape_html(_EMPTY)}</div>'
        head = "".join(f'<th style="{head_style}">{escape_html(h)}</th>' for h in self._HEADS)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="{style};background:var(--jp-layout-color1,#fff)">{escape_html(c)}</td>'
                for c in self._cells(row)
            )
            + "</tr>"
            for row in self.rows
        )
        notes = "".join(
            f'<div style="color:var(--jp-ui-font-color2,#555);font-size:11px">{escape_html(n)}</div>'
            for n in self.notes
        )
        return (
            f'<div class="lmw-leaderboard" style="{root}"><table style="border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}</div>"
        )


_EMPTY = (
    "No ratings yet: rate columns in a live view (thumbs, or blind pairwise mode) or with "
    "Comparison.rate / Comparison.prefer."
)


def _comparisons(source: Any, notebook: str | os.PathLike[str] | None) -> list[Comparison]:
    if source is None:
        from lmwidgets.run.history import history

        return [entry.comparison for entry in history(notebook).entries]
    if isinstance(source, Comparison):
        return [source]
    found = list(source) if isinstance(source, Iterable) and not isinstance(source, str) else None
    if found is None or not all(isinstance(c, Comparison) for c in found):
        raise InvalidArgumentError(
            "leaderboard() ranks Comparisons: give one, a list of them, or nothing (every run "
            f"of this notebook), not {type(source).__name__}."
        )
    return found


def leaderboard(
    comparisons: Comparison | Iterable[Comparison] | None = None,
    *,
    notebook: str | os.PathLike[str] | None = None,
    samples: int = SAMPLES,
    seed: int = 0,
) -> Leaderboard:
    """Rank every rated variant across the notebook's comparisons (default: every run of this
    session and those the saved notebook keeps, :func:`lmwidgets.history`; or the
    ``comparisons`` given).

    Columns: rank; variant (its identity in words) and model, adapter, strategy (and prompt,
    system, temperature, top_p where runs varied them); score, score_low, score_high (the
    Bradley-Terry score of the pairwise preferences on the Elo scale, 95% bootstrap interval;
    None without preferences); wins, losses, ties, judgments; ups, downs, liked, liked_low,
    liked_high (the thumbs: share up, 95% Wilson interval); runs (comparisons it was rated in).
    Ranked by score, then (variants only thumbed) by liked. How each is computed: the module
    docstring of :mod:`lmwidgets.run.leaderboard`."""
    if isinstance(samples, bool) or not isinstance(samples, int) or not 10 <= samples <= 10_000:
        raise InvalidArgumentError(
            f"samples must be a whole number from 10 to 10000, not {samples!r}."
        )
    tallies, judgments, skipped = _gather(_comparisons(comparisons, notebook))
    keys = [k for k, t in tallies.items() if t.wins + t.losses + t.ties]
    scores = _scores(keys, judgments, samples, seed)
    rows: list[dict[str, Any]] = []
    for key, entry in tallies.items():
        score, low, high = scores.get(key, (None, None, None))
        liked, liked_low, liked_high = _wilson(entry.ups, entry.downs)
        rows.append(
            {
                "variant": variant_label(entry.identity),
                **entry.identity,
                "score": score,
                "score_low": low,
                "score_high": high,
                "wins": entry.wins,
                "losses": entry.losses,
                "ties": entry.ties,
                "judgments": entry.wins + entry.losses + entry.ties,
                "ups": entry.ups,
                "downs": entry.downs,
                "liked": liked,
                "liked_low": liked_low,
                "liked_high": liked_high,
                "runs": len(entry.runs),
            }
        )
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), -(r["liked"] or 0)))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    notes = (
        [
            f"{skipped} judgment{'s' if skipped != 1 else ''} between columns of the same variant left out."
        ]
        if skipped
        else []
    )
    return Leaderboard(rows, notes)
