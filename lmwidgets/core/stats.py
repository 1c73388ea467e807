"""Is a difference between columns real? Accuracy intervals and paired tests on dataset runs.

Intervals (:func:`column_stats`, ``Comparison.stats()``): each column's accuracy is the mean of
its scores over the items its scorer scored (as ``Comparison.scores``). When every score is 0 or
1 (every built-in scorer but ``fields``) the 95% interval is the **Wilson score interval** of that
proportion (statsmodels ``proportion_confint(method="wilson")``): unlike the textbook
``p ± 1.96·se`` it stays inside 0..1 and is honest for small n and for 0% or 100%. Graded scores
(``fields``, a function returning a float) get a **percentile bootstrap** interval of the mean
(scipy ``stats.bootstrap``, 9,999 resamples, a fixed seed, so the same run shows the same
interval).

Paired test (:func:`paired`, ``Comparison.paired(a, b)``): two columns judged on the same items.
Each item where both were scored is a pair: both right, both wrong (ties), or exactly one right
(a win for that column; a graded score counts as right at >= 0.5, as ``Result.correct``). Only
the items where exactly one is right carry information about which column is better; the **exact
McNemar test** (statsmodels ``mcnemar(exact=True)``: a two-sided binomial test on those
discordant pairs) gives the p-value. With fewer than :data:`MIN_PAIRED_ITEMS` paired items, or no
item where exactly one column is right, no p-value is given: the sentence says so instead.

statsmodels and scipy are imported inside the functions: ``import lmwidgets`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmwidgets.core.examples import listed
from lmwidgets.errors import StatisticsError

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result

#: The confidence level of every interval.
CONFIDENCE = 0.95
#: Fewer paired items than this: too few for a p-value (the sentence says so instead).
MIN_PAIRED_ITEMS = 10
#: Bootstrap resamples for graded scores (a fixed seed: the same scores, the same interval).
BOOTSTRAP_RESAMPLES = 9999
#: The columns of ``Comparison.stats()``.
STATS_COLUMNS = ("column", "n", "accuracy", "ci_low", "ci_high", "method")


@dataclass(frozen=True)
class ColumnStats:
    """One column's accuracy over its ``n`` scored items, with its 95% interval (None when
    the column has no scored item); ``method`` is ``"wilson"`` or ``"bootstrap"``."""

    column: str
    n: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    method: str

    def text(self) -> str:
        """``'70% (48–87%)'``: the accuracy and its interval, in whole percents."""
        if self.accuracy is None or self.ci_low is None or self.ci_high is None:
            return ""
        return f"{self.accuracy:.0%} ({self.ci_low * 100:.0f}–{self.ci_high:.0%})"


@dataclass(frozen=True)
class Paired:
    """Two columns ``a`` and ``b`` on the same ``n`` scored items: ``wins`` (b right where a is
    wrong), ``losses`` (a right where b is wrong), ``ties`` (both right or both wrong) and the
    exact McNemar ``pvalue`` (None with too few items: ``reason`` says why)."""

    a: str
    b: str
    n: int
    wins: int
    losses: int
    ties: int
    pvalue: float | None
    reason: str = ""

    @property
    def sentence(self) -> str:
        """One line, the column right more often on the split items first (``a`` on a tie): ``'B is right where
        A is wrong on 14 of 50 items, the reverse on 3; p = 0.0064 (exact McNemar)'``."""
        first, second, ahead, behind = (
            (self.a, self.b, self.losses, self.wins)
            if self.losses >= self.wins
            else (self.b, self.a, self.wins, self.losses)
        )
        said = (
            f"{first} is right where {second} is wrong on {ahead} of {self.n} "
            f"item{'' if self.n == 1 else 's'}, the reverse on {behind}"
        )
        if self.pvalue is None:
            return f"{said}; {self.reason}"
        return f"{said}; {p_text(self.pvalue)} (exact McNemar)"

    def __str__(self) -> str:
        return self.sentence


def p_text(pvalue: float) -> str:
    """``'p = 0.013'`` (two significant digits), ``'p < 0.001'``, ``'p = 1'``."""
    return "p < 0.001" if pvalue < 0.001 else f"p = {pvalue:.2g}"


def _check_done(comparison: Comparison) -> None:
    if comparison.status == "running":
        raise StatisticsError(
            "This comparison is still running: statistics need its finished results."
        )
    if not any(result.input is not None for result in comparison.results):
        raise StatisticsError(
            "Statistics need a dataset run (--dataset VAR with an `expected` column): this "
            "comparison has no dataset items."
        )


def _scores(comparison: Comparison, label: str) -> list[float]:
    return [
        float(r.score) for r in comparison.results if r.variant == label and r.score is not None
    ]


