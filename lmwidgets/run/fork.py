"""Fork at a token: "what if the model had said X here?"

A fork of a column continues the *same prompt* from token ``position`` of that column's answer
with a chosen token forced there: the first ``position`` generated tokens are kept as they were,
the token at ``position`` is replaced by an alternative the model considered (an id or text from
``Result.tokens_detail[position]["top"]``) or any text, and the model continues greedily
(temperature 0) from there. The engine receives it as :attr:`PromptRow.forced_ids
<lmwidgets.engines.base.PromptRow>` (the kept ids plus the forced one) and ``forced_text`` (their
text, for engines that take text); the forced tokens count as generated.

The fork is one more column beside its row's columns, which are shown as they ran (copies of
their results, marked ``"shown_as": "kept"`` in their records; nothing but the fork generates,
and a judge judges only what it has not judged already). Its label says what was forced (``cot · fork at token 13 'Paris'``), and
its record holds ``fork: {"from", "position", "forced": {"id", "text"}, "prefix_ids",
"prefix_text"}``, from which :func:`lmwidgets.rerun` rebuilds the same forced start
(:func:`forced_start`). A self-consistency column forks its representative sample (the one whose
tokens it shows) as a single greedy chain-of-thought answer (the same messages).

Forking needs token details (run with ``--logprobs K``) and a model that reports token
probabilities. Free text on a model that generates from token ids is tokenized by the model's
tokenizer; a column whose tokens carry no ids cannot be forked on such a model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lmwidgets.checks import shown
from lmwidgets.errors import ForkError

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result
    from lmwidgets.core.variant import Variant
    from lmwidgets.engines.base import Engine
    from lmwidgets.engines.registry import ModelRegistry

#: How much of the forced text a fork's label shows.
LABEL_TEXT_LIMIT = 24
#: A forked row's column in the fork's comparison: shown as it ran, not generated again (its
#: record's ``shown_as``; an earlier run's ``--vs`` column keeps its ``previous``).
KEPT = "kept"


# -- what is forced ----------------------------------------------------------------------------
def tokens_of(result: Result) -> list[dict[str, Any]]:
    """The column's token details, or a :class:`ForkError` saying how to get them."""
    if not result.tokens_detail:
        raise ForkError(
            f"Column {result.variant!r} has no token details to fork from: run it with "
            "--logprobs K (logprobs=K in lmwidgets.prompt) or with the view's tokens toggle on."
        )
    return result.tokens_detail


def check_position(result: Result, position: Any) -> int:
    """``position`` as an index into the column's tokens (0 is the first generated token)."""
    tokens = tokens_of(result)
    if isinstance(position, bool) or not isinstance(position, int):
        raise ForkError(f"The fork position must be a whole number, not {shown(position)}.")
    if not 0 <= position < len(tokens):
        raise ForkError(
            f"Column {result.variant!r} has {len(tokens)} generated tokens: the fork position "
            f"must be from 0 to {len(tokens) - 1}, not {position}."
        )
    return position


def resolve_token(result: Result, position: int, token: Any) -> tuple[int | None, str]:
    """The forced token as ``(id, text)``.

    ``token`` is an id among the alternatives at ``position`` (or the token generated there),
    the text of one of them, any other non-empty text (forced as written; its id is unknown),
    or a mapping ``{"id": ..., "text": ...}`` as the live view sends it."""
    here = tokens_of(result)[position]
    candidates = [here, *here.get("top", [])]
    if isinstance(token, Mapping):
        wanted_id, text = token.get("id"), token.get("text")
        if wanted_id is not None:
            return _by_id(result, position, candidates, wanted_id)
        token = text
    if isinstance(token, int) and not isinstance(token, bool):
        return _by_id(result, position, candidates, token)
    if not isinstance(token, str) or not token:
        raise ForkError(
            f"The forced token must be a token id, a non-empty text or {{'id', 'text'}}, not "
            f"{shown(token)}."
        )
    for candidate in candidates:
        if candidate.get("text") == token:
            return candidate.get("id"), token
    return None, token


def _by_id(
    result: Result, position: int, candidates: list[dict[str, Any]], wanted: Any
) -> tuple[int | None, str]:
    for candidate in candidates:
        if candidate.get("id") == wanted and candidate.get("id") is not None:
            return candidate["id"], str(candidate.get("text", ""))
    listed = ", ".join(f"{c.get('id')} {c.get('text')!r}" for c in candidates[1:]) or "none"
    raise ForkError(
        f"Token id {wanted!r} is not among the alternatives at position {position} of "
        f"{result.variant!r} (alternatives: {listed}). Give one of them, or the text to force."
    )


