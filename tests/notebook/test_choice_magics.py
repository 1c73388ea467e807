"""``%%prompt --choices VAR`` and ``--score perplexity`` in a real IPython shell."""

import lmwidgets


def test_choices_from_a_variable(shell, capsys):
    assert shell.run_cell("%lm load --engine scripted --as lmw_s").success
    shell.user_ns["lmw_options"] = ["Paris", "Lyon"]
    result = shell.run_cell("%%prompt --choices lmw_options --out lmw_c\nCapital of France?\n")
    assert result.success
    comparison = shell.user_ns["lmw_c"]
    assert isinstance(comparison, lmwidgets.Comparison)
    assert comparison[0].extras["choices"] == ["Paris", "Lyon"]
    assert len(comparison[0].choice_logprobs) == 2


def test_bad_choices_fail_the_cell_with_one_line(shell, capsys):
    assert shell.run_cell("%lm load --engine scripted --as lmw_s").success
    shell.user_ns["lmw_bad"] = ["Paris", 3]
    result = shell.run_cell("%%prompt --choices lmw_bad\nCapital of France?\n")
    assert not result.success
    out = capsys.readouterr()
    assert "choice 1 is 3, not text" in out.out + out.err
    assert "Traceback" not in out.out + out.err
    result = shell.run_cell("%%prompt --choices lmw_missing\nCapital?\n")
    assert not result.success
    out = capsys.readouterr()
    assert "no variable called 'lmw_missing'" in out.out + out.err
    result = shell.run_cell("%%prompt --choices lmw_bad --strategy cot\nCapital?\n")
    assert not result.success


def test_help_lists_choices(shell, capsys):
    shell.run_cell("%%prompt --help\n")
    out = capsys.readouterr().out
    assert "--choices VAR" in out and "perplexity" in out