def _interval(scores: list[float]) -> tuple[float, float, str]:
    """The 95% interval of the mean of ``scores`` and how it was computed."""
    if all(score in (0.0, 1.0) for score in scores):
        from statsmodels.stats.proportion import proportion_confint

        right, n = int(sum(scores)), len(scores)
        low, high = proportion_confint(right, n, alpha=1 - CONFIDENCE, method="wilson")
        # Wilson's bounds are exactly 0 at 0% and 1 at 100%; statsmodels' float arithmetic
        # leaves residue of either sign there (-2.8e-17 with 40 items, 5.6e-17 with 3)
        low = 0.0 if right == 0 else min(max(float(low), 0.0), 1.0)
        high = 1.0 if right == n else min(max(float(high), 0.0), 1.0)
        return low, high, "wilson"
    if len(set(scores)) == 1:  # a bootstrap of identical values is that value
        return scores[0], scores[0], "bootstrap"
    import numpy as np
    from scipy.stats import bootstrap

    found = bootstrap(
        (np.asarray(scores),),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    return float(found.confidence_interval.low), float(found.confidence_interval.high), "bootstrap"


def one_column(comparison: Comparison, label: str) -> ColumnStats:
    """Column ``label``'s accuracy and 95% interval (n = 0 and None when it has no score)."""
    scores = _scores(comparison, label)
    if not scores:
        return ColumnStats(label, 0, None, None, None, "")
    low, high, method = _interval(scores)
    return ColumnStats(label, len(scores), sum(scores) / len(scores), low, high, method)


def column_stats(comparison: Comparison) -> list[ColumnStats]:
    """Every column's accuracy and 95% interval (see the module docstring), in column order.

    Raises :class:`StatisticsError` for a comparison still running, without dataset items, or
    without any scored item."""
    _check_done(comparison)
    found = [one_column(comparison, label) for label in comparison.variants]
    if not any(stat.n for stat in found):
        raise StatisticsError(_NOT_SCORED)
    return found


_NOT_SCORED = (
    "This comparison is not scored: give the dataset an `expected` column (or pass expected=) "
    "so that each answer is judged."
)


def column_label(comparison: Comparison, column: Any) -> str:
    """The label of ``column``: a column label, or its index in ``comparison.variants``."""
    labels = comparison.variants
    if isinstance(column, int) and not isinstance(column, bool):
        if -len(labels) <= column < len(labels):
            return labels[column]
        raise StatisticsError(
            f"Column index {column} is out of range: this comparison has {len(labels)} "
            f"column(s) (0..{len(labels) - 1}): {listed(labels)}."
        )
    if isinstance(column, str) and column in labels:
        return column
    raise StatisticsError(
        f"No column {listed([column])!r} in this comparison; its columns are: {listed(labels)} "
        "(or their index from 0)."
    )


def _pairs(comparison: Comparison, a: str, b: str) -> list[tuple[bool, bool]]:
    """(a right, b right) on each item where both columns were scored (a stopped run's last,
    partial row may lack one of them)."""
    pairs = []
    for row in comparison.rows:
        by_label: dict[str, Result] = {result.variant: result for result in row}
        first, second = by_label.get(a), by_label.get(b)
        if first is None or second is None:
            continue
        if first.input != second.input:
            raise StatisticsError(
                f"Columns {a!r} and {b!r} are not on the same dataset items: a paired "
                "comparison needs both columns' answers to each item."
            )
        if first.score is not None and second.score is not None:
            pairs.append((first.score >= 0.5, second.score >= 0.5))
    return pairs


def paired(comparison: Comparison, a: Any, b: Any) -> Paired:
    """Columns ``a`` and ``b`` (labels or indexes) compared item by item, with an exact McNemar
    p-value (see the module docstring). Raises :class:`StatisticsError` for an unknown column,
    the same column twice, columns not on the same items, a column without scores, or a
    comparison still running."""
    _check_done(comparison)
    first, second = column_label(comparison, a), column_label(comparison, b)
    if first == second:
        raise StatisticsError(f"Compare two different columns, not {first!r} with itself.")
    for label in (first, second):
        if not _scores(comparison, label):
            raise StatisticsError(f"Column {label!r} has no scored item. {_NOT_SCORED}")
    pairs = _pairs(comparison, first, second)
    wins = sum(1 for x, y in pairs if y and not x)
    losses = sum(1 for x, y in pairs if x and not y)
    ties = len(pairs) - wins - losses
    reason = ""
    if len(pairs) < MIN_PAIRED_ITEMS:
        reason = f"too few items for a p-value ({len(pairs)} paired, at least {MIN_PAIRED_ITEMS})"
    elif wins + losses == 0:
        reason = "no item where only one is right: no test"
    if reason:
        return Paired(first, second, len(pairs), wins, losses, ties, None, reason)
    from statsmodels.stats.contingency_tables import mcnemar

    both = sum(1 for x, y in pairs if x and y)
    table = [[both, losses], [wins, ties - both]]
    pvalue = float(mcnemar(table, exact=True).pvalue)
    return Paired(first, second, len(pairs), wins, losses, ties, pvalue)


def stats_frame(comparison: Comparison) -> Any:
    """:func:`column_stats` as a pandas DataFrame with :data:`STATS_COLUMNS`."""
    import pandas as pd

    rows = [
        [s.column, s.n, s.accuracy, s.ci_low, s.ci_high, s.method] for s in column_stats(comparison)
    ]
    return pd.DataFrame(rows, columns=list(STATS_COLUMNS))


def header_stats(comparison: Comparison) -> tuple[dict[str, list[float]], str]:
    """What a dataset view's header shows: each scored column's interval (``{label: [low,
    high]}``) and, with exactly two columns, the paired sentence ('' otherwise). Empty for a
    comparison that cannot have them (no dataset, not scored, running)."""
    try:
        found = column_stats(comparison)
    except StatisticsError:
        return {}, ""
    intervals = {
        s.column: [s.ci_low, s.ci_high]
        for s in found
        if s.ci_low is not None and s.ci_high is not None
    }
    line = ""
    if len(comparison.variants) == 2 and len(intervals) == 2:
        try:
            line = paired(comparison, 0, 1).sentence
        except StatisticsError:
            line = ""  # e.g. columns not on the same items: no paired line
    return intervals, line
