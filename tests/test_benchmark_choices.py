"""The given-choices benchmark in quick mode: it runs, and both sides give the same numbers."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_choices_benchmark_runs_and_outputs_match(registry, capsys):
    sys.path.insert(0, str(ROOT))
    from benchmarks.choices import main

    assert main(["--quick", "--items", "2", "--repeats", "1"]) == 0
    line = capsys.readouterr().out
    assert "shared prompt vs whole sequences" in line and "outputs ok: True" in line
