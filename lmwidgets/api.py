"""The Python API. The notebook magics (``%lm``, ``%%prompt``) are thin wrappers over it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from lmwidgets.core.results import Comparison
from lmwidgets.engines.base import Engine, GenerationSettings, StopSignal
from lmwidgets.engines.registry import REGISTRY, ModelRegistry
from lmwidgets.errors import AdapterError, InvalidArgumentError, PromptError
from lmwidgets.notebook.ui_events import in_kernel
from lmwidgets.prompting.interpolate import interpolate

if TYPE_CHECKING:
    from lmwidgets.prompting.strategies import Plan

#: ``progress(fraction, message)``: called while loading, fraction in [0, 1].
ProgressCallback = Callable[[float, str], None]


def load_model(
    source: Any = None,
    *,
    name: str | None = None,
    engine: str = "transformers",
    device: str = "auto",
    dtype: str = "auto",
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    progress: ProgressCallback | None = None,
    prepack: bool | None = None,
    max_images: int | None = None,
    quantize: str | None = None,
    compile: bool = False,
    registry: ModelRegistry = REGISTRY,
    **engine_options: Any,
) -> Engine:
    """Load a model and make it the current one; returns its :class:`~lmwidgets.engines.base.Engine`.

    ``engine`` picks what runs it (see :data:`lmwidgets.engines.ENGINES`): ``transformers`` (the
    default) loads into this kernel; ``scripted`` is a model without weights whose answers are
    scripted (tests, demos; ``engine_options`` such as ``replies=`` configure it).

    For ``transformers``: ``source`` is None for the embedded default (SmolLM2-135M-Instruct), a
    local transformers directory (safetensors), a ``.gguf`` file, or a hub id. ``device``: auto,
    cpu, cuda or cuda:N; ``dtype``: auto, float32, bfloat16 or float16 (``auto`` is bfloat16 on
    CUDA, float32 on CPU). Loading a source that is already loaded on the same device and dtype
    returns the loaded model (a no-op). Pickle weights and remote code are refused unless opted
    in. Vision-language models (e.g. SmolVLM, Qwen2.5-VL, LLaVA) load with their processor and
    take ``images=`` in :func:`prompt`; ``max_images`` overrides how many one prompt may hold.
    On CUDA, ``quantize="4bit"|"8bit"`` (bitsandbytes) loads models larger than the GPU's memory
    in 16 bits, and ``compile=True`` decodes with a static cache and ``torch.compile``.
    """
    from lmwidgets.engines import engine_loader
    from lmwidgets.validation import check_engine_options, check_load_call

    check_load_call(
        source,
        name=name,
        engine=engine,
        device=device,
        dtype=dtype,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
        progress=progress,
        prepack=prepack,
        max_images=max_images,
        quantize=quantize,
        compile=compile,
    )
    check_engine_options(engine, engine_options)
    loader = engine_loader(engine)
    options: dict[str, Any] = dict(engine_options)
    if engine == "transformers":
        options.update(
            device=device,
            dtype=dtype,
            allow_pickle=allow_pickle,
            trust_remote_code=trust_remote_code,
            prepack=prepack,
            max_images=max_images,
            quantize=quantize,
            compile=compile,
        )
    _check_engine_options(engine, loader, options)
    loaded = loader(source, name=name, registry=registry, progress=progress, **options)
    if loaded.name not in registry:
        registry.add(loaded)
    registry.current = loaded.name
    return loaded


def _check_engine_options(
    engine: str, loader: Callable[..., Any], options: Mapping[str, Any]
) -> None:
    """Options the engine's loader does not take are an error (not a raw TypeError)."""
    import inspect

    parameters = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # the loader checks its own options
    taken = {"source", "name", "registry", "progress"}
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        known = ", ".join(sorted(set(parameters) - taken)) or "none"
        raise InvalidArgumentError(
            f"The {engine} engine has no option {', '.join(map(repr, unknown))} (its options: "
            f"{known})."
        )


