"""The Python API. The notebook magics (``%lm``, ``%%prompt``) are thin wrappers over it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmwidgets.core.results import Comparison
from lmwidgets.engines.base import Engine, GenerationSettings, StopSignal
from lmwidgets.engines.registry import REGISTRY, ModelRegistry
from lmwidgets.errors import AdapterError, InvalidArgumentError, PromptError
from lmwidgets.media.base import Deferred
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
    cpu_kernels: str | None = None,
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
    On CPU in float32, ``cpu_kernels`` picks the linear layers' kernels: ``auto`` (default:
    timed on this CPU at load, cached per CPU), ``packed`` (oneDNN), ``plain`` (PyTorch's) or
    ``bf16`` (bfloat16 weights, float32 accumulation: faster where the CPU has native bfloat16,
    lower precision, opt-in); ``prepack=False`` is the older spelling of ``plain``.
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
        cpu_kernels=cpu_kernels,
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
        if cpu_kernels is not None:
            options["cpu_kernels"] = cpu_kernels
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

    ``{name}`` fields are filled from ``variables`` (unknown names stay as written; a
    ``dataset`` item's columns such as ``{input}`` come first); the chat template is applied
    when the model has one. Greedy by default; ``temperature > 0`` samples (``seed`` makes it
    repeatable). With ``display`` (default: in a notebook kernel) the answer streams into a live
    widget with a Stop button; ``on_rerun`` receives what its region re-runs and forks make.

    The other options are the fields of :class:`lmwidgets.prompting.strategies.Options`:
    strategies, examples, datasets, adapters, models, images and other media (audio:
    ``media={"audio": [...]}`` with ``clip=`` and ``sample_rate=``), your own variations
    (:mod:`lmwidgets.prompting.variations`), probes (``probe=``, ``attacks=``;
    :mod:`lmwidgets.prompting.probes`) and structured answers (``json=``, ``regex=``,
    ``one_of=``, ``grammar=``, ``constrain=``; :mod:`lmwidgets.prompting.structured`) and the
    keywords of any other registered axis kind (:mod:`lmwidgets.core.axis_kinds`), a
    model as judge (``judge=``, ``rubric=``, ``judge_pairwise=``; ``score="judge"`` scores
    by its verdicts; :mod:`lmwidgets.prompting.judging`) and given choices scored by
    likelihood instead of generated (``choices=[...]``, or a dataset column ``choices``;
    ``score="perplexity"``; :mod:`lmwidgets.prompting.choices`).
    ``score`` scores dataset items (:mod:`lmwidgets.prompting.scoring`); ``logprobs=K`` (1-20)
    reports token probabilities; ``vs`` shows an earlier run beside this one (``"previous"`` or
    a :class:`Comparison`); ``cache`` answers identical greedy or seeded columns from the
    response cache (None: ``%config LmMagics.cache``). Every run is kept
    (:func:`lmwidgets.history`).

    Every argument is checked first (:mod:`lmwidgets.validation`): unreadable characters are
    replaced with U+FFFD and noted in ``Comparison.notes``; a run larger than the documented
    limits (64 self-consistency samples, 2,000 generated rows, 32 columns) needs ``confirm``.
    """
    from lmwidgets.validation import check_prompt_call, optional_flag

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
    settings = GenerationSettings(max_new_tokens, temperature, top_p, seed, logprobs or 0)
    if not isinstance(text, str) or (not text.strip() and strategy_options.get("prompts") is None):
        raise PromptError("The prompt is empty: write the prompt in the cell body.")
    text, system, notes = _cleaned(text, system, strategy_options)
    namespace = dict(variables or {})
    job = _PromptRun(
        text.strip(),
        system=None if system is None else interpolate(system, namespace),
        settings=settings,
        namespace=namespace,
        registry=registry,
        model=model,
        options={**strategy_options, "score": score},
        checks=_Checks(confirm=confirm, notes=notes, earlier=_earlier_run(vs), cache=cache),
    )
    plan = job.build()
    view = job.open_view(plan, display)
    if view is not None:
        _wire_view(view, job, on_rerun)
    return job.run(plan, stop=stop)


