"""Prompting strategies: how one prompt becomes the columns (and rows) of a comparison.

``zero-shot``
    The prompt as written.
``few-shot``
    Demonstrations before the question: for chat models alternating user/assistant turns, for
    models without a chat template ``Input:``/``Output:`` blocks (:attr:`Templates.plain_example`).
``cot``
    Chain-of-thought: the question plus :attr:`Templates.cot_instruction`. When the examples carry
    a ``rationale``, they are shown first as worked examples (few-shot CoT). The final answer is
    extracted into ``Result.answer`` (rules in :mod:`lmwidgets.core.answers`).
``self-consistency``
    ``samples`` sampled chain-of-thought runs (temperature :attr:`Templates.sc_temperature` unless
    ``--temperature`` is above 0) and a majority vote over their answers.
``no-image``
    With images: the zero-shot prompt *without* its images, to show what the images contribute.

Every strategy's column gets an answer (``Result.answer``): zero-shot, few-shot and no-image
extract it from the text by the same rules as chain-of-thought. With a dataset, each item's
``expected`` is scored by the run's scorer (``score=``, :mod:`lmwidgets.prompting.scoring`).

Images (``images=``, ``--image``) go into the question's user turn of every strategy but
``no-image``, as content lists (see :mod:`lmwidgets.prompting.content`).

Every variant of the same model runs in one batch; a dataset runs every (item, variant) pair.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lmwidgets.checks import optional_whole_number, whole_number
from lmwidgets.core import axis_kinds
from lmwidgets.core.answers import extract_answer, majority_vote
from lmwidgets.core.examples import (
    Example,
    expected_text,
    listed,
    normalize_dataset,
    normalize_examples,
)
from lmwidgets.core.results import Comparison
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import (
    BASE_NAMES,
    Engine,
    GenerationSettings,
    Message,
    resolve_adapter,
)
from lmwidgets.engines.registry import ModelRegistry
from lmwidgets.errors import (
    AdapterError,
    DatasetError,
    ExamplesError,
    InvalidArgumentError,
    StrategyError,
)
from lmwidgets.media.base import MediaInput, all_kinds, get_kind, resolve
from lmwidgets.media.images import apply_region, parse_region
from lmwidgets.prompting.axes import (
    Axis,
    PromptAxis,
    Spec,
    StrategyAxis,
    SystemAxis,
    TargetAxis,
    expand,
    label_of,
    shown_axes,
)
from lmwidgets.prompting.choices import check_no_generation_options, plan_choices
from lmwidgets.prompting.content import (
    check_placeholders,
    protect_placeholders,
    restore_placeholders,
    with_media,
)
from lmwidgets.prompting.fields import check_fields_scoring
from lmwidgets.prompting.interpolate import interpolate
from lmwidgets.prompting.judging import check_judge_items, resolve_judge
from lmwidgets.prompting.media_items import check_item_kinds, split_media
from lmwidgets.prompting.scoring import Scorer, resolve_scorer, score_comparison
from lmwidgets.prompting.variations import (
    check_columns,
    column_axis_name,
    field_axes,
    prompt_variants,
    sweep_axes,
    system_axis,
    template_fields,
    trial_axis,
    trial_seed,
)

STRATEGIES = ("zero-shot", "few-shot", "cot", "self-consistency", "no-image")


def strategy_names() -> tuple[str, ...]:
    """Every strategy: :data:`STRATEGIES` and ``no-<kind>`` for every registered media kind
    (the prompt without that kind's items)."""
    without = [kind.without for kind in all_kinds()]
    return tuple(dict.fromkeys([*STRATEGIES, *without]))


def dropped_kind(name: str) -> str | None:
    """The media kind a ``no-<kind>`` strategy leaves out (None for every other strategy)."""
    return next((kind.name for kind in all_kinds() if kind.without == name), None)


DEFAULT_SAMPLES = 5


@dataclass(frozen=True)
class Templates:
    """The wording each strategy adds. Override any field (``templates={...}`` in the API,
    ``%config LmMagics.cot_instruction = ...`` or ``--cot-instruction`` in a notebook)."""

    #: Appended to the question by ``cot`` and ``self-consistency``.
    cot_instruction: str = (
        "Let's think step by step, then give the final answer on a last line that starts "
        "with 'The answer is:'."
    )
    #: The assistant turn of a worked example (few-shot CoT): ``{rationale}`` and ``{output}``.
    cot_example: str = "{rationale}\nThe answer is: {output}"
    #: One demonstration for models without a chat template.
    plain_example: str = "Input: {input}\nOutput: {output}"
    #: The question after the demonstrations, for models without a chat template.
    plain_query: str = "Input: {input}\nOutput:"
    #: Sampling temperature of self-consistency when the prompt is greedy.
    sc_temperature: float = 0.7

    def as_dict(self) -> dict[str, Any]:
        """All fields as a dict."""
        return asdict(self)


def parse_strategies(strategy: str | None, compare: str | Sequence[str] | None) -> list[str]:
    """The strategy names to run, validated."""
    if strategy and compare:
        raise StrategyError("Give either --strategy NAME or --compare A,B,..., not both.")
    if compare:
        names = [n.strip() for n in (compare.split(",") if isinstance(compare, str) else compare)]
        names = [n for n in names if n]
    else:
        names = [(strategy or "zero-shot").strip()]
    if not names:
        raise StrategyError("--compare needs at least one strategy name.")
    known = strategy_names()
    for name in names:
        if name not in known:
            raise StrategyError(f"Unknown strategy {name!r}. Choose from: {', '.join(known)}.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StrategyError(f"--compare lists {', '.join(duplicates)} more than once.")
    return names


def parse_adapters(
    engine: Engine, adapter: str | None, adapters: str | Sequence[str] | None
) -> list[str | None]:
    """The adapter axis: ``[None]`` (the base or the model's default adapter), one adapter, or
    several (``base`` is the model without adapters)."""
    if adapter is not None and adapters is not None:
        raise StrategyError("Give either --adapter NAME or --adapters A,B,..., not both.")
    if adapters is None:
        return [resolve_adapter(engine, adapter if adapter is not None else engine.default_adapter)]
    names = [n.strip() for n in (adapters.split(",") if isinstance(adapters, str) else adapters)]
    names = [n for n in names if n]
    if not names:
        raise StrategyError("--adapters needs at least one name (use 'base' for the model itself).")
    resolved = [resolve_adapter(engine, n) for n in names]
    if len(set(resolved)) != len(resolved):
        raise StrategyError("--adapters lists the same adapter (or base) more than once.")
    return resolved


def parse_models(
    registry: ModelRegistry, model: str | None, models: str | Sequence[str] | None
) -> list[Engine]:
    """The model axis: the current (or ``--model``) model, or ``--models A,B`` side by side."""
    if models is None:
        return [registry.get(model)]
    if model is not None:
        raise StrategyError("Give either --model NAME or --models A,B,..., not both.")
    names = [n.strip() for n in (models.split(",") if isinstance(models, str) else models)]
    names = [n for n in names if n]
    if not names:
        raise StrategyError("--models needs at least one model name (see `%lm models`).")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StrategyError(f"--models lists {', '.join(duplicates)} more than once.")
    return [registry.get(name) for name in names]


def columns_of(
    engines: list[Engine], adapter: str | None, adapters: str | Sequence[str] | None
) -> list[tuple[Engine, str | None]]:
    """(model, adapter) pairs: one model's adapter axis, or with several models each named
    adapter on the one model that has it (``base`` is every model without adapters)."""
    if len(engines) == 1:
        return [(engines[0], name) for name in parse_adapters(engines[0], adapter, adapters)]
    if adapter is not None:
        raise StrategyError(
            "With --models, name adapters with --adapters base,NAME (each runs on the model that "
            "has it), not --adapter."
        )
    if adapters is None:
        return [(e, resolve_adapter(e, e.default_adapter)) for e in engines]
    names = [n.strip() for n in (adapters.split(",") if isinstance(adapters, str) else adapters)]
    columns: list[tuple[Engine, str | None]] = []
    for name in [n for n in names if n]:
        if name.lower() in BASE_NAMES:
            columns += [(e, None) for e in engines]
            continue
        owners = [e for e in engines if name in e.adapters]
        if len(owners) != 1:
            where = ", ".join(e.name for e in owners) or "none of " + ", ".join(
                e.name for e in engines
            )
            raise AdapterError(
                f"Adapter {name!r} is on {where}: with --models each adapter must belong to "
                "exactly one of the models (rename one with `%lm adapter load PATH --as NAME`)."
            )
        columns.append((owners[0], name))
    if not columns:
        raise StrategyError("--adapters needs at least one name (use 'base' for the models).")
    return sorted(columns, key=lambda c: engines.index(c[0]))


@dataclass
class Plan:
    """The variants to run and what to do with the comparison afterwards."""

    variants: list[Variant]
    batch_size: int = 16
    grid: bool = False
    finishers: list[Callable[[Comparison], None]] = field(default_factory=list)
    #: The axis that forms the view's columns (``--columns``); None: the default layout.
    columns: str | None = None
    #: The judge that judges the columns after generation
    #: (:class:`~lmwidgets.prompting.judging.JudgeSpec`; None: no judge).
    judge: Any = None

    def finish(self, comparison: Comparison) -> None:
        """Post-process the comparison (e.g. dataset scores)."""
        for finisher in self.finishers:
            finisher(comparison)


def _system(system: str | None) -> list[Message]:
    return [{"role": "system", "content": system}] if system else []


def _fill(pattern: str, **values: str) -> str:
    """Fill ``{input}``-style fields of a strategy template; other braces stay as written."""
    return interpolate(pattern, values)


def _demonstrations(engine: Engine, examples: list[Example], cot: bool, templates: Templates):
    """Chat turns (chat models) or one text block (plain models) of the demonstrations."""
    answers = [
        _fill(templates.cot_example, rationale=ex.rationale or "", output=ex.output)
        if cot
        else ex.output
        for ex in examples
    ]
    if engine.capabilities.chat:
        turns: list[Message] = []
        for ex, answer in zip(examples, answers, strict=True):
            turns += [
                {"role": "user", "content": ex.input},
                {"role": "assistant", "content": answer},
            ]
        return turns
    return "\n\n".join(
        _fill(templates.plain_example, input=ex.input, output=a)
        for ex, a in zip(examples, answers, strict=True)
    )


def strategy_messages(
    name: str,
    question: str,
    engine: Engine,
    *,
    system: str | None,
    examples: list[Example],
    templates: Templates,
) -> tuple[list[Message], dict[str, Any]]:
    """The chat messages a strategy sends for ``question``, and what the record says about it."""
    info: dict[str, Any] = {}
    if name == "zero-shot" or dropped_kind(name) is not None:
        return [*_system(system), {"role": "user", "content": question}], info
    cot = name in ("cot", "self-consistency")
    shots = examples
    if cot:
        shots = [ex for ex in examples if ex.rationale]
        info["cot_instruction"] = templates.cot_instruction
        question = f"{question}\n\n{templates.cot_instruction}"
        if shots:
            info["cot_example"] = templates.cot_example
    if not shots:
        return [*_system(system), {"role": "user", "content": question}], info
    info["examples"] = [asdict(ex) for ex in shots]
    demos = _demonstrations(engine, shots, cot, templates)
    if isinstance(demos, list):
        return [*_system(system), *demos, {"role": "user", "content": question}], info
    info["plain_example"] = templates.plain_example
    info["plain_query"] = templates.plain_query
    query = _fill(templates.plain_query, input=question)
    return [*_system(system), {"role": "user", "content": f"{demos}\n\n{query}"}], info


def _postprocess_for(name: str) -> Callable[[list[str]], tuple[str, str | None, dict[str, Any]]]:
    """How a strategy turns its sample texts into (text, answer, extras): one text and its
    extracted answer, or self-consistency's vote over its samples."""

    if name == "self-consistency":

        def vote(texts: list[str]):
            answers = [extract_answer(text) for text in texts]
            winner, votes = majority_vote(answers)
            top = max(votes.values(), default=0)
            representative = next(
                (
                    t
                    for t, a in zip(texts, answers, strict=True)
                    if winner is not None and a == winner
                ),
                texts[0] if texts else "",
            )
            display = "\n\n".join(
                f"── sample {i + 1} · answer: {a} ──\n{t}"
                for i, (t, a) in enumerate(zip(texts, answers, strict=True))
            )
            extras = {
                "samples": [{"text": t, "answer": a} for t, a in zip(texts, answers, strict=True)],
                "votes": votes,
                "agreement": round(top / len(texts), 4) if texts else 0.0,
                "display_text": display,
            }
            return representative, winner, extras

        return vote
    # Every other strategy answers once: its answer chip uses the documented extraction rules.
    return lambda texts: (texts[0], extract_answer(texts[0]), {})


def _scoring(scorer: Scorer) -> Callable[[Comparison], None]:
    """The finisher that scores a dataset run with ``scorer`` (see :mod:`.scoring`)."""

    def finish(comparison: Comparison) -> None:
        score_comparison(comparison, scorer)
        scored = any(result.expected is not None for result in comparison.results)
        if not scored and scorer.spec != "auto":
            comparison.notes.append(
                f"score={scorer.spec}: no dataset item has an 'expected' value, so nothing "
                "was scored."
            )

    return finish


def _media_values(images: Any, media: Any) -> tuple[dict[str, list[Any]], list[Any]]:
    """What to read, by kind (``images`` and a ``media`` dict ``{kind: values}``), and the
    ready items (a ``media`` list)."""
    values: dict[str, list[Any]] = {}
    if images is not None:
        values["image"] = list(images) if isinstance(images, (list, tuple)) else [images]
    if isinstance(media, Mapping):
        for name, given in media.items():
            if get_kind(str(name)) is None:
                known = ", ".join(kind.name for kind in all_kinds())
                raise StrategyError(f"media= names the kind {name!r}; known kinds: {known}.")
            more = list(given) if isinstance(given, (list, tuple)) else [given]
            values[str(name)] = [*values.get(str(name), []), *more]
        return values, []
    return values, list(media or [])


def _read_media(
    images: Any, media: Any, variables: Mapping[str, Any] | None, opts: Any = None
) -> tuple[list[MediaInput], list[Any]]:
    """Every kind's values read (``--image X``, ``--audio Y``...), then the ready items."""
    values, ready = _media_values(images, media)
    read: list[MediaInput] = []
    for kind in all_kinds():
        options = {
            key: getattr(opts, key)
            for key in kind.load_options
            if getattr(opts, key, None) is not None
        }
        for number, spec in enumerate(values.get(kind.name, []), start=1):
            read.append(resolve(kind, spec, variables, name=f"{kind.name} {number}", **options))
    for item in ready:
        if not isinstance(item, MediaInput):
            raise StrategyError(
                f"media= takes MediaInput items (lmwidgets.media) or a dict {{kind: values}}, "
                f"not {type(item).__name__}."
            )
    return read, ready


def _prepare_media(
    engines: list[Engine],
    wordings: list[tuple[str, str]],
    opts: Options,
    variables: Mapping[str, Any] | None,
    names: list[str],
    per_item: Sequence[str] = (),
) -> tuple[list[MediaInput], list[tuple[str, str]]]:
    """The prompt's media (every kind read, images with their region marked, then ready
    items), checked against every model, and each wording with its placeholders protected from
    ``{name}`` interpolation. ``per_item``: the kinds a dataset's items add (one each)."""
    read, ready = _read_media(opts.images, opts.media, variables, opts)
    region = parse_region(opts.region) if isinstance(opts.region, str) else opts.region
    inputs: list[MediaInput] = [*apply_region(read, region, opts.region_mode), *ready]
    for kind in all_kinds():  # each kind's own options (audio: --clip)
        if kind.apply is not None:
            inputs = kind.apply(inputs, opts)
    kinds = [item.kind for item in inputs] + list(per_item)
    for name in names:
        dropped = dropped_kind(name)
        if dropped is not None and dropped not in kinds:
            kind = get_kind(dropped)
            flag, several = (kind.flag, kind.several) if kind else ("media=", dropped)
            raise StrategyError(
                f"{name} compares a prompt with its {several} against the same prompt without "
                f"them: give {several} with {flag} X."
            )
    for engine in engines:
        engine.check_media(inputs)
    if not kinds:
        return inputs, wordings
    protected = [(name, protect_placeholders(text)) for name, text in wordings]
    for _, text in protected:
        check_placeholders(text, kinds)
    return inputs, protected


@dataclass(frozen=True)
class _Context:
    """What every column of one run shares (the axes set the rest)."""

    namespace: Mapping[str, Any]
    media: list[MediaInput]
    settings: GenerationSettings
    examples: list[Example]
    templates: Templates
    samples: int | None
    shown: set[str]
    trial_seed: int | None
    #: The registered axis kinds' parts of this run (:mod:`lmwidgets.core.axis_kinds`), by
    #: kind name: each shapes every column by the column's value on its axis.
    kinds: Mapping[str, axis_kinds.AxisRun] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """Everything ``%%prompt`` (or :func:`lmwidgets.prompt`) says about the columns, besides
    the model, system prompt and generation settings. Each field is the option of that name
    (``top_ps`` is ``--top-ps``); see ``%%prompt --help``."""

    strategy: str | None = None
    compare: str | Sequence[str] | None = None
    examples: Any = None
    shots: int | None = None
    samples: int | None = None
    dataset: Any = None
    templates: Templates | Mapping[str, Any] | None = None
    batch_size: int = 16
    adapter: str | None = None
    adapters: str | Sequence[str] | None = None
    #: Paths, URLs, names of variables, or image values; ``{img}`` in the prompt places them.
    images: Sequence[Any] | None = None
    #: ``"x1,y1,x2,y2"`` or a :class:`~lmwidgets.media.images.Region`, marked as ``region_mode``
    #: says (``box`` or ``crop``).
    region: Any = None
    region_mode: str = "box"
    #: ``"START,END"`` seconds (``"N:START,END"`` for the N-th clip) or a
    #: :class:`~lmwidgets.media.audio.Clip`: the part of an audio clip to ask about.
    clip: Any = None
    #: The sample rate (Hz) of audio arrays that carry none.
    sample_rate: int | None = None
    models: str | Sequence[str] | None = None
    #: Ready :class:`~lmwidgets.media.base.MediaInput` items of any registered kind, or a
    #: dict ``{kind: values}`` read as that kind's option reads them (``{"audio": ["a.wav"]}``).
    media: Sequence[MediaInput] | Mapping[str, Any] | None = None
    #: The dataset column that holds each item's own media (default: a column named after a
    #: kind, ``image`` or ``audio``); ``NAME:KIND`` names its kind.
    media_column: str | None = None
    #: The dataset's variable name (``--dataset VAR``): the records of its items' own media
    #: name it, so that a rerun finds an item held in memory (an array) again.
    dataset_name: str | None = None
    #: How dataset items are scored against their ``expected`` (:mod:`.scoring`).
    score: str | Callable[..., Any] | None = None
    #: Prompt wordings: a dict ``{name: text}`` or a list (the cell's ``--- NAME`` lines).
    prompts: Any = None
    #: System prompts: a dict or a list; ``none`` (or a None value) is no system prompt.
    systems: Any = None
    #: Template fields whose variable is a list or dict: one column per value.
    each: str | Sequence[str] | None = None
    temperatures: Any = None
    top_ps: Any = None
    #: Runs of each sampled column (seeds ``seed .. seed + N - 1``).
    trials: int | None = None
    #: The axis that forms the view's columns.
    columns: str | None = None
    #: The keywords of registered axis kinds (:mod:`lmwidgets.core.axis_kinds`), by name:
    #: probes (``probe``, ``attacks``, ``inject_field``; :mod:`.probe_axis`), structured
    #: answers (``json``, ``regex``, ``one_of``, ``grammar``, ``constrain``;
    #: :mod:`.structured_axis`) and your own. :func:`build_variants` takes them as keywords.
    axis_options: Mapping[str, Any] = field(default_factory=dict)
    #: A model that judges every column after generation (a loaded or connected model's name;
    #: :mod:`lmwidgets.prompting.judging`), its rubric (a built-in's name or your text), its
    #: scale (``1-5`` or ``pass/fail``), pairwise instead of pointwise, its wording and its
    #: reply's token budget.
    judge: Any = None
    rubric: Any = None
    judge_scale: str | None = None
    judge_pairwise: bool = False
    judge_templates: Any = None
    judge_tokens: int | None = None
    #: The judge writes free text instead of its verdict format enforced while decoding.
    judge_free: bool = False
    #: Given choices to score instead of generating: a list of strings shared by every item
    #: (a dataset column ``choices`` gives each item its own; :mod:`.choices`).
    choices: Any = None


def option_names() -> set[str]:
    """The names :func:`build_variants` takes as options (the registered axis kinds' too)."""
    return (set(Options.__dataclass_fields__) - {"axis_options"}) | axis_kinds.keywords()


def _options(options: Mapping[str, Any]) -> Options:
    """:class:`Options` of ``options``, the registered axis kinds' keywords in ``axis_options``."""
    known = axis_kinds.keywords()
    given = {k: v for k, v in options.items() if k not in known}
    return Options(**given, axis_options={k: v for k, v in options.items() if k in known})


def build_variants(
    template: str,
    *,
    registry: ModelRegistry,
    model: str | None,
    system: str | None,
    settings: GenerationSettings,
    variables: Mapping[str, Any] | None = None,
    **options: Any,
) -> Plan:
    """Expand a prompt into the variants to run; every bad input is reported here, before any
    generation. ``template`` may use ``{name}`` fields from ``variables`` and, with a
    ``dataset``, from each item's columns (``{input}``); ``--- NAME`` lines in it start named
    prompt variants. ``options`` are the fields of :class:`Options`.

    The columns are the product of named axes (:mod:`lmwidgets.prompting.axes`): prompt
    wordings, system prompts, template fields, strategies, models and adapters, temperatures,
    top-ps and trials; each dataset item runs every column."""
    opts = _options(options)
    namespace = dict(variables or {})
    engines = parse_models(registry, model, opts.models)
    names = parse_strategies(opts.strategy, opts.compare)
    _check_scoring_without_generation(opts, settings)
    wordings = prompt_variants(template, opts.prompts)
    dataset, own_media = split_media(opts.dataset, opts.media_column, opts.dataset_name)
    per_item = [item.kind for item in own_media[0]] if own_media else []
    media, wordings = _prepare_media(engines, wordings, opts, variables, names, per_item)
    if own_media:
        check_item_kinds(engines, media, own_media[0])
    axes = _axes(opts, names, columns_of(engines, opts.adapter, opts.adapters), wordings)
    axes += _variation_axes(opts, wordings, namespace, settings, system)
    # a dataset item's own image (clip) is attacked too (the first item's kinds stand for all)
    probed = [*media, *(own_media[0] if own_media else [])]
    kinds = _kind_runs(opts, namespace, engines, names, axes, wordings, system, probed)
    column_axis = column_axis_name(opts.columns)
    _check_counts(opts)
    items = normalize_dataset(dataset) if opts.dataset is not None else [None]
    judge_scores = _judge_scores(opts)
    scorer = _scorer(replace(opts, score=None) if judge_scores else opts, namespace)
    judge = _judge(opts, registry, judge_scores)
    choosing = plan_choices(opts.choices, items, scorer.spec, names, engines)
    check_no_generation_options(_asked(opts), settings.logprobs, choosing)
    if scorer.spec == "fields":
        check_fields_scoring(getattr(kinds.get("constraint"), "constraint", None), items)
    base = Spec(engines[0], template=wordings[0][1], system=system)
    specs = expand(axes, replace(base, temperature=settings.temperature, top_p=settings.top_p))
    if opts.dataset is not None:
        check_dataset_fields([spec.template for spec in specs], items, namespace, specs)
    context = _Context(
        namespace=namespace,
        media=media,
        settings=settings,
        examples=_examples(opts.examples, opts.shots, names),
        templates=_templates(opts.templates),
        samples=opts.samples,
        shown=shown_axes(axes),
        trial_seed=trial_seed(settings.seed) if any(a.kind == "trial" for a in axes) else None,
        kinds=kinds,
    )
    variants = _item_variants(specs, items, own_media, context, choosing)
    check_columns(column_axis, variants)
    if judge is not None:
        check_judge_items(judge, items, len(specs))
    plan = Plan(
        variants, opts.batch_size, grid=opts.dataset is not None, columns=column_axis, judge=judge
    )
    if opts.dataset is not None and not judge_scores:
        plan.finishers.append(_scoring(scorer))
    for run in kinds.values():  # structured answers' parse rate, probes' verdicts...
        plan.finishers += run.finishers()
    if context.trial_seed is not None and any(not spec.sampled for spec in specs):
        plan.finishers.append(_note(GREEDY_TRIALS_NOTE))
    plan.finishers += map(_note, _media_notes(engines, media))
    return plan


def _check_scoring_without_generation(opts: Options, settings: GenerationSettings) -> None:
    """Given choices and ``--score perplexity`` generate nothing: refuse options that need a
    generated answer (a structured answer, probes, token probabilities) before anything else."""
    asked = opts.choices is not None or opts.score == "perplexity"
    check_no_generation_options(_asked(opts), settings.logprobs, asked)


def _asked(opts: Options) -> list[str]:
    """The registered axis kinds the options ask for that act on generated text, by their
    options' names."""
    kinds = axis_kinds.all_kinds()
    return [kind.option for kind in kinds if kind.needs_text and kind.asked(opts.axis_options)]


def _kind_runs(
    opts: Options,
    namespace: Mapping[str, Any],
    engines: list[Engine],
    names: list[str],
    axes: list[Axis],
    wordings: list[tuple[str, str]],
    system: str | None,
    media: list[MediaInput],
) -> dict[str, axis_kinds.AxisRun]:
    """Each registered axis kind's part of the run (:mod:`lmwidgets.core.axis_kinds`); the
    axes of those that have one are added to ``axes``."""
    runs: dict[str, axis_kinds.AxisRun] = {}
    for kind in axis_kinds.all_kinds():
        context = axis_kinds.AxisContext(
            options={name: opts.axis_options.get(name) for name in kind.keywords},
            namespace=namespace,
            engines=engines,
            strategies=names,
            axes=tuple(axes),
            wordings=wordings,
            system=system,
            media=media,
        )
        run = kind.build(context)
        if run is not None:
            runs[kind.name] = run
            if run.axis is not None:
                axes.append(run.axis)
    return runs


def _item_variants(
    specs: list[Spec],
    items: list[Any],
    own_media: list[list[MediaInput]] | None,
    context: _Context,
    choosing: Any,
) -> list[Variant]:
    """Every column for every dataset item (one pass of ``specs`` without a dataset), each with
    the item's own media and number, and its given choices when the run scores choices."""
    owns = own_media or [[] for _ in items]
    variants = [
        replace(_variant(spec, item, context, own), item_index=index if item is not None else None)
        for index, (item, own) in enumerate(zip(items, owns, strict=True))
        for spec in specs
    ]
    if choosing is not None:
        for index, variant in enumerate(variants):
            choosing.apply(variant, index // len(specs))
    return variants


def _media_notes(engines: list[Engine], media: list[MediaInput]) -> list[str]:
    """What models do to the prompt's media that the user should know (a clip longer than the
    audio window a processor keeps is cut): engines with ``media_notes`` say so."""
    notes: list[str] = []
    for engine in engines:
        say = getattr(engine, "media_notes", None)
        notes += [note for note in (say(media) if say else []) if note not in notes]
    return notes


def _axes(
    opts: Options,
    names: list[str],
    pairs: list[tuple[Engine, str | None]],
    wordings: list[tuple[str, str]],
) -> list[Axis]:
    """The built-in axes: strategies, models and adapters, and the prompt's wordings."""
    axes: list[Axis] = [
        StrategyAxis("strategy", tuple((n, n) for n in names), shown=names != ["zero-shot"]),
        TargetAxis(pairs, models=opts.models is not None, adapters=opts.adapters is not None),
    ]
    if len(wordings) > 1 or opts.prompts is not None:
        axes.append(PromptAxis("prompt", tuple(wordings)))
    return axes


def _variation_axes(
    opts: Options,
    wordings: list[tuple[str, str]],
    namespace: Mapping[str, Any],
    settings: GenerationSettings,
    system: str | None,
) -> list[Axis]:
    """The user's own variations: template fields, sweeps, system prompts and trials."""
    axes: list[Axis] = [
        *field_axes(opts.each, [text for _, text in wordings], namespace),
        *sweep_axes(opts.temperatures, opts.top_ps, settings.temperature, settings.top_p),
    ]
    systems = system_axis(opts.systems, system)
    if systems is not None:
        axes.append(_interpolated(systems, namespace))
    trial = trial_axis(opts.trials)
    if trial is not None:
        axes.append(trial)
    return axes


def _check_counts(opts: Options) -> None:
    optional_whole_number(opts.samples, "--samples", minimum=1)
    optional_whole_number(opts.shots, "--shots", minimum=0)
    whole_number(opts.batch_size, "--batch-size", minimum=1)


def _scorer(opts: Options, namespace: Mapping[str, Any]) -> Scorer:
    """The dataset's scorer; a scorer without a dataset is an error."""
    scorer = resolve_scorer(opts.score, namespace)
    if opts.score is not None and opts.dataset is None:
        raise InvalidArgumentError(
            f"score={scorer.spec} scores dataset items against their 'expected' column: give a "
            "dataset too (--dataset VAR), or leave score out."
        )
    return scorer


def _judge_scores(opts: Options) -> bool:
    """Whether ``score="judge"``: the judge's verdicts score the dataset (it needs one)."""
    scores = isinstance(opts.score, str) and opts.score.strip().lower() == "judge"
    if scores and opts.dataset is None:
        raise InvalidArgumentError(
            "score=judge scores dataset items by the judge's verdicts: give a dataset too "
            "(--dataset VAR), or leave score out (the judge's verdicts show without it)."
        )
    return scores


def _judge(opts: Options, registry: ModelRegistry, scores: bool) -> Any:
    """The run's judge (:func:`lmwidgets.prompting.judging.resolve_judge`), or None."""
    return resolve_judge(
        opts.judge,
        registry=registry,
        rubric=opts.rubric,
        scale=opts.judge_scale,
        pairwise=opts.judge_pairwise,
        templates=opts.judge_templates,
        score=scores,
        max_new_tokens=opts.judge_tokens,
        free=opts.judge_free,
    )


def _templates(templates: Templates | Mapping[str, Any] | None) -> Templates:
    """The strategies' wording: the defaults, or overrides given as a mapping or Templates."""
    if isinstance(templates, Mapping):
        unknown = set(templates) - set(Templates.__dataclass_fields__)
        if unknown:
            raise StrategyError(f"Unknown template field(s): {', '.join(sorted(unknown))}.")
        templates = Templates(**templates)
    templates = templates or Templates()
    if not templates.sc_temperature > 0:
        raise InvalidArgumentError("The self-consistency temperature must be > 0.")
    return templates


def _examples(examples: Any, shots: int | None, names: list[str]) -> list[Example]:
    """The demonstrations (the first ``shots`` of them); few-shot needs at least one."""
    parsed: list[Example] = []
    if examples is not None:
        parsed = normalize_examples(examples)
        if shots is not None:
            parsed = parsed[:shots]
    if "few-shot" in names and not parsed:
        raise ExamplesError(
            "few-shot needs demonstrations: pass --examples VAR, a variable holding (input, "
            "output) pairs, dicts with 'input'/'output', or a DataFrame with those columns."
            + (" (--shots 0 leaves none.)" if shots == 0 else "")
        )
    return parsed


def _interpolated(axis: SystemAxis, namespace: Mapping[str, Any]) -> SystemAxis:
    """System prompts with their ``{name}`` fields filled from the notebook's variables."""
    values = tuple(
        (name, None if text is None else interpolate(text, namespace)) for name, text in axis.values
    )
    return SystemAxis(axis.name, values)


#: The note of a run with ``--trials`` whose greedy columns ran once.
GREEDY_TRIALS_NOTE = (
    "--trials: greedy columns (temperature 0) ran once (trial 1): greedy decoding gives the "
    "same text every time. Set --temperature (or --temperatures) to sample them."
)


def _note(text: str) -> Callable[[Comparison], None]:
    def add(comparison: Comparison) -> None:
        if text not in comparison.notes:
            comparison.notes.append(text)

    return add


def check_dataset_fields(
    templates: Sequence[str],
    items: list[dict[str, Any] | None],
    namespace: Mapping[str, Any],
    specs: Sequence[Spec],
) -> None:
    """In a dataset run, a ``{field}`` that is neither an item's column, a notebook variable
    nor an ``--each`` field is a typo: an error before anything runs, naming the closest
    column or variable (``{inptu}``: did you mean ``{input}``?)."""
    columns = list(dict.fromkeys(key for item in items if item for key in item))
    known = {*columns, *namespace, *(name for spec in specs for name in spec.fields)}
    for text in dict.fromkeys(templates):
        for name in template_fields(text):
            if name in known:
                continue
            visible = [n for n in namespace if not n.startswith("_")]
            near = difflib.get_close_matches(name, [*columns, *visible], n=1, cutoff=0.6)
            hint = f" Did you mean {{{near[0]}}}?" if near else ""
            raise DatasetError(
                f"The prompt uses {{{name}}}, which is neither a dataset column "
                f"({listed(columns)}) nor a notebook variable.{hint}"
            )


def _variant(
    spec: Spec, item: dict[str, Any] | None, context: _Context, own: Sequence[MediaInput] = ()
) -> Variant:
    """One column: ``spec``'s strategy, model, adapter, wording, system and settings on its
    question (a dataset ``item``'s, when there is one)."""
    engine, name = spec.engine, spec.strategy
    values = {**context.namespace, **spec.fields}
    filled: Mapping[str, Any] = {**values, **(item or {})}
    for kind, run in context.kinds.items():
        filled = run.fill(spec.kinds.get(kind), filled)
    question = interpolate(spec.template, filled)
    system, lead = spec.system, []
    for kind, run in context.kinds.items():
        system, question, more = run.turns(spec.kinds.get(kind), system, question)
        lead += more
    examples = context.examples
    if item is not None:  # demonstrations go through the same template as the items
        examples = [
            replace(ex, input=interpolate(spec.template, {**values, "input": ex.input}))
            for ex in examples
        ]
    messages, info = strategy_messages(
        name,
        question,
        engine,
        system=system,
        examples=examples,
        templates=context.templates,
    )
    messages = with_lead(messages, lead)
    dropped = dropped_kind(name)
    everything = [*context.media, *own]  # the prompt's media, then the dataset item's own
    shaped = everything
    for kind, run in context.kinds.items():
        shaped = run.media(spec.kinds.get(kind), shaped)
    shown = [m for m in shaped if m.kind != dropped]
    if engine.capabilities.media:
        messages = with_media(messages, [m.kind for m in shown])
    run_settings = replace(
        context.settings,
        temperature=spec.temperature,
        top_p=spec.top_p,
        seed=context.settings.seed
        if context.trial_seed is None or not spec.sampled
        else context.trial_seed + spec.trial,
    )
    count = 1
    if name == "self-consistency":
        count = context.samples or DEFAULT_SAMPLES
        if not run_settings.sampling:
            run_settings = replace(run_settings, temperature=context.templates.sc_temperature)
        info["samples"] = count
    expected = None if item is None else expected_text(item.get("expected"))
    return Variant(
        label=label_of(spec, context.shown, item is not None),
        adapter=spec.adapter,
        messages=messages,
        engine=engine,
        settings=run_settings,
        strategy=name,
        strategy_info=info,
        template=restore_placeholders(spec.template),
        media=shown,
        samples=count,
        postprocess=_postprocess_for(name),
        item=item,
        input=None if item is None else str(item["input"]),
        expected=expected,
        coords=dict(spec.coords),
        seed_drawn=context.trial_seed is not None
        and context.settings.seed is None
        and spec.sampled,
        **_kind_fields(spec, name, everything, context),
    )


def _kind_fields(
    spec: Spec, strategy: str, media: list[MediaInput], context: _Context
) -> dict[str, Any]:
    """The Variant fields the registered axis kinds set for this column (their ``recorded``
    entries merged)."""
    fields: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    for kind, run in context.kinds.items():
        changes = dict(run.variant(spec.kinds.get(kind), strategy, media))
        recorded.update(changes.pop("recorded", {}))
        fields.update(changes)
    return {**fields, "recorded": recorded} if recorded else fields


def with_lead(messages: list[Message], lead: list[Any]) -> list[Message]:
    """``messages`` with the ``lead`` turns after the system prompt (before everything else)."""
    if not lead:
        return messages
    head = 1 if messages and messages[0]["role"] == "system" else 0
    return [*messages[:head], *lead, *messages[head:]]
