"""Re-running saved records: same text on the same weights, clear errors otherwise."""

import json

import pytest

import lmwidgets
from lmwidgets.run.records import RECORD_MIME


def _notebook_with(comparison, path):
    payload = comparison.mimebundle()[RECORD_MIME]
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "outputs": [
                            {"output_type": "display_data", "data": {RECORD_MIME: payload}}
                        ],
                    }
                ]
            }
        )
    )
    return path


def test_rerun_greedy_comparison_matches(tiny):
    original = lmwidgets.prompt("Hello", compare="zero-shot,cot", max_new_tokens=10, display=False)
    report = lmwidgets.rerun(original)
    assert report.matched and report.summary() == "2 of 2 texts match"
    assert [row.variant for row in report.rows] == ["zero-shot", "cot"]


def test_rerun_reproduces_sampling_with_the_recorded_seed(tiny):
    original = lmwidgets.prompt(
        "Story",
        compare="zero-shot,self-consistency",
        samples=3,
        temperature=0.9,
        max_new_tokens=10,
        display=False,
    )
    assert original[1].record["generation"]["seed_given"] is False  # a seed was drawn and recorded
    report = lmwidgets.rerun(original)
    assert report.matched, [(r.old_text, r.new_text) for r in report.rows]


def test_rerun_from_a_saved_notebook_and_json(tiny, tmp_path):
    original = lmwidgets.prompt(
        "Hi {x}",
        variables={"x": "there"},
        dataset=[{"input": "a"}, {"input": "b"}],
        max_new_tokens=6,
        display=False,
    )
    report = lmwidgets.rerun(str(_notebook_with(original, tmp_path / "nb.ipynb")))
    assert report.matched and len(report.rows) == 2 and report.rows[1].input == "b"
    exported = tmp_path / "cmp.json"
    exported.write_text(original.to_json())
    assert lmwidgets.rerun(str(exported)).matched


def test_rerun_reports_a_changed_text(tiny):
    original = lmwidgets.prompt("Hello", max_new_tokens=8, display=False)
    record = json.loads(json.dumps(original[0].record))
    record["output"]["text"] = "something else entirely"
    report = lmwidgets.rerun(record)
    assert not report.matched and report.rows[0].first_difference == 0
    bundle = report._repr_mimebundle_()
    assert "0 of 1 texts match" in bundle["text/plain"] and "✗" in bundle["text/html"]


def test_rerun_loads_the_model_from_the_recorded_source(tiny_dir, registry):
    lmwidgets.load_model(str(tiny_dir), name="first")
    original = lmwidgets.prompt("Hello", max_new_tokens=6, display=False)
    lmwidgets.unload_model("first")
    report = lmwidgets.rerun(original)
    assert report.matched and len(registry) == 1


def test_rerun_notes_different_weights(tiny, tiny_plain_dir):
    original = lmwidgets.prompt("Hello", max_new_tokens=4, display=False)
    record = json.loads(json.dumps(original[0].record))
    record["model"]["weights_sha256"] = "0" * 64
    report = lmwidgets.rerun(record)
    assert any("differ from the recorded" in note for note in report.notes)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (42, "not int"),
        ([], "No run records"),
        ({"prompt": {"messages": []}}, "malformed|no model source|empty"),
        (
            {
                "prompt": {"rendered": "x"},
                "model": {"source": "default", "weights_sha256": None},
                "generation": {},
            },
            "malformed",
        ),
    ],
)
def test_rerun_bad_input(tiny, source, match):
    with pytest.raises(lmwidgets.LmWidgetsError, match=match):
        lmwidgets.rerun(source)


def test_rerun_missing_notebook(tmp_path):
    with pytest.raises(lmwidgets.RecordError, match="No notebook"):
        lmwidgets.rerun(str(tmp_path / "none.ipynb"))


def test_rerun_magic(shell, tiny_dir, capsys):
    shell.run_cell(f"%lm load {tiny_dir} --as lmw_rr")
    assert shell.run_cell("%%prompt -n 5 --out lmw_orig\nHello").success
    capsys.readouterr()
    assert shell.run_cell("%lm rerun lmw_orig").success
    assert "1 of 1 texts match" in capsys.readouterr().out
    result = shell.run_cell("%lm rerun")
    assert isinstance(result.error_in_exec, lmwidgets.RecordError)
