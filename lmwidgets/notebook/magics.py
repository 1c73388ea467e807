"""The notebook magics: ``%lm`` (models) and ``%%prompt`` (run a prompt), thin over :mod:`.api`."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from traitlets import Bool, Dict, Float, Int, TraitError, Unicode, observe, validate

from lmwidgets.core.safe_text import escape_html
from lmwidgets.errors import (
    GenerationError,
    GenerationInterrupted,
    InvalidArgumentError,
    KernelInterruptedError,
    LmWidgetsError,
)
from lmwidgets.notebook.parsers import FlagParser, lm_parser, prompt_parser
from lmwidgets.validation import out_name, plain_text, printable

_LM = lm_parser()
_PROMPT = prompt_parser()
#: The ``%%prompt`` parser for the media kinds registered now (a kind registered later adds its
#: option, e.g. ``--audio``).
_PARSERS: dict[tuple[str, ...], Any] = {}


def _prompt_parser() -> Any:
    """The ``%%prompt`` parser, made again when media or axis kinds were registered."""
    from lmwidgets.core.axis_kinds import all_kinds as axis_kinds
    from lmwidgets.media.base import all_kinds

    key = tuple(kind.name for kind in all_kinds()) + tuple(k.name for k in axis_kinds())
    if key not in _PARSERS:
        _PARSERS.clear()
        _PARSERS[key] = prompt_parser()
    return _PARSERS[key]


def raw_options() -> tuple[str, ...]:
    r"""``%%prompt`` options whose values reach lmwidgets exactly as typed (IPython would turn
    the pattern ``\d{4}`` into ``\d4``): the registered axis kinds' raw options (``--regex``,
    ``--one-of``); every other word of the line is expanded as usual."""
    from lmwidgets.core.axis_kinds import all_kinds

    return tuple(option for kind in all_kinds() for option in kind.raw_options)


def _interrupted_message(out: str | None, partial: Any) -> str:
    """What an interrupted ``%%prompt`` says: where its partial result is, if anywhere."""
    if partial is None:
        return "Interrupted; this run kept no result (the model stays loaded)."
    if out:
        return f"Interrupted; the partial result (text so far) is kept in `{out}`."
    return "Interrupted; the text so far stays in the view above (add --out NAME to keep it)."


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
    logprobs = Int(
        0,
        help="Default --logprobs for %%prompt: alternatives per token (0: off; a view without "
        "them can get them for its own run with its tokens toggle).",
    ).tag(config=True)
    device = Unicode("auto", help="Default --device for %lm load.").tag(config=True)
    dtype = Unicode("auto", help="Default --dtype for %lm load.").tag(config=True)
    cot_instruction = Unicode(
        "", help="Chain-of-thought instruction for cot/self-consistency (empty: the built-in one)."
    ).tag(config=True)
    judge_templates = Dict(
        help="The --judge wording: overrides of lmwidgets.prompting.judging.JudgeTemplates' "
        "fields (quality, correctness, faithfulness, pointwise, pairwise); empty: the built-in.",
    ).tag(config=True)
    cache = Bool(
        True,
        help="Answer identical greedy or seeded runs from the response cache (`%lm cache`); "
        "False generates every run (as --no-cache does for one cell).",
    ).tag(config=True)
    warm_up = Bool(
        True,
        help="After %load_ext, import torch and transformers while the kernel is idle (one "
        "module at a time, between messages), so that the first %lm load or %%prompt in a later "
        "cell skips those 3-5 s; False: import them when first needed (set it in "
        "ipython_config.py: it acts at %load_ext).",
    ).tag(config=True)
    cache_size_mb = Int(
        1000,
        help="Most megabytes of answers the response cache keeps (least recently used go first).",
    ).tag(config=True)

    @validate("cache_size_mb")
    def _check_cache_size(self, proposal: Any) -> int:
        if proposal["value"] < 1:  # a TraitError: %config then keeps the value it had
            raise TraitError(f"LmMagics.cache_size_mb must be at least 1, not {proposal['value']}.")
        return int(proposal["value"])

    @observe("cache", "cache_size_mb")
    def _cache_settings(self, change: Any) -> None:
        """The process default of ``lmwidgets.prompt(cache=None)`` and the cache's bound."""
        from lmwidgets.run.cache import SETTINGS

        SETTINGS.enabled = bool(self.cache)
        SETTINGS.limit_bytes = int(self.cache_size_mb) * 1_000_000

    # %lm ---------------------------------------------------------------------------------
    @line_magic
    def lm(self, line: str = "") -> None:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:  # unbalanced quotes
            raise LmWidgetsError(f"Cannot parse `%lm {printable(line)}`: {exc}") from None
        if "-h" in tokens or "--help" in tokens:  # before required arguments are checked
            print(_LM.parser_for(tokens).format_help())
            return
        args = _parsed(_LM.parse, tokens)
        _check_text_arguments(args, _LM.parser_for(tokens))
        if args.command is None:
            print(_LM.help())
            return
        getattr(self, f"_lm_{args.command}")(args)

    lm.__doc__ = _LM.help()

    def _lm_load(self, args: argparse.Namespace) -> None:
        from lmwidgets import api

        options: dict[str, Any] = {}
        kernel_only = {  # flags of models loaded into this kernel
            "--device": args.device is not None,
            "--dtype": args.dtype is not None,
            "--allow-pickle": args.allow_pickle,
            "--trust-remote-code": args.trust_remote_code,
            "--no-prepack": args.no_prepack,
            "--cpu-kernels": args.cpu_kernels is not None,
            "--max-images": args.max_images is not None,
            "--quantize": args.quantize is not None,
            "--compile": args.compile,
        }
        given = [flag for flag, used in kernel_only.items() if used]
        if args.engine != "transformers" and given:
            from lmwidgets.engines import engine_loader

            engine_loader(args.engine)  # an unknown engine is the first thing to say
            raise InvalidArgumentError(
                f"{', '.join(given)} only apply to models loaded into this kernel (--engine "
                f"transformers), not to the {args.engine!r} engine: drop them."
            )
        if args.engine == "transformers":
            options = {
                "device": args.device or self.device,
                "dtype": args.dtype or self.dtype,
                "allow_pickle": args.allow_pickle,
                "trust_remote_code": args.trust_remote_code,
                "prepack": False if args.no_prepack else None,
                "max_images": args.max_images,
                "quantize": args.quantize,
                "compile": args.compile,
            }
            if args.cpu_kernels is not None:
                options["cpu_kernels"] = args.cpu_kernels
        label = args.name or (Path(str(args.source)).name if args.source else args.engine)
        if args.engine == "transformers":  # a missing path fails before the progress bar shows
            from lmwidgets.engines.transformers.loading import check_spelling
            from lmwidgets.engines.transformers.sources import resolve_source

            check_spelling(
                options["device"], options["dtype"], args.cpu_kernels, options["prepack"]
            )

            source = resolve_source(
                args.source,
                allow_pickle=args.allow_pickle,
                trust_remote_code=args.trust_remote_code,
            )
            label = args.name or source.suggested_name
        self._load_with_progress(
            label, api.load_model, args.source, name=args.name, engine=args.engine, **options
        )

    def _lm_connect(self, args: argparse.Namespace) -> None:
        from lmwidgets import api
        from lmwidgets.engines.served import public_url

        self._load_with_progress(
            args.name or public_url(args.url) or "server",
            api.connect,
            args.url,
            name=args.name,
            model=args.model,
            api_key_env=args.api_key_env,
            timeout=args.timeout,
        )

    def _load_with_progress(self, label: str, load: Any, *args: Any, **options: Any) -> None:
        """Load (or connect) with a progress bar, then one line: the model, or "Already loaded"."""
        from lmwidgets.engines.registry import REGISTRY
        from lmwidgets.notebook.progress import LoadProgress

        before = set(REGISTRY.names())
        progress = LoadProgress(label)
        try:
            loaded = load(*args, progress=progress, **options)
        except KeyboardInterrupt:
            progress.failed("")
            raise KernelInterruptedError(
                f"Loading {label} was interrupted; `%lm models` lists what is loaded."
            ) from None
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
            f"<td>{escape_html(str(m.record().get('source')))}</td><td>{escape_html(m.summary() + adapters(m))}</td></tr>"
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
        freed = getattr(loaded, "memory_bytes", None)  # not every engine holds weights here
        api.unload_model(args.name)
        size = f" (freed about {format_bytes(freed)})" if freed else ""
        _show(f"Unloaded {args.name}{size}.")

    def _lm_adapter(self, args: argparse.Namespace) -> None:
        from lmwidgets import api
        from lmwidgets.engines.registry import REGISTRY

        if args.action is None:
            print(_LM.help("adapter"))
            return
        if args.action == "load":
            info = api.load_adapter(
                args.path,
                name=args.name,
                model=args.model,
                scale=args.scale,
                allow_pickle=args.allow_pickle,
            )
            ignored = getattr(info, "ignored_config_keys", None)
            note = f" (ignored config keys: {', '.join(ignored)})" if ignored else ""
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
            info = api.unload_adapter(args.name, model=loaded.name)
            _show(f"Detached {info.name} from {loaded.name}.")
        else:
            chosen = api.use_adapter(args.name, model=loaded.name)
            _show(
                f"Prompts of {loaded.name} now run with {chosen or 'the base model (no adapter)'} by default."
            )

    def _model_with_adapter(self, name: str):
        from lmwidgets.engines.base import BASE_NAMES
        from lmwidgets.engines.registry import REGISTRY

        if name.lower() in BASE_NAMES:
            return REGISTRY.get(None)
        owners = [m for m in REGISTRY if name in m.adapters]
        if len(owners) > 1:
            raise LmWidgetsError(
                f"Several models have an adapter called {name!r}; add --model NAME."
            )
        return owners[0] if owners else REGISTRY.get(None)

    def _lm_cache(self, args: argparse.Namespace) -> None:
        from lmwidgets.engines.registry import format_bytes
        from lmwidgets.run.cache import SETTINGS, CacheUnavailable, ResponseCache

        with ResponseCache() as store:
            try:
                stats = store.clear() if args.action == "clear" else store.stats()
            except CacheUnavailable as exc:
                raise LmWidgetsError(
                    f"The response cache at {store.directory} cannot be used: {exc}."
                ) from None
            notes = list(store.notes)
        count = f"{stats.entries:,} entr{'y' if stats.entries == 1 else 'ies'}"
        size = f"{count}, {format_bytes(stats.bytes)}"
        if args.action == "clear":
            lines = [f"Cleared the response cache at {stats.location} ({size})."]
        else:
            state = "on" if SETTINGS.enabled else "off (%config LmMagics.cache = True turns it on)"
            lines = [
                f"Response cache: {stats.location}",
                f"{size} (file {format_bytes(stats.file_bytes)}), limit "
                f"{format_bytes(stats.limit_bytes)}; {state}.",
            ]
        text = "\n".join([*notes, *lines])
        _show(text, "<br>".join(escape_html(line) for line in text.splitlines()))

    def _lm_rerun(self, args: argparse.Namespace) -> None:
        from IPython.display import display

        from lmwidgets.errors import RecordError
        from lmwidgets.run.replay import rerun

        if not args.source:
            raise RecordError(
                "Say what to re-run: `%lm rerun NOTEBOOK.ipynb` or `%lm rerun VARIABLE`."
            )
        namespace = self.shell.user_ns
        if args.source in namespace:
            source = namespace[args.source]
        elif Path(os.path.expanduser(args.source)).exists():  # an unknown ~user stays as is
            source = os.path.expanduser(args.source)
        else:
            raise RecordError(
                f"`%lm rerun {args.source}`: no notebook variable or file called "
                f"{args.source!r}. Give a notebook path, a .json export or a variable that "
                "holds a Comparison or records."
            )
        report = rerun(source, display=args.show, namespace=namespace, confirm=args.yes)
        display(report)

    # %%prompt ------------------------------------------------------------------------------
    @line_cell_magic
    @no_var_expand  # expanded per option below: a --regex pattern such as \d{4} stays as typed
    def prompt(self, line: str, cell: str | None = None) -> None:
        try:
            # shlex (POSIX) rules: quotes group words and are removed, as in a shell.
            parser = _prompt_parser()
            args = _parsed(parser.parse, self._expanded(shlex.split(line)))
        except ValueError as exc:
            raise LmWidgetsError(f"Cannot parse `%%prompt {printable(line)}`: {exc}") from None
        if args.help:
            print(_prompt_parser().format_help())
            return
        if cell is None and args.prompts is not None:
            cell = ""  # the prompts come from the --prompts variable: a line is enough
        if cell is None:
            raise LmWidgetsError(
                "%%prompt is a cell magic: write `%%prompt [options]` on the first line of a "
                "cell and the prompt below it (`%prompt --help` lists the options; "
                "`%prompt --prompts VAR` runs the prompts a variable holds)."
            )
        _check_text_arguments(args, _prompt_parser(), prompt_text=("system", "cot_instruction"))
        if args.out is not None:
            out_name(args.out, self.shell.user_ns, force=args.force_out)
        self._run_prompt(args, cell)

    prompt.__doc__ = _PROMPT.format_help()

    def _variable(self, name: str | None, flag: str, error: type[LmWidgetsError]) -> Any:
        if name is None:
            return None
        namespace = self.shell.user_ns
        if name not in namespace:
            raise error(f"{flag} {name}: no variable called {name!r} is defined in the notebook.")
        return namespace[name]

    def _choices(self, name: str | None) -> Any:
        """``--choices VAR``. Choices typed on the line (``a,b``, or a list that ``{opts}``
        expanded to its text) are not a variable's name: say how to give them."""
        from lmwidgets.errors import ChoicesError

        if name is not None and not name.isidentifier() and name not in self.shell.user_ns:
            raise ChoicesError(
                f"--choices {name}: give the name of a variable that holds the list of choices, "
                "e.g. `options = ['Paris', 'Lyon']` in a cell, then `--choices options` (not "
                "the choices themselves, nor {options})."
            )
        return self._variable(name, "--choices", ChoicesError)

    def _expanded(self, tokens: list[str]) -> list[str]:
        """``{name}`` and ``$name`` in the line's words filled from the notebook, as IPython
        does for magic lines, except in the values of :func:`raw_options` (patterns)."""
        expanded, raw, kept = [], False, raw_options()
        for token in tokens:
            keep = raw or (token.split("=", 1)[0] in kept and "=" in token)
            expanded.append(token if keep else self.shell.var_expand(token))
            raw = token in kept
        return expanded

    def _rubric(self, rubric: str | None) -> Any:
        """``--rubric``: a built-in rubric's name, a variable holding a rubric, or the text."""
        from lmwidgets.prompting.judging import RUBRICS

        if rubric is None or rubric in RUBRICS or rubric.startswith("faithfulness:"):
            return rubric
        if rubric.isidentifier() and rubric in self.shell.user_ns:
            return self.shell.user_ns[rubric]  # checked to be text before anything runs
        return rubric

    def _earlier(self, name: str | None) -> Any:
        """``--vs``: ``previous``, or the variable holding an earlier Comparison."""
        from lmwidgets.errors import InvalidArgumentError

        if name is None or name == "previous":
            return name
        return self._variable(name, "--vs", InvalidArgumentError)

    def _prompt_options(self, args: argparse.Namespace) -> dict[str, Any]:
        """The options of :class:`lmwidgets.prompting.strategies.Options` that ``%%prompt``'s
        flags give, notebook variables resolved by name (each with its own error kind)."""
        from lmwidgets.errors import (
            DatasetError,
            ExamplesError,
            InvalidArgumentError,
            PromptError,
        )

        templates = {}
        if args.cot_instruction is not None or self.cot_instruction:
            templates["cot_instruction"] = args.cot_instruction or self.cot_instruction
        return dict(
            strategy=args.strategy,
            compare=args.compare,
            examples=self._variable(args.examples, "--examples", ExamplesError),
            shots=args.shots,
            samples=args.samples,
            dataset=self._variable(args.dataset, "--dataset", DatasetError),
            choices=self._choices(args.choices),
            templates=templates or None,
            batch_size=args.batch_size,
            adapter=args.adapter,
            adapters=args.adapters,
            models=args.models,
            media=_media_options(args),
            media_column=args.media_column,
            dataset_name=args.dataset,
            region=args.region,
            region_mode=args.region_mode,
            clip=args.clip,
            sample_rate=args.sample_rate,
            prompts=self._variable(args.prompts, "--prompts", PromptError),
            systems=self._variable(args.systems, "--systems", InvalidArgumentError),
            each=args.each,
            temperatures=args.temperatures,
            top_ps=args.top_ps,
            trials=args.trials,
            columns=args.columns,
            vs=self._earlier(args.vs),
            **_axis_kind_options(args, self.shell.user_ns),
            judge=args.judge,
            rubric=self._rubric(args.rubric),
            judge_scale=args.judge_scale,
            judge_pairwise=args.judge_pairwise,
            judge_tokens=args.judge_tokens,
            judge_free=args.judge_free,
            judge_templates=dict(self.judge_templates) or None,
        )

    def _run_prompt(self, args: argparse.Namespace, cell: str, **options: Any) -> None:
        from lmwidgets import api

        namespace = self.shell.user_ns
        system = args.system
        options.update(self._prompt_options(args))
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
                logprobs=args.logprobs if args.logprobs is not None else self.logprobs or None,
                cache=False if args.no_cache else None,  # None: LmMagics.cache
                variables=namespace,
                display=True,
                confirm=args.yes,
                score=args.score,  # None: prompt()'s default (auto)
                on_rerun=(lambda result: namespace.__setitem__(args.out, result))
                if args.out
                else None,
                **options,
            )
        except GenerationError as exc:
            if args.out and exc.partial is not None:
                namespace[args.out] = exc.partial  # the partial text is kept
            raise
        except KeyboardInterrupt as exc:  # GenerationInterrupted carries the partial result
            partial = getattr(exc, "partial", None)
            if args.out and partial is not None:
                namespace[args.out] = partial
            raise KernelInterruptedError(_interrupted_message(args.out, partial)) from None
        if args.out:
            namespace[args.out] = comparison


