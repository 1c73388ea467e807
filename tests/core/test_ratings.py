"""Your own ratings: thumbs and pairwise preferences on a Comparison, kept in its records (so a
saved notebook and a kernel restart keep them), and the errors for what cannot be rated."""

from __future__ import annotations

import json

import nbformat
import pytest

import lmwidgets
from lmwidgets.core.ratings import identity, watch
from lmwidgets.core.results import Comparison
from lmwidgets.errors import LmWidgetsError, RatingError
from lmwidgets.run.history import HISTORY, saved_runs
from lmwidgets.run.records import RECORD_MIME, bundle_payload


@pytest.fixture
def model(registry):
    HISTORY.clear()
    yield lmwidgets.load_model(
        engine="scripted",
        name="s",
        replies={"France": "Paris.", "Italy": "Rome.", "*": "4"},
        adapters={"loud": str.upper},
    )
    HISTORY.clear()


def run(text="Capital of France?", **options):
    return lmwidgets.prompt(text, display=False, **options)


def test_rate_and_prefer_are_kept_in_the_records(model):
    r = run(compare="zero-shot,cot")
    r.rate("cot", "up")
    r.rate(0, -1)
    assert [x.rating for x in r] == ["down", "up"]
    assert r["cot"].record["rating"]["value"] == "up"
    r.prefer("cot", "zero-shot")
    (p,) = r.preferences
    assert (p.a, p.b, p.winner, p.tie, p.row, p.blind) == (
        "cot",
        "zero-shot",
        "cot",
        False,
        0,
        False,
    )
    assert r["cot"].record["preferences"][0]["vs"] == "zero-shot"
    # The same pair judged again (in either order) replaces the earlier judgment.
    r.prefer("zero-shot", "cot", tie=True)
    (p,) = r.preferences
    assert p.tie and p.winner is None and (p.a, p.b) == ("zero-shot", "cot")
    assert "preferences" not in r["cot"].record
    r.rate("cot", None)
    assert r["cot"].rating is None and "rating" not in r["cot"].record
    ratings = r.to_pandas()["rating"]
    assert ratings[0] == "down" and ratings.isna()[1]


def test_ratings_survive_records_and_a_saved_notebook(model, tmp_path):
    r = run(compare="zero-shot,cot")
    r.rate("zero-shot", "up")
    r.prefer("zero-shot", "cot")
    again = Comparison.from_records(json.loads(json.dumps(r.records)))
    assert again["zero-shot"].rating == "up"
    assert [(p.a, p.b, p.winner) for p in again.preferences] == [("zero-shot", "cot", "zero-shot")]
    # A saved notebook (the static copy's records) is read back after a kernel restart.
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%%prompt --compare zero-shot,cot\nCapital of France?")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={RECORD_MIME: bundle_payload(r.records)})
    ]
    nb.cells = [cell]
    path = tmp_path / "rated.ipynb"
    nbformat.write(nb, path)
    (entry,) = saved_runs(path)
    assert entry.comparison["zero-shot"].rating == "up"
    assert entry.comparison.preferences[0].winner == "zero-shot"


def test_a_dataset_is_rated_per_item(model):
    items = [{"input": "Capital of France?"}, {"input": "Capital of Italy?"}]
    r = run("{input}", compare="zero-shot,cot", dataset=items)
    with pytest.raises(RatingError, match=r"2 dataset items: say which with row=0\.\.1"):
        r.rate("cot", "up")
    r.rate("cot", "up", row=1)
    assert [x.rating for x in r] == [None, None, None, "up"]
    r.prefer("cot", "zero-shot", row=1)
    assert r.preferences[0].row == 1
    with pytest.raises(RatingError, match="row must be a dataset item index from 0 to 1"):
        r.prefer("cot", "zero-shot", row=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.rate("gpt", "up"), "No column 'gpt' \\(columns: 'zero-shot', 'cot'\\)"),
        (lambda r: r.rate(5, "up"), "No column 5: this comparison has 2"),
        (lambda r: r.rate("cot", "great"), "A rating is 'up' or 'down'.*not str 'great'"),
        (lambda r: r.rate("cot", 3), "not int 3"),
        (lambda r: r.rate(["cot"], "up"), "Name a column by its label or position, not list"),
        (lambda r: r.prefer("cot", "cot"), "not 'cot' over itself"),
        (lambda r: r.prefer("cot", "nope"), "No column 'nope'"),
    ],
)
def test_bad_ratings_are_clear_errors(model, call, message):
    r = run(compare="zero-shot,cot")
    with pytest.raises(RatingError, match=message) as caught:
        call(r)
    assert isinstance(caught.value, LmWidgetsError)
    assert all(x.rating is None for x in r) and r.preferences == []


def test_a_running_comparison_cannot_be_rated(model):
    r = run(compare="zero-shot,cot")
    r.status = "running"
    with pytest.raises(RatingError, match="still running"):
        r.rate("cot", "up")
    with pytest.raises(RatingError, match="still running"):
        r.prefer("cot", "zero-shot")


def test_watchers_follow_every_change(model):
    r = run(compare="zero-shot,cot")
    seen = []
    watch(r, lambda: seen.append([x.rating for x in r]))
    r.rate("cot", "up")
    r.prefer("cot", "zero-shot")
    assert seen == [[None, "up"], [None, "up"]]


def test_identity_names_model_adapter_strategy_and_varied_prompt(model):
    r = run("--- A\nCapital of France?\n--- B\nFrance's capital?", adapters="base,loud")
    found = [identity(x) for x in r]
    assert {"model": "s", "adapter": "loud", "strategy": "zero-shot", "prompt": "B"} in found
    assert all("trial" not in f for f in found)


def test_any_input_is_recorded_or_a_rating_error_and_any_record_reads(model):
    """Fuzzed: rate / prefer with any arguments, and records whose rating fields are any JSON
    value, never raise anything but a RatingError, and never break the comparison."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from lmwidgets.run.leaderboard import leaderboard

    r = run(compare="zero-shot,cot")
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["vs", "outcome", "value", "blind", "seed"]), inner)
        ),
        max_leaves=8,
    )
    anything = json_values | st.sampled_from(["up", "down", "cot", "zero-shot", 0, 1, -1, object()])

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        column=anything,
        other=anything,
        value=anything,
        row=anything,
        rating=json_values,
        prefs=json_values,
    )
    def fuzz(column, other, value, row, rating, prefs):
        for call in (
            lambda: r.rate(column, value, row=row),
            lambda: r.prefer(column, other, row=row),
        ):
            try:
                call()
            except RatingError as exc:
                assert str(exc)
        records = [dict(x.record) for x in r]
        records[0]["rating"], records[1]["preferences"] = rating, prefs
        again = Comparison.from_records(records)
        first, second = (x.rating for x in again)
        assert first == (rating if rating in ("up", "down") else None)
        kept = records[1].get("rating")  # as rated above (a value and its time), or not at all
        assert second == (kept["value"] if isinstance(kept, dict) else kept)
        for preference in again.preferences:
            assert {preference.a, preference.b} == {"zero-shot", "cot"}
        leaderboard(again, samples=10).to_pandas()

    fuzz()
    assert {x.variant for x in r} == {"zero-shot", "cot"}