def connect(
    url: str,
    *,
    name: str | None = None,
    model: str | None = None,
    api_key_env: str | None = None,
    timeout: float = 300.0,
    concurrency: int = 16,
    progress: ProgressCallback | None = None,
    registry: ModelRegistry = REGISTRY,
) -> Engine:
    """Connect to a model served over the OpenAI chat-completions API and make it current.

    ``url`` is the server (``http://HOST:PORT``; a trailing ``/v1`` is fine): vLLM, SGLang,
    llama.cpp's server, ``transformers serve`` or a hosted API. ``model`` picks the served model
    (default: the server's only one). ``api_key_env`` names the environment variable that holds
    the API key: the key is read from it and never written into a record, output or error.
    ``timeout`` bounds the wait for each streamed chunk; ``concurrency`` the requests in flight
    per batch. Connecting to the same server and model again is a no-op.
    """
    from lmwidgets.validation import check_connect_call

    check_connect_call(
        url,
        name=name,
        model=model,
        api_key_env=api_key_env,
        timeout=timeout,
        concurrency=concurrency,
    )
    return load_model(
        url,
        engine="openai",
        name=name,
        model=model,
        api_key_env=api_key_env,
        timeout=timeout,
        concurrency=concurrency,
        progress=progress,
        registry=registry,
    )


def unload_model(name: str, *, registry: ModelRegistry = REGISTRY) -> None:
    """Unload ``name`` and free its memory (weights, adapters and caches)."""
    registry.remove(name)


def models(*, registry: ModelRegistry = REGISTRY) -> list[Engine]:
    """The loaded models, in load order."""
    return list(registry)


