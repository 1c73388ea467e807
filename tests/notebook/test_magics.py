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


def test_load_with_cpu_kernels_says_which(shell, tiny_dir, capsys):
    assert run(shell, f"%lm load {tiny_dir} --as lmw_k --cpu-kernels packed").success
    assert "CPU kernels packed, fused (asked)" in capsys.readouterr().out
    assert run(shell, f"%lm load {tiny_dir} --cpu-kernels plain").success  # switched in place
    assert run(shell, "%lm models").success
    assert "CPU kernels plain (asked)" in capsys.readouterr().out
    assert lmwidgets.REGISTRY.names() == ["lmw_k"]


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
        ("%lm load --cpu-kernels packed --no-prepack", "InvalidArgumentError"),
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
    assert "failed." not in shown  # a bad argument fails before a progress bar shows
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


# -- issue 17: every bad input a clear error -------------------------------------------------
@pytest.fixture
def scripted_shell(shell):
    lmwidgets.load_model(engine="scripted", name="lmw_s", replies={"*": "The answer is: 4"})
    assert run(shell, "%%prompt --out lmw_before\nfirst").success
    return shell


def _fails(shell, code, error, *needles):
    result = run(shell, code)
    assert not result.success, code
    exc = result.error_in_exec
    assert type(exc).__name__ == error, repr(exc)
    for needle in needles:
        assert needle in str(exc), (needle, str(exc))
    # The short error display survives, and so do the model and the earlier result.
    assert shell.custom_exceptions == (
        lmwidgets.LmWidgetsError,
        lmwidgets.errors.GenerationInterrupted,
    )
    assert shell.user_ns["lmw_before"][0].text == "The answer is: 4"
    return exc


def test_a_seed_torch_cannot_take_names_the_flag(shell, tiny_dir):
    assert run(shell, f"%lm load {tiny_dir} --as lmw_seed").success
    result = run(shell, "%%prompt --seed 99999999999999999999 -t 0.5 -n 2\nhi")
    exc = result.error_in_exec
    assert isinstance(exc, lmwidgets.InvalidArgumentError)
    assert "--seed must be at most 9,223,372,036,854,775,807" in str(exc)
    assert run(shell, "%%prompt --seed 9223372036854775807 -t 0.5 -n 2 --out lmw_ok\nhi").success


def test_surrogates_and_control_characters_in_the_cell_are_replaced_with_a_note(shell, tiny_dir):
    """Was a raw TypeError from the tokenizer."""
    assert run(shell, f"%lm load {tiny_dir} --as lmw_text").success
    shell.user_ns["lmw_bad"] = "\udcff"
    result = run(shell, "%%prompt -n 2 --out lmw_r --system 'sys\x00'\n\x00\x01\udcff {lmw_bad}")
    assert result.success, result.error_in_exec
    comparison = shell.user_ns["lmw_r"]
    assert "\ufffd\ufffd\ufffd \ufffd" in comparison[0].prompt
    notes = " ".join(comparison.notes)
    for needle in ("The prompt held 3 characters", "U+0000", "U+0001", "U+DCFF", "--system"):
        assert needle in notes
    comparison.to_json().encode("utf-8")


@pytest.mark.parametrize(
    ("out", "needle"),
    [
        ("1bad-name", "not a Python name"),
        ("for", "keyword"),
        ("print", "built-in 'print'"),
        ("lmw_data", "would replace the notebook variable 'lmw_data' (a list)"),
    ],
)
def test_out_must_be_a_reachable_name_that_shadows_nothing(scripted_shell, out, needle):
    scripted_shell.user_ns["lmw_data"] = [1, 2]
    _fails(scripted_shell, f"%%prompt --out {out}\nhi", "InvalidArgumentError", "--out", needle)
    assert scripted_shell.user_ns["lmw_data"] == [1, 2] and "print" not in scripted_shell.user_ns


def test_force_out_replaces_a_variable_or_builtin(scripted_shell):
    scripted_shell.user_ns["lmw_data"] = [1, 2]
    assert run(scripted_shell, "%%prompt --out lmw_data --force-out\nhi").success
    assert isinstance(scripted_shell.user_ns["lmw_data"], lmwidgets.Comparison)
    try:
        assert run(scripted_shell, "%%prompt --out print --force-out\nhi").success
        assert isinstance(scripted_shell.user_ns["print"], lmwidgets.Comparison)
    finally:
        scripted_shell.user_ns.pop("print", None)
    assert run(scripted_shell, "%%prompt --out lmw_before\nagain").success  # an earlier result


