"""Notebooks saved by the release before the engine seam still read back and re-run.

The fixtures in ``tests/fixtures/`` were written by release 6a16d8a (records schema 1:
``prompt.images``, no ``model.engine``) on the embedded default model.
"""

import json
from pathlib import Path

import pytest

import lmwidgets

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOTEBOOK = FIXTURES / "records_v0_1.ipynb"


def test_old_records_read_back():
    records = lmwidgets.records(NOTEBOOK)
    assert len(records) == 10
    assert records == json.loads((FIXTURES / "records_v0_1_list.json").read_text())
    assert {r["schema"] for r in records} == {1}
    assert all("engine" not in r["model"] for r in records)


@pytest.mark.slow
def test_old_notebook_reruns_to_the_same_texts(registry):
    report = lmwidgets.rerun(NOTEBOOK)
    assert report.summary() == "10 of 10 texts match", [
        (row.variant, row.old_text, row.new_text) for row in report.rows if not row.matched
    ]
    assert report.matched and len(report.comparisons) == 5
    (model,) = lmwidgets.models()
    assert model.engine == "transformers"
    new_record = report.comparisons[0][0].record
    assert new_record["schema"] == 2 and new_record["model"]["engine"] == "transformers"
    again = lmwidgets.rerun(FIXTURES / "records_v0_1_comparison.json")
    assert again.matched and len(again.rows) == 3
    listed = lmwidgets.rerun(json.loads((FIXTURES / "records_v0_1_list.json").read_text()))
    assert listed.matched and len(listed.rows) == 10
    assert len(lmwidgets.models()) == 1  # found again by its weights, not loaded twice