def prompt(
    text: str,
    *,
    model: str | None = None,
    system: str | None = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    variables: Mapping[str, Any] | None = None,
    display: bool | None = None,
    stop: StopSignal | None = None,
    registry: ModelRegistry = REGISTRY,
    on_rerun: Callable[[Comparison], None] | None = None,
    confirm: bool = False,
    score: str | Callable[..., Any] | None = None,
    logprobs: int | None = None,
    vs: str | Comparison | None = None,
    cache: bool | None = None,
    **strategy_options: Any,
) -> Comparison:
    """Run ``text`` as a prompt and return a :class:`Comparison` of the results.

    ``{name}`` fields are filled from ``variables`` (unknown names stay as written; with a
    ``dataset``, each item's columns such as ``{input}`` come first). The chat
    template is applied when the model has one. Greedy by default; ``temperature > 0`` samples
    (``seed`` makes it repeatable). With ``display`` (default: when running in a notebook
    kernel) the answer streams into a live widget with a Stop button. Strategy options
    (``strategy``, ``compare``, ``examples``, ``dataset``, ...) select columns; ``images``
    (paths, URLs, PIL images, arrays, figures, bytes), ``region`` and ``region_mode`` add images
    for vision-language models; see :func:`lmwidgets.prompting.strategies.build_variants`. With images
    the user can draw a region on a thumbnail and re-run in the same view; ``on_rerun`` then
    receives the new :class:`Comparison`.

    With a ``dataset`` whose items have ``expected``, ``score`` picks how each answer is scored
    (:mod:`lmwidgets.prompting.scoring`): ``auto`` (the default: the normalized answer equals
    ``expected``, numbers compare as numbers, or ``expected`` appears as whole words in the
    answer or the last line), ``exact``, ``contains``, ``regex:PATTERN``, ``number`` (relative
    1e-6; ``number:0.01`` absolute, ``number:1%`` relative), ``choice`` (letters A-E), a function
    ``(answer, expected, item) -> bool | float``, or the name of such a function in
    ``variables``. ``Result.score`` (0..1), ``Result.correct`` (``score >= 0.5``),
    ``Result.compared`` and ``Comparison.scores`` (mean score per column) hold the outcome.

    ``logprobs=K`` (1 to 20) reports each generated token's probability and its top ``K``
    alternatives (``Result.tokens_detail``; ``Comparison.to_pandas(tokens=True)``) and the
    probability of each extracted answer (``Result.confidence``); 0 is off. Left None, it is
    what the live view's tokens toggle asks for (off when it asks for nothing). A column can
    then be forked at a token (:func:`fork`, or clicking an alternative in the view).

    Your own variations are axes too (:mod:`lmwidgets.prompting.axes`), and every axis combines
    with the others: ``--- NAME`` lines in ``text`` (or ``prompts=``, a dict or list) are prompt
    wordings; ``systems=`` (a dict or list; ``none`` is no system prompt) system prompts;
    ``each="field"`` one column per value of a ``{field}`` whose variable is a list or dict;
    ``temperatures=`` and ``top_ps=`` (``"0,0.7"`` or a list) sweeps; ``trials=N`` runs each
    sampled column N times (seeds ``seed .. seed + N - 1``) and reports the spread of its
    answers (``Comparison.spread()``). ``columns=`` names the axis that forms the view's
    columns. ``vs="previous"`` shows the previous run of this cell beside this one (``vs=``
    an earlier :class:`Comparison` shows that one), each column compared with its counterpart
    (:mod:`lmwidgets.prompting.previous`); every run is kept (:func:`lmwidgets.history`).

    ``probe="leak,override,inject,inject-image"`` (or ``"all"``) adds columns that attack the
    prompt (:mod:`lmwidgets.prompting.probes`): each says held, leaked or followed
    (``Result.verdict``) and ``Comparison.attack_success`` gives the rates; ``attacks=`` is
    your attack set (a dict, list or JSON file; :func:`lmwidgets.default_attacks`) and
    ``inject_field=`` the ``{field}`` that ``inject`` writes into.

    Every argument is checked first (:mod:`lmwidgets.validation`): characters no tokenizer can
    encode (lone surrogates, control characters other than newline and tab) are replaced with
    U+FFFD and noted in ``Comparison.notes``; a run larger than the documented limits (more than
    64 self-consistency samples, 2,000 generated rows or 32 columns) needs ``confirm=True``.

    ``cache`` answers identical greedy or seeded columns from the response cache and keeps
    the new ones (:mod:`lmwidgets.run.cache`); None follows ``%config LmMagics.cache`` (on by
    default), False generates everything again.
    """
    from lmwidgets.notebook.live import LiveView
    from lmwidgets.prompting.previous import with_previous
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import check_token_logprobs, run_variants
    from lmwidgets.validation import (
        check_prompt_call,
        check_run_size,
        clean_prompt_text,
        clean_variants,
        optional_flag,
    )

    check_prompt_call(
        text,
        model=model,
        system=system,
        variables=variables,
        display=display,
        stop=stop,
        on_rerun=on_rerun,
        confirm=confirm,
        options=strategy_options,
    )
    optional_flag(cache, "cache")
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        logprobs=_logprobs(logprobs),
    )
    if not isinstance(text, str) or (not text.strip() and strategy_options.get("prompts") is None):
        raise PromptError("The prompt is empty: write the prompt in the cell body.")
    notes: list[str | None] = []
    text, note = clean_prompt_text(text, "The prompt")
    notes.append(note)
    if system is not None:
        system, note = clean_prompt_text(system, "--system")
        notes.append(note)
    templates = strategy_options.get("templates")
    if isinstance(templates, Mapping):
        cleaned: dict[str, Any] = {}
        for key, value in templates.items():
            if isinstance(value, str):
                flag = "--cot-instruction" if key == "cot_instruction" else f"templates[{key!r}]"
                value, note = clean_prompt_text(value, flag)
                notes.append(note)
            cleaned[key] = value
        strategy_options["templates"] = cleaned
    namespace = dict(variables or {})
    system_text = None if system is None else interpolate(system, namespace)
    earlier = _earlier_run(vs)

    def build(**overrides: Any) -> Plan:
        plan = build_variants(
            text.strip(),
            registry=registry,
            model=model,
            system=system_text,
            settings=settings,
            variables=namespace,
            score=score,
            **{**strategy_options, **overrides},
        )
        if earlier is not None:
            with_previous(plan, earlier)
        check_run_size(plan.variants, confirm=confirm)
        check_token_logprobs(plan.variants)
        found = [n for n in [*notes, clean_variants(plan.variants)] if n]
        if found:
            plan.finishers.append(lambda comparison: comparison.notes.extend(found))
        return plan

    plan = build()
    plan.finishers.append(lambda comparison: setattr(comparison, "columns", plan.columns))
    title = _title(plan, namespace)
    show = in_kernel() if display is None else display
    view = (
        LiveView(plan.variants, title, show=show, grid=plan.grid, columns=plan.columns)
        if show
        else None
    )

    shown = _Shown(plan)

    def run(plan: Plan, stop: StopSignal | None = stop) -> Comparison:
        with kept_in_history(shown), shown.running(plan):
            return shown.done(
                run_variants(
                    plan.variants,
                    title=title,
                    view=view,
                    stop=stop,
                    batch_size=plan.batch_size,
                    finalize=plan.finish,
                    cache=cache,
                )
            )

    if view is not None and any(v.images for v in plan.variants):
        view.enable_rerun(_region_rerun(view, build, run, on_rerun))
    if view is not None and hasattr(view, "enable_fork"):
        view.enable_fork(_fork_rerun(view, shown, run, on_rerun))
    return run(plan)


