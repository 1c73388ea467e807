"""The argument parsers of the notebook magics: ``%lm`` (one small builder per sub-command) and
``%%prompt``.

Every sub-command parser is kept in :attr:`LmParser.commands` by its path (``("adapter",
"load")``), so ``%lm adapter load --help`` finds its parser without looking into argparse's
private sub-parser objects. Help strings go through argparse's ``%`` formatting: write ``%%`` for a
literal ``%`` in ``help=`` (descriptions and epilogs are printed as written). Help is plain text
(no reStructuredText: IPython's own formatter writes ``::`` and ``<A,B>``), abbreviated options
are refused, and an unknown option or command names the closest one.
"""

from __future__ import annotations

import argparse
import difflib
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser


class PlainHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help as plain text: ``usage: %lm ...``, descriptions dedented and kept as written, values
    shown as argparse writes them (IPython's formatter adds reStructuredText for Sphinx)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return super()._fill_text(textwrap.dedent(text), width, indent)

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        # argparse names sub-commands by formatting a usage with prefix "": keep that one.
        super().add_usage(usage, actions, groups, "usage: %" if prefix is None else prefix)


_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<typed>[^']*)' \(choose from (?P<choices>.*)\)$")


def closest(typed: str, candidates: Sequence[str]) -> str | None:
    """The candidate most like ``typed`` (difflib), or None when none is close."""
    found = difflib.get_close_matches(typed, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


class FlagParser(MagicArgumentParser):
    """A magic's parser that remembers how each argument is written (``--max-new-tokens``,
    ``SOURCE``), so a value refused after parsing is named as the user typed it. Sub-command
    parsers are of the same class (argparse makes them with the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", PlainHelpFormatter)
        super().__init__(*args, **kwargs)
        # `--max-new-token` is a typo to point out, not a prefix to guess from.
        self.allow_abbrev = False
        #: The written name of every argument, by its ``dest``.
        self.flags: dict[str, str] = {}
        #: Every option string (``--out``, ``-o``), in the order they were added.
        self.options: list[str] = []

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        longest = max(action.option_strings, key=len, default=None)
        self.flags[action.dest] = longest or str(action.metavar or action.dest).upper()
        self.options.extend(action.option_strings)
        return action

    def error(self, message: str) -> NoReturn:
        """Raise IPython's ``UsageError``; an invalid choice names the closest valid one."""
        match = _INVALID_CHOICE.search(message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group("choices"))
            near = closest(match.group("typed"), choices)
            if near is not None:
                typed = match.group("typed")
                message = f"{message[: match.start()]}unknown {typed!r}: did you mean {near!r}?"
        raise UsageError(message)

    def parse(self, tokens: Sequence[str]) -> argparse.Namespace:
        """The parsed arguments; an unknown option names the closest known one."""
        parsed, extras = self.parse_known_args(list(tokens))
        if extras:
            self.refuse(extras)
        return parsed

    def refuse(self, extras: Sequence[str]) -> NoReturn:
        """Raise a ``UsageError`` for arguments this parser does not know."""
        unknown = next((e for e in extras if e.startswith("-") and e != "-"), None)
        if unknown is None:
            self.error(f"unexpected argument(s): {' '.join(extras)}")
        flag = unknown.split("=", 1)[0]
        near = closest(flag, self.options)
        hint = f"did you mean {near}?" if near else f"`%{self.prog} --help` lists the options."
        self.error(f"unknown option {flag}: {hint}")

    def flag_of(self, dest: str) -> str:
        """How the argument stored in ``dest`` is written (``--out``, ``SOURCE``)."""
        return self.flags.get(dest, f"--{dest.replace('_', '-')}")


#: What ``ArgumentParser.add_subparsers()`` returns (its class is private to argparse); only its
#: public ``add_parser`` is used.
_Commands = Any

LM_DESCRIPTION = "Manage the language models loaded in this kernel."

LM_EPILOG = (
    "Examples:\n"
    "  %lm load                      the embedded default (SmolLM2-135M-Instruct)\n"
    "  %lm load ./my-model --as mine a local transformers directory (safetensors)\n"
    "  %lm load model.Q4_K_M.gguf    a GGUF file\n"
    "  %lm load HuggingFaceTB/SmolLM2-360M-Instruct --dtype bfloat16\n"
    "  %lm connect http://127.0.0.1:8000 --as big   a model served by vLLM (or any OpenAI API)\n"
    "  %lm models                    list loaded models\n"
    "  %lm unload mine               free a model's memory\n"
    "  %lm rerun analysis.ipynb      re-run saved records, check the texts match\n"
    "  %lm cache                     where the response cache is and what it holds (clear)\n"
    "  %lm adapter load ./lora --as pirate   attach a LoRA adapter (see %lm adapter --help)\n"
    "Run `%lm COMMAND --help` for a command's options."
)

PROMPT_DESCRIPTION = (
    "Run the cell body as a prompt and stream the answer into a live widget.\n\n"
    "{name} fields in the body are filled from the notebook's variables; unknown names stay as\n"
    "written ({{ and }} give literal braces). The model's chat template is applied when it has\n"
    "one. Greedy by default. With a vision-language model, --image X adds images ({img} in the\n"
    "body places them) and --compare zero-shot,no-image shows what the image contributes;\n"
    "boxes in the answer are drawn on the thumbnail. With an audio-language model, --audio X\n"
    "adds clips ({audio} places them; --clip START,END asks about part of one). With\n"
    "--dataset, answers are scored against the items' expected values (see --score); with\n"
    "--choices VAR the columns score given choices by likelihood instead of generating.\n\n"
    "Your own variations side by side: '--- NAME' lines in the body start named prompt\n"
    "variants; --systems, --each, --temperatures, --top-ps and --trials add more axes, and\n"
    "every axis combines with the others (two axes make a matrix; --columns picks the axis\n"
    "that forms the columns)."
)

#: ``%%prompt --score``'s help (what ``lmwidgets.prompt(score=...)`` accepts).
SCORE_HELP = (
    "How answers are scored against a dataset's expected values: auto (default), exact, "
    "contains, regex:PATTERN, number[:TOL], choice, fields (a --json answer against a dict "
    "expected, field by field), judge (the --judge model's verdicts), likelihood (with "
    "--choices), perplexity (no generation: the log-likelihood per token of expected), or the "
    "name of a function (answer, expected, item) -> bool|float."
)


@dataclass(frozen=True)
class LmParser:
    """The ``%lm`` parser and every (sub-)command's parser by its path (``()`` is the root)."""

    root: FlagParser
    commands: dict[tuple[str, ...], FlagParser]

    def parse(self, tokens: Sequence[str]) -> argparse.Namespace:
        """The parsed arguments (a usage error raises IPython's ``UsageError``; an unknown
        option names the closest option of the command it was given to)."""
        parsed, extras = self.root.parse_known_args(list(tokens))
        if extras:
            self.parser_for(tokens).refuse(extras)
        return parsed

    def parser_for(self, tokens: Sequence[str]) -> FlagParser:
        """The parser of the deepest command the leading ``tokens`` name: ``load --help`` gives
        load's, ``adapter use x -h`` adapter use's, ``--help`` the root."""
        path: tuple[str, ...] = ()
        for token in tokens:
            if (*path, token) not in self.commands:
                break
            path = (*path, token)
        return self.commands[path]

    def help(self, *path: str) -> str:
        """The help text of the command at ``path`` (none: ``%lm`` itself)."""
        return self.commands[path].format_help()


#: The usage line of a command whose positional argument is required but declared optional (so
#: that ``-h`` alone works): argparse would show it in brackets.
_REQUIRED_USAGE = "%(prog)s {}"


def _help_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action="store_true", help="Show this help.")


# %lm COMMAND ------------------------------------------------------------------------------------
def _load(commands: _Commands) -> FlagParser:
    load = commands.add_parser(
        "load",
        help="Load a model (default: the embedded SmolLM2-135M-Instruct).",
        description=(
            "Load a model into the kernel and make it the current model for %%prompt. SOURCE "
            "is a local directory (safetensors), a .gguf file or a hub id; without SOURCE, the "
            "embedded default SmolLM2-135M-Instruct. Loading the same source again is a no-op."
        ),
    )
    load.add_argument("source", nargs="?", default=None, help="Directory, .gguf file or hub id.")
    load.add_argument("--as", dest="name", default=None, help="Name to refer to the model by.")
    load.add_argument(
        "--engine",
        default="transformers",
        help="What runs the model: transformers (default: in this kernel) or scripted (no "
        "weights: SOURCE is a JSON file of prompt text -> answer, or nothing for an echo).",
    )
    load.add_argument(
        "--device",
        default=None,
        help="auto (default: cuda if available, else cpu), cpu, cuda, cuda:N.",
    )
    load.add_argument(
        "--dtype",
        default=None,
        help="auto (default: bfloat16 on CUDA, float32 on CPU), float32, bfloat16, float16.",
    )
    load.add_argument(
        "--allow-pickle",
        action="store_true",
        help="Allow pickle weights (*.bin): they can run code.",
    )
    load.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="Run custom model code from the model's repository (only for sources you trust).",
    )
    load.add_argument(
        "--quantize",
        choices=["4bit", "8bit"],
        default=None,
        help="CUDA only: load the weights quantized with bitsandbytes (fits larger models).",
    )
    load.add_argument(
        "--compile",
        action="store_true",
        help="CUDA only: decode with a static KV cache and torch.compile (the first prompt of "
        "each length bucket and batch size compiles; later ones are fast).",
    )
    load.add_argument(
        "--max-images",
        type=int,
        default=None,
        help="Vision-language models: most images per prompt (default: 1 for single-image "
        "models such as LLaVA-1.5 and PaliGemma, else as many as fit the context).",
    )
    load.add_argument(
        "--cpu-kernels",
        choices=["auto", "packed", "plain", "bf16"],
        default=None,
        help="CPU, float32: the linear layers' kernels. auto (default) times packed oneDNN "
        "against plain PyTorch on this CPU at the first load (cached per CPU) and picks the "
        "faster per layer shape and batch size, and fuses q/k/v and gate/up into one product "
        "where that is faster (same numbers), and runs a batch-of-one decoding step's small "
        "operations as compiled loops where a step measured faster (last bits of scores may "
        "differ, greedy tokens equal); packed forces packed and fused, with transformers' exact "
        "arithmetic in between; bf16 (bfloat16 weights, float32 accumulation, "
        "native bfloat16 CPUs only) is faster but changes answers slightly.",
    )
    load.add_argument(
        "--no-prepack",
        action="store_true",
        help=(
            "Same as --cpu-kernels plain: do not pack weights for CPU decoding (weights that "
            "are not memory-mapped from a safetensors file keep a second copy when packed)."
        ),
    )
    _help_flag(load)
    return load


def _connect(commands: _Commands) -> FlagParser:
    connect = commands.add_parser(
        "connect",
        help="Connect to a served model (vLLM or any OpenAI-compatible server).",
        description=(
            "Connect to a model served over the OpenAI chat-completions API (vLLM, SGLang, "
            "llama.cpp's server, transformers serve, hosted APIs) and make it the current model. "
            "Every %%prompt feature works with it; rows run as concurrent requests that the "
            "server batches. The API key is read from an environment variable and never shown."
        ),
    )
    connect.add_argument(
        "url", help="The server, e.g. http://127.0.0.1:8000 (a /v1 suffix is fine)."
    )
    connect.add_argument("--as", dest="name", default=None, help="Name to refer to the model by.")
    connect.add_argument(
        "--model",
        default=None,
        help="The served model id (default: the server's only model; the error lists them).",
    )
    connect.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="Environment variable holding the API key (the key itself never enters the notebook).",
    )
    connect.add_argument(
        "--timeout", type=float, default=300.0, help="Seconds to wait for each chunk (default 300)."
    )
    _help_flag(connect)
    return connect


