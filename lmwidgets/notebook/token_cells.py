"""Tokens as the live view's cells carry them: ``[text, p, [[alt_text, alt_p, alt_id], ...], id]``
(and a fifth ``True`` for a token a structured-answer constraint forced) per token (from a streaming row's :class:`~lmwidgets.engines.base.TokenLogprob` or a finished
:attr:`Result.tokens_detail <lmwidgets.core.results.Result.tokens_detail>`), and the answer's
confidence as its chip says it."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lmwidgets.core.safe_text import clean
from lmwidgets.sharing.static_tokens import confidence_text

if TYPE_CHECKING:
    from lmwidgets.core.results import Result
    from lmwidgets.engines.base import TokenLogprob

#: Token texts in a cell are cut to this many characters (a token is a few characters).
TOKEN_TEXT_LIMIT = 200


def _probability(logprob: Any) -> float:
    try:
        value = math.exp(float(logprob))
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return round(value, 4) if math.isfinite(value) else 0.0


def _token_text(text: Any, token_id: Any, decode: Callable[[int], str] | None) -> str:
    if text is None and isinstance(token_id, int) and decode is not None:
        with contextlib.suppress(Exception):  # an engine that cannot decode one id
            text = decode(token_id)
    if text is None:
        text = f"⟨{token_id}⟩" if token_id is not None else "?"
    return clean(text)[:TOKEN_TEXT_LIMIT]


def token_entry(token: TokenLogprob, decode: Callable[[int], str] | None = None) -> list[Any]:
    """One token as a cell carries it: ``[text, p, [[alt_text, alt_p, alt_id], ...], id]``."""
    alternatives = [
        [_token_text(text, alt_id, decode), _probability(logprob), alt_id]
        for alt_id, text, logprob in token.top
    ]
    return [
        _token_text(token.text, token.id, decode),
        _probability(token.logprob),
        alternatives,
        token.id,
        *([True] if token.forced else []),
    ]


def detail_entry(detail: dict[str, Any]) -> list[Any]:
    """One entry of ``Result.tokens_detail`` as a cell carries it (see :func:`token_entry`)."""
    alternatives = [
        [_token_text(alt.get("text"), alt.get("id"), None), _probability(alt.get("logprob")),
         alt.get("id")]
        for alt in detail.get("top") or []
        if isinstance(alt, dict)
    ]  # fmt: skip
    token_id = detail.get("id")
    return [
        _token_text(detail.get("text"), token_id, None),
        _probability(detail.get("logprob")),
        alternatives,
        token_id if isinstance(token_id, int) else None,
        *([True] if detail.get("forced") is True else []),
    ]


def _separator(sample: int, answer: str | None = None) -> list[Any]:
    """The line between the samples of a multi-sample cell (not a token: no probability)."""
    head = f"── sample {sample + 1}" + (f" · answer: {answer}" if answer is not None else "")
    return [("\n\n" if sample else "") + head + " ──\n", None, [], None]


def _decoder(engine: Any) -> Callable[[int], str] | None:
    from lmwidgets.engines.base import RowOutput

    text_of = getattr(engine, "text_of", None)
    if text_of is None:
        return None
    vocabulary = getattr(engine, "vocabulary", None)

    def decode(token_id: int) -> str:
        if isinstance(vocabulary, dict) and token_id in vocabulary:
            return str(vocabulary[token_id])
        return str(text_of(RowOutput(token_ids=[token_id])))

    return decode


def _stream_key(entries: Sequence[Sequence[Any]]) -> list[Any]:
    """A cell's tokens as a stream to compare: ids where known, else texts."""
    return [e[3] if e[3] is not None else e[0] for e in entries]


def _confidence(result: Result) -> tuple[float | None, str]:
    """The answer's confidence and how the cell says it, as the static copy does
    (:func:`~lmwidgets.sharing.static_tokens.confidence_text`: a vote share, or the
    probability of a short answer's tokens); (None, '') when it is not shown."""
    text = confidence_text(result)
    if not text:
        return None, ""
    confidence = getattr(result, "confidence", None)
    if confidence is None and text.startswith("vote"):
        votes = result.extras.get("votes") or {}
        confidence = max(votes.values(), default=0) / len(result.extras.get("samples") or [1])
    return (None if confidence is None else float(confidence)), text