def test_large_runs_ask_for_yes(scripted_shell):
    engine = lmwidgets.REGISTRY.get("lmw_s")
    calls = len(engine.calls)
    _fails(
        scripted_shell,
        "%%prompt --strategy self-consistency --samples 100000\nhi",
        "InvalidArgumentError",
        "--samples 100,000",
        "--yes",
    )
    _fails(
        scripted_shell,
        "%%prompt --strategy self-consistency --samples 65\nhi",
        "InvalidArgumentError",
        "more than the 64",
        "add --yes",
    )
    assert len(engine.calls) == calls  # nothing ran
    assert run(
        scripted_shell,
        "%%prompt --strategy self-consistency --samples 65 --yes --batch-size 65 --out lmw_sc\nhi",
    ).success
    assert len(scripted_shell.user_ns["lmw_sc"][0].extras["samples"]) == 65
    assert len(engine.calls) == calls + 1


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%%prompt --model 'lmw_s\x00'\nhi", "--model 'lmw_s\\x00' holds U+0000"),
        ("%%prompt --adapter 'a\tb'\nhi", "--adapter 'a\\tb' holds U+0009"),
        ("%lm load --engine scripted --device cpu", "--device only apply"),
        ("%lm load --engine scripted --quantize 4bit --compile", "--quantize, --compile"),
        ("%lm connect http://127.0.0.1:9 --timeout -1", "--timeout must be a finite number"),
        ("%lm connect http://127.0.0.1:9 --timeout nan", "--timeout must be a finite number"),
        ("%lm adapter load ./x --scale inf", "--scale must be a finite number"),
        ("%lm load 'a\udcffb'", "SOURCE 'a\\udcffb' holds U+DCFF (a lone surrogate)"),
    ],
)
def test_names_and_numbers_are_checked(scripted_shell, line, needle):
    _fails(scripted_shell, line, "InvalidArgumentError", needle)


def test_a_message_quoting_a_surrogate_keeps_the_short_error_display(scripted_shell, capsys):
    """A lone surrogate in a message made the error display fail, and IPython dropped it."""
    exc = _fails(scripted_shell, "%lm load 'x\udcff", "LmWidgetsError", "Cannot parse")
    assert "\\udcff" in str(exc)
    assert "\\udcff" in capsys.readouterr().out


def test_rerun_of_a_large_recorded_run_needs_yes(scripted_shell):
    import copy

    records = copy.deepcopy(scripted_shell.user_ns["lmw_before"].records)
    records[0]["generation"]["samples"] = 70
    scripted_shell.user_ns["lmw_records"] = records
    _fails(scripted_shell, "%lm rerun lmw_records", "InvalidArgumentError", "add --yes")
    assert run(scripted_shell, "%lm rerun lmw_records --yes").success


@pytest.mark.parametrize(
    "line",
    ["%%prompt '\ud800'\nhi", "%lm '\ud800\x00'", "%lm load --max-images '\udcff'"],
)
def test_usage_errors_quote_unreadable_characters_escaped(scripted_shell, line, capsys):
    """argparse's message quoted a lone surrogate, which no kernel can send (fuzzing)."""
    from IPython.core.error import UsageError

    result = run(scripted_shell, line)
    assert isinstance(result.error_in_exec, UsageError)
    str(result.error_in_exec).encode("utf-8")
    assert "\\ud" in str(result.error_in_exec)
    capsys.readouterr().out.encode("utf-8")


def test_an_unknown_home_directory_is_just_a_missing_path(scripted_shell):
    """``~0`` made pathlib raise RuntimeError("Could not determine home directory")."""
    _fails(scripted_shell, "%lm load --engine scripted ~0", "ModelNotFoundError", "~0")
    _fails(scripted_shell, "%lm rerun ~0", "RecordError", "~0")


def test_unload_a_model_without_weights_in_the_kernel(scripted_shell, capsys):
    """``%lm unload`` of a scripted (or served) model raised AttributeError: memory_bytes."""
    lmwidgets.load_model(engine="scripted", name="lmw_gone")
    capsys.readouterr()
    assert run(scripted_shell, "%lm unload lmw_gone").success
    assert "Unloaded lmw_gone." in capsys.readouterr().out
    assert "lmw_gone" not in lmwidgets.REGISTRY