def _models(commands: _Commands) -> FlagParser:
    models = commands.add_parser(
        "models",
        help="List the loaded models.",
        description="List the loaded and connected models, one line each (* marks the current "
        "model, the one %%prompt uses without --model).",
    )
    _help_flag(models)
    return models


def _rerun(commands: _Commands) -> FlagParser:
    rerun = commands.add_parser(
        "rerun",
        help="Re-run saved run records and report whether the texts match.",
        description=(
            "Re-run the records of a notebook (a path to an .ipynb file), a JSON export "
            "(Comparison.to_json()), or a notebook variable holding a Comparison, Result or "
            "records, and report per column whether the new text equals the saved one."
        ),
        usage=_REQUIRED_USAGE.format("SOURCE [--show] [--yes] [-h]"),
    )
    rerun.add_argument(  # optional to argparse only so that `-h` alone works
        "source", nargs="?", metavar="SOURCE", help="Notebook path, .json file or variable name."
    )
    rerun.add_argument(
        "--show", action="store_true", help="Also stream the re-run into a live view."
    )
    rerun.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="Re-run even a recorded run larger than %%prompt's limits (see %%prompt --help).",
    )
    _help_flag(rerun)
    return rerun


def _cache(commands: _Commands) -> FlagParser:
    cache = commands.add_parser(
        "cache",
        help="The response cache: where it is and what it holds; clear it.",
        description=(
            "Identical greedy or seeded %%prompt runs are answered from an on-disk cache (the\n"
            "same model weights or server, adapter, rendered prompt, media, settings and seed).\n"
            "A run that samples without --seed, and a stopped or failed column, are never kept.\n"
            "It lives in $LMWIDGETS_CACHE/responses (else the user cache directory) and keeps at\n"
            "most 1 GB by default (%config LmMagics.cache_size_mb), least recently used first.\n"
            "--no-cache skips it for one cell; %config LmMagics.cache = False for all."
        ),
    )
    _help_flag(cache)
    return cache


