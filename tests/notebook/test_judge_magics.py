"""``%%prompt --judge`` (issue 20): the options as typed in a notebook, a rubric from a
variable, the bad inputs refused with a short error before anything runs, and the help."""

from __future__ import annotations

import lmwidgets


def _judge(prompt: str, adapter) -> str:
    if "polite" in prompt:
        return "It says please.\nVerdict: PASS"
    return "Plain but right.\nScore: 3"


def _shell(shell):
    lmwidgets.load_model(engine="scripted", name="lmw_m", replies={"*": "Paris, please."})
    lmwidgets.load_model(engine="scripted", name="lmw_j", replies=_judge)
    return shell


def test_judge_and_a_rubric_variable(shell):
    _shell(shell)
    shell.user_ns["lmw_rubric"] = "Is the answer polite?"
    cell = "%%prompt --model lmw_m --judge lmw_j --rubric lmw_rubric --judge-scale pass/fail --out lmw_c\nCapital?"
    assert shell.run_cell(cell).success
    judged = shell.user_ns["lmw_c"][0].judge
    assert judged["rubric"] == {
        "name": "custom",
        "text": "Is the answer polite?",
        "scale": "pass/fail",
    }
    assert judged["label"] == "pass" and judged["reasoning"] == "It says please."
    # A built-in rubric's name, or text typed on the line, is the rubric itself.
    assert shell.run_cell("%%prompt --model lmw_m --judge lmw_j --out lmw_d\nCapital?").success
    assert shell.user_ns["lmw_d"][0].judge["label"] == "3/5"
    typed = "%%prompt --model lmw_m --judge lmw_j --rubric 'Is it short?' --out lmw_e\nCapital?"
    assert shell.run_cell(typed).success
    assert shell.user_ns["lmw_e"][0].judge["rubric"]["text"] == "Is it short?"


def _fails(shell, capsys, cell, error, needle):
    capsys.readouterr()
    result = shell.run_cell(cell)
    assert not result.success
    assert type(result.error_in_exec).__name__ == error
    assert needle in str(result.error_in_exec)
    shown = "".join(capsys.readouterr())
    assert error in shown and "Traceback" not in shown


def test_bad_judge_input_is_a_short_error_before_anything_runs(shell, capsys):
    calls = []
    lmwidgets.load_model(
        engine="scripted", name="lmw_m", replies=lambda t, a: calls.append(t) or "x"
    )
    shell.user_ns["lmw_nottext"] = {"rubric": 1}
    _fails(
        shell, capsys, "%%prompt --judge lmw_nope\nHi", "JudgeError", "no model called 'lmw_nope'"
    )
    _fails(
        shell,
        capsys,
        "%%prompt --judge lmw_m --rubric lmw_nottext\nHi",
        "JudgeError",
        "--rubric takes text",
    )
    _fails(shell, capsys, "%%prompt --rubric quality\nHi", "JudgeError", "needs a judge")
    assert calls == []


def test_help_lists_the_judge_options(shell, capsys):
    assert shell.run_cell("%%prompt --help\n").success
    out = " ".join(capsys.readouterr().out.split())  # help wraps its lines
    for flag in (
        "--judge MODEL",
        "--rubric TEXT|VAR",
        "--judge-scale",
        "--judge-pairwise",
        "--judge-tokens N",
        "--judge-free",
        "judge (the --judge model's verdicts)",
    ):
        assert flag in out


def test_the_judge_wording_is_a_config_setting(shell):
    _shell(shell)
    shell.run_line_magic("config", 'LmMagics.judge_templates = {"quality": "Is it polite?"}')
    try:
        assert shell.run_cell("%%prompt --model lmw_m --judge lmw_j --out lmw_f\nHi").success
        assert shell.user_ns["lmw_f"][0].judge["rubric"]["text"] == "Is it polite?"
        prompt = shell.user_ns["lmw_f"][0].judge["prompt"]["messages"][0]["content"]
        assert "Rubric: Is it polite?" in prompt  # the judge read the configured wording
    finally:
        shell.run_line_magic("config", "LmMagics.judge_templates = {}")


def test_judge_free_as_typed(shell, capsys):
    _shell(shell)
    cell = "%%prompt --model lmw_m --judge lmw_j --judge-free --out lmw_f\nCapital?"
    assert shell.run_cell(cell).success
    judged = shell.user_ns["lmw_f"][0].judge
    assert judged["enforced"] is False and judged["free"] == "asked (--judge-free)"
    assert judged["label"] == "3/5"
    # Without --judge-free the scripted judge cannot enforce: free text, and the record says why.
    assert shell.run_cell("%%prompt --model lmw_m --judge lmw_j --out lmw_g\nCapital?").success
    assert shell.user_ns["lmw_g"][0].judge["free"].startswith("cannot enforce: the scripted")
    _fails(shell, capsys, "%%prompt --judge-free\nHi", "JudgeError", "--judge-free needs a judge")
