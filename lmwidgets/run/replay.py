"""Re-running saved run records and checking that the text comes out the same.

Records of one output are re-run together, in their original order, batch size and seeds, so
greedy and seeded (or recorded-seed) sampled runs reproduce exactly on the same weights, library
versions, device and dtype. Each record's model is found among the loaded models by the sha256 of
its weights, or loaded from the recorded source. Token details (``generation.logprobs``) are
asked for again, and a fork's record (``fork``) forces the same start of the answer
(:func:`lmwidgets.run.fork.from_record`), so ``%lm rerun`` reproduces forks too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lmwidgets.core import axis_kinds
from lmwidgets.core.results import Comparison, Result
from lmwidgets.core.safe_text import escape_html
from lmwidgets.engines.base import Engine, GenerationSettings
from lmwidgets.engines.registry import REGISTRY, ModelRegistry
from lmwidgets.errors import RecordError
from lmwidgets.run.choices import recorded_choices


@dataclass
class RerunRow:
    """One re-run record: did the new text match the saved one?"""

    variant: str
    input: str | None
    matched: bool
    old_text: str
    new_text: str
    old_answer: str | None
    new_answer: str | None
    first_difference: int | None
    #: The recorded score and the re-run's (None without ``expected`` or when not scored).
    old_score: float | None = None
    new_score: float | None = None
    #: The recorded judge verdict and the re-run's (``4/5``, ``pass``, ``better``; None
    #: without a judge or when unjudged; see :mod:`lmwidgets.run.judge`).
    old_judge: str | None = None
    new_judge: str | None = None


@dataclass
class RerunReport:
    """The outcome of :func:`rerun`: one row per record, plus notes (e.g. different versions)."""

    rows: list[RerunRow]
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        """True when every re-run text equals its saved text."""
        return bool(self.rows) and all(row.matched for row in self.rows)

    def summary(self) -> str:
        """``'3 of 3 texts match'`` (``; 3 of 3 judge verdicts match`` for a judged run)."""
        same = sum(row.matched for row in self.rows)
        said = f"{same} of {len(self.rows)} texts match"
        judged = [row for row in self.rows if row.old_judge is not None]
        if judged:
            agree = sum(row.old_judge == row.new_judge for row in judged)
            said += f"; {agree} of {len(judged)} judge verdicts match"
        return said

    def _repr_mimebundle_(self, include=None, exclude=None):
        lines = [self.summary(), *self.notes]
        rows = []
        for row in self.rows:
            where = (
                ""
                if row.first_difference is None
                else f" (first difference at character {row.first_difference})"
            )
            label = row.variant if row.input is None else f"{row.variant} · {row.input}"
            lines.append(f"{'✓' if row.matched else '✗'} {label}{where}")
            rows.append(
                f"<tr><td>{'✓' if row.matched else '✗'}</td><td>{escape_html(label)}</td>"
                f"<td>{escape_html(where.strip(' ()'))}</td></tr>"
            )
        notes = "".join(f"<div>{escape_html(n)}</div>" for n in self.notes)
        html = (
            f"<div><b>{escape_html(self.summary())}</b>{notes}<table>"
            f"<tr><th></th><th>column</th><th>difference</th></tr>{''.join(rows)}</table></div>"
        )
        return {"text/plain": "\n".join(lines), "text/html": html}


def _find_model(record: dict[str, Any], registry: ModelRegistry, notes: list[str]) -> Engine:
    info = record.get("model") or {}
    kind = info.get("engine") or "transformers"  # records before engines: in-kernel models
    wanted = info.get("weights_sha256")
    same_kind = [m for m in registry if m.engine == kind]
    candidates = [m for m in same_kind if wanted and m.record().get("weights_sha256") == wanted]
    same_dtype = [m for m in candidates if m.record().get("dtype") == info.get("dtype")]
    if same_dtype or candidates:
        return (same_dtype or candidates)[0]
    if kind != "transformers":
        return _find_elsewhere(info, same_kind)
    return _load_recorded(info, registry, notes)


def _find_elsewhere(info: dict[str, Any], same_kind: list[Engine]) -> Engine:
    """A loaded model of a record that did not run in the kernel: a served one by its server
    and model id, a scripted one by its name."""
    kind = info.get("engine")
    if info.get("model_id") is not None:
        served = [
            m
            for m in same_kind
            if (m.record().get("source"), m.record().get("model_id"))
            == (info.get("source"), info.get("model_id"))
        ]
        if served:
            return served[0]
        raise RecordError(
            f"The record ran on {info.get('model_id')!r} served at {info.get('source')}: connect "
            f"to it first (`%lm connect {info.get('source')} --model {info.get('model_id')}`), "
            "then rerun."
        )
    named = [m for m in same_kind if m.name == info.get("name")]
    if named:
        return named[0]
    raise RecordError(
        f"The record ran on the {kind} engine ({info.get('name')!r}); lmwidgets cannot "
        "load it from the record alone. Load or connect it first, then rerun."
    )


def _load_recorded(info: dict[str, Any], registry: ModelRegistry, notes: list[str]) -> Engine:
    """Load a record's in-kernel model from its recorded source, device and dtype."""
    from lmwidgets.api import load_model
    from lmwidgets.engines.transformers.loading import pick_device

    wanted = info.get("weights_sha256")
    spec = info.get("source")
    if not spec:
        raise RecordError(
            "The record names no model source; load the model, then rerun with model=NAME."
        )
    device = info.get("device") or "auto"
    try:
        pick_device(device)
    except Exception:
        notes.append(
            f"Recorded device {device} is not available here; re-running on the default device."
        )
        device = "auto"
    loaded = load_model(
        None if spec == "default" else spec,
        dtype=info.get("dtype") or "auto",
        device=device,
        registry=registry,
    )
    have = loaded.record().get("weights_sha256")
    if wanted and have != wanted:
        notes.append(
            f"The weights of {loaded.name} (sha256 {str(have)[:12]}…) differ from the "
            f"recorded ones ({wanted[:12]}…): texts may differ."
        )
    return loaded