def _cache_info(actions: _Commands) -> FlagParser:
    what = "Where the response cache is, its entries, their size and the limit (the default)."
    info = actions.add_parser("info", help=what, description=what)
    _help_flag(info)
    return info


def _cache_clear(actions: _Commands) -> FlagParser:
    what = "Remove every cached answer (the next runs generate them again)."
    clear = actions.add_parser("clear", help=what, description=what)
    _help_flag(clear)
    return clear


def _adapter(commands: _Commands) -> FlagParser:
    adapter = commands.add_parser(
        "adapter",
        help="LoRA adapters: load, list, use, unload.",
        description=(
            "Attach peft LoRA adapters to a loaded model without reloading it, and compare them: "
            "`%%prompt --adapters base,A,B` runs base and adapters side by side in one batch."
        ),
    )
    _help_flag(adapter)
    return adapter


def _unload(commands: _Commands) -> FlagParser:
    unload = commands.add_parser(
        "unload",
        help="Unload a model and free its memory.",
        description="Unload the model called NAME and free its memory: `%lm unload NAME` "
        "(the names are in `%lm models`).",
        usage=_REQUIRED_USAGE.format("NAME [-h]"),
    )
    # Optional to argparse only so that `-h` alone works; a missing NAME is said by the magic.
    unload.add_argument(
        "name", nargs="?", metavar="NAME", help="The model's name (see `%%lm models`)."
    )
    _help_flag(unload)
    return unload