def test_score_flag_is_passed_to_prompt_as_written(scripted_shell, monkeypatch):
    """``--score SPEC`` reaches ``lmwidgets.prompt(score=SPEC)`` untouched (prompt() resolves
    it, a function name from the notebook's variables); without it prompt()'s default holds."""
    from lmwidgets import api

    seen = []
    real = api.prompt

    def recording(text, **kwargs):
        seen.append(dict(kwargs))
        return real(text, **kwargs)

    monkeypatch.setattr(api, "prompt", recording)
    namespace = scripted_shell.user_ns
    namespace["lmw_items"] = [{"input": "2+2", "expected": "4"}]
    namespace["lmw_never"] = lambda answer, expected, item: False
    for spec, score in (("number:0.5", 1.0), ("regex:answer is: (\\d)", 1.0), ("lmw_never", 0.0)):
        cell = f"%%prompt --dataset lmw_items --score '{spec}' --out lmw_scored\n{{input}}"
        assert run(scripted_shell, cell).success, spec
        assert seen[-1]["score"] == spec
        assert namespace["lmw_scored"][0].score == score, spec
    assert run(scripted_shell, "%%prompt --dataset lmw_items --out lmw_scored\n{input}").success
    assert seen[-1]["score"] is None and namespace["lmw_scored"][0].score == 1.0  # auto
    _fails(scripted_shell, "%%prompt --score 'x\x00'\nhi", "InvalidArgumentError", "--score")


# -- the load progress bar ----------------------------------------------------------------------
def test_a_step_is_indeterminate_until_it_reports_progress_of_its_own(shell):
    """The first load sat at 15% for many seconds and looked hung: a step without progress of
    its own now shows its name and an animated (value-less) bar."""
    from lmwidgets.notebook.progress import LoadProgress

    progress = LoadProgress("smol", interval=60)  # throttled: only new steps pass
    progress(0.15, "Reading the tokenizer from the GGUF file")
    progress(0.25, "Reading the GGUF file")
    progress(0.30, "Converting weights")
    progress(0.50, "Converting weights")  # throttled away
    progress(1.0, "Ready")
    shown = [bundle["text/html"] for bundle in progress.shown]
    assert len(shown) == 4  # every new step is shown at once, whatever the throttle
    assert "Reading the tokenizer from the GGUF file…" in shown[0] and "value=" not in shown[0]
    assert "Reading the GGUF file…" in shown[1] and "(25% done)" in shown[1]
    assert "value=" not in shown[2]
    assert progress.shown[0]["text/plain"] == (
        "Loading smol: Reading the tokenizer from the GGUF file… (15% done)"
    )
    moving = LoadProgress("smol", interval=0)
    moving(0.30, "Converting weights")
    moving(0.52, "Converting weights")
    assert 'value="52"' in moving.shown[-1]["text/html"]
    assert "Converting weights (52% done)" in moving.shown[-1]["text/plain"]
    moving.done("smol · 135M parameters")
    assert moving.shown[-1] == {
        "text/plain": "smol · 135M parameters",
        "text/html": "<code>smol · 135M parameters</code>",
    }