def _earlier_run(vs: Any) -> Comparison | None:
    """The run ``vs`` names: ``"previous"`` (this cell's previous run, see
    :mod:`lmwidgets.run.history`) or an earlier :class:`Comparison`."""
    from lmwidgets.run.history import HISTORY, NoEarlierRunError

    if vs is None or isinstance(vs, Comparison):
        return vs
    if vs == "previous":
        found = HISTORY.previous()
        if found is None:
            raise NoEarlierRunError(
                "--vs previous: this cell has no earlier run in this session (or in the saved "
                "notebook). Run it once, then edit it and run it again with --vs previous."
            )
        return found
    raise InvalidArgumentError(
        f"--vs takes 'previous' or an earlier Comparison (a variable bound with --out), not "
        f"{type(vs).__name__} {str(vs)[:40]!r}."
    )


@contextlib.contextmanager
def kept_in_history(shown: _Shown) -> Iterator[None]:
    """Keep the run in the session's history (:mod:`lmwidgets.run.history`), even when it
    stopped or failed part way (its partial comparison)."""
    from lmwidgets.run.history import HISTORY

    try:
        yield
    finally:
        if shown.comparison is not None:
            HISTORY.add(shown.comparison)


def _title(plan: Plan, namespace: Mapping[str, Any]) -> str:
    """The view's title: the first line of the (first) prompt, its fields filled in."""
    from lmwidgets.prompting.content import protect_placeholders, restore_placeholders
    from lmwidgets.validation import clean_prompt_text

    first = plan.variants[0] if plan.variants else None
    # Fields that vary (--each) stay as written: the title is the prompt, not one column's.
    varied = {a.split(":", 1)[1] for a in (first.coords if first else {}) if a.startswith("field:")}
    values = {k: v for k, v in namespace.items() if k not in varied}
    text = first.template.strip() if first else ""
    template = restore_placeholders(interpolate(protect_placeholders(text), values))
    title = template.strip().splitlines()[0][:120] if template.strip() else ""
    return clean_prompt_text(title, "")[0]  # variables may bring unreadable characters


def _logprobs(logprobs: Any) -> int:
    """The ``logprobs`` a run uses: the one given, else what the live view's tokens toggle
    asks for (``lmwidgets.notebook.live.requested_logprobs()``, where that exists), else 0.
    Range and type are checked by :class:`GenerationSettings` (named ``--logprobs``)."""
    if logprobs is not None:
        return logprobs
    from lmwidgets.notebook import live

    requested = getattr(live, "requested_logprobs", None)
    asked = requested() if callable(requested) else 0
    return asked if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0 else 0