# %lm adapter ACTION -----------------------------------------------------------------------------
def _adapter_load(actions: _Commands) -> FlagParser:
    load = actions.add_parser(
        "load",
        help="Attach an adapter directory (not activated).",
        description="Attach a peft LoRA adapter directory to a loaded model, without "
        "activating it: name it in %%prompt --adapter NAME or --adapters base,NAME, or make it "
        "the default with `%lm adapter use NAME`.",
    )
    load.add_argument("path", help="A peft adapter directory (adapter_config.json + safetensors).")
    load.add_argument(
        "--as", dest="name", default=None, help="Name (default: the directory's name)."
    )
    load.add_argument("--model", default=None, help="The model to attach to (default: current).")
    load.add_argument(
        "--scale", type=float, default=1.0, help="Multiplies the adapter's effect (default 1)."
    )
    load.add_argument(
        "--allow-pickle", action="store_true", help="Allow adapter_model.bin (pickle)."
    )
    _help_flag(load)
    return load


def _adapter_list(actions: _Commands) -> FlagParser:
    what = "List the adapters attached to each loaded model and which one is its default."
    listing = actions.add_parser("list", help="List attached adapters.", description=what)
    _help_flag(listing)
    return listing


def _adapter_unload(actions: _Commands) -> FlagParser:
    what = "Detach an adapter from its model and free its memory."
    unload = actions.add_parser("unload", help="Detach an adapter and free it.", description=what)
    unload.add_argument("name", help="The adapter's name (see `%%lm adapter list`).")
    unload.add_argument(
        "--model", default=None, help="The model it is attached to (default: the one that has it)."
    )
    _help_flag(unload)
    return unload