def _recorded_media(
    record: dict[str, Any], images: Mapping[str, Any], namespace: Mapping[str, Any]
) -> list[Any]:
    """The media a record names, found again (given ``images``, a notebook variable of the same
    name, or the recorded file/URL) and checked to be the same content."""
    from lmwidgets.media.base import get_kind, kind_of

    prompt = record.get("prompt") or {}
    found = []
    for info in prompt.get("media") or prompt.get("images") or []:
        kind = kind_of(info)
        registered = get_kind(kind)
        if registered is None:
            raise RecordError(f"The record holds a {kind!r} input, which lmwidgets cannot read.")
        name = str(info.get("name", kind))
        from lmwidgets.prompting.media_items import item_value

        held = item_value(info, namespace)  # a dataset item's own, found in its dataset
        if name in images:
            value = images[name]
        elif held is not None:
            value = held
        elif info.get("source") == "variable" and name in namespace:
            value = namespace[name]
        elif info.get("location"):
            value = info["location"]
        else:
            raise RecordError(
                f"The record used the {kind} {name!r}, which is not in the notebook any more. "
                f"Pass it: rerun(source, images={{{name!r}: VALUE}})."
            )
        item: Any = registered.read_again(value, info, name)
        if item.sha256 != info.get("sha256"):
            raise RecordError(
                f"The {kind} {name!r} differs from the recorded one (sha256 "
                f"{item.sha256[:12]}… instead of {str(info.get('sha256'))[:12]}…): the re-run "
                f"would not show the same {kind}. Pass the original with images={{...}}."
            )
        found.append(_own(item.restore(info), info, value, registered))
    return found


def _own(item: Any, info: Mapping[str, Any], value: Any, kind: Any) -> Any:
    """A dataset item's own media found again, deferred as in its run (its grid row shows
    it; it is released after its batch and read again from ``value`` if needed); the
    prompt's shared media as they are. Records made before ``own`` are all shared."""
    if not info.get("own"):
        return item
    from lmwidgets.media.base import Deferred

    origin = info.get("dataset")
    return Deferred(
        value=value,
        media_kind=kind,
        name=item.name,
        item=item,
        origin=dict(origin) if isinstance(origin, dict) else None,
    )


