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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lmwidgets.checks import optional_whole_number, whole_number
from lmwidgets.core.answers import extract_answer, majority_vote
from lmwidgets.core.examples import Example, normalize_dataset, normalize_examples
from lmwidgets.core.results import Comparison
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import (
    BASE_NAMES,
    Engine,
    GenerationSettings,
    Message,
    adapter_label,
    resolve_adapter,
)
from lmwidgets.engines.registry import ModelRegistry
from lmwidgets.errors import (
    AdapterError,
    ExamplesError,
    InvalidArgumentError,
    StrategyError,
)
from lmwidgets.media.base import MediaInput
from lmwidgets.media.images import apply_region, parse_region, resolve_image
from lmwidgets.prompting.content import (
    check_placeholders,
    protect_placeholders,
    restore_placeholders,
    with_media,
)
from lmwidgets.prompting.interpolate import interpolate
from lmwidgets.prompting.scoring import Scorer, resolve_scorer, score_comparison

STRATEGIES = ("zero-shot", "few-shot", "cot", "self-consistency", "no-image")
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
    for name in names:
        if name not in STRATEGIES:
            raise StrategyError(f"Unknown strategy {name!r}. Choose from: {', '.join(STRATEGIES)}.")
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


def _label(
    engine: Engine,
    strategy: str,
    adapter: str | None,
    names: list[str],
    axes: tuple[bool, bool],
    dataset: bool,
) -> str:
    """A column label naming what varies: the model, the strategy, the adapter."""
    model_axis, adapter_axis = axes
    parts = [engine.name] if model_axis else []
    if names != ["zero-shot"] or (dataset and not adapter_axis and not model_axis):
        parts.append(strategy)
    if adapter_axis:
        parts.append(adapter_label(adapter))
    if parts:
        return " · ".join(parts)
    return engine.name if adapter is None else f"{engine.name} · {adapter}"


@dataclass
class Plan:
    """The variants to run and what to do with the comparison afterwards."""

    variants: list[Variant]
    batch_size: int = 16
    grid: bool = False
    finishers: list[Callable[[Comparison], None]] = field(default_factory=list)

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
    if name in ("zero-shot", "no-image"):
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


def _prepare_images(
    engines: list[Engine],
    template: str,
    images: Sequence[Any] | None,
    region: Any,
    region_mode: str,
    variables: Mapping[str, Any] | None,
    names: list[str],
    extra: Sequence[MediaInput] | None = None,
) -> tuple[list[MediaInput], str]:
    """The prompt's media (images read and their region marked, then ``extra`` items of any
    kind), checked against every model, and the template with its ``{img}`` placeholders
    protected from ``{name}`` interpolation."""
    if images is not None and not isinstance(images, (list, tuple)):
        images = [images]
    read = [
        resolve_image(spec, variables, name=f"image {number}")
        for number, spec in enumerate(images or [], start=1)
    ]
    if isinstance(region, str):
        region = parse_region(region)
    inputs: list[MediaInput] = [*apply_region(read, region, region_mode), *(extra or [])]
    for item in extra or []:
        if not isinstance(item, MediaInput):
            raise StrategyError(
                f"media= takes MediaInput items (lmwidgets.media), not {type(item).__name__}."
            )
    if "no-image" in names and not inputs:
        raise StrategyError(
            "no-image compares a prompt with its images against the same prompt without them: "
            "give images with --image X."
        )
    for engine in engines:
        engine.check_media(inputs)
    if not inputs:
        return inputs, template
    protected = protect_placeholders(template)
    check_placeholders(protected, len(inputs))
    return inputs, protected


