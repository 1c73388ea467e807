"""The benchmark suite in quick mode: it runs, writes its table, and outputs match the baseline."""

import json
import os
import sys
from pathlib import Path

import pytest

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
    assert any(name.startswith("response cache") for name in names)
    assert any(name.startswith("temperature sweep") for name in names)
    assert any(name.startswith("prompt variants") for name in names)
    assert any(name.startswith("batch-1 decode vs plain") for name in names)
    assert any(name.startswith("decoding step: 4 variants") for name in names)
    machine = report["machine"]  # every table says what it was measured on
    assert machine["cpu"] and machine["torch_threads"] >= 1 and machine["versions"]["torch"]
    assert machine["cpu_kernels"] and isinstance(machine["cpu_flags"], list)
    for row in report["results"]:
        assert row["outputs_match"] in (True, None)
        assert row["baseline"] > 0 and row["lmwidgets"] > 0 and row["ratio"] > 0
        assert isinstance(row["met"], bool)
        assert row["details"]["peak_rss_mb"] > 0
    assert report["peak_rss_mb"] > 0
    table = capsys.readouterr().out
    assert "met?" in table and "side by side" in table
    assert "cpu kernels:" in table and "versions: " in table


def test_logprobs_and_token_message_benchmarks_run_and_match(tmp_path, registry, capsys):
    """The two token-view rows (issue 15) on the tiny model: same texts with and without
    log-probabilities, every token reported, messages counted."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import main

    target = tmp_path / "bench.json"
    argv = ["--quick", "--only", "logprobs,tokens", "--tokens", "6", "--json", str(target)]
    assert main(argv) == 0
    rows = json.loads(target.read_text())["results"]
    assert [row["benchmark"].split(":")[0] for row in rows] == [
        "logprobs overhead",
        "token view messages",
    ]
    for row in rows:
        assert row["outputs_match"] is True and row["baseline"] > 0 and row["lmwidgets"] > 0
    assert rows[1]["details"]["bytes_per_second_on"] > 0
    assert "logprobs overhead" in capsys.readouterr().out


def test_temperature_sweep_and_prompt_variant_benchmarks_run_and_match(tmp_path, registry):
    """The two "own variations side by side" rows on the tiny model: every batched column's text
    equals its run alone (sampled with per-row seeds for the sweep, greedy for the wordings)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import main

    target = tmp_path / "bench.json"
    argv = ["--quick", "--only", "sweep,wordings", "--tokens", "6", "--json", str(target)]
    assert main(argv) == 0
    rows = json.loads(target.read_text())["results"]
    assert [row["benchmark"].split(":")[0] for row in rows] == [
        "temperature sweep",
        "prompt variants",
    ]
    for row in rows:
        assert row["outputs_match"] is True and row["baseline"] > 0 and row["lmwidgets"] > 0
    assert rows[0]["details"]["temperatures"] == [0.3, 0.7, 1.0, 1.3]


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


@pytest.mark.served
@pytest.mark.slow
def test_served_benchmark_code_runs_against_the_session_server(vllm, tmp_path, registry, capsys):
    """The served suite's code (bare client, concurrency, streaming, models side by side, engines)
    against the session's vLLM, quick mode: a smoke test, not a measurement."""
    sys.path.insert(0, str(ROOT))
    from vllm_server import KEY_ENV

    from benchmarks.served import main

    target = tmp_path / "served.json"
    argv = ["--quick", "--url", vllm, "--api-key-env", KEY_ENV, "--json", str(target)]
    assert main([*argv, "--tokens", "4"]) == 0
    report = json.loads(target.read_text())
    assert len(report["results"]) == 4 and report["vllm_version"]
    for row in report["results"]:
        assert row["outputs_match"] is True, row
        assert row["baseline"] > 0 and row["lmwidgets"] > 0
    side = report["results"][0]
    assert side["benchmark"].startswith("served: 4 columns")
    assert side["details"]["server_completion_tokens"] == [4, 4, 4, 4]
    assert os.environ[KEY_ENV] not in target.read_text()
    assert "met?" in capsys.readouterr().out


@pytest.mark.slow  # two fresh processes, 220 prompts on the tiny LLaVA (about 1.5 minutes)
def test_media_dataset_benchmark_reads_items_lazily(tmp_path, registry):
    """The media-dataset row (issue 23): 200 images peak at about what 20 do, same texts."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import main

    target = tmp_path / "bench.json"
    assert main(["--quick", "--only", "media_dataset", "--json", str(target)]) == 0
    (row,) = json.loads(target.read_text())["results"]
    assert row["benchmark"].startswith("media dataset") and row["outputs_match"] is True
    assert row["baseline"] > 0 and row["met"] is True


def test_the_audio_benchmark_batches_four_clips_with_the_same_texts(tmp_path, registry):
    """4 audio prompts on the tiny Qwen2-Audio: one batch vs one after another, texts equal."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import main

    target = tmp_path / "bench.json"
    assert main(["--quick", "--only", "audio", "--tokens", "6", "--json", str(target)]) == 0
    row, features = json.loads(target.read_text())["results"]
    assert row["benchmark"].startswith("audio: 4 clips") and row["outputs_match"] is True
    assert row["details"]["clips"] == ["tone-220", "tone-880", "noise", "clicks"]
    # 4 columns hearing one clip: its features are computed once, the texts do not change.
    assert features["benchmark"].startswith("audio: 4 columns hearing one clip")
    assert features["outputs_match"] is True and features["details"]["feature_hits_per_render"] == 3
    assert 0 < features["lmwidgets"] < features["baseline"]
