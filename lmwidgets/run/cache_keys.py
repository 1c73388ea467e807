"""What the response cache keys a column on, and how a column's outputs are kept.

A column's key is the sha256 of a canonical JSON (sorted keys, no spaces) of everything that
determines its output: the model (a kernel model's weights sha256 with its dtype, device and
kernels; a served model's URL, model id, server and version), the adapter (its files' sha256 and
scale; a served adapter's name and path), the exact rendered prompt (text, token count and, where
the engine exposes them, the token ids), the media's content hashes and regions, every
generation setting (temperature, top-p, log-probabilities asked for, the token budget actually
used, the seed when sampling), the number of samples, a fork's forced tokens, ``ignore_eos``
and an enforced structured-answer constraint (its schema, pattern, choices or grammar).
Labels (the model's or adapter's name, a file's location) are not keyed: the same weights under
another name are the same model.

A dataset item's own media are read only when its batch runs, so its column is keyed before
that on its messages (and the engine's template text of them) and on its media's bytes (a
file's, raw bytes; an in-memory value's decoded content) with what the run marks on them (an
image's region): a re-run of an unchanged cell finds its rows without decoding each item first.

A column has no key (it is never cached) when it samples without a seed it was given (a seed
drawn for the run does not count), when it is not generated (an earlier run's column shown
beside this one), when its model or adapter cannot be pinned (no weights hash: a scripted model whose answers are code, a scripted
adapter's transform), or when a dataset item's media cannot be told without downloading them
(a URL).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import RowOutput, TokenLogprob, adapter_record
from lmwidgets.media.base import Deferred, is_deferred

#: Bumped when what a key covers or how outputs are kept changes (old entries then miss).
KEY_FORMAT = 1

#: Record fields that name or locate a model or item rather than identify its content.
_LABELS = ("name", "location")


@dataclass
class CachedColumn:
    """A column as the cache keeps it: its rows' outputs, the seed it ran with, and which run
    generated it (``run``, ``created``)."""

    outputs: list[RowOutput]
    seed: int | None
    run: str
    created: str


def canonical(value: Any) -> str:
    """``value`` as canonical JSON (raises TypeError or ValueError for what JSON cannot hold)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def model_identity(record: dict[str, Any]) -> dict[str, Any] | None:
    """What identifies a model's outputs in its record, or None when it cannot be pinned."""
    served = record.get("kind") == "served"
    if not served and not record.get("weights_sha256"):
        return None
    drop = (*_LABELS, "source") if not served else _LABELS  # a served model *is* its URL
    drop = (*drop, "cpu_kernels_choice")  # how the kernels were chosen (timings, the CPU)
    return {k: v for k, v in record.items() if k not in drop}


