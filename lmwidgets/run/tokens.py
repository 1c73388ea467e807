"""Generated tokens as results keep them (:attr:`Result.tokens_detail
<lmwidgets.core.results.Result.tokens_detail>`) and the answer confidence computed from them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lmwidgets.engines.base import Engine, RowOutput, TokenLogprob


def token_dicts(engine: Engine, logprobs: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    """Tokens as :attr:`Result.tokens_detail` holds them: ``{"text", "id", "logprob", "top"}``,
    plus ``"forced": True`` on a token a structured-answer constraint forced (the only token
    its mask allowed).

    A token whose engine gave no text is decoded from its id (one id per call of the engine's
    ``text_of``; ids repeat, so each is decoded once). Also usable on a streaming row's tokens.
    """
    decoded: dict[int, str] = {}

    def text(token_id: int | None, given: str | None) -> str:
        if given is not None:
            return given
        if token_id is None:
            return ""
        if token_id not in decoded:
            decoded[token_id] = engine.text_of(RowOutput(token_ids=[token_id], finish_reason="eos"))
        return decoded[token_id]

    return [
        {
            "text": text(token.id, token.text),
            "id": token.id,
            "logprob": float(token.logprob),
            "top": [{"text": text(i, t), "id": i, "logprob": float(lp)} for i, t, lp in token.top],
            **({"forced": True} if token.forced else {}),
        }
        for token in logprobs
    ]


def answer_confidence(answer: str | None, tokens: Sequence[dict[str, Any]]) -> float | None:
    """The probability of the answer's tokens: ``exp`` of the sum of the log-probabilities of
    the tokens that cover the answer's last occurrence in the tokens' text (the final answer is
    usually the last thing said). None without an answer, without tokens, or when the answer is
    not found verbatim in them (an answer normalized by extraction, e.g. ``15`` from ``fifteen``).
    """
    if not answer or not tokens:
        return None
    joined = "".join(str(t["text"]) for t in tokens)
    start = joined.rfind(answer)
    if start < 0:
        return None
    end, offset, total = start + len(answer), 0, 0.0
    for token in tokens:
        length = len(str(token["text"]))
        if offset < end and offset + length > start:
            total += float(token["logprob"])
        offset += length
        if offset >= end:
            break
    return math.exp(total)
