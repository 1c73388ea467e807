"""Example notebooks run headless (nbclient), save, reopen without a kernel, and export."""

import json
import sys
from pathlib import Path

import pytest

import lmwidgets

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from run_notebooks import execute, export_html  # noqa: E402


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("executed")
    executed = execute(ROOT / "examples" / "quickstart.ipynb", out, timeout=600)
    html = out / "quickstart.html"
    export_html(executed, html)
    return executed, html


def test_quickstart_saves_static_results_and_records(quickstart):
    executed, _ = quickstart
    notebook = json.loads(executed.read_text())
    htmls = [
        output["data"]["text/html"]
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if "lmw-static" in "".join(output.get("data", {}).get("text/html", ""))
    ]
    assert htmls and any("Paris" in "".join(h) for h in htmls)
    saved = lmwidgets.records(executed)
    assert len(saved) >= 2
    first = saved[0]
    assert first["model"]["source"] == "default" and len(first["model"]["weights_sha256"]) == 64
    assert "Paris" in first["output"]["text"]
    assert first["generation"]["temperature"] == 0.0
    sampled = saved[1]["generation"]
    assert sampled["seed"] == 42 and sampled["do_sample"] is True


def test_quickstart_failing_cell_shows_a_short_error(quickstart):
    executed, _ = quickstart
    notebook = json.loads(executed.read_text())
    errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["InvalidArgumentError"]
    assert len(errors[0]["traceback"]) <= 2


def test_quickstart_exports_to_html(quickstart):
    _, html = quickstart
    text = html.read_text()
    assert "The capital of France is Paris" in text
    assert "lmw-static" in text