def adapter_identity(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What identifies an adapter (``{}`` for the base model), or None when it cannot be pinned."""
    if record is None:
        return {}
    if record.get("weights_sha256"):
        return {k: v for k, v in record.items() if k not in (*_LABELS, "path")}
    if record.get("served"):
        return dict(record)  # the server routes by name
    return None


def _prompt_ids(payload: Any) -> str | None:
    """sha256 of the prompt's token ids when the engine's payload leads with them."""
    first: Any = payload[0] if isinstance(payload, tuple) and payload else None
    if callable(getattr(first, "tolist", None)):  # a tensor or array of ids
        first = first.tolist()
    if isinstance(first, (list, tuple)) and all(isinstance(i, int) for i in first):
        return hashlib.sha256(canonical(list(first)).encode("utf-8")).hexdigest()
    return None


def _media_identity(item: Any) -> dict[str, Any] | None:
    """What identifies a media item's content (None: it cannot be told without reading it)."""
    if isinstance(item, Deferred):  # a dataset item's own: its bytes, not decoded for the key
        return item.content_identity()
    record = item.record()
    return {k: v for k, v in record.items() if k not in (*_LABELS, "source", "bytes_sha256")}


def _prompt_identity(variant: Variant) -> dict[str, Any] | None:
    """What identifies the prompt the model reads: the rendered text and tokens; for a
    dataset item whose media are read only when its batch runs (not rendered yet), its
    messages and the engine's template text of them (the media go in where the messages say,
    and the key holds their content). None when neither is known."""
    rendered = variant.rendered
    if rendered is not None:
        return {
            "text": rendered.text,
            "tokens": rendered.n_tokens,
            "ids": _prompt_ids(rendered.payload),
        }
    if not is_deferred(variant.media):
        return None
    template = getattr(variant.engine, "template_text", None)
    try:
        text = template(variant.messages) if callable(template) else None
    except Exception:  # no key; rendering it in its batch says what is wrong
        return None
    return {"messages": variant.messages, "template": text}


def column_key(variant: Variant, *, ignore_eos: bool = False) -> str | None:
    """The cache key of a prepared variant, or None when it must not be cached."""
    settings = variant.settings
    if getattr(variant, "precomputed", None) is not None:
        return None  # not generated in this run (an earlier run's column)
    # A seed drawn for the run (--trials without --seed) stands for no seed at all.
    seeded = settings.seed is not None and not getattr(variant, "seed_drawn", False)
    if settings.sampling and not seeded:
        return None
    engine = variant.engine
    model = model_identity(engine.record())
    adapter = adapter_identity(adapter_record(engine, variant.adapter))
    if model is None or adapter is None:
        return None
    prompt = _prompt_identity(variant)  # None: not prepared
    media = [_media_identity(item) for item in variant.media] if prompt is not None else [None]
    if prompt is None or any(m is None for m in media):
        return None
    payload = {
        "format": KEY_FORMAT,
        "model": model,
        "adapter": adapter,
        "prompt": prompt,
        "media": media,
        "generation": {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "logprobs": settings.logprobs,
            "max_new_tokens": variant.max_new_tokens,
            "seed": settings.seed if settings.sampling else None,  # greedy ignores it
            "samples": variant.samples,
            "ignore_eos": bool(ignore_eos),
        },
        "forced": {"ids": [int(i) for i in variant.forced_ids], "text": variant.forced_text},
    }
    constraint = getattr(variant, "constraint", None)
    if constraint is not None and getattr(variant, "enforced", False):
        payload["constraint"] = constraint.record()  # the grammar decoding followed
    try:
        text = canonical(payload)
    except (TypeError, ValueError):  # a record holding something JSON cannot say
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def storable(variant: Variant, outputs: Sequence[RowOutput]) -> bool:
    """Whether a column's outputs are whole: every sample finished (end of text or budget)."""
    return len(outputs) == variant.samples and all(
        o.finish_reason in ("eos", "length") for o in outputs
    )


# Keeping outputs -------------------------------------------------------------------------------


def _logprob_list(token: TokenLogprob) -> list[Any]:
    return [token.id, token.text, token.logprob, [list(alt) for alt in token.top]]


def encode_column(column: CachedColumn) -> bytes:
    """The stored form of a column (JSON; log-probabilities of -inf are kept as such)."""
    rows = [
        {
            "ids": list(o.token_ids),
            "pieces": list(o.pieces),
            "finish": o.finish_reason,
            "first": o.first_token_seconds,
            "seconds": o.seconds,
            "logprobs": [_logprob_list(t) for t in o.logprobs],
        }
        for o in column.outputs
    ]
    entry = {"rows": rows, "seed": column.seed, "run": column.run, "created": column.created}
    return json.dumps(entry, separators=(",", ":")).encode("utf-8")


def _token(item: list[Any]) -> TokenLogprob:
    token_id, text, logprob, top = item
    alternatives = tuple((a[0], a[1], float(a[2])) for a in top)
    return TokenLogprob(token_id, text, float(logprob), alternatives)


def decode_column(data: bytes) -> CachedColumn:
    """A stored column back (raises ValueError, KeyError or TypeError when it is not one)."""
    entry = json.loads(data.decode("utf-8"))
    outputs = [
        RowOutput(
            token_ids=[int(i) for i in row["ids"]],
            finish_reason=str(row["finish"]),
            first_token_seconds=row["first"],
            seconds=float(row["seconds"]),
            pieces=[str(p) for p in row["pieces"]],
            logprobs=[_token(t) for t in row["logprobs"]],
        )
        for row in entry["rows"]
    ]
    seed = entry["seed"]
    return CachedColumn(outputs, seed, str(entry["run"]), str(entry["created"]))