def build_variants(
    template: str,
    *,
    registry: ModelRegistry,
    model: str | None,
    system: str | None,
    settings: GenerationSettings,
    variables: Mapping[str, Any] | None = None,
    strategy: str | None = None,
    compare: str | Sequence[str] | None = None,
    examples: Any = None,
    shots: int | None = None,
    samples: int | None = None,
    dataset: Any = None,
    templates: Templates | Mapping[str, Any] | None = None,
    batch_size: int = 16,
    adapter: str | None = None,
    adapters: str | Sequence[str] | None = None,
    images: Sequence[Any] | None = None,
    region: Any = None,
    region_mode: str = "box",
    models: str | Sequence[str] | None = None,
    media: Sequence[MediaInput] | None = None,
    score: str | Callable[..., Any] | None = None,
) -> Plan:
    """Expand a prompt into the variants to run; every bad input is reported here, before any
    generation. ``template`` may use ``{name}`` fields from ``variables`` and, with a
    ``dataset``, from each item's columns (``{input}``). ``images`` (paths, URLs, names of
    variables in ``variables``, or image values) go with the question; ``{img}`` in the
    template places them; ``region`` (``"x1,y1,x2,y2"`` or a :class:`~lmwidgets.media.images.Region`)
    is marked on the image as ``region_mode`` says (``box`` or ``crop``). ``models`` puts
    several loaded models side by side (each model's columns run as one batch on it). ``media``
    adds ready :class:`~lmwidgets.media.base.MediaInput` items of any registered kind.
    ``score`` picks how dataset items are scored against their ``expected`` (default ``auto``;
    a spec such as ``exact``, ``contains``, ``regex:PATTERN``, ``number:0.01``, ``choice``, a
    function, or the name of a function in ``variables``; see :mod:`.scoring`)."""
    engines = parse_models(registry, model, models)
    names = parse_strategies(strategy, compare)
    columns = columns_of(engines, adapter, adapters)
    media, template = _prepare_images(
        engines, template, images, region, region_mode, variables, names, extra=media
    )
    axes = (models is not None, adapters is not None)
    templates = _templates(templates)
    optional_whole_number(samples, "--samples", minimum=1)
    optional_whole_number(shots, "--shots", minimum=0)
    whole_number(batch_size, "--batch-size", minimum=1)
    parsed_examples = _examples(examples, shots, names)
    items = normalize_dataset(dataset) if dataset is not None else [None]
    namespace = dict(variables or {})
    scorer = resolve_scorer(score, namespace)
    if score is not None and dataset is None:
        raise InvalidArgumentError(
            f"score={scorer.spec} scores dataset items against their 'expected' column: give a "
            "dataset too (--dataset VAR), or leave score out."
        )
    variants = [
        _variant(
            engine,
            name,
            adapter_name,
            interpolate(template, {**namespace, **(item or {})}),
            item,
            media=media,
            template=template,
            system=system,
            settings=settings,
            examples=parsed_examples,
            templates=templates,
            samples=samples,
            label=_label(engine, name, adapter_name, names, axes, item is not None),
        )
        for item in items
        for name in names
        for engine, adapter_name in columns
    ]
    plan = Plan(variants=variants, batch_size=batch_size, grid=dataset is not None)
    if dataset is not None:
        plan.finishers.append(_scoring(scorer))
    return plan


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


def _variant(
    engine: Engine,
    name: str,
    adapter_name: str | None,
    question: str,
    item: dict[str, Any] | None,
    *,
    media: list[MediaInput],
    template: str,
    system: str | None,
    settings: GenerationSettings,
    examples: list[Example],
    templates: Templates,
    samples: int | None,
    label: str,
) -> Variant:
    """One column: strategy ``name`` with ``adapter_name`` on ``question`` (a dataset ``item``)."""
    messages, info = strategy_messages(
        name, question, engine, system=system, examples=examples, templates=templates
    )
    shown = [] if name == "no-image" else media
    if engine.capabilities.media:
        messages = with_media(messages, [item.kind for item in shown])
    run_settings, count = settings, 1
    if name == "self-consistency":
        count = samples or DEFAULT_SAMPLES
        temperature = settings.temperature if settings.sampling else templates.sc_temperature
        run_settings = replace(settings, temperature=temperature)
        info["samples"] = count
    expected = None if item is None or item.get("expected") is None else str(item["expected"])
    return Variant(
        label=label,
        adapter=adapter_name,
        messages=messages,
        engine=engine,
        settings=run_settings,
        strategy=name,
        strategy_info=info,
        template=restore_placeholders(template),
        media=shown,
        samples=count,
        postprocess=_postprocess_for(name),
        item=item,
        input=None if item is None else str(item["input"]),
        expected=expected,
    )
