"""Scoring given choices: what engines compute and how a column picks its answer from it.

Instead of generating, a column can score given continuations of its prompt (``--choices``,
``--score perplexity``): the log-probability of each continuation's tokens after the prompt.
The numbers are those of lm-evaluation-harness's ``loglikelihood`` requests, and the picks its
``acc`` and ``acc_norm``, so a multiple-choice set scored here agrees with lm-eval:

* the prompt and a choice are paired as lm-eval's ``_encode_pair`` does (:func:`split_pair`):
  whitespace that ends the prompt (a chat template's newline after the assistant header) moves
  to the start of the continuation, the prompt and prompt+choice are tokenized, and the
  continuation's tokens are those of the whole after the prompt's;
* ``acc`` picks the choice of the highest total log-probability; ``acc_norm`` the highest
  log-probability per character of the choice text as given (``len(choice)``, lm-eval's
  ``completion_len``); ties go to the first choice (``numpy.argmax``).

Engines that can do this say so in :attr:`~lmwidgets.engines.base.Capabilities.choice_scores`
and have ``score_choices(requests, *, stop) -> list[list[ChoiceScore]]``; once ``stop`` (a
:class:`~lmwidgets.engines.base.StopSignal`) is set during a batch they raise
:class:`ScoringStopped` with the requests scored whole so far. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ChoiceRequest:
    """One prompt and the continuations to score after it, through ``adapter`` (None: base)."""

    prompt: Any  # a Rendered prompt
    choices: tuple[str, ...]
    adapter: str | None = None


@dataclass(frozen=True)
class ChoiceScore:
    """One continuation's total log-probability (natural log), its number of tokens, and
    whether greedy decoding would have produced exactly it (lm-eval's ``is_greedy``)."""

    logprob: float
    n_tokens: int
    greedy: bool = False


class ScoringStopped(Exception):
    """A batch of choices stopped midway (the Stop button): ``partial`` holds the scores of
    its first requests that were scored whole, in order (a prompt whose choices were not all
    scored has no pick; a model's forward pass scores the whole batch at once, so a model in
    the kernel has none)."""

    def __init__(self, partial: Sequence[Sequence[ChoiceScore]] = ()) -> None:
        super().__init__("scoring stopped")
        self.partial = [list(scores) for scores in partial]


@runtime_checkable
class ChoiceScorer(Protocol):
    """An engine that scores given choices (``Capabilities.choice_scores``)."""

    def score_choices(
        self, requests: Sequence[ChoiceRequest], *, stop: Any = None
    ) -> list[list[ChoiceScore]]:
        """Each request's choices scored after its prompt, in the requests' order."""
        ...


def split_pair(context: str, continuation: str) -> tuple[str, str]:
    """lm-eval's pairing of a prompt and a continuation: the prompt's trailing whitespace
    moves to the start of the continuation (so a word keeps its leading space token)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        return context[:-spaces], context[-spaces:] + continuation
    return context, continuation


def first_best(values: Sequence[float]) -> int:
    """The index of the largest value, the first one on a tie (``numpy.argmax``)."""
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best


def acc_pick(logprobs: Sequence[float]) -> int:
    """lm-eval's ``acc`` prediction: the choice of the highest total log-probability."""
    return first_best(logprobs)


def acc_norm_pick(logprobs: Sequence[float], choices: Sequence[str]) -> int:
    """lm-eval's ``acc_norm`` prediction: the highest log-probability per character of the
    choice text (``len(choice)``)."""
    return first_best([lp / len(text) for lp, text in zip(logprobs, choices, strict=True)])


def probabilities(logprobs: Sequence[float]) -> list[float]:
    """The choices' log-probabilities normalized over the choices (a softmax), for bars."""
    if not logprobs:
        return []
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]
