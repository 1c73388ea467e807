"""Given choices: ``--choices VAR`` (one list for every item) or a dataset's ``choices`` column
(one list per item), and ``--score perplexity``.

Such a run generates nothing: each column scores every choice by the model's log-probability
of the choice text after the prompt (:mod:`lmwidgets.engines.choices` says exactly how, as
lm-evaluation-harness does), and its answer is the likeliest choice (lm-eval's ``acc``), with
the length-normalized pick (``acc_norm``) beside it. A dataset item's ``expected`` is a choice's
text or its index (``0``, ``"2"``); ``--score perplexity`` instead scores ``expected`` itself
and reports its log-likelihood per token.

Everything is checked here, before anything runs: the choices (a list of at least two distinct,
non-empty strings), ``expected`` against them, the strategies (zero-shot and few-shot; chain of
thought needs generation), no structured answer or probe, and models that can score choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lmwidgets.checks import shown
from lmwidgets.core.examples import listed
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import Engine
from lmwidgets.errors import ChoicesError

#: Strategies that can score given choices (the others need generated text).
CHOICE_STRATEGIES = ("zero-shot", "few-shot")
#: The scorer names of runs of given choices (records keep them as ``scorer``).
LIKELIHOOD, PERPLEXITY = "likelihood", "perplexity"
#: The most choices one item may have.
MAX_CHOICES = 100


@dataclass(frozen=True)
class ChoicePlan:
    """What a run of given choices does: the shared choices (None: each item's own) and
    whether it scores ``expected`` per token instead (``--score perplexity``)."""

    shared: list[str] | None
    perplexity: bool = False

    def apply(self, variant: Variant, row: int) -> None:
        """Give ``variant`` (of dataset item ``row``) its choices and ``expected`` as the
        choice's text."""
        item = variant.item or {}
        if self.perplexity:
            variant.choices, variant.perplexity = [str(variant.expected)], True
            return
        if self.shared is None and item.get("choices") is None:
            raise ChoicesError(
                f"Dataset item {row} has no choices: with a 'choices' column every item needs "
                "its own list (or give one list for all with --choices VAR)."
            )
        choices = (
            self.shared
            if self.shared is not None
            else check_choices(item.get("choices"), f"dataset item {row}'s choices")
        )
        variant.choices = list(choices)
        if item.get("expected") is not None:
            variant.expected = choices[expected_index(item["expected"], choices, row)]


def check_choices(value: Any, where: str = "--choices") -> list[str]:
    """``value`` as a list of at least two distinct non-empty strings, else a
    :class:`ChoicesError` naming what is wrong."""
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, Mapping):
        raise ChoicesError(
            f"{where} must be a list of strings (the choices), not {shown(value)}: e.g. "
            "choices = ['Paris', 'Lyon', 'Marseille'], then --choices choices."
        )
    tolist = getattr(value, "tolist", None)
    items = tolist() if callable(tolist) else value
    try:
        items = list(items)
    except TypeError:
        raise ChoicesError(f"{where} must be a list of strings, not {shown(value)}.") from None
    if len(items) < 2:
        raise ChoicesError(f"{where} needs at least two choices to pick from (got {len(items)}).")
    if len(items) > MAX_CHOICES:
        raise ChoicesError(f"{where} has {len(items)} choices; at most {MAX_CHOICES} are scored.")
    for number, item in enumerate(items):
        if not isinstance(item, str):
            raise ChoicesError(
                f"{where}: choice {number} is {shown(item)}, not text. Every choice must be a "
                "string (write numbers as '4')."
            )
        if not item.strip():
            raise ChoicesError(f"{where}: choice {number} is empty; every choice needs text.")
    repeated = sorted({c for c in items if items.count(c) > 1})
    if repeated:
        raise ChoicesError(f"{where} lists {listed(repeated)} more than once.")
    return items


