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


# A notebook saved just before the records gained item_index, own media, judge, ratings and
# choices (commit 7bd1b04, records schema 2; see tests/fixtures/README.md).
PRE_ITEMS = FIXTURES / "records_7bd1b04.ipynb"
NEWER_FIELDS = ("item_index", "judge", "ratings", "choices")


def _saved_outputs(path: Path) -> list[dict]:
    """The data of every saved output that holds run records (the static copies)."""
    from lmwidgets.run.records import RECORD_MIME

    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [
        output["data"]
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if RECORD_MIME in output.get("data", {})
    ]


def _scripted_picture_model():
    """The scripted vision model the fixture's image cell ran on (not in its records)."""
    return lmwidgets.load_model(
        engine="scripted", name="lmw_pic", replies={"*": "A red square."}, media=("image",)
    )


def _red_square():
    from PIL import Image

    return Image.new("RGB", (8, 8), (200, 30, 30))


def test_pre_item_index_notebook_reads_back():
    from lmwidgets.run.records import validate_records

    records = lmwidgets.records(PRE_ITEMS)
    assert len(records) == 17
    assert records == json.loads((FIXTURES / "records_7bd1b04_list.json").read_text())
    validate_records(records)
    assert {r["schema"] for r in records} == {2}
    assert not [f for f in NEWER_FIELDS for r in records if f in r]
    (picture,) = [r for r in records if r["prompt"].get("media")]
    assert [m.get("own") for m in picture["prompt"]["media"]] == [None]  # before ``own``


def test_pre_item_index_static_copies_render_again():
    """Each saved run shows again from its records, laid out as the old release saved it: the
    dataset's two items asking the same question stay two rows (no item_index to tell them
    apart), every text escaped in the HTML."""
    from lmwidgets.core.safe_text import escape_html
    from lmwidgets.run.records import RECORD_MIME, load_records

    saved = _saved_outputs(PRE_ITEMS)
    assert len(saved) == 5
    for data in saved:
        comparison = lmwidgets.Comparison.from_records(load_records(data[RECORD_MIME]))
        bundle = comparison.mimebundle()
        old_html = "".join(data["text/html"])
        assert bundle["text/html"].count("<tr") == old_html.count("<tr")
        for result in comparison.results:
            assert escape_html(result.text) in bundle["text/html"]
            assert result.item_index is None and result.judge is None
        assert load_records(bundle[RECORD_MIME]) == load_records(data[RECORD_MIME])  # as saved
    dataset = lmwidgets.Comparison.from_records(load_records(saved[0][RECORD_MIME]))
    assert "3 items × 2 columns" in dataset.mimebundle()["text/markdown"]
    assert [r.input for r in dataset.results] == ["hot", "hot", "big", "big", "hot", "hot"]
    assert len(dataset.to_pandas()) == 6


def test_pre_item_index_image_run_reruns_with_the_magic(shell, tmp_path, capsys):
    """``%lm rerun`` of the old notebook's image cell (the scripted model; the image found as
    the notebook variable it was); without the variable, a RecordError names it."""
    notebook = json.loads(PRE_ITEMS.read_text(encoding="utf-8"))
    notebook["cells"] = [c for c in notebook["cells"] if "--image img" in "".join(c["source"])]
    path = tmp_path / "pictures.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    _scripted_picture_model()
    shell.user_ns.pop("img", None)
    result = shell.run_cell(f"%lm rerun {path}")
    assert isinstance(result.error_in_exec, lmwidgets.RecordError)
    assert "'img'" in str(result.error_in_exec) and "images=" in str(result.error_in_exec)
    shell.user_ns["img"] = _red_square()
    try:
        capsys.readouterr()
        assert shell.run_cell(f"%lm rerun {path}").success
        assert "1 of 1 texts match" in capsys.readouterr().out
    finally:
        del shell.user_ns["img"]


@pytest.mark.slow
def test_pre_item_index_notebook_reruns_with_the_magic(shell, capsys):
    """The whole notebook re-run by ``%lm rerun`` (the default model): every text equal, the
    ``--one-of`` column too (held to its recorded constraint; the 7bd1b04 code itself re-ran
    it as free text: 16 of 17)."""
    _scripted_picture_model()
    shell.user_ns["img"] = _red_square()
    try:
        capsys.readouterr()
        assert shell.run_cell(f"%lm rerun {PRE_ITEMS}").success
        out = capsys.readouterr().out
    finally:
        del shell.user_ns["img"]
    assert "17 of 17 texts match" in out, out[-2000:]