def _cleaned(
    text: str, system: str | None, options: dict[str, Any]
) -> tuple[str, str | None, list[str | None]]:
    """The prompt, system prompt and strategy wordings with unreadable characters replaced
    (:func:`lmwidgets.validation.clean_prompt_text`), and the notes that say so."""
    from lmwidgets.validation import clean_prompt_text

    notes: list[str | None] = []
    text, note = clean_prompt_text(text, "The prompt")
    notes.append(note)
    if system is not None:
        system, note = clean_prompt_text(system, "--system")
        notes.append(note)
    templates = options.get("templates")
    if isinstance(templates, Mapping):
        cleaned: dict[str, Any] = {}
        for key, value in templates.items():
            if isinstance(value, str):
                flag = "--cot-instruction" if key == "cot_instruction" else f"templates[{key!r}]"
                value, note = clean_prompt_text(value, flag)
                notes.append(note)
            cleaned[key] = value
        options["templates"] = cleaned
    notes += _cleaned_judge(options)
    return text, system, notes


def _cleaned_judge(options: dict[str, Any]) -> list[str | None]:
    """The judge's rubric and wording with unreadable characters replaced, and the notes."""
    from lmwidgets.validation import clean_prompt_text

    notes: list[str | None] = []
    if isinstance(options.get("rubric"), str):
        options["rubric"], note = clean_prompt_text(options["rubric"], "--rubric")
        notes.append(note)
    wording = options.get("judge_templates")
    if isinstance(wording, Mapping):
        cleaned = {}
        for key, value in wording.items():
            if isinstance(value, str):
                value, note = clean_prompt_text(value, f"judge_templates[{key!r}]")
                notes.append(note)
            cleaned[key] = value
        options["judge_templates"] = cleaned
    return notes


@dataclass(frozen=True)
class _Checks:
    """What a prompt's plan is checked and completed with after it is built."""

    confirm: bool
    notes: list[str | None]
    earlier: Comparison | None
    cache: bool | None


class _PromptRun:
    """One :func:`prompt` call: builds its plan (again for a region re-run), shows it in a live
    view, and runs it there (again for a fork or the tokens toggle)."""

    def __init__(
        self,
        text: str,
        *,
        system: str | None,
        settings: GenerationSettings,
        namespace: dict[str, Any],
        registry: ModelRegistry,
        model: str | None,
        options: dict[str, Any],
        checks: _Checks,
    ) -> None:
        self.text, self.system, self.settings = text, system, settings
        self.namespace, self.registry, self.model = namespace, registry, model
        self.options, self.checks = options, checks
        self.view: Any = None
        self.title = ""
        self.shown: _Shown | None = None

    def build(self, **overrides: Any) -> Plan:
        """The plan of the prompt (``overrides``: options changed, e.g. a drawn region)."""
        from lmwidgets.prompting.previous import with_previous
        from lmwidgets.prompting.strategies import build_variants
        from lmwidgets.run.runner import check_token_logprobs
        from lmwidgets.validation import check_run_size, clean_variants

        plan = build_variants(
            self.text,
            registry=self.registry,
            model=self.model,
            system=self.system,
            settings=self.settings,
            variables=self.namespace,
            **{**self.options, **overrides},
        )
        if self.checks.earlier is not None:
            with_previous(plan, self.checks.earlier)
        check_run_size(plan.variants, confirm=self.checks.confirm, judge=plan.judge)
        check_token_logprobs(plan.variants)
        found = [n for n in [*self.checks.notes, clean_variants(plan.variants)] if n]
        if found:
            plan.finishers.append(lambda comparison: comparison.notes.extend(found))
        columns = plan.columns
        plan.finishers.append(lambda comparison: setattr(comparison, "columns", columns))
        if self.shown is None:
            self.shown = _Shown(plan)
            self.title = _title(plan, self.namespace)
        return plan

    def open_view(self, plan: Plan, display: bool | None) -> Any:
        """The live view (None when not displaying: outside a kernel, or ``display=False``)."""
        from lmwidgets.notebook.live import LiveView

        show = in_kernel() if display is None else display
        if show:
            self.view = LiveView(
                plan.variants, self.title, show=show, grid=plan.grid, columns=plan.columns
            )
        return self.view

    def run(self, plan: Plan, stop: StopSignal | None = None) -> Comparison:
        """Run ``plan`` in the view; kept in the history even when it stops part way."""
        from lmwidgets.run.runner import run_variants

        shown = self.shown if self.shown is not None else _Shown(plan)
        with kept_in_history(shown), shown.running(plan):
            return shown.done(
                run_variants(
                    plan.variants,
                    title=self.title,
                    view=self.view,
                    stop=stop,
                    batch_size=plan.batch_size,
                    finalize=plan.finish,
                    cache=self.checks.cache,
                    judge=plan.judge,
                )
            )