def expected_index(expected: Any, choices: Sequence[str], row: int) -> int:
    """Which choice ``expected`` names: its exact text, its text without surrounding spaces,
    else its index (an int, or digits when no choice is that text)."""
    if isinstance(expected, str):
        if expected in choices:
            return list(choices).index(expected)
        stripped = [c.strip() for c in choices]
        if expected.strip() in stripped:
            return stripped.index(expected.strip())
        if expected.strip().isdigit():
            expected = int(expected.strip())
    if isinstance(expected, float) and expected.is_integer():
        expected = int(expected)
    if (
        isinstance(expected, int)
        and not isinstance(expected, bool)
        and 0 <= expected < len(choices)
    ):
        return expected
    raise ChoicesError(
        f"Dataset item {row}: expected {shown(expected)} is neither one of its choices "
        f"({listed(list(choices))}) nor a choice's index (0 to {len(choices) - 1})."
    )


def plan_choices(
    choices: Any,
    items: Sequence[Mapping[str, Any] | None],
    score: str,
    strategies: Sequence[str],
    engines: Sequence[Engine],
) -> ChoicePlan | None:
    """The run's :class:`ChoicePlan` (None for a run that generates), checked: ``choices`` is
    ``--choices``'s value, ``items`` the dataset's items, ``score`` the scorer's spec."""
    per_item = any(item is not None and "choices" in item for item in items)
    if score == PERPLEXITY:
        if choices is not None:
            raise ChoicesError(
                "--score perplexity scores each item's expected text, not given choices: "
                "drop --choices (or the --score)."
            )
        _check_expected(items)
        plan = ChoicePlan(None, perplexity=True)
    elif choices is None and not per_item:
        if score == LIKELIHOOD:
            raise ChoicesError(
                "--score likelihood picks among given choices: give them with --choices VAR "
                "or a dataset column 'choices'."
            )
        return None
    else:
        if score not in ("auto", LIKELIHOOD):
            raise ChoicesError(
                f"With given choices the answer is the likeliest choice, scored against "
                f"expected by likelihood: drop --score {score}."
            )
        shared = None if choices is None else check_choices(choices)
        plan = ChoicePlan(shared)
    _check_strategies(strategies)
    _check_engines(engines)
    return plan


def _check_expected(items: Sequence[Mapping[str, Any] | None]) -> None:
    if all(item is None for item in items):
        raise ChoicesError(
            "--score perplexity scores a dataset's expected text: give --dataset VAR with an "
            "'expected' column."
        )
    for row, item in enumerate(items):
        if item is None or item.get("expected") in (None, ""):
            raise ChoicesError(
                f"--score perplexity: dataset item {row} has no expected text to score."
            )


def _check_strategies(strategies: Sequence[str]) -> None:
    generating = [name for name in strategies if name not in CHOICE_STRATEGIES]
    if generating:
        raise ChoicesError(
            f"Given choices are scored, not generated, so {listed(generating)} (which needs the "
            f"model's own text) cannot run with them. Use {' or '.join(CHOICE_STRATEGIES)}."
        )


def _check_engines(engines: Sequence[Engine]) -> None:
    for engine in engines:
        if not engine.capabilities.choice_scores or not hasattr(engine, "score_choices"):
            raise ChoicesError(
                f"{engine.name} ({engine.engine} engine) cannot score choices: " + _why_not(engine)
            )


def _why_not(engine: Engine) -> str:
    if engine.engine == "openai":
        return (
            "the server does not return prompt log-probabilities (vLLM's completions API "
            "does). Load the model into the kernel (%lm load) to score choices."
        )
    if engine.capabilities.media:
        return "scoring choices works with text-only models; load a text model."
    return "it has no log-probabilities of given text."


def check_no_generation_options(
    asked: Sequence[str], logprobs: int, plan: ChoicePlan | bool | None
) -> None:
    """Options that shape generated text have nothing to act on with given choices (``plan``:
    the run's :class:`ChoicePlan`, or whether ``--choices`` / ``--score perplexity`` ask).
    ``asked`` names the axis kinds the run asks for (``a structured answer``, ``--probe``;
    :mod:`lmwidgets.core.axis_kinds`): each of them acts on generated text."""
    if not plan:
        return
    perplexity = isinstance(plan, ChoicePlan) and plan.perplexity
    what = "--score perplexity" if perplexity else "Given choices"
    for flag in asked:
        if flag:
            raise ChoicesError(
                f"{what} generate nothing, so {flag} has no text to act on: drop one of them."
            )
    if logprobs:
        raise ChoicesError(
            f"{what} report every choice's log-probability already (Result.choice_logprobs): "
            "drop --logprobs."
        )
