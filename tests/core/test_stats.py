"""Is the difference real? Accuracy intervals and the paired test (issue 20), checked against
statsmodels and scipy directly, through real scripted runs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import bootstrap
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

import lmwidgets
from lmwidgets.core.stats import MIN_PAIRED_ITEMS, header_stats, p_text
from lmwidgets.errors import LmWidgetsError, StatisticsError

#: Which of 40 items each model gets right: A on 0..19, B on 6..35 (B alone right on 16
#: items, A alone on 6 (0..5), both on 14, neither on 4).
A_RIGHT = set(range(20))
B_RIGHT = set(range(6, 36))
ITEMS = [{"input": f"question {i:02d}", "expected": "yes"} for i in range(40)]


def _replier(right: set[int]):
    def reply(prompt: str, adapter: str | None) -> str:
        number = int(re.search(r"question (\d+)", prompt).group(1))
        return "The answer is yes." if number in right else "no"

    return reply


@pytest.fixture
def two(registry):
    lmwidgets.load_model(engine="scripted", name="A", replies=_replier(A_RIGHT))
    lmwidgets.load_model(engine="scripted", name="B", replies=_replier(B_RIGHT))
    return lmwidgets.prompt("{input}", models=["A", "B"], dataset=ITEMS, display=False)


def test_stats_are_wilson_intervals_as_statsmodels_computes_them(two):
    frame = two.stats()
    assert list(frame.columns) == ["column", "n", "accuracy", "ci_low", "ci_high", "method"]
    assert list(frame["column"]) == two.variants
    for row, right in zip(frame.itertuples(), (A_RIGHT, B_RIGHT), strict=True):
        low, high = proportion_confint(len(right), 40, alpha=0.05, method="wilson")
        assert (row.n, row.accuracy, row.method) == (40, len(right) / 40, "wilson")
        assert row.ci_low == pytest.approx(low) and row.ci_high == pytest.approx(high)
        assert row.accuracy == two.scores[row.column]


def test_the_paired_test_is_the_exact_mcnemar_of_statsmodels(two):
    found = two.paired("A", "B")
    assert (found.n, found.wins, found.losses, found.ties) == (40, 16, 6, 18)
    expected = mcnemar([[14, 6], [16, 4]], exact=True).pvalue
    assert found.pvalue == pytest.approx(expected)
    # by index too, and symmetric: the same test, wins and losses swapped
    swapped = two.paired(1, 0)
    assert (swapped.wins, swapped.losses, swapped.pvalue) == (6, 16, found.pvalue)
    assert str(found) == str(swapped) == found.sentence
    assert found.sentence == (
        f"B is right where A is wrong on 16 of 40 items, the reverse on 6; "
        f"{p_text(expected)} (exact McNemar)"
    )


def test_p_values_are_said_with_two_digits():
    assert p_text(0.01234) == "p = 0.012"
    assert p_text(0.0004) == "p < 0.001"
    assert p_text(1.0) == "p = 1"


def test_too_few_items_say_so_instead_of_a_p_value(registry):
    lmwidgets.load_model(engine="scripted", name="A", replies=_replier({0, 1, 2}))
    lmwidgets.load_model(engine="scripted", name="B", replies=_replier({3}))
    few = ITEMS[: MIN_PAIRED_ITEMS - 1]
    found = lmwidgets.prompt("{input}", models=["A", "B"], dataset=few, display=False).paired(0, 1)
    assert found.pvalue is None and found.n == MIN_PAIRED_ITEMS - 1
    assert found.sentence == (
        "A is right where B is wrong on 3 of 9 items, the reverse on 1; too few items for a "
        "p-value (9 paired, at least 10)"
    )


def test_no_split_item_gives_no_test(registry):
    lmwidgets.load_model(engine="scripted", name="A", replies=_replier(set(range(5))))
    lmwidgets.load_model(engine="scripted", name="B", replies=_replier(set(range(5))))
    run = lmwidgets.prompt("{input}", models=["A", "B"], dataset=ITEMS[:12], display=False)
    found = run.paired("A", "B")
    assert found.pvalue is None and (found.wins, found.losses, found.ties) == (0, 0, 12)
    assert found.sentence.endswith("no item where only one is right: no test")


def test_graded_scores_get_a_bootstrap_interval(registry):
    lmwidgets.load_model(engine="scripted", name="A", replies={"*": "x"})
    grades = [0.2, 0.9, 0.5, 1.0, 0.7, 0.3]
    items = [{"input": f"item {g}", "expected": str(g)} for g in grades]
    run = lmwidgets.prompt(
        "{input}", dataset=items, display=False, score=lambda a, e, item: float(e)
    )
    row = run.stats().iloc[0]
    want = bootstrap(
        (np.asarray(grades),),
        np.mean,
        confidence_level=0.95,
        n_resamples=9999,
        method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert row["method"] == "bootstrap" and row["accuracy"] == pytest.approx(np.mean(grades))
    assert row["ci_low"] == pytest.approx(want.low) and row["ci_high"] == pytest.approx(want.high)


def test_the_header_has_intervals_and_the_paired_line(two):
    intervals, line = header_stats(two)
    low, high = proportion_confint(20, 40, alpha=0.05, method="wilson")
    assert intervals["A"] == [pytest.approx(low), pytest.approx(high)]
    assert line == two.paired(0, 1).sentence


def test_the_static_copy_shows_intervals_and_the_paired_line(two):
    low, high = proportion_confint(20, 40, alpha=0.05, method="wilson")
    text = two.to_text()
    assert f"Paired: {two.paired(0, 1).sentence}" in text
    html = two.to_html()
    assert "Paired:" in html and f"95% CI {low * 100:.0f}–{high:.0%}" in html


def test_errors_are_clear(two, registry):
    for a, b, words in [
        ("A", "C", "No column 'C'"),
        (0, 5, "out of range"),
        ("A", "A", "not 'A' with itself"),
        (True, 1, "No column"),
    ]:
        with pytest.raises(StatisticsError, match=words):
            two.paired(a, b)
    assert issubclass(StatisticsError, LmWidgetsError)
    unscored = lmwidgets.prompt(
        "{input}", models=["A", "B"], dataset=[{"input": "question 01"}], display=False
    )
    with pytest.raises(StatisticsError, match="not scored"):
        unscored.stats()
    with pytest.raises(StatisticsError, match="no scored item"):
        unscored.paired(0, 1)
    plain = lmwidgets.prompt("question 01", models=["A", "B"], display=False)
    with pytest.raises(StatisticsError, match="dataset"):
        plain.paired(0, 1)
    two.status = "running"
    with pytest.raises(StatisticsError, match="still running"):
        two.stats()
    assert header_stats(two) == ({}, "")


def test_columns_not_on_the_same_items(two):
    two.results[1].input = "another question"
    with pytest.raises(StatisticsError, match="not on the same dataset items"):
        two.paired("A", "B")


def test_a_stopped_run_compares_the_items_both_columns_reached(two):
    two.results.pop()  # the last item's second column never ran
    two.status = "stopped"
    found = two.paired("A", "B")
    assert found.n == 39 and found.wins + found.losses + found.ties == 39


@pytest.mark.parametrize("n", [40, 3])  # residue below 0 with 40 items, above 0 with 3
def test_a_column_right_on_no_item_has_an_interval_from_exactly_zero(registry, n):
    """A 0% column's interval starts at 0 and a 100% one's ends at 1, not at statsmodels'
    float residue (-2.8e-17 with 40 items, 5.6e-17 with 3)."""
    lmwidgets.load_model(engine="scripted", name="A", replies=_replier(set()))
    lmwidgets.load_model(engine="scripted", name="B", replies=_replier(set(range(40))))
    run = lmwidgets.prompt("{input}", models=["A", "B"], dataset=ITEMS[:n], display=False)
    frame = run.stats()
    (none_low, all_low), (none_high, all_high) = list(frame["ci_low"]), list(frame["ci_high"])
    assert none_low == 0.0 and all_high == 1.0
    assert 0.0 < none_high < (0.1 if n == 40 else 0.6) and (0.9 if n == 40 else 0.4) < all_low