def _adapter_use(actions: _Commands) -> FlagParser:
    what = "Default adapter for later prompts of a model ('base' for none)."
    use = actions.add_parser("use", help=what, description=what)
    use.add_argument("name", help="The adapter's name, or 'base' for none.")
    use.add_argument(
        "--model",
        default=None,
        help="The model whose default it is (default: the one that has it).",
    )
    _help_flag(use)
    return use


#: ``%lm`` commands and ``%lm adapter`` actions, in the order their help lists them.
_COMMANDS = {
    "load": _load,
    "connect": _connect,
    "models": _models,
    "rerun": _rerun,
    "adapter": _adapter,
    "cache": _cache,
    "unload": _unload,
}
_ADAPTER_ACTIONS = {
    "load": _adapter_load,
    "list": _adapter_list,
    "unload": _adapter_unload,
    "use": _adapter_use,
}
_CACHE_ACTIONS = {"info": _cache_info, "clear": _cache_clear}


def lm_parser() -> LmParser:
    """The ``%lm`` parser: ``load``, ``connect``, ``models``, ``rerun``, ``adapter ACTION``,
    ``cache [ACTION]``, ``unload``."""
    root = FlagParser(prog="lm", description=LM_DESCRIPTION, epilog=LM_EPILOG)
    _help_flag(root)
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    found: dict[tuple[str, ...], FlagParser] = {(): root}
    for name, build in _COMMANDS.items():
        found[(name,)] = build(commands)
    actions = found[("adapter",)].add_subparsers(dest="action", metavar="ACTION")
    for name, build_action in _ADAPTER_ACTIONS.items():
        found[("adapter", name)] = build_action(actions)
    actions = found[("cache",)].add_subparsers(dest="action", metavar="ACTION")
    for name, build_action in _CACHE_ACTIONS.items():
        found[("cache", name)] = build_action(actions)
    return LmParser(root=root, commands=found)


# %%prompt ---------------------------------------------------------------------------------------
def _prompt_generation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", "-m", default=None, help="Model name (default: the current model)."
    )
    parser.add_argument(
        "--models",
        default=None,
        metavar="A,B",
        help="Models side by side (names from %%lm models; loaded or served), one column each.",
    )
    parser.add_argument(
        "--system", "-s", default=None, help="System prompt ({name} fields are filled)."
    )
    parser.add_argument(
        "--max-new-tokens", "-n", type=int, default=None, help="Most new tokens (default 256)."
    )
    parser.add_argument(
        "--temperature", "-t", type=float, default=None, help="0 (default) is greedy; > 0 samples."
    )
    parser.add_argument(
        "--top-p", type=float, default=1.0, help="Nucleus sampling mass in (0, 1] (default 1)."
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="Seed for sampling (same seed, same text)."
    )
    parser.add_argument(
        "--logprobs",
        type=int,
        default=None,
        metavar="K",
        help="Report each generated token's probability and its top K alternatives (0-20; "
        "shows the token view).",
    )
    parser.add_argument(
        "--out",
        "-o",
        default=None,
        help="Bind the Comparison to this variable (a Python name; a builtin such as print, or "
        "a variable that does not hold an earlier result, only with --force-out).",
    )
    parser.add_argument(
        "--force-out",
        action="store_true",
        help="Let --out replace a builtin, one of IPython's names or any notebook variable.",
    )
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="Run even when the run is larger than the limits (more than 64 --samples, 2,000 "
        "generated rows or 32 columns).",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="Generate every column even when the response cache has it (see `%%lm cache`).",
    )


