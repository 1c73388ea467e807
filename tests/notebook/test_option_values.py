"""Values of the newer ``%%prompt`` options as typed in a notebook line: braces, quotes, spaces,
commas and ``$variables``.

The line is split by shell rules (quotes group words and are removed) and each word is expanded
as IPython expands magic lines (``{expr}`` and ``$name`` from the notebook; what cannot be
expanded stays as typed), except the patterns of ``--regex``/``--one-of``. A bad value fails the
cell with one line that names the option (an LmWidgetsError, or IPython's UsageError for a
value argparse refuses), never a traceback.
"""

from __future__ import annotations

import numpy as np
import pytest

import lmwidgets


def _judge(prompt: str, adapter) -> str:
    return "Fine.\nScore: 4"


@pytest.fixture
def notebook(shell):
    """Scripted models (one that hears audio, one judge) and the variables the lines name."""
    lmwidgets.load_model(
        engine="scripted", name="lmw_m", replies={"*": "Paris."}, media=("image", "audio")
    )
    lmwidgets.load_model(engine="scripted", name="lmw_j", replies=_judge)
    names = {
        "lmw_word": "POLITE",
        "lmw_rubric": "Is it short?",
        "lmw_judge": "lmw_j",
        "lmw_opts": ["yes", "no"],
        "lmw_tone": np.sin(np.linspace(0, 400, 16000)).astype("float32"),  # 1 s at 16 kHz
        "lmw_rate": 16000,
        "lmw_span": "0.25,0.5",
        "lmw_col": "clip",
        "lmw_items": [{"input": "q", "clip": (np.zeros(8000, dtype="float32"), 16000)}],
    }
    shell.user_ns.update(names)
    yield shell
    for name in names:
        shell.user_ns.pop(name, None)


def _run(shell, line: str, body: str = "Capital of France?"):
    """``%%prompt`` on the scripted model with ``line``; the Comparison it binds."""
    shell.user_ns.pop("lmw_out", None)
    result = shell.run_cell(f"%%prompt --model lmw_m {line} --out lmw_out\n{body}")
    assert result.success, (line, result.error_in_exec or result.error_before_exec)
    return shell.user_ns["lmw_out"]


def _fails(shell, capsys, line: str, error: str, *needles: str, body: str = "Hi") -> None:
    """The cell fails with ``error`` (one line naming what was wrong), before any traceback."""
    capsys.readouterr()
    result = shell.run_cell(f"%%prompt --model lmw_m {line}\n{body}")
    exc = result.error_in_exec or result.error_before_exec
    assert exc is not None and type(exc).__name__ == error, (line, repr(exc))
    for needle in needles:
        assert needle in str(exc), (line, needle, str(exc))
    shown = "".join(capsys.readouterr())
    assert error in shown and "Traceback" not in shown, shown


@pytest.mark.parametrize(
    ("typed", "rubric"),
    [
        ('"Is it {lmw_word}, and short?"', "Is it POLITE, and short?"),  # a notebook value
        ('"Is it {undefined_lmw}?"', "Is it {undefined_lmw}?"),  # cannot expand: as typed
        ('"{not closed"', "{not closed"),
        ('\'Say "yes" or "no", then why\'', 'Say "yes" or "no", then why'),
        ('"a, b and c; costs $5 or $undefined_lmw"', "a, b and c; costs $5 or $undefined_lmw"),
        ("$lmw_rubric", "Is it short?"),  # the value's text
        ("lmw_rubric", "Is it short?"),  # a variable's name: the rubric it holds
    ],
)
def test_rubric_values_as_typed(notebook, typed, rubric):
    judged = _run(notebook, f"--judge lmw_j --rubric {typed}")[0].judge
    assert judged["rubric"]["text"] == rubric
    assert judged["label"] == "4/5"


def test_judge_named_by_a_variable_and_its_scale(notebook):
    judged = _run(notebook, "--judge $lmw_judge --judge-scale 1-5 --judge-tokens 12")[0]
    assert judged.judge["model"]["name"] == "lmw_j" and judged.judge["label"] == "4/5"
    assert _run(notebook, "--judge {lmw_judge}")[0].judge["label"] == "4/5"


@pytest.mark.parametrize(
    ("line", "error", "needles"),
    [
        ("--judge 'lmw nope'", "JudgeError", ["--judge lmw nope", "no model called 'lmw nope'"]),
        ("--judge lmw_j --judge-scale 1-10", "UsageError", ["--judge-scale", "'1-10'"]),
        ("--judge lmw_j --judge-scale '1-5 '", "UsageError", ["--judge-scale", "'1-5'?"]),
        # the judge's own option is named, not the run's --max-new-tokens
        ("--judge lmw_j --judge-tokens 0", "InvalidArgumentError", ["--judge-tokens", "at least"]),
        ("--judge lmw_j --judge-tokens 2.5", "UsageError", ["--judge-tokens", "'2.5'"]),
        ("--judge lmw_j --rubric '  '", "JudgeError", ["--rubric is empty"]),
        ("--judge-scale pass/fail", "JudgeError", ["--judge-scale needs a judge"]),
    ],
)
def test_bad_judge_values_are_one_line(notebook, capsys, line, error, needles):
    _fails(notebook, capsys, line, error, *needles)


