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


def test_a_choice_grid_footer_counts_choices_not_tokens(shell, capsys):
    # A likelihood column generates nothing: its footer said "mean 0 tokens".
    from lmwidgets.notebook.cell_info import _column_stats

    assert shell.run_cell("%lm load --engine scripted --as lmw_s").success
    shell.user_ns["lmw_quiz"] = [
        {"input": "Capital of France?", "choices": ["Paris", "Lyon"], "expected": "Paris"},
        {"input": "Which animal barks?", "choices": ["a cat", "a dog", "a cow"]},
    ]
    assert shell.run_cell("%%prompt --dataset lmw_quiz --out lmw_q\n{input}\n").success
    line = _column_stats(shell.user_ns["lmw_q"].results)
    assert line.startswith("2 items · 5 choices scored · mean ") and "tokens" not in line
    shell.user_ns["lmw_open"] = [{"input": "Capital of France?"}]
    assert shell.run_cell("%%prompt --dataset lmw_open --out lmw_g\n{input}\n").success
    assert "mean " in _column_stats(shell.user_ns["lmw_g"].results).split(" · ")[1]
    assert _column_stats(shell.user_ns["lmw_g"].results).split(" · ")[1].endswith(" tokens")