def _prompt_strategies(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy",
        default=None,
        help="One strategy: zero-shot (default), few-shot, cot, self-consistency.",
    )
    parser.add_argument(
        "--compare",
        "-c",
        default=None,
        help="Several strategies side by side, e.g. zero-shot,few-shot,cot.",
    )
    parser.add_argument(
        "--examples",
        "-e",
        default=None,
        help="Variable with few-shot examples (pairs, dicts or DataFrame).",
    )
    parser.add_argument("--shots", "-k", type=int, default=None, help="Use the first K examples.")
    parser.add_argument(
        "--samples", type=int, default=None, help="Self-consistency samples (default 5)."
    )
    parser.add_argument(
        "--dataset",
        "-d",
        default=None,
        help="Variable with items (DataFrame or dicts with 'input', optional 'expected').",
    )
    parser.add_argument("--score", default=None, metavar="SPEC", help=SCORE_HELP)
    parser.add_argument(
        "--choices",
        default=None,
        metavar="VAR",
        help="Variable with a list of choices: no generation, each column scores every choice "
        "by its log-probability after the prompt and answers the likeliest (lm-eval's acc; "
        "acc_norm beside it). A dataset column 'choices' gives each item its own; expected is "
        "a choice or its index.",
    )
    parser.add_argument(
        "--cot-instruction", default=None, help="Replace the chain-of-thought instruction."
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="Rows per batched generation (default 16)."
    )


def _prompt_adapters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapter", "-a", default=None, help="Run with this LoRA adapter ('base' for none)."
    )
    parser.add_argument(
        "--adapters", "-A", default=None, help="Adapters side by side, e.g. base,pirate,formal."
    )


def _prompt_images(parser: argparse.ArgumentParser) -> None:
    from lmwidgets.media.base import all_kinds

    for kind in all_kinds():  # --image, --audio...: one option per registered media kind
        flags = [kind.flag, *([kind.short] if kind.short else [])]
        parser.add_argument(
            *flags,
            action="append",
            default=None,
            dest=kind.dest,
            help=kind.help
            or f"A {kind.name} input (repeat for several); {kind.marker} in the prompt places it.",
        )
    parser.add_argument(
        "--media-column",
        default=None,
        metavar="NAME[:KIND]",
        help="With --dataset: the column that holds each item's own media (default: a column "
        "named image or audio); KIND names its kind when NAME is not one. Items are read "
        "lazily, batch by batch.",
    )
    parser.add_argument(
        "--region",
        "-r",
        default=None,
        help="Ask about a region: x1,y1,x2,y2 in pixels of the (first) image; N:x1,y1,x2,y2 "
        "for the N-th image (the prompt's images, then a dataset item's own: each item's is "
        "marked). Draw one on the thumbnail to re-run with it.",
    )
    parser.add_argument(
        "--region-mode",
        default="box",
        choices=["box", "crop"],
        help="How the model sees --region: box (default: a red box drawn on the image) or crop "
        "(only the region).",
    )
    parser.add_argument(
        "--clip",
        default=None,
        metavar="START,END",
        help="Ask about part of an audio clip: START,END in seconds (N:START,END for the N-th "
        "clip).",
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=None,
        metavar="HZ",
        help="The sample rate of --audio arrays and tensors, which carry none (e.g. 16000).",
    )