class _Shown:
    """What a live view shows now: the variants of its latest run and their comparison, as a
    fork in the view needs them (a region re-run or a fork replaces both)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.comparison: Comparison | None = None
        self.busy = False

    @contextlib.contextmanager
    def running(self, plan: Plan) -> Iterator[None]:
        """Track ``plan``'s run: afterwards (even stopped or failed) it is what the view shows."""
        from lmwidgets.errors import GenerationInterrupted, LmWidgetsError

        self.plan, self.comparison, self.busy = plan, None, True
        try:
            yield
        except (LmWidgetsError, GenerationInterrupted) as exc:
            self.comparison = getattr(exc, "partial", None)
            raise
        finally:
            self.busy = False

    def done(self, comparison: Comparison) -> Comparison:
        self.comparison = comparison
        return comparison


def _fork_rerun(
    view: Any,
    shown: _Shown,
    run: Callable[..., Comparison],
    on_rerun: Callable[[Comparison], None] | None,
) -> Callable[[dict[str, Any]], None]:
    """The widget's fork handler: ``request = {"index": result index, "position": int,
    "token": {"id": int | None, "text": str}}`` re-runs the row of that result plus its fork
    (:func:`lmwidgets.run.fork.fork_variants`) in the same view.

    Like the region re-run, errors go to the widget's message (there is no cell to show them)
    and the earlier results stay until the new run starts."""
    from lmwidgets.errors import GenerationInterrupted, LmWidgetsError
    from lmwidgets.prompting.strategies import Plan
    from lmwidgets.run.fork import fork_variants

    def handler(request: dict[str, Any]) -> None:
        try:
            if shown.busy or shown.comparison is None:
                raise PromptError("the run has not finished yet; fork once it has")
            variants = fork_variants(
                shown.plan.variants,
                shown.comparison,
                request.get("index"),
                request.get("position"),
                request.get("token"),
            )
            plan = Plan(
                variants=variants,
                batch_size=shown.plan.batch_size,
                finishers=list(shown.plan.finishers),
            )
        except (LmWidgetsError, AttributeError, TypeError, ValueError) as exc:
            view.widget.message = f"Cannot fork there: {exc}"
            return
        view.restart(plan.variants)
        try:
            comparison: Comparison | None = run(plan, stop=None)
        except (LmWidgetsError, GenerationInterrupted) as exc:
            comparison = getattr(exc, "partial", None)
        if comparison is not None and on_rerun is not None:
            on_rerun(comparison)

    return handler


