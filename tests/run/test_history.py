"""Earlier runs: the session's history, --vs previous / --vs VAR, and runs found again in a
saved notebook after a kernel restart."""

from __future__ import annotations

import json

import nbformat
import pytest

import lmwidgets
from lmwidgets.errors import InvalidArgumentError
from lmwidgets.run.history import HISTORY, History, NoEarlierRunError, history, saved_runs


@pytest.fixture
def model(registry):
    HISTORY.clear()
    HISTORY.cell = None
    replies = {
        "France": "The answer is Paris.",
        "Italy": "The answer is Rome.",
        "*": "The answer is 4.",
    }
    yield lmwidgets.load_model(engine="scripted", name="s", replies=replies)
    HISTORY.clear()
    HISTORY.cell = None


def run(text, **options):
    return lmwidgets.prompt(text, display=False, **options)


def test_vs_previous_puts_the_earlier_run_beside_and_flags_changed_answers(model):
    HISTORY.cell = "cell-1"
    first = run("Capital of France?", compare="zero-shot,cot")
    second = run("Capital of Italy?", compare="zero-shot,cot", vs="previous")
    assert [r.variant for r in second.results] == [
        "zero-shot",
        "cot",
        "zero-shot · previous",
        "cot · previous",
    ]
    assert [r.text for r in second.results[2:]] == [r.text for r in first.results]
    assert second["zero-shot"].extras["vs"]["answer_changed"] is True
    assert second["zero-shot"].record["vs"]["previous_answer"] == "Paris"
    assert "previous_text" not in second["zero-shot"].record["vs"]
    assert second.results[2].record["shown_as"] == "previous"
    assert second.results[2].coords["run"] == "previous"
    assert second.results[0].coords["run"] == "this"
    assert any("2 of 2 answers changed" in note for note in second.notes)
    text = second.to_text()
    assert "2 × 2 matrix (strategies × runs)" in text
    assert "vs previous: answer changed (was 'Paris')" in text
    assert "<del>Paris.</del><ins>Rome.</ins>" in second.to_html()


def test_previous_is_this_cells_previous_run_and_never_nests(model):
    HISTORY.cell = "a"
    run("Capital of France?")
    HISTORY.cell = "b"
    run("Capital of Italy?")
    HISTORY.cell = "a"
    again = run("Capital of Italy?", vs="previous")
    assert again.results[1].text == "The answer is Paris."
    third = run("What?", vs="previous")  # the previous run of "a" had a previous column itself
    assert [r.variant for r in third.results] == ["s", "s · previous"]
    assert third.results[1].text == "The answer is Rome."
    assert third["s"].extras["vs"]["text_changed"] is True


def test_same_answer_is_said_and_vs_takes_a_comparison(model):
    earlier = run("Capital of France?")
    again = run("Capital of France?", vs=earlier)
    assert again["s"].extras["vs"] == {
        "label": "s · previous",
        "text_changed": False,
        "answer_changed": False,
        "previous_answer": "Paris",
        "previous_text": "The answer is Paris.",
    }
    assert "vs previous: same text" in again.to_text()


def test_vs_errors(model):
    HISTORY.cell = "new-cell"
    with pytest.raises(NoEarlierRunError, match="no earlier run"):
        run("Hi", vs="previous")
    with pytest.raises(InvalidArgumentError, match="previous"):
        run("Hi", vs="yesterday")
    with pytest.raises(InvalidArgumentError, match="Comparison"):
        run("Hi", vs=3)


def test_vs_on_a_dataset_compares_item_by_item(model):
    items = [{"input": "France", "expected": "Paris"}, {"input": "Italy", "expected": "Rome"}]
    earlier = run("Capital of {input}?", dataset=items)
    again = run("Tell me the capital of {input}.", dataset=items, vs=earlier)
    assert set(again.scores) == {"zero-shot", "zero-shot · previous"}
    assert all(r.extras["vs"]["answer_changed"] is False for r in again.results[:2])


def test_history_is_bounded_and_lists_runs(model):
    small = History(limit=2)
    comparisons = [run(q) for q in ("France", "Italy", "Spain")]
    for comparison in comparisons:
        small.add(comparison, cell="x")
    assert [e.comparison for e in small.entries()] == comparisons[1:]
    view = history()
    assert len(view) == 3 and view[-1] is comparisons[-1]
    frame = view.to_pandas()
    assert list(frame.columns[:4]) == ["run", "cell", "time", "title"]
    assert "Spain" in repr(view) and "<table>" in view._repr_html_()
    html = view._repr_html_()  # JupyterLab right-aligns cells: text reads from the left
    assert '<td style="text-align: left; white-space: nowrap">' in html  # the time
    assert html.count('<td style="text-align: left">') == 3 * 3  # prompt, varied, summary


def test_stopped_runs_are_kept_too(registry):
    HISTORY.clear()
    lmwidgets.load_model(engine="scripted", name="slow", fail_after=1)
    with pytest.raises(lmwidgets.errors.OutOfMemoryError):
        run("Hi there friend")
    assert HISTORY.entries()[-1].comparison.status == "error"
    HISTORY.clear()


def test_runs_are_found_in_a_saved_notebook_after_a_restart(model, tmp_path, monkeypatch):
    comparison = run("Capital of France?", compare="zero-shot,cot")
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%%prompt --compare zero-shot,cot\nCapital of France?")
    cell.outputs = [nbformat.v4.new_output("display_data", data=comparison.mimebundle())]
    notebook.cells = [nbformat.v4.new_markdown_cell("intro"), cell]
    path = tmp_path / "saved.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    runs = saved_runs(path)
    assert len(runs) == 1 and runs[0].cell == cell.id and runs[0].saved
    restored = runs[0].comparison
    assert [r.text for r in restored.results] == [r.text for r in comparison.results]
    assert [r.answer for r in restored.results] == ["Paris", "Paris"]
    # After a restart the session is empty: --vs previous finds the saved run of this cell.
    HISTORY.clear()
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    HISTORY.cell = cell.id
    again = run("Capital of Italy?", compare="zero-shot,cot", vs="previous")
    assert again.results[2].text == "The answer is Paris."
    assert len(history()) == 2  # the saved run, then this session's
    assert saved_runs(tmp_path / "missing.ipynb") == []
    (tmp_path / "bad.ipynb").write_text("{not json", encoding="utf-8")
    assert saved_runs(tmp_path / "bad.ipynb") == []


def test_a_long_answer_in_the_summary_is_marked_as_cut(registry):
    HISTORY.clear()
    long = "Photosynthesis is a vital biological process that occurs in plants."
    lmwidgets.load_model(engine="scripted", name="s", replies={"*": long})
    short = History()
    short.add(run("What is photosynthesis?"), cell="x")
    summary = short.entries()[0].summary
    assert "'Photosynthesis is a vital biological pr…'" in summary, summary
    assert long not in summary
    HISTORY.clear()