def _parsed(parse: Any, tokens: list[str]) -> argparse.Namespace:
    """``parse(tokens)``; a usage error quotes what was typed with unreadable characters (lone
    surrogates, control characters) escaped, so that it can be shown."""
    try:
        return parse(tokens)
    except UsageError as exc:
        raise UsageError(printable(str(exc))) from None


def _check_text_arguments(
    args: argparse.Namespace, parser: FlagParser, prompt_text: tuple[str, ...] = ()
) -> None:
    """Names, paths and choices typed on a magic's line must be readable text (no control
    characters or lone surrogates); prompt text (``--system``...) is cleaned later instead."""
    for dest, value in vars(args).items():
        if dest in prompt_text:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                plain_text(item, parser.flag_of(dest))


#: Shown as one line: lmwidgets' errors, and an interrupt of ``lmwidgets.prompt()`` in a cell.
SHORT_ERRORS = (LmWidgetsError, GenerationInterrupted)


def _short_error(shell, etype, value, tb, tb_offset=None):
    """Show an LmWidgetsError as one red line (the cell still fails); ``%tb`` has the rest."""
    message = printable(str(value))
    if isinstance(value, GenerationInterrupted):
        message = "Interrupted; the text so far is in sys.last_value.partial (a Comparison)."
    stb = [
        f"\x1b[0;31m{etype.__name__}\x1b[0m: {message}",
        "\x1b[2m(run %tb for the full traceback)\x1b[0m",
    ]
    shell._showtraceback(etype, value, stb)  # IPython leaves showing it to the handler
    return stb