def _wire_view(view: Any, job: _PromptRun, on_rerun: Callable[[Comparison], None] | None) -> None:
    """The view's own re-runs: a drawn region, a fork at a token, the tokens toggle."""
    shown = job.shown
    if shown is None:  # the plan is built before the view opens
        return
    if any(not isinstance(m, Deferred) for v in shown.plan.variants for m in v.images):
        # a region is drawn on the prompt's own images (a dataset item's are in their rows)
        view.enable_rerun(_region_rerun(view, job.build, job.run, on_rerun))
    if hasattr(view, "enable_fork"):
        view.enable_fork(_fork_rerun(view, shown, job.run, on_rerun, job.registry))
    scored = any(v.choices is not None for v in shown.plan.variants)  # given choices
    if hasattr(view, "enable_tokens") and not scored:
        view.enable_tokens(_tokens_rerun(view, shown, job.run, on_rerun, job.registry))


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

        previous = self.plan, self.comparison
        self.plan, self.comparison, self.busy = plan, None, True
        try:
            yield
        except (LmWidgetsError, GenerationInterrupted) as exc:
            self.comparison = getattr(exc, "partial", None)
            raise
        except Exception:  # unforeseen: the view shows the earlier run again (_run_again)
            self.plan, self.comparison = previous
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
    registry: ModelRegistry,
) -> Callable[[dict[str, Any]], None]:
    """The widget's fork handler: ``request = {"index": result index, "position": int,
    "token": {"id": int | None, "text": str}}`` shows the row of that result as it ran plus
    its fork, the only column generated (:func:`lmwidgets.run.fork.fork_variants`), in the
    same view.

    Like the region re-run, errors go to the widget's message (there is no cell to show them)
    and the earlier results stay until the new run starts."""
    from lmwidgets.errors import LmWidgetsError
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
            _check_still_loaded(variants, registry)
            plan = Plan(
                variants=variants,
                batch_size=shown.plan.batch_size,
                finishers=list(shown.plan.finishers),
                judge=shown.plan.judge,
            )
        except (LmWidgetsError, AttributeError, TypeError, ValueError) as exc:
            view.widget.message = f"Cannot fork there: {exc}"
            return
        _run_again(view, plan, run, on_rerun)

    return handler


def _check_still_loaded(variants: list[Any], registry: ModelRegistry) -> None:
    """A view's own re-run (a fork, "get them") runs its columns' models again: a model
    unloaded since the run (or loaded again under its name) is said before the view is cleared.
    Run with the freed model, it failed half way with a TypeError and left the view "running",
    its texts gone."""
    from lmwidgets.errors import UnknownModelError

    for variant in variants:
        name = variant.engine.name
        if name not in registry or registry.get(name) is not variant.engine:
            raise UnknownModelError(
                f"the model {name!r} was unloaded after this run: load it again "
                "(`%lm load`, see `%lm models`) and run the cell again."
            )


def _run_again(
    view: Any,
    plan: Any,
    run: Callable[..., Comparison],
    on_rerun: Callable[[Comparison], None] | None,
) -> None:
    """What every re-run from a view (a fork, its tokens, a drawn region) ends with: ``plan``
    run in the same ``view``, and its comparison (a stopped or failed run's partial one) handed
    to ``on_rerun``. A stopped or failed run is shown in the view, not raised: there is no
    cell to show it."""
    from lmwidgets.errors import GenerationInterrupted, LmWidgetsError

    previous = getattr(view, "_finished", None)  # (comparison, message) the view showed
    view.restart(plan.variants)
    try:
        comparison: Comparison | None = run(plan, stop=None)
    except (LmWidgetsError, GenerationInterrupted) as exc:
        comparison = getattr(exc, "partial", None)
    except Exception:
        if previous is not None:  # unforeseen: show the earlier run again, not a stuck view
            view.finish(*previous)
        raise  # the widget says what went wrong in its message
    if comparison is not None and on_rerun is not None:
        on_rerun(comparison)


