"""The benchmark suite in quick mode: it runs, writes its table, and outputs match the baseline."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmarks_run_and_match(tmp_path, registry, capsys):
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import main

    target = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(target), "--tokens", "8"]) == 0
    report = json.loads(target.read_text())
    names = [row["benchmark"] for row in report["results"]]
    assert any(name.startswith("side by side") for name in names)
    assert any(name.startswith("streaming") for name in names)
    assert any(name.startswith("prefix reuse") for name in names)
    for row in report["results"]:
        assert row["outputs_match"] in (True, None)
        assert row["baseline"] > 0 and row["lmwidgets"] > 0 and row["ratio"] > 0
        assert isinstance(row["met"], bool)
        assert row["details"]["peak_rss_mb"] > 0
    assert report["peak_rss_mb"] > 0
    table = capsys.readouterr().out
    assert "met?" in table and "side by side" in table


def test_gpu_benchmark_code_runs_on_a_tiny_model_on_cpu(tmp_path, registry, capsys):
    """The GPU suite's code paths (static-cache decoding, side by side) on CPU, quick mode."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gpu import main

    target = tmp_path / "gpu.json"
    assert main(["--quick", "--device", "cpu", "--json", str(target)]) == 0
    rows = json.loads(target.read_text())["results"]
    assert [row["outputs_match"] for row in rows] == [True, True]
    assert rows[0]["details"]["bound_tok_s"] > 0
    assert "bandwidth bound" in capsys.readouterr().out