def test_load_names_its_steps_and_never_goes_back(tiny_dir, registry):
    seen = []
    lmwidgets.load_model(str(tiny_dir), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    steps = list(dict.fromkeys(m for _, m in seen))
    assert steps[:4] == [
        "Importing torch and transformers",
        "Locating weights",
        "Hashing weights",
        "Loading tokenizer",
    ]
    assert "Loading weights" in steps and "Moving to cpu" in steps and steps[-1] == "Ready"


def test_library_bars_fill_their_share_and_the_bar_never_goes_back():
    from lmwidgets.engines.transformers.loading import _BarProxy, _Monotonic, _weight_spans

    gguf = _weight_spans(True)
    assert gguf("Converting and de-quantizing GGUF tensors...").label.startswith("Converting")
    assert (gguf("Loading weights").lo, gguf("Loading weights").hi) == (0.75, 0.85)
    plain = _weight_spans(False)("Loading weights")
    assert (plain.lo, plain.hi, plain.label) == (0.25, 0.85, "Loading weights")
    seen = []
    report = _Monotonic(lambda f, m: seen.append((round(f, 2), m)))
    for desc in ("Converting and de-quantizing GGUF tensors", "Loading weights"):
        span = gguf(desc)
        bar = _BarProxy(
            range(4), desc=desc, report=report, span=(span.lo, span.hi), label=span.label
        )
        list(bar)
    assert seen[-1] == (0.85, "Loading weights")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert {m for _, m in seen} == {
        "Converting weights (de-quantizing the GGUF)",
        "Loading weights",
    }
    report(0.1, "late")  # a report lower than before keeps the bar where it was
    assert seen[-1] == (0.85, "late")


def test_variations_from_the_magic(shell, capsys):
    assert run(shell, "%lm load --engine scripted --as lmw_s").success
    cell = "%%prompt --out lmw_v --systems lmw_sys --each lmw_who --columns system\n"
    cell += "Hello {lmw_who}\n--- formal\nGood day, {lmw_who}.\n"
    shell.user_ns["lmw_sys"] = {"none": None, "pirate": "Talk like a pirate."}
    shell.user_ns["lmw_who"] = ["Ann", "Bob"]
    assert run(shell, cell).success
    comparison = shell.user_ns["lmw_v"]
    assert len(comparison.results) == 2 * 2 * 2
    assert comparison.columns == "system"
    assert {r.coords["prompt"] for r in comparison.results} == {"A", "formal"}
    assert comparison.results[-1].text == "You said: Good day, Bob."
    shell.user_ns["lmw_ps"] = ["One.", "Two."]
    # With --prompts the prompts come from the variable: the line magic runs them.
    assert run(shell, "%prompt --out lmw_p --prompts lmw_ps --temperatures 0,0.5 --seed 1").success
    assert [r.variant for r in shell.user_ns["lmw_p"].results] == [
        "A · T=0",
        "A · T=0.5",
        "B · T=0",
        "B · T=0.5",
    ]


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        ("%prompt --prompts lmw_nothing", "PromptError"),
        ("%%prompt --systems lmw_nothing\nHi", "InvalidArgumentError"),
        ("%%prompt --each lmw_str\nHi {lmw_str}", "InvalidArgumentError"),
        ("%%prompt --trials 0\nHi", "InvalidArgumentError"),
        ("%%prompt --columns prompt\nHi", "StrategyError"),
        ("%%prompt\n--- a\nx\n--- a\ny", "PromptError"),
    ],
)
def test_bad_variations_fail_the_cell_with_a_short_error(shell, capsys, cell, error):
    assert run(shell, "%lm load --engine scripted --as lmw_s2").success
    shell.user_ns["lmw_str"] = "just text"
    capsys.readouterr()
    result = run(shell, cell)
    assert not result.success
    assert type(result.error_in_exec).__name__ == error
    shown = "".join(capsys.readouterr())
    assert error in shown and "Traceback" not in shown


def test_prompt_help_lists_the_variation_options(shell, capsys):
    assert run(shell, "%%prompt --help\n").success
    out = capsys.readouterr().out
    for flag in (
        "--prompts",
        "--systems",
        "--each",
        "--temperatures",
        "--top-ps",
        "--trials",
        "--columns",
        "--- NAME",
    ):
        assert flag in out


def test_vs_previous_follows_the_cell_id_the_front_end_sends(shell, capsys):
    from lmwidgets.run.history import HISTORY

    HISTORY.clear()
    assert run(shell, "%lm load --engine scripted --as lmw_h").success
    assert shell.run_cell("%%prompt --out lmw_a\nfirst wording", cell_id="cell-a").success
    assert shell.run_cell("%%prompt --out lmw_b\nsomething else", cell_id="cell-b").success
    result = shell.run_cell("%%prompt --out lmw_c --vs previous\nsecond wording", cell_id="cell-a")
    assert result.success
    texts = [r.text for r in shell.user_ns["lmw_c"].results]
    assert texts == ["You said: second wording", "You said: first wording"]
    shell.user_ns["lmw_keep"] = shell.user_ns["lmw_b"]
    assert run(shell, "%%prompt --out lmw_d --vs lmw_keep\nanother").success
    assert shell.user_ns["lmw_d"].results[1].text == "You said: something else"
    capsys.readouterr()
    failed = shell.run_cell("%%prompt --vs previous\nnever ran here", cell_id="cell-new")
    assert type(failed.error_in_exec).__name__ == "NoEarlierRunError"
    assert "Traceback" not in "".join(capsys.readouterr())
    HISTORY.clear()


def test_magic_lines_expand_variables_but_not_patterns(shell, capsys):
    assert run(shell, "%lm load --engine scripted --as lmw_x").success
    shell.user_ns["lmw_cols"] = "zero-shot,cot"
    assert run(shell, "%%prompt --compare {lmw_cols} --out lmw_e\nHi").success
    assert [r.variant for r in shell.user_ns["lmw_e"].results] == ["zero-shot", "cot"]
    shell.user_ns["lmw_n"] = 4
    cell = "%%prompt --regex '[0-9]{4}' --constrain free -n {lmw_n} --out lmw_f\nYear?"
    assert run(shell, cell).success
    result = shell.user_ns["lmw_f"][0]
    assert result.record["output"]["structured"]["constraint"]["pattern"] == "[0-9]{4}"
    assert result.record["generation"]["max_new_tokens"] == 4
