"""The ``%lm`` and ``%%prompt`` parsers: every flag, default and help text, without a kernel."""

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from lmwidgets.notebook.parsers import lm_parser, prompt_parser

LM = lm_parser()
PROMPT = prompt_parser()

#: Every option of every command (long and short forms), so none gets lost in a refactor.
LM_OPTIONS = {
    (): {"-h", "--help"},
    ("load",): {
        "-h",
        "--help",
        "--as",
        "--engine",
        "--device",
        "--dtype",
        "--allow-pickle",
        "--trust-remote-code",
        "--quantize",
        "--compile",
        "--max-images",
        "--no-prepack",
        "--cpu-kernels",
    },
    ("connect",): {"-h", "--help", "--as", "--model", "--api-key-env", "--timeout"},
    ("models",): {"-h", "--help"},
    ("rerun",): {"-h", "--help", "--show", "--yes", "-y"},
    ("adapter",): {"-h", "--help"},
    ("unload",): {"-h", "--help"},
    ("adapter", "load"): {"-h", "--help", "--as", "--model", "--scale", "--allow-pickle"},
    ("adapter", "list"): {"-h", "--help"},
    ("adapter", "unload"): {"-h", "--help", "--model"},
    ("adapter", "use"): {"-h", "--help", "--model"},
    ("cache",): {"-h", "--help"},
    ("cache", "info"): {"-h", "--help"},
    ("cache", "clear"): {"-h", "--help"},
}

PROMPT_OPTIONS = {
    "-h",
    "--help",
    "--model",
    "--models",
    "-m",
    "--system",
    "-s",
    "--max-new-tokens",
    "-n",
    "--temperature",
    "-t",
    "--top-p",
    "--seed",
    "--logprobs",
    "--out",
    "-o",
    "--strategy",
    "--compare",
    "-c",
    "--examples",
    "-e",
    "--shots",
    "-k",
    "--samples",
    "--dataset",
    "-d",
    "--cot-instruction",
    "--batch-size",
    "--adapter",
    "-a",
    "--adapters",
    "-A",
    "--image",
    "-i",
    "--region",
    "-r",
    "--region-mode",
    "--yes",
    "-y",
    "--force-out",
    "--score",
    "--no-cache",
}


def _options(parser):
    """The option strings a parser's help lists (what a user sees and can type)."""
    text = parser.format_help()
    return {word for word in text.replace(",", " ").replace("[", " ").split() if _flag(word)}


def _flag(word):
    return word.startswith("-") and len(word) > 1 and word[1] != " " and not word[1].isdigit()


def test_every_command_is_kept_by_its_path():
    assert set(LM.commands) == set(LM_OPTIONS)


@pytest.mark.parametrize("path", sorted(LM_OPTIONS))
def test_every_command_formats_its_help_with_all_its_options(path):
    text = LM.help(*path)  # `%lm unload --help` raised ValueError on `%lm` in a help string
    assert text.startswith("usage: %lm")
    assert LM_OPTIONS[path] <= _options(LM.commands[path]), path


@pytest.mark.parametrize(
    ("path", "usage"),
    [(("unload",), "%lm unload NAME [-h]"), (("rerun",), "%lm rerun SOURCE [--show] [--yes] [-h]")],
)
def test_a_required_argument_is_not_shown_optional(path, usage):
    """Declared optional so that ``-h`` alone works; the usage line says it is needed."""
    assert LM.help(*path).splitlines()[0] == f"usage: {usage}"
    assert LM.parse([*path, "-h"]).help  # -h alone still parses


def test_prompt_options_and_help():
    assert _options(PROMPT) >= PROMPT_OPTIONS
    text = PROMPT.format_help()
    assert text.startswith("usage: %%prompt")
    assert "Run the cell body as a prompt" in text and "{img}" in text


@pytest.mark.parametrize(
    ("tokens", "path"),
    [
        ([], ()),
        (["--help"], ()),
        (["load", "--help"], ("load",)),
        (["load", "./dir", "-h"], ("load",)),
        (["load", "adapter", "-h"], ("load",)),  # a source called "adapter" is not a command
        (["adapter", "-h"], ("adapter",)),
        (["adapter", "use", "x", "--help"], ("adapter", "use")),
        (["adapter", "load", "-h"], ("adapter", "load")),
        (["unload", "-h"], ("unload",)),
        (["nonsense", "-h"], ()),
    ],
)
def test_help_finds_the_deepest_named_command(tokens, path):
    assert LM.parser_for(tokens) is LM.commands[path]


def test_lm_defaults():
    args = LM.parse(["load"])
    assert args.command == "load" and args.source is None and args.name is None
    assert (args.device, args.dtype, args.quantize, args.max_images) == (None, None, None, None)
    assert not (args.allow_pickle or args.trust_remote_code or args.compile or args.no_prepack)
    args = LM.parse(["load", "m.gguf", "--as", "x", "--quantize", "4bit", "--max-images", "2"])
    assert (args.source, args.name, args.quantize, args.max_images) == ("m.gguf", "x", "4bit", 2)
    args = LM.parse(["adapter", "load", "./lora", "--as", "p", "--scale", "0.5"])
    assert (args.action, args.path, args.name, args.scale, args.model) == (
        "load",
        "./lora",
        "p",
        0.5,
        None,
    )
    assert LM.parse(["adapter", "load", "./lora"]).scale == 1.0
    assert LM.parse(["adapter"]).action is None
    assert LM.parse([]).command is None
    args = LM.parse(["rerun", "nb.ipynb", "--show"])
    assert (args.source, args.show) == ("nb.ipynb", True)
    assert LM.parse(["unload"]).name is None