def _variant_from(
    record: dict[str, Any],
    loaded: Engine,
    images: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
):
    from lmwidgets.core.variant import Variant
    from lmwidgets.prompting.strategies import _postprocess_for
    from lmwidgets.run.fork import from_record

    generation = record.get("generation") or {}
    prompt = record.get("prompt") or {}
    strategy = (record.get("strategy") or {}).get("name", "zero-shot")
    adapter = record.get("adapter")
    adapter_name = adapter.get("name") if isinstance(adapter, dict) else None
    if adapter_name and adapter_name not in loaded.adapters:
        raise RecordError(
            f"The record used adapter {adapter_name!r}, which is not loaded on {loaded.name}. "
            "Load it (`%lm adapter load PATH --as NAME`) and rerun."
        )
    try:
        settings = GenerationSettings(
            max_new_tokens=int(generation["max_new_tokens"]),
            temperature=float(generation.get("temperature", 0.0)),
            top_p=float(generation.get("top_p", 1.0)),
            seed=generation.get("seed"),
            logprobs=int(generation.get("logprobs", 0)),
        )
        messages = list(prompt["messages"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(
            f"The record is incomplete or malformed ({exc}); it cannot be re-run."
        ) from exc
    fork = record.get("fork")
    forced_ids, forced_text = from_record(fork, loaded) if isinstance(fork, dict) else ((), "")
    return Variant(
        label=record.get("variant", loaded.name),
        messages=messages,
        engine=loaded,
        settings=settings,
        strategy=strategy,
        strategy_info={k: v for k, v in (record.get("strategy") or {}).items() if k != "name"},
        adapter=adapter_name,
        template=prompt.get("template", ""),
        samples=int(generation.get("samples", 1)),
        postprocess=_postprocess_for(strategy),
        item=record.get("input"),
        input=None
        if record.get("input") is None
        else str((record.get("input") or {}).get("input")),
        expected=record.get("expected"),
        item_index=_recorded_index(record),
        media=_kind_media(record, images or {}, namespace or {}),
        forced_ids=forced_ids,
        forced_text=forced_text,
        fork=fork if isinstance(fork, dict) else None,
        coords=_recorded_axes(record),
        recorded=_kind_records(record),
        seed_drawn=generation.get("seed_given") is False and generation.get("seed") is not None,
        **recorded_choices(record),
        **_recorded_constraint(record),
    )


def _recorded_constraint(record: dict[str, Any]) -> dict[str, Any]:
    """The structured-answer constraint a column was held to (``output.structured``) and
    whether it was enforced while decoding: without it a re-run of ``--one-of yes,no`` would
    write free text and never match. Records without one (or a malformed one) give none."""
    from lmwidgets.core.constraints import constraint_from_record

    structured = (record.get("output") or {}).get("structured")
    if not isinstance(structured, dict):
        return {}
    constraint = constraint_from_record(structured.get("constraint"))
    if constraint is None:
        return {}
    return {"constraint": constraint, "enforced": structured.get("enforced") is True}


def _kind_media(
    record: dict[str, Any], images: Mapping[str, Any], namespace: Mapping[str, Any]
) -> list[Any]:
    """A record's media, as the first axis kind that changed them restores them (an
    ``inject-image`` probe column's image: the recorded original with the recorded attack
    drawn in again; the drawn copy exists only in the run), else as recorded."""

    def read(entries: Mapping[str, Any]) -> list[Any]:
        return _recorded_media(dict(entries), images, namespace)

    for kind in axis_kinds.all_kinds():
        restore_media = kind.hook("restore_media")
        if restore_media is not None:
            media = restore_media(record, read)
            if media is not None:
                return media
    return read(record)


def _kind_records(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's entries that axis kinds restore (a probe's attack and canary)."""
    recorded: dict[str, Any] = {}
    for kind in axis_kinds.all_kinds():
        restore = kind.hook("restore")
        if restore is not None:
            recorded.update(restore(record))
    return recorded


def _recorded_index(record: dict[str, Any]) -> int | None:
    """The record's dataset item number (None: no dataset, or a record made before items were
    numbered; the grid then groups its rows by input)."""
    index = record.get("item_index")
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def _recorded_axes(record: dict[str, Any]) -> dict[str, str]:
    """The record's coordinates on its run's axes (none for records made before axes)."""
    axes = record.get("axes")
    if not isinstance(axes, dict):
        return {}
    return {str(k): str(v) for k, v in axes.items()}


def _first_difference(a: str, b: str) -> int | None:
    if a == b:
        return None
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def rerun(
    source: Any,
    *,
    registry: ModelRegistry = REGISTRY,
    display: bool = False,
    images: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
    confirm: bool = False,
) -> RerunReport:
    """Re-run saved records and report, per record, whether the new text equals the saved one.

    ``source`` is anything :func:`~lmwidgets.run.records.load_records` reads: a notebook (path
    or dict), a Comparison or Result, a Comparison's JSON (string or .json file), a list of
    records or one record. Every record is checked
    (:func:`~lmwidgets.run.records.validate_records`) before any model is loaded.

    Records of prompts with media (images, or any registered kind) need them again: they are
    found by name in ``images`` (a dict of names to values of any kind), as notebook variables
    in ``namespace``, or at the recorded path or URL, and must have the recorded sha256 (a
    dataset item's own media: by path, or ``images={"item 3 image": value}``). A recorded run larger than the limits of
    :mod:`lmwidgets.validation` (e.g. more than 64 samples) needs ``confirm=True``.

    Dataset runs are scored again with the recorded scorer (``record["scorer"]``; records
    written before scorers were scored by ``exact``). A recorded function (``callable:NAME``)
    is looked up in ``namespace``; when it is not there the texts are still re-run and a note
    says that scoring was skipped."""
    from lmwidgets.notebook.live import LiveView
    from lmwidgets.run.records import library_versions, load_records, validate_records
    from lmwidgets.run.runner import run_variants
    from lmwidgets.validation import check_run_size, flag

    records = load_records(source)
    if not records:
        raise RecordError("No run records found to re-run.")
    validate_records(records)  # every record, before any model is found or loaded
    groups: dict[str, list[dict[str, Any]]] = {}
    for index, record in enumerate(records):
        groups.setdefault(record.get("run") or f"record-{index}", []).append(record)
    notes: list[str] = []
    versions = library_versions()
    recorded = records[0].get("versions") or {}
    changed = [
        f"{k} {recorded[k]} → {versions.get(k)}"
        for k in ("torch", "transformers")
        if recorded.get(k) and recorded.get(k) != versions.get(k)
    ]
    if changed:
        notes.append("Library versions differ from the record: " + ", ".join(changed) + ".")
    # Every model, adapter and image is found (and every prompt rendered) before anything runs:
    # a missing adapter in the last group must not cost the first group's generation.
    planned = [_plan_group(group, registry, notes, images, namespace) for group in groups.values()]
    scorers = [
        _finisher(group, _recorded_scoring(group, namespace or {}, notes))
        for group in groups.values()
    ]
    judges = [_recorded_judge(group, registry, notes) for group in groups.values()]
    for variants, judge in zip(planned, judges, strict=True):  # the same limits apply
        check_run_size(variants, confirm=flag(confirm, "confirm"), judge=judge)
    rows: list[RerunRow] = []
    comparisons: list[Comparison] = []
    for group, variants, scoring, judge in zip(
        groups.values(), planned, scorers, judges, strict=True
    ):
        batch_size = int((group[0].get("generation") or {}).get("batch_size", 16))
        grid = any(v.input is not None for v in variants)  # a dataset: one row per item
        view = LiveView(variants, "rerun", show=display, grid=grid) if display else None
        comparison = run_variants(
            variants,
            title="rerun",
            view=view,
            batch_size=batch_size,
            finalize=scoring,
            judge=judge,
        )
        comparisons.append(comparison)
        rows += [_compare(record, result) for record, result in zip(group, comparison, strict=True)]
    return RerunReport(rows=rows, comparisons=comparisons, notes=list(dict.fromkeys(notes)))


def _plan_group(
    group: list[dict[str, Any]],
    registry: ModelRegistry,
    notes: list[str],
    images: Mapping[str, Any] | None,
    namespace: Mapping[str, Any] | None,
) -> list[Any]:
    """One recorded run's variants, with their models, adapters and media found again and their
    prompts rendered (a chat template that renders differently now is noted)."""
    from lmwidgets.run.runner import prepare

    variants = [_variant_from(r, _find_model(r, registry, notes), images, namespace) for r in group]
    for variant, record in zip(variants, group, strict=True):
        prepare(variant, [])
        if variant.prompt_text != (record.get("prompt") or {}).get("rendered"):
            notes.append(
                f"{variant.label}: the chat template now renders a different prompt than the "
                "recorded one (a different tokenizer?)."
            )
    return variants


def _recorded_scoring(
    group: list[dict[str, Any]], namespace: Mapping[str, Any], notes: list[str]
) -> Callable[[Comparison], None] | None:
    """The finisher that scores a re-run as its record was scored, or None for a run without
    a dataset (or whose recorded function is not in ``namespace``: noted)."""
    from lmwidgets.errors import LmWidgetsError
    from lmwidgets.prompting.scoring import resolve_scorer, score_comparison

    specs = [str(r["scorer"]) for r in group if r.get("scorer")]
    if specs and specs[0] == "judge":
        return None  # the judge pass scores the re-run (see _recorded_judge)
    if specs:
        spec = specs[0]
    elif any(r.get("expected") is not None for r in group):
        spec = "exact"  # the only scorer before scorers could be chosen
    else:
        return None
    try:
        scorer = resolve_scorer(spec, namespace)
    except LmWidgetsError as exc:
        name = spec.removeprefix("callable:")
        why = (
            f"({exc})"
            if name in namespace
            else "which is not defined in the notebook (define "
            "it and rerun to score the texts again)"
        )
        notes.append(f"Scoring was skipped: the records were scored by {name}, {why}.")
        return None
    return lambda comparison: score_comparison(comparison, scorer)


def _recorded_judge(group: list[dict[str, Any]], registry: ModelRegistry, notes: list[str]) -> Any:
    """The judge a recorded run was judged by, its model found again (None: no judge), so
    that the re-run is judged by the same model, rubric, wording and settings."""
    from lmwidgets.prompting.judging import recorded_spec

    info = next((r["judge"] for r in group if isinstance(r.get("judge"), dict)), None)
    if info is None:
        return None
    model = info.get("model")
    if not isinstance(model, dict):
        raise RecordError("The record's judge names no model; it cannot be judged again.")
    return recorded_spec(info, _find_model({"model": model}, registry, notes))


def _finisher(
    group: list[dict[str, Any]], scoring: Callable[[Comparison], None] | None
) -> Callable[[Comparison], None] | None:
    """A re-run's finisher: its scoring, and what axis kinds run again (the probes' verdicts
    judged again)."""
    hooks = [kind.hook("rerun_finisher") for kind in axis_kinds.all_kinds()]
    again = [finish for finish in (hook(group) for hook in hooks if hook) if finish is not None]
    if not again:
        return scoring

    def finish(comparison: Comparison) -> None:
        if scoring is not None:
            scoring(comparison)
        for step in again:
            step(comparison)

    return finish


def _compare(record: dict[str, Any], result: Result) -> RerunRow:
    """How a re-run column compares with its record (a truncated record compares its part)."""
    output = record.get("output") or {}
    old = str(output.get("text", ""))
    new = result.text[: len(old)] if output.get("text_truncated") else result.text
    return RerunRow(
        variant=result.variant,
        input=result.input,
        matched=new == old,
        old_text=old,
        new_text=result.text,
        old_answer=output.get("answer"),
        new_answer=result.answer,
        first_difference=_first_difference(old, new),
        old_score=record.get("score"),
        new_score=result.score,
        old_judge=(record.get("judge") or {}).get("label"),
        new_judge=(result.judge or {}).get("label"),
    )
