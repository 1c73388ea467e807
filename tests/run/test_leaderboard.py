"""The leaderboard: every rated variant across the notebook's comparisons, ranked by a
Bradley-Terry score of the pairwise preferences (bootstrap interval) with the thumbs beside."""

from __future__ import annotations

import math

import nbformat
import pytest

import lmwidgets
from lmwidgets.errors import InvalidArgumentError
from lmwidgets.run.history import HISTORY
from lmwidgets.run.leaderboard import ELO_SCALE, leaderboard
from lmwidgets.run.records import RECORD_MIME, bundle_payload


@pytest.fixture
def models(registry):
    HISTORY.clear()
    for name in ("s", "t", "u"):
        lmwidgets.load_model(engine="scripted", name=name, replies={"*": f"answer of {name}"})
    yield
    HISTORY.clear()


def run(text="Say something.", **options):
    return lmwidgets.prompt(text, display=False, models="s,t,u", **options)


def _rate_a_session():
    """t is preferred to both others, s to u, over two runs; u gets thumbs down."""
    first, second = run("First?"), run("Second?")
    for comparison in (first, second):
        comparison.prefer("t", "s")
        comparison.prefer("t", "u")
        comparison.prefer("s", "u")
    second.prefer("s", "t", tie=True)  # replaces this run's t-over-s
    first.rate("u", "down")
    second.rate("u", "down")
    second.rate("t", "up")
    return first, second


def test_ranks_preferences_across_the_sessions_comparisons(models):
    _rate_a_session()
    board = leaderboard(samples=50)
    frame = board.to_pandas()
    assert list(frame["model"]) == ["t", "s", "u"]
    assert list(frame["rank"]) == [1, 2, 3]
    t, s, u = (frame.iloc[i] for i in range(3))
    assert (t.wins, t.losses, t.ties, t.judgments) == (3, 0, 1, 4)
    assert (u.wins, u.losses, u.ties, u.ups, u.downs, u.liked) == (0, 4, 0, 0, 2, 0.0)
    assert t.runs == 2 and t.variant == "t · zero-shot"
    assert t.score > s.score > u.score
    assert abs((t.score + s.score + u.score) / 3 - 1000) < 0.5  # centred on 1000
    for row in (t, s, u):
        assert row.score_low <= row.score <= row.score_high
    # Thumbs: a Wilson interval around the share up.
    assert u.liked_low == 0.0 and 0.5 < u.liked_high < 0.9
    assert t.ups == 1 and t.liked == 1.0
    assert "t · zero-shot" in repr(board) and "won–lost–tied" in repr(board)
    html = board._repr_html_()
    assert "<table" in html and "var(--jp-" in html


def test_a_score_gap_reads_as_odds(models):
    """Bradley-Terry on the Elo scale: 3 of 4 wins (ties none) is about 3:1 odds."""
    for winner, loser in (("t", "s"), ("t", "s"), ("t", "s"), ("s", "t")):
        run().prefer(winner, loser)
    frame = leaderboard(samples=20).to_pandas().set_index("model")
    odds = math.exp((frame.loc["t", "score"] - frame.loc["s", "score"]) / ELO_SCALE)
    assert 2.5 < odds < 3.1  # 3:1, pulled in a little by the regularization


def test_thumbs_only_variants_rank_after_the_compared_ones_by_liked(models):
    r = run()
    r.rate("u", "up")
    r.rate("s", "down")
    frame = leaderboard(r, samples=20).to_pandas()
    assert list(frame["model"]) == ["u", "s"]
    assert frame["score"].isna().all()


def test_reads_the_saved_notebook_after_a_restart(models, tmp_path):
    first, second = _rate_a_session()
    nb = nbformat.v4.new_notebook()
    for comparison in (first, second):
        cell = nbformat.v4.new_code_cell("%%prompt --models s,t,u\nSay something.")
        cell.outputs = [
            nbformat.v4.new_output(
                "display_data", data={RECORD_MIME: bundle_payload(comparison.records)}
            )
        ]
        nb.cells.append(cell)
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    HISTORY.clear()  # a kernel restart
    frame = leaderboard(notebook=path, samples=20).to_pandas()
    assert list(frame["model"]) == ["t", "s", "u"]
    assert list(frame["judgments"]) == [4, 4, 4]


def test_same_variant_judgments_are_left_out_and_said(models):
    r = lmwidgets.prompt("Hi", display=False, model="s", temperature=0.7, seed=1, trials=2)
    r.prefer(0, 1)
    board = leaderboard(r, samples=20)
    assert len(board) == 0
    assert board.notes == ["1 judgment between columns of the same variant left out."]


def test_empty_and_bad_input(models):
    assert "No ratings yet" in repr(leaderboard([]))
    assert "No ratings yet" in leaderboard([])._repr_html_()
    with pytest.raises(InvalidArgumentError, match="ranks Comparisons"):
        leaderboard("notebook.ipynb")
    with pytest.raises(InvalidArgumentError, match="samples must be"):
        leaderboard([], samples=1)


def test_an_earlier_run_shown_beside_counts_once(models):
    first = lmwidgets.prompt("Hi", display=False, models="s,t")
    first.rate("t", "up")
    second = lmwidgets.prompt("Hi again", display=False, models="s,t", vs=first)
    assert second["t · previous"].rating == "up"  # the copy shows it...
    frame = leaderboard(samples=10).to_pandas()
    assert list(frame["ups"]) == [1]  # ...but it is counted once, with its own run