def test_prompt_defaults():
    args = PROMPT.parse_args([])
    assert args.top_p == 1.0 and args.batch_size == 16 and args.region_mode == "box"
    assert args.max_new_tokens is None and args.temperature is None and args.image is None
    args = PROMPT.parse_args(["-n", "5", "-t", "0.5", "-i", "a", "--image", "b", "-A", "base,x"])
    assert (args.max_new_tokens, args.temperature, args.image, args.adapters) == (
        5,
        0.5,
        ["a", "b"],
        "base,x",
    )


@pytest.mark.parametrize(
    "tokens",
    [
        ["load", "--bogus"],
        ["load", "--quantize", "3bit"],
        ["load", "--cpu-kernels", "fast"],
        ["load", "--max-images", "many"],
        ["teleport"],
        ["adapter", "load"],  # the path is required
        ["adapter", "load", "p", "--scale", "big"],
    ],
)
def test_lm_usage_errors(tokens):
    with pytest.raises(UsageError):
        LM.parse(tokens)


def test_prompt_usage_errors():
    for tokens in (["-n", "many"], ["--region-mode", "blur"], ["--nope"]):
        with pytest.raises(UsageError):
            PROMPT.parse_args(tokens)


def test_no_private_argparse_attributes():
    package = Path(__file__).resolve().parents[2] / "lmwidgets" / "notebook"
    for name in ("parsers.py", "magics.py"):
        source = (package / name).read_text(encoding="utf-8")
        for private in ("._actions", "._subparsers", "._group_actions", "_SubParsersAction"):
            assert private not in source, (name, private)


def test_every_argument_is_named_as_it_is_typed():
    """Values refused after parsing are named by their flag (``flag_of``), issue 17."""
    assert PROMPT.flag_of("max_new_tokens") == "--max-new-tokens"
    assert PROMPT.flag_of("out") == "--out" and PROMPT.flag_of("force_out") == "--force-out"
    assert PROMPT.flag_of("image") == "--image" and PROMPT.flag_of("yes") == "--yes"
    load = LM.commands[("load",)]
    assert (load.flag_of("source"), load.flag_of("name")) == ("SOURCE", "--as")
    adapter_load = LM.commands[("adapter", "load")]
    assert (adapter_load.flag_of("path"), adapter_load.flag_of("name")) == ("PATH", "--as")
    assert LM.commands[("connect",)].flag_of("url") == "URL"


def test_yes_and_force_out_default_off():
    args = PROMPT.parse_args([])
    assert not args.yes and not args.force_out
    args = PROMPT.parse_args(["-y", "--force-out", "--out", "print"])
    assert args.yes and args.force_out and args.out == "print"
    assert LM.parse(["rerun", "nb.ipynb", "--yes"]).yes


@pytest.mark.parametrize(
    ("parse", "tokens", "message"),
    [
        (
            PROMPT.parse,
            ["--max-new-token", "3"],
            "unknown option --max-new-token: did you mean --max-new-tokens?",
        ),
        (
            PROMPT.parse,
            ["--temprature=0.5"],
            "unknown option --temprature: did you mean --temperature?",
        ),
        (PROMPT.parse, ["--zzz"], "unknown option --zzz: `%%prompt --help` lists the options."),
        (LM.parse, ["load", "--devic", "cpu"], "unknown option --devic: did you mean --device?"),
        (LM.parse, ["adapter", "load", "p", "--scal", "2"], "did you mean --scale?"),
        (LM.parse, ["load", "--qux"], "`%lm load --help` lists the options."),
        (LM.parse, ["lod"], "argument COMMAND: unknown 'lod': did you mean 'load'?"),
        (LM.parse, ["adapter", "lst"], "argument ACTION: unknown 'lst': did you mean 'list'?"),
        (LM.parse, ["teleport"], "invalid choice: 'teleport' (choose from"),
        (LM.parse, ["load", "a", "b"], "unexpected argument(s): b"),
    ],
)
def test_unknown_options_and_commands_name_the_closest(parse, tokens, message):
    with pytest.raises(UsageError) as caught:
        parse(tokens)
    assert message in str(caught.value)


def test_abbreviated_options_are_refused_not_guessed():
    """``--max-new-token`` is a typo to point out; argparse took it for --max-new-tokens."""
    with pytest.raises(UsageError, match="did you mean --max-new-tokens"):
        PROMPT.parse(["--max-new-token", "3"])
    with pytest.raises(UsageError, match=r"unknown option --mod: did you mean --model\?"):
        PROMPT.parse(["--mod", "a"])
    assert PROMPT.parse(["-n5"]).max_new_tokens == 5  # short options still take attached values


def test_score_is_passed_as_written():
    assert PROMPT.parse([]).score is None  # prompt()'s default (auto) applies
    for spec in ("auto", "exact", "contains", "regex:^\\d+$", "number:0.01", "choice", "my_check"):
        assert PROMPT.parse(["--score", spec]).score == spec
    text = " ".join(PROMPT.format_help().split())
    assert "--score SPEC How answers are scored against a dataset's expected values" in text
    assert "regex:PATTERN, number[:TOL], choice" in text
    assert "(answer, expected, item) -> bool|float" in text
