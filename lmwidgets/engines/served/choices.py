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


def _tokens(client: Any, model: str, text: str) -> list[int]:
    answer = client.post("/tokenize", {"model": model, "prompt": text, "add_special_tokens": False})
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        raise ServerError("The server's /tokenize answer holds no token ids.")
    return tokens


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
    request per choice; once ``stop`` is set, :class:`ScoringStopped` with the prompts whose
    choices were all scored."""
    client, model = engine._client, engine.model_id
    pairs: list[tuple[int, str | None, list[int], int]] = []
    for index, request in enumerate(requests):
        head_text, _ = split_pair(request.prompt.text, request.choices[0])
        head = _tokens(client, model, head_text)
        for choice in request.choices:
            whole = _tokens(client, model, head_text + split_pair(request.prompt.text, choice)[1])
            start = min(len(head), len(whole) - 1)  # a choice merged into the prompt: its last
            pairs.append((index, request.adapter, whole, max(start, 1)))
    scores: dict[int, ChoiceScore] = {}
    for n, (index, adapter, whole, start) in enumerate(pairs):
        if stop is not None and stop.is_set():
            raise ScoringStopped(_grouped(requests, pairs[:n], scores)[:index])
        answer = client.post(
            "/v1/completions",
            {
                "model": adapter or model,
                "prompt": whole,
                "max_tokens": 1,
                "temperature": 0,
                "prompt_logprobs": 1,
            },
        )
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list) or len(choices) != 1:
            raise ServerError("The server did not answer a choice's prompt.")
        scores[n] = _score(choices[0].get("prompt_logprobs") or [], whole, start)
    return _grouped(requests, pairs, scores)


def _grouped(
    requests: Sequence[ChoiceRequest], pairs: Sequence[tuple[int, Any, Any, Any]], scores: dict
) -> list[list[ChoiceScore]]:
    """The scores of ``pairs`` grouped by request, in the requests' order."""
    out: list[list[ChoiceScore]] = [[] for _ in requests]
    for n, (index, *_rest) in enumerate(pairs):
        out[index].append(scores[n])
    return out
