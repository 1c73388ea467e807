"""The notebook magics: ``%lm`` (models) and ``%%prompt`` (run a prompt), thin over :mod:`.api`."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import (
    MagicArgumentParser,
    argument,
    magic_arguments,
)
from traitlets import Float, Int, Unicode

from lmwidgets.errors import GenerationError, GenerationInterrupted, LmWidgetsError
from lmwidgets.sharing.safe_text import escape_html


def _lm_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(
        prog="lm",
        description="Manage the language models loaded in this kernel.",
        epilog=(
            "Examples:\n"
            "  %lm load                      the embedded default (SmolLM2-135M-Instruct)\n"
            "  %lm load ./my-model --as mine a local transformers directory (safetensors)\n"
            "  %lm load model.Q4_K_M.gguf    a GGUF file\n"
            "  %lm load HuggingFaceTB/SmolLM2-360M-Instruct --dtype bfloat16\n"
            "  %lm models                    list loaded models\n"
            "  %lm unload mine               free a model's memory\n"
            "  %lm rerun analysis.ipynb      re-run saved records, check the texts match\n"
            "  %lm adapter load ./lora --as pirate   attach a LoRA adapter (see %lm adapter --help)\n"
            "Run `%lm COMMAND --help` for a command's options."
        ),
    )
    parser.add_argument("-h", "--help", action="store_true", help="Show this help.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
        "--no-prepack",
        action="store_true",
        help=(
            "Do not pack weights for fast CPU decoding (weights that are not memory-mapped from "
            "a safetensors file keep a second copy when packed)."
        ),
    )
    load.add_argument("-h", "--help", action="store_true", help="Show this help.")

    models = commands.add_parser("models", help="List the loaded models.")
    models.add_argument("-h", "--help", action="store_true", help="Show this help.")

    rerun = commands.add_parser(
        "rerun",
        help="Re-run saved run records and report whether the texts match.",
        description=(
            "Re-run the records of a notebook (a path to an .ipynb file), a JSON export "
            "(Comparison.to_json()), or a notebook variable holding a Comparison, Result or "
            "records, and report per column whether the new text equals the saved one."
        ),
    )
    rerun.add_argument("source", nargs="?", help="Notebook path, .json file or variable name.")
    rerun.add_argument(
        "--show", action="store_true", help="Also stream the re-run into a live view."
    )
    rerun.add_argument("-h", "--help", action="store_true", help="Show this help.")

    adapter = commands.add_parser(
        "adapter",
        help="LoRA adapters: load, list, use, unload.",
        description=(
            "Attach peft LoRA adapters to a loaded model without reloading it, and compare them: "
            "`%%prompt --adapters base,A,B` runs base and adapters side by side in one batch."
        ),
    )
    adapter.add_argument("-h", "--help", action="store_true", help="Show this help.")
    actions = adapter.add_subparsers(dest="action", metavar="ACTION")
    a_load = actions.add_parser("load", help="Attach an adapter directory (not activated).")
    a_load.add_argument(
        "path", help="A peft adapter directory (adapter_config.json + safetensors)."
    )
    a_load.add_argument(
        "--as", dest="name", default=None, help="Name (default: the directory's name)."
    )
    a_load.add_argument("--model", default=None, help="The model to attach to (default: current).")
    a_load.add_argument(
        "--scale", type=float, default=1.0, help="Multiplies the adapter's effect (default 1)."
    )
    a_load.add_argument(
        "--allow-pickle", action="store_true", help="Allow adapter_model.bin (pickle)."
    )
    a_list = actions.add_parser("list", help="List attached adapters.")
    a_unload = actions.add_parser("unload", help="Detach an adapter and free it.")
    a_unload.add_argument("name")
    a_unload.add_argument("--model", default=None)
    a_use = actions.add_parser(
        "use", help="Default adapter for later prompts of a model ('base' for none)."
    )
    a_use.add_argument("name")
    a_use.add_argument("--model", default=None)
    for sub in (a_load, a_list, a_unload, a_use):
        sub.add_argument("-h", "--help", action="store_true", help="Show this help.")

    unload = commands.add_parser("unload", help="Unload a model and free its memory.")
    unload.add_argument("name", nargs="?", help="The model's name (see `%lm models`).")
    unload.add_argument("-h", "--help", action="store_true", help="Show this help.")
    return parser


_LM_PARSER = _lm_parser()


def _subparser(*names: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _LM_PARSER
    for name in names:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parser = action.choices[name]
                break
        else:
            raise KeyError(name)
    return parser


def _show(text: str, html: str | None = None) -> None:
    from IPython.display import display

    bundle = {"text/plain": text}
    if html is not None:
        bundle["text/html"] = html
    display(bundle, raw=True)


@magics_class
class LmMagics(Magics):
    """``%lm`` and ``%%prompt``. Defaults are configurable, e.g. ``%config LmMagics.max_new_tokens = 128``."""

    max_new_tokens = Int(256, help="Default --max-new-tokens for %%prompt.").tag(config=True)
    temperature = Float(0.0, help="Default --temperature for %%prompt (0 is greedy).").tag(
        config=True
    )
    device = Unicode("auto", help="Default --device for %lm load.").tag(config=True)
    dtype = Unicode("auto", help="Default --dtype for %lm load.").tag(config=True)
    cot_instruction = Unicode(
        "", help="Chain-of-thought instruction for cot/self-consistency (empty: the built-in one)."
    ).tag(config=True)

    # %lm ---------------------------------------------------------------------------------
    @line_magic
    def lm(self, line: str = "") -> None:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:  # unbalanced quotes
            raise LmWidgetsError(f"Cannot parse `%lm {line}`: {exc}") from None
        if "-h" in tokens or "--help" in tokens:  # before required arguments are checked
            path = []
            for token in tokens:
                try:
                    _subparser(*path, token)
                except KeyError:
                    break
                path.append(token)
            print(_subparser(*path).format_help())
            return
        args = _LM_PARSER.parse_args(tokens)
        if args.command is None:
            print(_LM_PARSER.format_help())
            return
        getattr(self, f"_lm_{args.command}")(args)

    lm.__doc__ = _LM_PARSER.format_help()

    def _lm_load(self, args: argparse.Namespace) -> None:
        from lmwidgets import api
        from lmwidgets.engines.registry import REGISTRY
        from lmwidgets.engines.transformers.sources import resolve_source
        from lmwidgets.notebook.progress import LoadProgress

        source = resolve_source(
            args.source, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code
        )
        before = set(REGISTRY.names())
        progress = LoadProgress(args.name or source.suggested_name)
        try:
            loaded = api.load_model(
                args.source,
                name=args.name,
                device=args.device or self.device,
                dtype=args.dtype or self.dtype,
                allow_pickle=args.allow_pickle,
                trust_remote_code=args.trust_remote_code,
                progress=progress,
                prepack=False if args.no_prepack else None,
                max_images=args.max_images,
                quantize=args.quantize,
                compile=args.compile,
            )
        except BaseException:
            progress.failed("")
            raise
        if loaded.name in before:
            _show(
                f"Already loaded: {loaded.summary()}",
                f"Already loaded: <code>{escape_html(loaded.summary())}</code>",
            )
        else:
            progress.done(loaded.summary())

    def _lm_models(self, args: argparse.Namespace) -> None:
        from lmwidgets.engines.registry import REGISTRY

        loaded = list(REGISTRY)
        if not loaded:
            _show("No models loaded. Run `%lm load`.")
            return

        def adapters(model) -> str:
            names = ", ".join(model.adapters)
            default = f" (default: {model.default_adapter})" if model.default_adapter else ""
            return f" · adapters: {names}{default}" if names else ""

        lines = [
            ("* " if m.name == REGISTRY.current else "  ") + m.summary() + adapters(m)
            for m in loaded
        ]
        rows = "".join(
            f"<tr><td>{'★' if m.name == REGISTRY.current else ''}</td><td><code>{escape_html(m.name)}</code></td>"
            f"<td>{escape_html(m.source.spec)}</td><td>{escape_html(m.summary() + adapters(m))}</td></tr>"
            for m in loaded
        )
        _show(
            "\n".join(lines) + "\n(* = current model)",
            f"<table><tr><th></th><th>name</th><th>source</th><th>summary</th></tr>{rows}</table>",
        )

    def _lm_unload(self, args: argparse.Namespace) -> None:
        from lmwidgets import api
        from lmwidgets.engines.registry import REGISTRY, format_bytes

        if not args.name:
            raise LmWidgetsError("Say which model to unload: `%lm unload NAME` (see `%lm models`).")
        loaded = REGISTRY.get(args.name)
        freed = loaded.memory_bytes
        api.unload_model(args.name)
        _show(f"Unloaded {args.name} (freed about {format_bytes(freed)}).")

    def _lm_adapter(self, args: argparse.Namespace) -> None:
        from lmwidgets.engines.registry import REGISTRY
        from lmwidgets.engines.transformers.adapters import (
            load_adapter,
            unload_adapter,
            use_adapter,
        )

        if args.action is None:
            print(_subparser("adapter").format_help())
            return
        if args.action == "load":
            loaded = REGISTRY.get(args.model)
            info = load_adapter(
                loaded, args.path, name=args.name, scale=args.scale, allow_pickle=args.allow_pickle
            )
            note = (
                f" (ignored config keys: {', '.join(info.ignored_config_keys)})"
                if info.ignored_config_keys
                else ""
            )
            _show(f"Attached {info.summary()}{note}. Use it with `%%prompt --adapter {info.name}`.")
            return
        if args.action == "list":
            infos = [info for model in REGISTRY for info in model.adapters.values()]
            if not infos:
                _show("No adapters attached. Attach one with `%lm adapter load PATH --as NAME`.")
                return
            rows = "".join(
                f"<tr><td><code>{escape_html(i.name)}</code></td><td>{escape_html(i.model)}</td><td>{i.rank}</td>"
                f"<td>{escape_html(', '.join(i.target_modules))}</td><td>{i.scale:g}</td><td>{i.parameters:,}</td></tr>"
                for i in infos
            )
            _show(
                "\n".join(i.summary() for i in infos),
                "<table><tr><th>name</th><th>model</th><th>rank</th><th>targets</th><th>scale</th>"
                f"<th>parameters</th></tr>{rows}</table>",
            )
            return
        loaded = REGISTRY.get(args.model) if args.model else self._model_with_adapter(args.name)
        if args.action == "unload":
            info = unload_adapter(loaded, args.name)
            _show(f"Detached {info.name} from {loaded.name}.")
        else:
            chosen = use_adapter(loaded, args.name)
            _show(
                f"Prompts of {loaded.name} now run with {chosen or 'the base model (no adapter)'} by default."
            )

    def _model_with_adapter(self, name: str):
        from lmwidgets.engines.registry import REGISTRY
        from lmwidgets.engines.transformers.adapters import BASE_NAMES

        if name.lower() in BASE_NAMES:
            return REGISTRY.get(None)
        owners = [m for m in REGISTRY if name in m.adapters]
        if len(owners) > 1:
            raise LmWidgetsError(
                f"Several models have an adapter called {name!r}; add --model NAME."
            )
        return owners[0] if owners else REGISTRY.get(None)

    def _lm_rerun(self, args: argparse.Namespace) -> None:
        from IPython.display import display

        from lmwidgets.errors import RecordError
        from lmwidgets.run.replay import rerun

        if not args.source:
            raise RecordError(
                "Say what to re-run: `%lm rerun NOTEBOOK.ipynb` or `%lm rerun VARIABLE`."
            )
        namespace = self.shell.user_ns
        source = namespace.get(args.source, args.source)
        report = rerun(source, display=args.show, namespace=namespace)
        display(report)

    # %%prompt ------------------------------------------------------------------------------
    @magic_arguments()
    @argument("-h", "--help", action="store_true", help="Show this help.")
    @argument("--model", "-m", default=None, help="Model name (default: the current model).")
    @argument("--system", "-s", default=None, help="System prompt ({name} fields are filled).")
    @argument(
        "--max-new-tokens", "-n", type=int, default=None, help="Most new tokens (default 256)."
    )
    @argument(
        "--temperature", "-t", type=float, default=None, help="0 (default) is greedy; > 0 samples."
    )
    @argument(
        "--top-p", type=float, default=1.0, help="Nucleus sampling mass in (0, 1] (default 1)."
    )
    @argument("--seed", type=int, default=None, help="Seed for sampling (same seed, same text).")
    @argument("--out", "-o", default=None, help="Bind the Comparison to this variable.")
    @argument(
        "--strategy",
        default=None,
        help="One strategy: zero-shot (default), few-shot, cot, self-consistency.",
    )
    @argument(
        "--compare",
        "-c",
        default=None,
        help="Several strategies side by side, e.g. zero-shot,few-shot,cot.",
    )
    @argument(
        "--examples",
        "-e",
        default=None,
        help="Variable with few-shot examples (pairs, dicts or DataFrame).",
    )
    @argument("--shots", "-k", type=int, default=None, help="Use the first K examples.")
    @argument("--samples", type=int, default=None, help="Self-consistency samples (default 5).")
    @argument(
        "--dataset",
        "-d",
        default=None,
        help="Variable with items (DataFrame or dicts with 'input', optional 'expected').",
    )
    @argument("--cot-instruction", default=None, help="Replace the chain-of-thought instruction.")
    @argument(
        "--batch-size", type=int, default=16, help="Rows per batched generation (default 16)."
    )
    @argument("--adapter", "-a", default=None, help="Run with this LoRA adapter ('base' for none).")
    @argument(
        "--adapters", "-A", default=None, help="Adapters side by side, e.g. base,pirate,formal."
    )
    @argument(
        "--image",
        "-i",
        action="append",
        default=None,
        help=(
            "An image for a vision-language model (repeat for several): a notebook variable "
            "(PIL image, numpy array, matplotlib Figure, bytes), a file path or an http(s) URL. "
            "{img} in the prompt places each image; otherwise they go before the text."
        ),
    )
    @argument(
        "--region",
        "-r",
        default=None,
        help="Ask about a region: x1,y1,x2,y2 in pixels of the (first) image; N:x1,y1,x2,y2 "
        "for the N-th image. Draw one on the thumbnail to re-run with it.",
    )
    @argument(
        "--region-mode",
        default="box",
        choices=["box", "crop"],
        help="How the model sees --region: box (default: a red box drawn on the image) or crop "
        "(only the region).",
    )
    @line_cell_magic
    def prompt(self, line: str, cell: str | None = None) -> None:
        """Run the cell body as a prompt and stream the answer into a live widget.

        ``{name}`` fields in the body are filled from the notebook's variables; unknown names
        stay as written (``{{`` and ``}}`` give literal braces). The model's chat template is
        applied when it has one. Greedy by default. With a vision-language model, ``--image X``
        adds images (``{img}`` in the body places them) and ``--compare zero-shot,no-image``
        shows what the image contributes; boxes in the answer are drawn on the thumbnail.
        """
        try:
            # shlex (POSIX) rules: quotes group words and are removed, as in a shell.
            args = self.prompt.parser.parse_args(shlex.split(line))
        except ValueError as exc:
            raise LmWidgetsError(f"Cannot parse `%%prompt {line}`: {exc}") from None
        if args.help:
            print(self.prompt.__doc__)
            return
        if cell is None:
            raise LmWidgetsError(
                "%%prompt is a cell magic: write `%%prompt [options]` on the first line of a "
                "cell and the prompt below it (`%prompt --help` lists the options)."
            )
        self._run_prompt(args, cell)

    def _variable(self, name: str | None, flag: str, error: type[LmWidgetsError]) -> Any:
        if name is None:
            return None
        namespace = self.shell.user_ns
        if name not in namespace:
            raise error(f"{flag} {name}: no variable called {name!r} is defined in the notebook.")
        return namespace[name]

    def _run_prompt(self, args: argparse.Namespace, cell: str, **options: Any) -> None:
        from lmwidgets import api
        from lmwidgets.errors import DatasetError, ExamplesError

        namespace = self.shell.user_ns
        system = args.system
        templates = {}
        if args.cot_instruction is not None or self.cot_instruction:
            templates["cot_instruction"] = args.cot_instruction or self.cot_instruction
        options.update(
            strategy=args.strategy,
            compare=args.compare,
            examples=self._variable(args.examples, "--examples", ExamplesError),
            shots=args.shots,
            samples=args.samples,
            dataset=self._variable(args.dataset, "--dataset", DatasetError),
            templates=templates or None,
            batch_size=args.batch_size,
            adapter=args.adapter,
            adapters=args.adapters,
            images=args.image,
            region=args.region,
            region_mode=args.region_mode,
        )
        try:
            comparison = api.prompt(
                cell,
                model=args.model,
                system=system,
                max_new_tokens=args.max_new_tokens
                if args.max_new_tokens is not None
                else self.max_new_tokens,
                temperature=args.temperature if args.temperature is not None else self.temperature,
                top_p=args.top_p,
                seed=args.seed,
                variables=namespace,
                display=True,
                on_rerun=(lambda result: namespace.__setitem__(args.out, result))
                if args.out
                else None,
                **options,
            )
        except (GenerationError, GenerationInterrupted) as exc:
            if args.out and exc.partial is not None:
                namespace[args.out] = exc.partial  # the partial text is kept
            raise
        if args.out:
            namespace[args.out] = comparison


def _short_error(shell, etype, value, tb, tb_offset=None):
    """Show an LmWidgetsError as one red line (the cell still fails); ``%tb`` has the rest."""
    stb = [
        f"\x1b[0;31m{etype.__name__}\x1b[0m: {value}",
        "\x1b[2m(run %tb for the full traceback)\x1b[0m",
    ]
    shell._showtraceback(etype, value, stb)  # IPython leaves showing it to the handler
    return stb


def register(ipython: Any) -> None:
    """Register the magics and the short error display."""
    ipython.register_magics(LmMagics)
    ipython.set_custom_exc((LmWidgetsError,), _short_error)


def unregister(ipython: Any) -> None:
    """Remove the short error display."""
    ipython.set_custom_exc((), None)
