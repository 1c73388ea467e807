"""Scoring given choices on a served model: vLLM's prompt log-probabilities.

Each (prompt, choice) pair is tokenized by the server (``/tokenize``) as lm-eval pairs them
(:func:`~lmwidgets.engines.choices.split_pair`: the prompt alone, then prompt+choice; the
choice's tokens are those after the prompt's), and each pair's tokens go to
``/v1/completions`` (``prompt_logprobs: 1``, one generated token, the adapter as ``model``);
the server's prefix cache computes a prompt shared by its choices once. The requests go one at
a time: vLLM (0.32) fails on the prompt log-probabilities of requests scheduled together when
it serves LoRA adapters (``--enable-lora``; its LoRA logits layer), which would take the whole
server down. Other servers do not return prompt log-probabilities: their models say so before
anything runs (:mod:`lmwidgets.prompting.choices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmwidgets.engines.choices import ChoiceRequest, ChoiceScore, ScoringStopped, split_pair
from lmwidgets.errors import ServerError


def _tokens(client: Any, model: str, text: str, stop: Any) -> list[int]:
    _check(stop)
    answer = client.post("/tokenize", {"model": model, "prompt": text, "add_special_tokens": False})
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        raise ServerError("The server's /tokenize answer holds no token ids.")
    return tokens


def _check(stop: Any) -> None:
    """:class:`ScoringStopped` once ``stop`` is set: checked before every request to the
    server, so a Stop sends nothing more (a request already sent is short: one token)."""
    if stop is not None and stop.is_set():
        raise ScoringStopped()


def _score(entries: Any, ids: list[int], start: int) -> ChoiceScore:
    """A choice's score from the prompt log-probabilities of its tokens (``ids[start:]``)."""
    total, greedy = 0.0, True
    for position in range(start, len(ids)):
        entry = entries[position] if position < len(entries) else None
        found = entry.get(str(ids[position])) if isinstance(entry, dict) else None
        if not isinstance(found, dict) or not isinstance(found.get("logprob"), (int, float)):
            raise ServerError(
                "The server answered without the prompt log-probabilities of a choice's tokens."
            )
        total += float(found["logprob"])
        greedy = greedy and found.get("rank") == 1
    return ChoiceScore(logprob=total, n_tokens=len(ids) - start, greedy=greedy)


def score_served(
    engine: Any, requests: Sequence[ChoiceRequest], stop: Any = None
) -> list[list[ChoiceScore]]:
    """Every choice of every request scored by the server (see the module docstring), one
    request after the other; once ``stop`` is set, :class:`ScoringStopped` with the requests
    whose choices were all scored (a request is tokenized as it is scored, so a Stop sends no
    more tokenizing either)."""
    client, model = engine._client, engine.model_id
    scored: list[list[ChoiceScore]] = []
    for request in requests:
        try:
            scored.append(_score_request(client, model, request, stop))
        except ScoringStopped:
            raise ScoringStopped(scored) from None
    return scored


def _score_request(client: Any, model: str, request: ChoiceRequest, stop: Any) -> list[ChoiceScore]:
    """One request's choices, each tokenized after the prompt (lm-eval's pairing) and scored."""
    head_text, _ = split_pair(request.prompt.text, request.choices[0])
    head = _tokens(client, model, head_text, stop)
    scores = []
    for choice in request.choices:
        whole = _tokens(client, model, head_text + split_pair(request.prompt.text, choice)[1], stop)
        start = min(len(head), len(whole) - 1)  # a choice merged into the prompt: its last
        scores.append(_choice_score(client, request.adapter or model, whole, max(start, 1), stop))
    return scores


def _choice_score(client: Any, model: str, whole: list[int], start: int, stop: Any) -> ChoiceScore:
    """The server's prompt log-probabilities of ``whole``, summed from ``start`` (the choice)."""
    _check(stop)
    answer = client.post(
        "/v1/completions",
        {"model": model, "prompt": whole, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 1},
    )
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or len(choices) != 1:
        raise ServerError("The server did not answer a choice's prompt.")
    return _score(choices[0].get("prompt_logprobs") or [], whole, start)