def forced_start(
    engine: Engine,
    prefix_ids: Sequence[int | None],
    prefix_text: str,
    forced_id: int | None,
    forced_text: str,
) -> tuple[tuple[int, ...], str]:
    """The ``(forced_ids, forced_text)`` an engine receives for a fork (also what rerun rebuilds
    from a fork's record, so both force exactly the same start).

    All ids known: they are forced as they are. Otherwise a model with a tokenizer (one that
    generates from ids) encodes free forced text after the kept ids; one without (scripted,
    served) goes by the text alone."""
    text = prefix_text + forced_text
    ids = [*prefix_ids, forced_id]
    if all(i is not None for i in ids):
        return tuple(int(i) for i in ids if i is not None), text
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is None:
        return (), text
    if forced_id is None and all(i is not None for i in prefix_ids):
        encoded = _encode(engine, tokenizer, forced_text)
        return tuple(int(i) for i in prefix_ids if i is not None) + encoded, text
    raise ForkError(
        f"{engine.name} generates from token ids, but the tokens to keep have none (they came "
        "from a model that reports only text): fork a column of this model instead."
    )


def _encode(engine: Engine, tokenizer: Any, text: str) -> tuple[int, ...]:
    """``text`` as token ids of ``engine`` (without special tokens)."""
    encode = getattr(getattr(tokenizer, "tokenizer", tokenizer), "encode", None)
    try:
        ids = encode(text, add_special_tokens=False) if callable(encode) else None
    except Exception as exc:  # a tokenizer's own error, said in our words
        raise ForkError(f"{engine.name}'s tokenizer cannot encode {text!r}: {exc}") from None
    if not ids:
        raise ForkError(f"{engine.name}'s tokenizer makes no tokens of {text!r}: force other text.")
    return tuple(int(i) for i in ids)


# -- the fork variant ---------------------------------------------------------------------------
def fork_label(label: str, position: int, text: str, taken: Sequence[str] = ()) -> str:
    """``"cot · fork at token 13 'Paris'"`` for ``position`` 12: tokens are numbered from 1
    there, as the view's token popover and divergence marker number them (``position`` is the
    0-based index of ``tokens_detail``); made unique among ``taken`` with `` (2)``..."""
    shown = text.strip() or text.replace("\n", "\\n").replace("\t", "\\t")
    if len(shown) > LABEL_TEXT_LIMIT:
        shown = shown[: LABEL_TEXT_LIMIT - 1] + "…"
    base = f"{label} · fork at token {position + 1} '{shown}'"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base} ({number})", number + 1
    return candidate


def fork_of(
    variant: Variant, result: Result, position: Any, token: Any, *, taken: Sequence[str] = ()
) -> Variant:
    """The fork of ``variant`` (whose run gave ``result``) at ``position`` with ``token``
    forced: same prompt, model, adapter and media; greedy; a label and record that say what was
    forced. ``taken`` are labels the new column must not repeat."""
    from lmwidgets.core.variant import Variant
    from lmwidgets.prompting.strategies import _postprocess_for

    position = check_position(result, position)
    if not variant.engine.capabilities.token_logprobs:
        raise ForkError(
            f"{variant.engine.name} cannot report token probabilities, so its columns cannot "
            "be forked."
        )
    forced_id, forced_text = resolve_token(result, position, token)
    kept = result.tokens_detail[:position]
    prefix_ids = [t.get("id") for t in kept]
    prefix_text = "".join(str(t.get("text", "")) for t in kept)
    ids, text = forced_start(variant.engine, prefix_ids, prefix_text, forced_id, forced_text)
    strategy = "cot" if variant.strategy == "self-consistency" else variant.strategy
    info = {k: v for k, v in variant.strategy_info.items() if k != "samples"}
    settings = replace(
        variant.settings,
        temperature=0.0,
        seed=None,
        logprobs=variant.settings.logprobs
        or len(result.tokens_detail[position].get("top", []))
        or 1,
    )
    return Variant(
        label=fork_label(variant.label, position, forced_text, taken),
        messages=variant.messages,
        engine=variant.engine,
        settings=settings,
        strategy=strategy,
        strategy_info=info,
        adapter=variant.adapter,
        template=variant.template,
        samples=1,
        postprocess=_postprocess_for(strategy),
        item=variant.item,
        input=variant.input,
        expected=variant.expected,
        item_index=variant.item_index,
        media=list(variant.media),
        recorded=dict(variant.recorded),  # e.g. a probe column's fork is judged against its attack
        forced_ids=ids,
        forced_text=text,
        fork={
            "from": variant.label,
            "position": position,
            "forced": {"id": forced_id, "text": forced_text},
            "prefix_ids": prefix_ids,
            "prefix_text": prefix_text,
        },
    )


def from_record(fork: Mapping[str, Any], engine: Engine) -> tuple[tuple[int, ...], str]:
    """The forced start a fork's record asks for (for :func:`lmwidgets.rerun`)."""
    forced = fork.get("forced") or {}
    return forced_start(
        engine,
        list(fork.get("prefix_ids") or []),
        str(fork.get("prefix_text") or ""),
        forced.get("id"),
        str(forced.get("text", "")),
    )