def test_choices_name_a_variable(notebook, capsys):
    assert _run(notebook, "--choices lmw_opts")[0].extras["choices"] == ["yes", "no"]
    # The choices typed on the line, or a list expanded to its text, are not a variable's name.
    for typed in ("'yes,no'", '"yes, no"', "{lmw_opts}", "$lmw_opts"):
        _fails(
            notebook,
            capsys,
            f"--choices {typed}",
            "ChoicesError",
            "--choices",
            "`--choices options`",
        )
    _fails(notebook, capsys, "--choices lmw_none", "ChoicesError", "no variable called 'lmw_none'")


@pytest.mark.parametrize(
    "line",
    [
        "--audio lmw_tone --sample-rate 16000",
        "--audio lmw_tone --sample-rate $lmw_rate",
        "--audio lmw_tone --sample-rate {lmw_rate}",
        # an expression in braces: quoted when it has spaces (the line is split into words
        # before each word is expanded)
        "--audio lmw_tone --sample-rate '{lmw_rate // 2}'",
    ],
)
def test_sample_rate_values(notebook, line):
    comparison = _run(notebook, line, body="What is it? {audio}")
    (clip,) = comparison.records[0]["prompt"]["media"]
    assert clip["kind"] == "audio" and clip["duration"] == pytest.approx(
        1.0 if "//" not in line else 2.0
    )


@pytest.mark.parametrize(
    ("value", "error", "needle"),
    [
        ("0", "AudioError", "give one between 1,000 and 384,000 Hz (e.g. --sample-rate 16000)"),
        ("-5", "AudioError", "-5 Hz"),
        ("abc", "UsageError", "argument --sample-rate: invalid int value: 'abc'"),
        ("16000.5", "UsageError", "argument --sample-rate"),
        ("$lmw_undefined", "UsageError", "argument --sample-rate"),
    ],
)
def test_bad_sample_rates_name_the_option(notebook, capsys, value, error, needle):
    _fails(notebook, capsys, f"--audio lmw_tone --sample-rate {value}", error, needle)


@pytest.mark.parametrize(
    ("clip", "cut"),
    [
        ("0.25,0.5", [0.25, 0.5]),
        ('"0.25, 0.5"', [0.25, 0.5]),  # spaces inside quotes
        ("$lmw_span", [0.25, 0.5]),
        ("{lmw_span}", [0.25, 0.5]),
        ("1:0.25,0.5", [0.25, 0.5]),  # the first clip, by number
        ("=0,1", [0.0, 1.0]),
    ],
)
def test_clip_values(notebook, clip, cut):
    line = (
        f"--audio lmw_tone --sample-rate 16000 --clip{clip if clip.startswith('=') else ' ' + clip}"
    )
    (entry,) = _run(notebook, line, body="{audio}?").records[0]["prompt"]["media"]
    assert entry["clip"] == cut


@pytest.mark.parametrize(
    ("clip", "needle"),
    [
        ("0:0.25,0.5", "the clip number before ':' must be 1, 2, ..."),
        ("0.1,0.5,0.9", "give the start and end in seconds"),
        ("'{0.1,0.5}'", "give the start and end in seconds"),  # braces evaluate: a tuple's text
        ("0.5,0.25", "the start must come before the end"),
        ("=-1,2", "lies outside the audio"),
        ("2:0.1,0.5", "--clip"),
    ],
)
def test_bad_clips_name_the_option(notebook, capsys, clip, needle):
    line = (
        f"--audio lmw_tone --sample-rate 16000 --clip{clip if clip.startswith('=') else ' ' + clip}"
    )
    _fails(notebook, capsys, line, "AudioError", "--clip", needle, body="{audio}?")


@pytest.mark.parametrize(
    "column", ["clip:audio", '"clip : audio"', "$lmw_col:audio", "{lmw_col}:audio"]
)
def test_media_column_values(notebook, column):
    comparison = _run(notebook, f"--dataset lmw_items --media-column {column}", body="{input}")
    (entry,) = comparison.records[0]["prompt"]["media"]
    assert entry["kind"] == "audio" and entry["own"] is True


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("--dataset lmw_items --media-column clip:video", "after ':' a media kind ("),
        ("--dataset lmw_items --media-column :audio", "give a column name"),
        ("--dataset lmw_items --media-column 'no col'", "no column 'no col'"),
        ("--media-column clip:audio", "needs a dataset"),
    ],
)
def test_bad_media_columns_name_the_option(notebook, capsys, line, needle):
    _fails(notebook, capsys, line, "DatasetError", "--media-column", needle, body="{input}")


def test_cpu_kernels_values(shell, tiny_dir, capsys):
    shell.user_ns["lmw_kernels"] = "plain"
    try:
        capsys.readouterr()
        assert shell.run_cell(f"%lm load {tiny_dir} --as lmw_k --cpu-kernels $lmw_kernels").success
        assert "CPU kernels plain (asked)" in capsys.readouterr().out
        for typed, needle in (("fast", "invalid choice: 'fast'"), ("'packed '", "'packed'?")):
            result = shell.run_cell(f"%lm load {tiny_dir} --cpu-kernels {typed}")
            assert type(result.error_in_exec).__name__ == "UsageError"
            assert "--cpu-kernels" in str(result.error_in_exec)
            assert needle in str(result.error_in_exec)
            shown = "".join(capsys.readouterr())
            assert "Traceback" not in shown
    finally:
        del shell.user_ns["lmw_kernels"]