def _prompt_variations(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prompts",
        default=None,
        metavar="VAR",
        help="Prompt wordings side by side: a variable holding a dict {name: text} or a list "
        "(named A, B, ...). Or write them in the cell: a line '--- NAME' starts a variant.",
    )
    parser.add_argument(
        "--systems",
        default=None,
        metavar="VAR",
        help="System prompts side by side: a variable holding a dict {name: text} or a list; "
        "the name 'none' (or a None value) is no system prompt.",
    )
    parser.add_argument(
        "--each",
        default=None,
        metavar="FIELD[,FIELD]",
        help="One column per value of {FIELD}, whose variable is a list or a dict (its keys "
        "name the columns); several fields give their product.",
    )
    parser.add_argument(
        "--temperatures",
        default=None,
        metavar="T1,T2",
        help="A temperature sweep, one column per value, e.g. 0,0.7,1.2.",
    )
    parser.add_argument(
        "--top-ps", default=None, metavar="P1,P2", help="A top-p sweep, e.g. 0.5,0.9,1."
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        metavar="N",
        help="Run each sampled column N times (seeds seed..seed+N-1) and show the spread of "
        "its answers; greedy columns run once.",
    )
    parser.add_argument(
        "--vs",
        default=None,
        metavar="previous|VAR",
        help="Show an earlier run beside this one: 'previous' (this cell's previous run, also "
        "after a kernel restart from the saved notebook) or a variable holding a Comparison; "
        "each column gets a word diff with its earlier counterpart and changed answers are "
        "flagged.",
    )
    parser.add_argument(
        "--columns",
        default=None,
        metavar="AXIS",
        help="The axis that forms the view's columns: prompt, system, strategy, adapter, "
        "model, temperature, top_p, probe, trial or field:NAME (the view can swap it).",
    )


def _prompt_axis_kinds(parser: argparse.ArgumentParser) -> None:
    """The registered axis kinds' options (structured answers, probes, your own; see
    :mod:`lmwidgets.core.axis_kinds`)."""
    from lmwidgets.core.axis_kinds import all_kinds

    for kind in all_kinds():
        add_options = kind.hook("add_options")
        if add_options is not None:
            add_options(parser)


def _prompt_judge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--judge",
        default=None,
        metavar="MODEL",
        help="A model that judges every column after generation (any loaded or connected "
        "model, the judged one included): a verdict chip per column, its reasoning on a click. "
        "Costs one more generation per column.",
    )
    parser.add_argument(
        "--rubric",
        default=None,
        metavar="TEXT|VAR",
        help="What the judge looks for: quality (default, 1-5), correctness (pass/fail against "
        "expected), faithfulness[:COLUMN] (1-5 against the item's reference column), or your "
        "own rubric as text or a variable holding it.",
    )
    parser.add_argument(
        "--judge-scale",
        default=None,
        choices=["1-5", "pass/fail"],
        help="The judge's verdict: a 1-5 score or pass/fail (default: the rubric's; 1-5 for "
        "your own).",
    )
    parser.add_argument(
        "--judge-pairwise",
        action="store_true",
        help="Ask the judge which of two columns is better (every column against the first), "
        "in both orders; orders that disagree are a tie.",
    )
    parser.add_argument(
        "--judge-tokens",
        type=int,
        default=None,
        metavar="N",
        help="Most new tokens of each judge reply, its reasoning and verdict (default 256).",
    )
    parser.add_argument(
        "--judge-free",
        action="store_true",
        help="Let the judge write free text; by default its reply is held to one reasoning "
        "line and the verdict line while decoding, where its engine can enforce that.",
    )


def prompt_parser() -> FlagParser:
    """The ``%%prompt`` parser: generation settings, strategies, variations, adapters, images."""
    parser = FlagParser(prog="%prompt", description=PROMPT_DESCRIPTION)
    _help_flag(parser)
    _prompt_generation(parser)
    _prompt_strategies(parser)
    _prompt_variations(parser)
    _prompt_axis_kinds(parser)
    _prompt_judge(parser)
    _prompt_adapters(parser)
    _prompt_images(parser)
    return parser
