"""Interrupting the kernel (the toolbar's stop square) while ``%%prompt`` or ``%lm load`` runs:
one short line instead of a traceback through torch, the partial result kept in ``--out``, the
cell still failing (so "Run all" stops) and the kernel usable afterwards."""

from __future__ import annotations

import _thread

import pytest

import lmwidgets
from lmwidgets.notebook.magics import KernelInterruptedError


def _one_error_line(out: str) -> str:
    """The error line an interrupted cell shows; fails if there is a traceback or several."""
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "torch" not in out and "site-packages" not in out, out
    lines = [line for line in out.splitlines() if "KernelInterruptedError" in line]
    assert len(lines) == 1, out
    assert "%tb" in out  # the established short-error hint, as for every lmwidgets error
    return lines[0]


def _interrupted(result) -> KernelInterruptedError:
    assert not result.success  # the cell fails, so "Run all" stops there
    error = result.error_in_exec
    assert isinstance(error, KernelInterruptedError), repr(error)
    assert isinstance(error, lmwidgets.LmWidgetsError)
    return error


@pytest.fixture
def tiny_shell(shell, tiny_dir):
    assert shell.run_cell(f"%lm load {tiny_dir} --as lmw_int").success
    return shell


def test_an_interrupt_inside_the_model_keeps_the_partial_result(tiny_shell, capsys):
    from tiny_models import raise_on_forward

    model = lmwidgets.REGISTRY.get("lmw_int").model
    handle = raise_on_forward(model, 5, KeyboardInterrupt)
    capsys.readouterr()
    try:
        result = tiny_shell.run_cell("%%prompt -n 40 --out lmw_r\nHello")
    finally:
        handle.remove()
    error = _interrupted(result)
    line = _one_error_line(capsys.readouterr().out)
    assert "partial result (text so far) is kept in `lmw_r`" in line and str(error) in line
    partial = tiny_shell.user_ns["lmw_r"]
    assert isinstance(partial, lmwidgets.Comparison)
    assert partial.status == "stopped" and 0 < partial[0].tokens < 40
    assert partial[0].text  # the text so far
    # The kernel stays usable: the next prompt runs to the end.
    assert tiny_shell.run_cell("%%prompt -n 3 --out lmw_next\nAgain").success
    assert tiny_shell.user_ns["lmw_next"].status == "done"


def test_a_real_sigint_after_the_first_tokens(tiny_shell, capsys):
    """What the stop square does: SIGINT arrives at whatever Python line torch is running."""
    model = lmwidgets.REGISTRY.get("lmw_int").model
    calls = {"n": 0}

    def interrupt_after_three_steps(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:
            _thread.interrupt_main()  # raised in the main thread at its next bytecode

    handle = model.model.layers[0].register_forward_hook(interrupt_after_three_steps)
    # interrupt_main does nothing unless Python's own SIGINT handler is installed; a library an
    # earlier test used may have left another one (this test failed only in the full suite)
    import signal

    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    capsys.readouterr()
    try:
        result = tiny_shell.run_cell("%%prompt -n 40 --out lmw_sig\nHello")
    finally:
        handle.remove()
        signal.signal(signal.SIGINT, handler)
    assert calls["n"] >= 3, calls  # the hook ran on the model that generated
    assert not result.success, f"no interrupt: hook calls {calls['n']}, handler was {handler!r}"
    _interrupted(result)
    assert "kept in `lmw_sig`" in _one_error_line(capsys.readouterr().out)
    partial = tiny_shell.user_ns["lmw_sig"]
    assert partial.status == "stopped" and 0 < partial[0].tokens < 40
    assert tiny_shell.run_cell("%%prompt -n 2 --out lmw_after\nAgain").success


def test_without_out_the_text_stays_in_the_view(tiny_shell, capsys):
    from tiny_models import raise_on_forward

    handle = raise_on_forward(lmwidgets.REGISTRY.get("lmw_int").model, 4, KeyboardInterrupt)
    capsys.readouterr()
    try:
        result = tiny_shell.run_cell("%%prompt -n 40\nHello")
    finally:
        handle.remove()
    _interrupted(result)
    assert "add --out NAME" in _one_error_line(capsys.readouterr().out)


def test_an_interrupt_before_any_text_keeps_the_earlier_out(shell, capsys):
    """An interrupt outside the model's generate (here while the scripted engine picks its
    answer) has no partial result: --out keeps what it held and the message says so."""

    def interrupted(prompt_text, adapter):
        raise KeyboardInterrupt

    lmwidgets.load_model(engine="scripted", name="lmw_s", replies={"*": "fine"})
    assert shell.run_cell("%%prompt --out lmw_keep\nfirst").success
    lmwidgets.load_model(engine="scripted", name="lmw_stuck", replies=interrupted)
    capsys.readouterr()
    _interrupted(shell.run_cell("%%prompt --model lmw_stuck --out lmw_keep --force-out\nhi"))
    assert "kept no result" in _one_error_line(capsys.readouterr().out)
    assert shell.user_ns["lmw_keep"][0].text == "fine"
    assert shell.run_cell("%%prompt --model lmw_s --out lmw_again\nsecond").success


def test_an_interrupted_load_is_one_line(shell, monkeypatch, capsys):
    from lmwidgets import api

    def interrupted_load(*args, progress=None, **options):
        progress(0.3, "Loading weights")
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "load_model", interrupted_load)
    capsys.readouterr()
    error = _interrupted(shell.run_cell("%lm load --engine scripted --as lmw_slow"))
    out = capsys.readouterr().out
    assert "Loading lmw_slow was interrupted; `%lm models` lists what is loaded." in str(error)
    assert "Loading lmw_slow failed." in out  # the progress bar is replaced
    _one_error_line(out)
    monkeypatch.undo()
    assert shell.run_cell("%lm load --engine scripted --as lmw_fast").success


def test_other_errors_still_propagate_as_they_were(shell):
    """Only interrupts become KernelInterruptedError; a failed run keeps its own error."""
    lmwidgets.load_model(engine="scripted", name="lmw_oom", fail_after=1, replies={"*": "a b c"})
    result = shell.run_cell("%%prompt --out lmw_oom_r\nhi")
    assert not result.success
    assert not isinstance(result.error_in_exec, KernelInterruptedError)
    assert isinstance(result.error_in_exec, lmwidgets.GenerationError)
    assert shell.user_ns["lmw_oom_r"][0].text == "a"


def test_an_interrupted_api_call_in_a_cell_is_one_line(tiny_shell, capsys):
    """``lmwidgets.prompt()`` in a plain cell: GenerationInterrupted shows as one line too, and
    its ``partial`` keeps the text so far."""
    from tiny_models import raise_on_forward

    model = lmwidgets.REGISTRY.get("lmw_int").model
    handle = raise_on_forward(model, 5, KeyboardInterrupt)
    capsys.readouterr()
    try:
        result = tiny_shell.run_cell(
            "import lmwidgets\nlmwidgets.prompt('Hello', model='lmw_int', max_new_tokens=40)"
        )
    finally:
        handle.remove()
    assert isinstance(result.error_in_exec, lmwidgets.errors.GenerationInterrupted)
    out = capsys.readouterr().out
    assert "Traceback" not in out and "site-packages" not in out, out
    lines = [line for line in out.splitlines() if "GenerationInterrupted" in line]
    assert len(lines) == 1 and "sys.last_value.partial" in lines[0], out
    assert result.error_in_exec.partial[0].text
    assert tiny_shell.run_cell("%%prompt -n 3 --out lmw_next\nAgain").success
