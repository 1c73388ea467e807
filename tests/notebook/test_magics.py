"""``%lm`` and ``%%prompt`` in a real IPython shell."""

import pytest

import lmwidgets


def run(shell, code):
    result = shell.run_cell(code)
    return result


def test_load_prompt_and_out(shell, tiny_dir, capsys):
    assert run(shell, f"%lm load {tiny_dir} --as lmw_tiny").success
    shell.user_ns["lmw_who"] = "world"
    result = run(shell, "%%prompt --out lmw_r -n 6 --seed 1\nHello {lmw_who} {unknown}\n")
    assert result.success
    comparison = shell.user_ns["lmw_r"]
    assert isinstance(comparison, lmwidgets.Comparison)
    assert "Hello world {unknown}<|im_end|>" in comparison[0].prompt
    assert comparison[0].record["generation"]["max_new_tokens"] == 6


def test_load_twice_says_already_loaded(shell, tiny_dir, capsys):
    assert run(shell, f"%lm load {tiny_dir}").success
    assert run(shell, f"%lm load {tiny_dir}").success
    assert "Already loaded" in capsys.readouterr().out
    assert len(lmwidgets.REGISTRY) == 1


def test_models_and_unload(shell, tiny_dir, capsys):
    run(shell, f"%lm load {tiny_dir} --as lmw_a")
    assert run(shell, "%lm models").success
    assert "lmw_a" in capsys.readouterr().out
    assert run(shell, "%lm unload lmw_a").success
    assert "Unloaded lmw_a" in capsys.readouterr().out
    assert "lmw_a" not in lmwidgets.REGISTRY
    assert run(shell, "%lm models").success
    assert "No models loaded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("%lm load /no/such/dir", "ModelNotFoundError"),
        ("%lm unload", "LmWidgetsError"),
        ("%lm unload nobody", "UnknownModelError"),
        ("%lm load --device tpu", "InvalidArgumentError"),
        ("%lm load --dtype int3", "InvalidArgumentError"),
        ("%%prompt -n -3\nhi", "InvalidArgumentError"),
        ("%%prompt --temperature -1\nhi", "InvalidArgumentError"),
        ("%%prompt --top-p 1.5\nhi", "InvalidArgumentError"),
        ("%%prompt --top-p 0\nhi", "InvalidArgumentError"),
        ("%%prompt --model nobody\nhi", "UnknownModelError"),
        ("%%prompt\n   ", "PromptError"),
        ("%prompt -n 3", "LmWidgetsError"),
    ],
)
def test_bad_input_fails_the_cell_with_a_short_error(shell, tiny_dir, capsys, line, error):
    assert run(shell, f"%lm load {tiny_dir} --as lmw_m").success
    run(shell, "%%prompt --out lmw_before -n 3\nfirst")
    capsys.readouterr()
    result = run(shell, line)
    assert not result.success
    assert type(result.error_in_exec).__name__ == error
    assert isinstance(result.error_in_exec, lmwidgets.LmWidgetsError)
    out = capsys.readouterr()
    shown = out.out + out.err
    assert error in shown and "Traceback" not in shown and "%tb" in shown
    # Nothing is lost: the model and the earlier result still work.
    assert shell.user_ns["lmw_before"][0].tokens == 3
    assert run(shell, "%%prompt --out lmw_after -n 2\nsecond").success


def test_usage_errors_from_argparse(shell, tiny_dir, capsys):
    result = run(shell, "%lm load --bogus-flag")
    assert not result.success
    result = run(shell, "%%prompt -n many\nhi")
    assert not result.success


def test_help(shell, capsys):
    for line in ("%lm --help", "%lm", "%lm load --help", "%prompt --help"):
        assert run(shell, line).success
    out = capsys.readouterr().out
    for needle in (
        "COMMAND",
        "--as NAME",
        "--device",
        "--dtype",
        "--allow-pickle",
        "--max-new-tokens",
        "--top-p",
        "--seed",
        "--out",
    ):
        assert needle in out, needle


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%lm -h", "Run `%lm COMMAND --help`"),
        ("%lm models --help", "%lm models"),
        ("%lm unload --help", "(see `%lm models`)"),
        ("%lm rerun --help", "--show"),
        ("%lm adapter", "ACTION"),
        ("%lm adapter --help", "ACTION"),
        ("%lm adapter load --help", "--scale SCALE"),
        ("%lm adapter load ./x --as y -h", "--allow-pickle"),
        ("%lm adapter use -h", "%lm adapter use"),
        ("%lm adapter unload -h", "%lm adapter unload"),
        ("%lm adapter list -h", "%lm adapter list"),
        ("%prompt -h", "--region-mode"),
    ],
)
def test_help_of_every_command(shell, capsys, line, needle):
    result = run(shell, line)
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out
    assert needle in out and "Show this help." in out


def test_magic_docstrings_are_the_help():
    from lmwidgets.notebook.magics import LmMagics
    from lmwidgets.notebook.parsers import lm_parser, prompt_parser

    assert LmMagics.lm.__doc__ == lm_parser().help()
    assert LmMagics.prompt.__doc__ == prompt_parser().format_help()


def test_configurable_defaults(shell, tiny_dir):
    run(shell, f"%lm load {tiny_dir} --as lmw_c")
    assert run(shell, "%config LmMagics.max_new_tokens = 4").success
    assert run(shell, "%%prompt --out lmw_cfg\nhi").success
    assert shell.user_ns["lmw_cfg"][0].record["generation"]["max_new_tokens"] == 4
    run(shell, "%config LmMagics.max_new_tokens = 256")


def test_quoted_flag_values_lose_their_quotes(shell, tiny_dir):
    run(shell, f"%lm load {tiny_dir} --as lmw_q")
    assert run(shell, '%%prompt --system "Be brief, {lmw_nobody}." --out lmw_sys -n 2\nhi').success
    assert (
        "<|im_start|>system\nBe brief, {lmw_nobody}.<|im_end|>"
        in shell.user_ns["lmw_sys"][0].prompt
    )


def test_interrupt_binds_the_partial_result(shell, tiny_dir):
    run(shell, f"%lm load {tiny_dir} --as lmw_int")
    from tiny_models import raise_on_forward

    handle = raise_on_forward(lmwidgets.REGISTRY.get("lmw_int").model, 5, KeyboardInterrupt)
    try:
        result = run(shell, "%%prompt -n 40 --out lmw_partial\nHello")
    finally:
        handle.remove()
    assert not result.success
    partial = shell.user_ns["lmw_partial"]
    assert partial.status == "stopped" and 0 < partial[0].tokens < 40


def test_models_lists_adapters(shell, tiny_dir, tmp_path, capsys):
    from tiny_models import build_lora

    run(shell, f"%lm load {tiny_dir} --as lmw_la")
    run(shell, f"%lm adapter load {build_lora(tiny_dir, tmp_path / 'l', seed=1)} --as style")
    run(shell, "%lm adapter use style")
    capsys.readouterr()
    assert run(shell, "%lm models").success
    assert "adapters: style (default: style)" in capsys.readouterr().out