def fork(
    comparison: Comparison,
    column: int | str,
    position: int,
    token: int | str | Mapping[str, Any],
    *,
    display: bool | None = None,
    images: Mapping[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    registry: ModelRegistry = REGISTRY,
) -> Comparison:
    """Fork ``column`` of ``comparison`` at token ``position``: "what if the model had said
    ``token`` there?" Returns a new :class:`Comparison` of the original columns (re-run with
    their recorded seeds) plus one that keeps the first ``position`` tokens, forces ``token``
    and continues greedily (see :mod:`lmwidgets.run.fork`).

    ``column`` is a label or an index into ``comparison.results`` (with a dataset, only that
    item's row is re-run). ``token`` is an alternative's id or text from
    ``comparison[column].tokens_detail[position]["top"]``, or any text. The comparison must
    have token details (run with ``logprobs=K``). ``images`` and ``variables`` find a vision
    prompt's images again, as :func:`lmwidgets.rerun` does. The fork's record says where it
    forked and what was forced, and :func:`lmwidgets.rerun` reproduces it.
    """
    from lmwidgets.core.results import Comparison as ComparisonType
    from lmwidgets.notebook.live import LiveView
    from lmwidgets.prompting.strategies import Plan
    from lmwidgets.run.fork import ForkError, fork_variants, recorded_variants
    from lmwidgets.run.replay import _recorded_scoring
    from lmwidgets.run.runner import run_variants
    from lmwidgets.validation import optional_flag

    if not isinstance(comparison, ComparisonType):
        raise ForkError(f"fork() takes a Comparison, not {type(comparison).__name__}.")
    optional_flag(display, "display")
    if variables is not None and not isinstance(variables, Mapping):
        raise InvalidArgumentError(
            f"variables must be a dict of names to values, not {type(variables).__name__}."
        )
    notes: list[str] = []
    variants = recorded_variants(
        comparison, registry=registry, images=images, namespace=variables, notes=notes
    )
    plan = Plan(variants=fork_variants(variants, comparison, column, position, token))
    scoring = _recorded_scoring(comparison.records, variables or {}, notes)
    if scoring is not None:  # a dataset item's row is scored as its run was
        plan.finishers.append(scoring)
    if notes:
        plan.finishers.append(lambda forked: forked.notes.extend(dict.fromkeys(notes)))
    title = comparison.title or "fork"
    show = in_kernel() if display is None else display
    view = LiveView(plan.variants, title, show=show) if show else None
    shown = _Shown(plan)

    def run(plan: Plan, stop: StopSignal | None = None) -> Comparison:
        with shown.running(plan):
            return shown.done(
                run_variants(
                    plan.variants,
                    title=title,
                    view=view,
                    stop=stop,
                    batch_size=plan.batch_size,
                    finalize=plan.finish,
                )
            )

    if view is not None and hasattr(view, "enable_fork"):
        view.enable_fork(_fork_rerun(view, shown, run, None))
    return run(plan)


def _region_rerun(
    view: Any,
    build: Callable[..., Plan],
    run: Callable[..., Comparison],
    on_rerun: Callable[[Comparison], None] | None,
) -> Callable[[dict[str, Any]], None]:
    """The widget's re-run handler: the same prompt with the region the user drew.

    It runs in the kernel when the browser's request arrives; errors go to the widget's message
    (there is no cell to show them), and the earlier results stay until the new run starts.
    """
    from lmwidgets.errors import GenerationInterrupted, LmWidgetsError
    from lmwidgets.media.images import REGION_MODES, Region

    def handler(request: dict[str, Any]) -> None:
        try:
            box = [round(float(v)) for v in request.get("box", [])]
            mode = request.get("mode", "box")
            if len(box) != 4 or mode not in REGION_MODES:
                raise PromptError("The drawn region is not a box x1,y1,x2,y2; draw it again.")
            x1, y1, x2, y2 = box
            region = Region(x1, y1, x2, y2, image=int(request.get("image", 0)))
            plan = build(region=region, region_mode=mode)
        except (LmWidgetsError, TypeError, ValueError) as exc:
            view.widget.message = f"Cannot re-run with that region: {exc}"
            return
        view.restart(plan.variants)
        try:
            comparison: Comparison | None = run(plan, stop=None)
        except (LmWidgetsError, GenerationInterrupted) as exc:
            comparison = getattr(exc, "partial", None)
        if comparison is not None and on_rerun is not None:
            on_rerun(comparison)

    return handler


def load_adapter(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    model: str | None = None,
    scale: float = 1.0,
    allow_pickle: bool = False,
    registry: ModelRegistry = REGISTRY,
) -> Any:
    """Attach a peft LoRA adapter directory to a loaded model (no reload; not activated).

    Use it with ``prompt(..., adapter=NAME)`` or compare with ``adapters="base,NAME,..."``.
    """
    from lmwidgets.validation import check_adapter_call

    check_adapter_call(path, name=name, model=model, scale=scale, allow_pickle=allow_pickle)
    return _adapter_host(registry.get(model)).attach_adapter(
        path, name=name, scale=scale, allow_pickle=allow_pickle
    )


def unload_adapter(
    name: str, *, model: str | None = None, registry: ModelRegistry = REGISTRY
) -> Any:
    """Detach adapter ``name`` from ``model`` (default: the current model) and free it."""
    return _adapter_host(registry.get(model)).detach_adapter(name)


def use_adapter(
    name: str | None, *, model: str | None = None, registry: ModelRegistry = REGISTRY
) -> str | None:
    """Make adapter ``name`` (None or ``base``: none) the default for later prompts of ``model``."""
    from lmwidgets.engines.base import use_adapter as choose

    return choose(registry.get(model), name)


def _adapter_host(engine: Engine) -> Any:
    """``engine``, checked to take adapters (its capabilities say so)."""
    if not engine.capabilities.adapters:
        raise AdapterError(
            f"{engine.name} ({engine.engine} engine) cannot attach adapters. Load the base model "
            "into the kernel (`%lm load`) to use LoRA adapters."
        )
    return engine
