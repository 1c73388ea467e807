"""Example notebooks run headless (nbclient), save, reopen without a kernel, and export."""

import json
import os
import sys
from pathlib import Path

import pytest

import lmwidgets

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from run_notebooks import execute, export_html  # noqa: E402

#: Examples that run on the kernel alone; served.ipynb needs a server (its own test, below).
EXAMPLES = [
    path
    for path in sorted((ROOT / "examples").glob("*.ipynb"))
    if not json.loads(path.read_text())["metadata"].get("lmwidgets", {}).get("requires_env")
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every example notebook, executed once: {stem: (executed path, html path)}."""
    out = tmp_path_factory.mktemp("executed")
    done = {}
    for notebook in EXAMPLES:
        path = execute(notebook, out, timeout=600)
        html = out / f"{notebook.stem}.html"
        export_html(path, html)
        done[notebook.stem] = (path, html)
    return done


def _static_htmls(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    return [
        "".join(output["data"]["text/html"])
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if "lmw-static" in "".join(output.get("data", {}).get("text/html", ""))
    ]


def _markdowns(path: Path) -> list[str]:
    """The notebook's markdown cells' texts, in order."""
    notebook = json.loads(path.read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_every_example_runs_and_saves_its_results(executed, name):
    path, html = executed[name]
    notebook = json.loads(path.read_text())
    errors = [
        o for c in notebook["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    tagged = [
        c for c in notebook["cells"] if "raises-exception" in c.get("metadata", {}).get("tags", [])
    ]
    assert len(errors) == len(tagged), [e["evalue"] for e in errors]
    statics = _static_htmls(path)
    assert statics and all("running…" not in h for h in statics)
    assert lmwidgets.records(path)
    assert "lmw-static" in html.read_text()


def test_quickstart_saves_static_results_and_records(executed):
    path, _ = executed["quickstart"]
    assert any("Paris" in h for h in _static_htmls(path))
    saved = lmwidgets.records(path)
    first = saved[0]
    assert first["model"]["source"] == "default" and len(first["model"]["weights_sha256"]) == 64
    assert "Paris" in first["output"]["text"]
    assert first["generation"]["temperature"] == 0.0
    sampled = saved[1]["generation"]
    assert sampled["seed"] == 42 and sampled["do_sample"] is True


def test_quickstart_failing_cell_shows_a_short_error(executed):
    path, _ = executed["quickstart"]
    notebook = json.loads(path.read_text())
    errors = [
        o for c in notebook["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert [e["ename"] for e in errors] == ["InvalidArgumentError"]
    assert len(errors[0]["traceback"]) <= 2


def test_quickstart_exports_to_html(executed):
    _, html = executed["quickstart"]
    assert "The capital of France is Paris" in html.read_text()


def _accuracy(records, scorer):
    by_strategy = {}
    for record in records:
        if record.get("scorer") == scorer and record.get("correct") is not None:
            by_strategy.setdefault(record["strategy"]["name"], []).append(record["correct"])
    return {k: sum(v) / len(v) for k, v in by_strategy.items()}


def test_strategies_notebook_scores_few_shot_above_zero_shot(executed):
    """The notebook's lesson: auto scoring credits zero-shot's full sentences; exact matching
    needs the format the demonstrations teach; a notebook function scores too."""
    path, html = executed["strategies"]
    saved = lmwidgets.records(path)
    exact = _accuracy(saved, "exact")
    assert exact["few-shot"] > exact["zero-shot"], exact
    auto = _accuracy(saved, "auto")
    assert auto["zero-shot"] > exact["zero-shot"], (auto, exact)
    assert _accuracy(saved, "callable:first_word")["few-shot"] > 0
    assert "Accuracy" in html.read_text()


@pytest.mark.served
def test_served_notebook_runs_against_a_real_vllm(vllm, tmp_path, monkeypatch):
    """examples/served.ipynb against the session's vLLM (with its API key, passed by name)."""
    from vllm_server import KEY_ENV

    notebook = ROOT / "examples" / "served.ipynb"
    monkeypatch.setenv("LMWIDGETS_SERVER", vllm)
    monkeypatch.setenv("LMWIDGETS_SERVER_KEY_ENV", KEY_ENV)
    path = execute(notebook, tmp_path, timeout=600)
    html = tmp_path / "served.html"
    export_html(path, html)
    text = path.read_text()
    cells = json.loads(text)["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, [e["evalue"] for e in errors]
    assert os.environ[KEY_ENV] not in text + html.read_text()
    saved = lmwidgets.records(path)
    first = saved[:2]  # the first cell: --models local,served
    assert [r["model"]["engine"] for r in first] == ["transformers", "openai"]
    assert first[1]["model"]["source"] == vllm and first[1]["model"]["model_id"]
    assert first[0]["output"]["text"] == first[1]["output"]["text"]
    statics = _static_htmls(path)
    assert statics and all("running…" not in h for h in statics)
    both = statics[0]  # --models local,served: one column per model
    assert "local" in both and "served" in both and "Paris" in both
    shown = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert "same text:   True" in shown
    assert "The server did not take the adapter" not in shown  # the session server allows it
    adapters = {r["adapter"]["name"] for r in saved if r.get("adapter")}
    assert "terse" in adapters


def test_tokens_notebook_records_token_details_and_a_fork(executed):
    """examples/tokens.ipynb: token details and confidence in the records, a fork that says
    what it forced, and a static copy shaded by probability."""
    path, html = executed["tokens"]
    saved = lmwidgets.records(path)
    with_tokens = [r for r in saved if r["output"].get("tokens_detail")]
    assert {r["strategy"]["name"] for r in with_tokens} >= {"zero-shot", "cot"}
    assert all(r["generation"]["logprobs"] == 5 for r in with_tokens)
    forks = [r for r in saved if r.get("fork")]
    assert forks and forks[0]["fork"]["position"] == 0
    assert forks[0]["output"]["text"].startswith(forks[0]["fork"]["forced"]["text"])
    assert "lmw-token" in html.read_text()


def test_multimodal_notebook_runs_a_vqa_dataset_with_an_image_per_item(executed):
    """examples/multimodal.ipynb's VQA section: each item's record names its own image, and the
    saved grid shows a bounded thumbnail per row."""
    path, html = executed["multimodal"]
    saved = [r for r in lmwidgets.records(path) if r.get("expected") is not None]
    own = [r["prompt"]["media"] for r in saved if r["strategy"]["name"] == "zero-shot"]
    assert len(own) == 4 and len({m[0]["sha256"] for m in own}) == 4
    assert {m[0]["name"] for m in own[:3]} == {"red.png", "green.png", "blue.png"}
    assert all(r["prompt"]["media"] == [] for r in saved if r["strategy"]["name"] == "no-image")
    assert html.read_text().count("lmw-rowmedia") >= 4


def test_iterate_notebook_records_axes_trials_vs_and_cache(executed):
    """examples/iterate.ipynb: coordinates on every axis, trial seeds, an earlier run beside a
    new one, and a re-run answered from the response cache."""
    path, html = executed["iterate"]
    saved = lmwidgets.records(path)
    axes = [r.get("axes", {}) for r in saved]
    assert {"prompt", "system"} <= set().union(*axes)
    sweep = [r for r in saved if "trial" in r.get("axes", {})]
    assert sorted({r["axes"]["temperature"] for r in sweep}) == ["0", "0.7", "1.2"]
    seeds = sorted(r["generation"]["seed"] for r in sweep if r["axes"]["temperature"] == "0.7")
    assert seeds == [1, 2, 3]
    assert any(r.get("shown_as") == "previous" for r in saved)
    assert any(r.get("vs", {}).get("label") for r in saved)
    assert any(r.get("cached") for r in saved)
    page = html.read_text()
    assert "matrix (prompts × system prompts)" in page and "Trials:" in page
    # The text above the sweep counts its columns: one greedy, three trials of each sampled one.
    told = next(t for t in _markdowns(path) if "--trials N" in t)
    assert len(sweep) == 7 and "All seven columns" in told, (len(sweep), told)


def test_probes_notebook_records_attacks_canaries_and_verdicts(executed):
    """examples/probes.ipynb: probe columns on the default model, each record with its attack,
    canary and verdict; the rates per system prompt; the summary line in the static copy."""
    path, html = executed["probes"]
    saved = lmwidgets.records(path)
    probes = [r["probe"] for r in saved if r.get("probe")]
    assert {p["kind"] for p in probes} == {"leak", "inject", "override"}
    assert all(p["canary"] and p["attack"]["text"] for p in probes)
    assert {p["verdict"] for p in probes} <= {"held", "leaked", "followed"}
    assert {r["axes"]["system"] for r in saved if "system" in r.get("axes", {})} == {
        "loose",
        "strict",
    }
    page = html.read_text()
    assert "Attack success" in page and "matrix (system prompts × probes)" in page
    assert "held" in page
    # "Your own attacks" is followed by its own example, not by the findings of the runs above.
    headings = [t.splitlines()[0] for t in _markdowns(path) if t.startswith("## ")]
    own = headings.index("## Your own attacks")
    assert headings.index("## What the default model really does") < own, headings


def test_structured_notebook_enforces_json_labels_and_patterns(executed):
    """examples/structured.ipynb on the default model: the enforced columns are valid (a
    pydantic Person, every label of the set, a date shaped YYYY-MM-DD), the records keep the
    schema and pattern exactly, and a broken pattern is a ConstraintError."""
    path, html = executed["structured"]
    records = lmwidgets.records(path)
    structured = [r for r in records if "structured" in r["output"]]
    enforced = [r for r in structured if r["output"]["structured"]["enforced"]]
    people = [r for r in enforced if r["output"]["structured"]["constraint"]["kind"] == "json"]
    assert people and people[0]["output"]["structured"]["valid"] is True
    person = people[0]["output"]["structured"]["parsed"]
    assert set(person) == {"name", "age", "city"} and isinstance(person["age"], int)
    assert people[0]["output"]["structured"]["constraint"]["model"].endswith("Person")
    labels = [r for r in enforced if r["output"]["structured"]["constraint"]["kind"] == "one_of"]
    labels = [r for r in labels if r["strategy"]["name"] == "zero-shot"]
    assert len(labels) == 4 and all(r["output"]["text"] in ("positive", "negative") for r in labels)
    dates = [r for r in enforced if r["output"]["structured"]["constraint"]["kind"] == "regex"]
    assert dates[0]["output"]["structured"]["constraint"]["pattern"] == "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    assert dates[0]["output"]["structured"]["valid"] is True
    notebook = json.loads(path.read_text())
    errors = [
        o for c in notebook["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert [e["ename"] for e in errors] == ["ConstraintError"]
    assert "✓ valid · enforced" in html.read_text()


def test_audio_notebook_records_clips_and_saves_no_audio(executed):
    """examples/audio.ipynb on the tiny Qwen2-Audio: records name each clip (rate, duration,
    sha256, the --clip part), the dataset's items their own clips; the saved notebook keeps
    waveform pictures, never the audio."""
    path, html = executed["audio"]
    records = lmwidgets.records(path)
    clips = [m for r in records for m in r["prompt"]["media"] if m["kind"] == "audio"]
    assert any(m.get("clip") == [0.25, 0.75] for m in clips)
    assert all(m["rate"] > 0 and len(m["sha256"]) == 64 for m in clips)
    graded = [r for r in records if r.get("expected") is not None]
    own = [r["prompt"]["media"] for r in graded if r["strategy"]["name"] == "zero-shot"]
    assert len(own) == 3 and len({m[0]["sha256"] for m in own}) == 3
    saved = path.read_text()
    assert "data:audio/wav" not in saved and "UklGR" not in saved
    assert "data:image/png" in html.read_text()


def test_judging_notebook_records_verdicts_choices_ratings_and_a_paired_test(executed):
    """examples/judging.ipynb on the default model: every pointwise verdict is readable (the
    judge's format enforced), pairwise outcomes come from both orders, the quiz's choices carry
    their log-probabilities, the ratings and preferences given from code are in the records, and
    the static copy shows the intervals and the paired line."""
    path, html = executed["judging"]
    records = lmwidgets.records(path)
    judged = [r for r in records if isinstance(r.get("judge"), dict)]
    pointwise = [r for r in judged if r["judge"]["mode"] == "pointwise"]
    assert len(pointwise) == 3
    for record in pointwise:
        assert record["judge"]["enforced"] is True
        assert record["judge"]["label"] in {f"{n}/5" for n in range(1, 6)}
        assert record["judge"]["format"]["pattern"].endswith("Score: [1-5]")
    compared = [r for r in judged if r["judge"]["mode"] == "pairwise" and r["variant"] == "child"]
    assert len(compared) == 3
    assert all(r["judge"]["outcome"] in ("better", "worse", "tie") for r in compared)
    assert all(len(r["judge"]["calls"]) == 2 for r in compared)
    quiz = [r for r in records if "choices" in r]
    assert len(quiz) == 4 and all(len(r["choices"]["logprobs"]) == 3 for r in quiz)
    assert quiz[0]["choices"]["options"] == ["Paris", "Lyon", "Marseille"]
    ratings = {(r["variant"], r["rating"]["value"]) for r in records if r.get("rating")}
    assert ratings == {("child", "up"), ("A", "down")}
    outcomes = sorted(p["outcome"] for r in records for p in r.get("preferences") or [])
    assert outcomes == ["tie", "win", "win"]
    text = html.read_text()
    assert "95% CI" in text
    assert "(exact McNemar)" in text or "too few items for a p-value" in text
    assert "Preferred: child over A" in text
