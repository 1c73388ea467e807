"""Help of the magics: plain text without reStructuredText leftovers, reachable from every
spelling (``%%prompt --help`` on its own, ``%lm load --help``, ``%prompt?``), and usage errors
that name the closest option."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from lmwidgets.notebook.magics import LmMagics, help_cell_as_line
from lmwidgets.notebook.parsers import lm_parser, prompt_parser

#: reStructuredText that reads as noise in a notebook's plain-text help.
RST_MARKUP = {
    "double backticks": re.compile(r"``"),
    "a Sphinx role": re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc|ref|doc|py):`"),
    "a directive": re.compile(r"^\s*\.\. \S", re.MULTILINE),
    "a literal-block marker": re.compile(r"::\s*$", re.MULTILINE),
    "an RST-escaped placeholder": re.compile(r"<[A-Z{][^>\n]*>"),
}


def rst_leftovers(text: str) -> list[str]:
    """What reStructuredText ``text`` holds, each as '<kind>: <the match>'."""
    return [
        f"{kind}: {match.group()!r}"
        for kind, pattern in RST_MARKUP.items()
        for match in pattern.finditer(text)
    ]


def every_help_text() -> dict[str, str]:
    """Every help text a user can print, by how it is asked for."""
    lm = lm_parser()
    texts = {
        f"%lm {' '.join(path)} --help".replace("  ", " "): lm.help(*path) for path in lm.commands
    }
    texts["%prompt --help"] = prompt_parser().format_help()
    texts["%lm?"] = LmMagics.lm.__doc__ or ""
    texts["%prompt?"] = LmMagics.prompt.__doc__ or ""
    return texts


@pytest.mark.parametrize(("asked", "text"), sorted(every_help_text().items()))
def test_no_help_text_holds_restructuredtext(asked, text):
    assert text.strip(), asked
    assert rst_leftovers(text) == [], asked
    assert text.startswith("usage: %"), asked


def test_the_scan_finds_what_ipython_and_docstrings_leave():
    """The scan can fail: IPython's own formatter and Sphinx docstrings are caught."""
    ipython = MagicArgumentParser(prog="demo", description="Uses :class:`Comparison`.")
    ipython.add_argument("--models", metavar="A,B", help="``a,b`` models.")
    found = " ".join(rst_leftovers(ipython.format_help() + "\n.. note:: x"))
    for kind in RST_MARKUP:
        assert kind in found, kind


def run(shell, code):
    return shell.run_cell(code)


@pytest.mark.parametrize(
    "cell",
    [
        "%%prompt --help",
        "%%prompt --help\n",
        "%%prompt -h\n\n   \n",
        "%%prompt -n 3 --help\n",
        "%%prompt   --help",
        "%prompt --help",
        "%prompt -h",
    ],
)
def test_prompt_help_on_its_own(shell, capsys, cell):
    result = run(shell, cell)
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out
    assert out.startswith("usage: %%prompt") and "--max-new-tokens" in out and "--score" in out


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%lm --help", "usage: %lm [-h] COMMAND"),
        ("%lm", "usage: %lm [-h] COMMAND"),
        ("%lm load --help", "usage: %lm load"),
        ("%lm connect -h", "usage: %lm connect"),
        ("%lm adapter load --help", "usage: %lm adapter load"),
        ("%lm adapter use --help", "The adapter's name, or 'base' for none."),
        ("%lm adapter unload --help", "(see `%lm adapter list`)"),
    ],
)
def test_lm_help(shell, capsys, line, needle):
    result = run(shell, line)
    assert result.success, result.error_in_exec
    assert needle in capsys.readouterr().out


def test_an_empty_cell_without_help_is_still_refused(shell, capsys):
    result = run(shell, "%%prompt -n 3\n")
    assert not result.success and isinstance(result.error_in_exec, UsageError)
    assert "cell body is empty" in str(result.error_in_exec)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["%%prompt --help\n"], ["%prompt --help\n"]),
        (["%%prompt -h"], ["%prompt -h"]),
        (["%%prompt --help\n", "\n", "  \n"], ["%prompt --help\n"]),
        (["%%prompt --help\n", "a prompt\n"], None),  # a body: the cell magic shows the help
        (["%%prompt -n 3\n"], None),
        (["%%prompts --help\n"], None),  # another magic
        (["%%prompt --system '-h\n"], None),  # unbalanced quote: left to the magic's error
        (["%%prompt --system 'x -h'\n"], None),  # -h inside a value
        (["x = 1\n", "%%prompt --help\n"], None),
        ([], None),
    ],
)
def test_help_cell_as_line(lines, expected):
    assert help_cell_as_line(list(lines)) == (lines if expected is None else expected)


def test_the_transformer_is_registered_once_and_removed(shell):
    from lmwidgets.notebook.magics import register, unregister

    cleanup = shell.input_transformers_cleanup
    register(shell)  # %load_ext twice
    assert cleanup.count(help_cell_as_line) == 1
    unregister(shell)
    try:
        assert help_cell_as_line not in cleanup
    finally:
        register(shell)
    assert cleanup.count(help_cell_as_line) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "%%prompt --max-new-token 3\nhi",
            "unknown option --max-new-token: did you mean --max-new-tokens?",
        ),
        ("%%prompt --scor exact\nhi", "unknown option --scor: did you mean --score?"),
        ("%lm load --engin scripted", "unknown option --engin: did you mean --engine?"),
        ("%lm modles", "unknown 'modles': did you mean 'models'?"),
        ("%lm adapter load ./a --scael 2", "did you mean --scale?"),
    ],
)
def test_a_typo_names_the_closest_option(shell, capsys, line, message):
    result = run(shell, line)
    assert not result.success and isinstance(result.error_in_exec, UsageError)
    assert message in str(result.error_in_exec)


@pytest.mark.parametrize(("asked", "text"), sorted(every_help_text().items()))
def test_every_help_says_what_the_command_does(asked, text):
    """A line under the usage says what the command does (``%lm models --help`` and
    ``%lm unload --help`` were a bare usage line and an options list)."""
    first = text.split("\n\n")[1] if "\n\n" in text else ""
    assert first.strip() and not first.startswith(("positional arguments", "options")), asked