def _tokens_rerun(
    view: Any,
    shown: _Shown,
    run: Callable[..., Comparison],
    on_rerun: Callable[[Comparison], None] | None,
    registry: ModelRegistry,
) -> Callable[[], None]:
    """The widget's "get them" handler (its tokens toggle, in a view without token data):
    the comparison the view shows, re-run in the same view with the seeds it ran with and
    ``--logprobs 5``, so its texts come back with their token probabilities. Only this view
    changes; errors go to its message, and the earlier results stay until the new run starts."""
    from dataclasses import replace

    from lmwidgets.notebook.live import TOKEN_ALTERNATIVES
    from lmwidgets.prompting.strategies import Plan
    from lmwidgets.run.fork import reseeded
    from lmwidgets.run.runner import check_token_logprobs

    def handler() -> None:
        comparison = shown.comparison
        if shown.busy or comparison is None:
            raise PromptError("the run has not finished yet; ask for its tokens once it has")
        if len(shown.plan.variants) != len(comparison.results):
            raise PromptError("the view's columns changed since this run; run the cell again")
        variants = []
        for variant, result in zip(shown.plan.variants, comparison.results, strict=True):
            again = reseeded(variant, result)
            settings = replace(again.settings, logprobs=TOKEN_ALTERNATIVES)
            variants.append(replace(again, settings=settings))
        _check_still_loaded(variants, registry)
        check_token_logprobs(variants)
        plan = Plan(
            variants=variants,
            batch_size=shown.plan.batch_size,
            finishers=list(shown.plan.finishers),
            grid=shown.plan.grid,
            judge=shown.plan.judge,
        )
        _run_again(view, plan, run, on_rerun)

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
    ``token`` there?" Returns a new :class:`Comparison` of the original columns, shown as they
    ran (copies; nothing but the fork is generated), plus one that keeps the first
    ``position`` tokens, forces ``token`` and continues greedily (see
    :mod:`lmwidgets.run.fork`). ``position`` counts from 0 (an
    index of ``tokens_detail``); the view numbers tokens from 1, so its "token 7" is
    ``position=6``, and the fork column's label says "fork at token 7".

    ``column`` is a label or an index into ``comparison.results`` (with a dataset, only that
    item's row is kept). ``token`` is an alternative's id or text from
    ``comparison[column].tokens_detail[position]["top"]``, or any text. The comparison must
    have token details (run with ``logprobs=K``). ``images`` and ``variables`` find a vision
    prompt's images again, as :func:`lmwidgets.rerun` does. The fork's record says where it
    forked and what was forced, and :func:`lmwidgets.rerun` reproduces it (and re-runs the
    kept columns with their recorded seeds). A comparison that was judged (``--judge``) has its
    fork judged as ``%lm rerun`` would: the same judge model, rubric, wording and settings, so
    the fork column has its own verdict beside the others' (theirs stand); probe columns get
    their verdicts again too.
    """
    from lmwidgets.core.results import Comparison as ComparisonType
    from lmwidgets.notebook.live import LiveView
    from lmwidgets.prompting.strategies import Plan
    from lmwidgets.run.fork import ForkError, fork_variants, recorded_variants
    from lmwidgets.run.replay import _finisher, _recorded_judge, _recorded_scoring
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
    records = list(comparison.records)
    plan = Plan(
        variants=fork_variants(variants, comparison, column, position, token),
        judge=_recorded_judge(records, registry, notes),  # judged again, as %lm rerun does
    )
    # a dataset item's row is scored as its run was; probe columns are judged again
    scoring = _finisher(records, _recorded_scoring(records, variables or {}, notes))
    if scoring is not None:
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
                    judge=plan.judge,
                )
            )

    if view is not None and hasattr(view, "enable_fork"):
        view.enable_fork(_fork_rerun(view, shown, run, None, registry))
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
    from lmwidgets.errors import LmWidgetsError
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
        _run_again(view, plan, run, on_rerun)

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