def help_cell_as_line(lines: list[str]) -> list[str]:
    """An input transformer: ``%%prompt --help`` with nothing below it runs as the line magic
    ``%prompt --help`` (IPython refuses a cell magic with an empty body before it runs)."""
    if not lines or not lines[0].startswith("%%prompt") or any(x.strip() for x in lines[1:]):
        return lines
    rest = lines[0][len("%%prompt") :]
    if rest[:1] not in ("", " ", "\t", "\n"):  # another magic, e.g. %%prompts
        return lines
    try:
        tokens = shlex.split(rest)
    except ValueError:
        return lines
    return [lines[0][1:]] if "-h" in tokens or "--help" in tokens else lines


def register(ipython: Any) -> None:
    """Register the magics, the short error display, ``%%prompt --help`` on its own, and the
    watch on which cell runs (for ``--vs previous``); start importing the in-kernel engine's
    libraries in the background (``LmMagics.warm_up``)."""
    from lmwidgets.run.history import watch_cells

    ipython.register_magics(LmMagics)
    magics = ipython.magics_manager.registry.get("LmMagics")
    if magics is not None and magics.warm_up:
        from lmwidgets.engines import warm_up

        warm_up("transformers")
    watch_cells(ipython)
    ipython.set_custom_exc(SHORT_ERRORS, _short_error)
    cleanup = ipython.input_transformers_cleanup
    if help_cell_as_line not in cleanup:
        cleanup.append(help_cell_as_line)


def unregister(ipython: Any) -> None:
    """Remove the short error display, the input transformer and the cell watch."""
    from lmwidgets.run.history import unwatch_cells

    unwatch_cells(ipython)
    ipython.set_custom_exc((), None)
    cleanup = ipython.input_transformers_cleanup
    if help_cell_as_line in cleanup:
        cleanup.remove(help_cell_as_line)


def _axis_kind_options(args: Any, namespace: Any) -> dict[str, Any]:
    """The registered axis kinds' keywords from their ``%%prompt`` flags (probes, structured
    answers...; :mod:`lmwidgets.core.axis_kinds`)."""
    from lmwidgets.core.axis_kinds import all_kinds

    options: dict[str, Any] = {}
    for kind in all_kinds():
        options.update(kind.options_of(args, namespace))
    return options


def _media_options(args: Any) -> dict[str, list[Any]] | None:
    """``--image X --audio Y``: the values of every media kind's option, by kind."""
    from lmwidgets.media.base import all_kinds

    given = {kind.name: getattr(args, kind.dest, None) for kind in all_kinds()}
    return {name: values for name, values in given.items() if values} or None