# -- forking a comparison -------------------------------------------------------------------------
def column_index(comparison: Comparison, column: Any) -> int:
    """The index into ``comparison.results`` of ``column`` (an index, or a label that names
    one result)."""
    results = comparison.results
    if isinstance(column, int) and not isinstance(column, bool):
        if not 0 <= column < len(results):
            raise ForkError(
                f"There is no column {column}: this comparison has {len(results)} results "
                f"(0 to {len(results) - 1})."
            )
        return column
    if isinstance(column, str):
        found = [i for i, r in enumerate(results) if r.variant == column]
        if len(found) == 1:
            return found[0]
        if found:
            raise ForkError(
                f"{column!r} names {len(found)} results (one per dataset item): give the "
                f"result's index instead (e.g. {found[0]})."
            )
    raise ForkError(
        f"No column {column!r} to fork (columns: {', '.join(comparison.variants)}); give a "
        "label or an index into the comparison's results."
    )


def row_indices(comparison: Comparison, index: int) -> list[int]:
    """The indices of the results in the same row (dataset item) as result ``index``."""
    width = len(comparison.variants) or 1
    start = index - index % width
    return list(range(start, min(start + width, len(comparison.results))))


def reseeded(variant: Variant, result: Result) -> Variant:
    """``variant`` again with the seed its run used (so a re-run repeats its text)."""
    seed = (result.record.get("generation") or {}).get("seed", variant.settings.seed)
    return replace(variant, settings=replace(variant.settings, seed=seed), rendered=None)


def kept_variant(variant: Variant, result: Result) -> Variant:
    """A column of the forked row as it ran: shown as it is, not generated again. Its result
    is a copy, so that judging or scoring the fork's comparison leaves ``result`` as it was."""
    kept = copy.deepcopy(result)
    kept.record.setdefault("shown_as", KEPT)
    for own in ("rating", "preferences"):  # given in the earlier run, counted there
        kept.record.pop(own, None)
    return replace(reseeded(variant, result), precomputed=kept)


def fork_variants(
    variants: Sequence[Variant],
    comparison: Comparison,
    column: Any,
    position: Any,
    token: Any,
) -> list[Variant]:
    """What a fork runs: the row of ``column`` (its dataset item's columns, shown as they ran:
    :func:`kept_variant`) plus the fork of ``column``, the only column generated. ``variants``
    made ``comparison`` (one per result, in order), as in a live view that keeps both."""
    index = column_index(comparison, column)
    if len(variants) != len(comparison.results):
        raise ForkError("The view's columns changed since this run; run the prompt again.")
    if variants[index].precomputed is not None and _previous(comparison.results[index]):
        raise ForkError(
            f"Column {comparison.results[index].variant!r} is an earlier run's, shown beside "
            "this one (--vs): fork it in that run's view, or with lmwidgets.fork(earlier, ...)."
        )
    row = row_indices(comparison, index)
    kept = [kept_variant(variants[i], comparison.results[i]) for i in row]
    labels = [v.label for v in kept]
    fork = fork_of(variants[index], comparison.results[index], position, token, taken=labels)
    return [*kept, fork]


def _previous(result: Result) -> bool:
    from lmwidgets.prompting.previous import PREVIOUS

    return result.record.get("shown_as") == PREVIOUS


def recorded_variants(
    comparison: Comparison,
    *,
    registry: ModelRegistry,
    images: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
) -> list[Variant]:
    """The variants that made ``comparison``, rebuilt from its records (models found among the
    loaded ones, media found again) as :func:`lmwidgets.rerun` does."""
    from lmwidgets.run.records import validate_records
    from lmwidgets.run.replay import _find_model, _variant_from

    records = validate_records(list(comparison.records))
    found = notes if notes is not None else []
    return [
        _variant_from(record, _find_model(record, registry, found), images, namespace)
        for record in records
    ]


def fork_variant(
    source: Comparison | Result,
    column: Any = None,
    position: Any = 0,
    token: Any = None,
    *,
    registry: ModelRegistry | None = None,
    images: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> Variant:
    """The fork (a :class:`~lmwidgets.run.runner.Variant`) of ``column`` of ``source`` (a
    Comparison; a Result needs no column) at token ``position`` with ``token`` forced (see
    :func:`resolve_token`), rebuilt from the column's record. Run it with
    :func:`~lmwidgets.run.runner.run_variants`, or use :func:`lmwidgets.fork`."""
    from lmwidgets.core.results import Comparison, Result
    from lmwidgets.engines.registry import REGISTRY
    from lmwidgets.run.records import validate_record
    from lmwidgets.run.replay import _find_model, _variant_from

    if isinstance(source, Comparison):
        result = source.results[column_index(source, column)]
    elif isinstance(source, Result):
        result = source
    else:
        raise ForkError(f"Fork a Comparison or a Result, not {type(source).__name__}.")
    check_position(result, position)
    validate_record(result.record)
    loaded = _find_model(result.record, registry or REGISTRY, [])
    variant = _variant_from(result.record, loaded, images, namespace)
    taken = source.variants if isinstance(source, Comparison) else [result.variant]
    return fork_of(variant, result, position, token, taken=taken)
