"""Scoring dataset answers against their ``expected`` value: the built-in scorers and yours.

``score=`` in :func:`lmwidgets.prompt` (``--score`` in a notebook) picks one scorer per run. The
spec strings below are also what the run records keep (``record["scorer"]``), so that
``lmwidgets.rerun`` scores a re-run the same way:

``auto`` (the default)
    The extracted answer (``Result.answer``) equals ``expected`` after normalization; or, for a
    numeric ``expected``, the last number of the answer equals it (as ``number`` does); or the
    normalized ``expected`` appears as whole words in the normalized answer or in the text's
    last line ("The opposite of hot is cold." is right for ``cold``; "14" is wrong for ``4``).
``exact``
    Only the normalized exact match of the extracted answer (case, punctuation, articles and
    number formatting ignored; see :func:`lmwidgets.core.answers.normalize`).
``contains``
    ``expected`` appears anywhere in the text, as whole words after normalization (a numeric
    ``expected`` matches any equal number in the text).
``regex:PATTERN``
    The last match of ``PATTERN`` in the text is the answer (its group named ``answer``, else
    its first group, else the whole match), compared like ``exact``. No match scores 0.
``number``, ``number:TOL``, ``number:P%``
    The last number in the extracted answer against a numeric ``expected``: equal within a
    relative 1e-6 by default, within ``TOL`` absolute (``number:0.01``) or ``P`` percent
    (``number:1%``). An ``expected`` that is not a number is an error for that item.
``choice``
    Multiple choice: the letter A-E chosen in the answer ("The answer is (B)", "B) Paris",
    "b.", "Answer: C", "option D") against the letter in ``expected``.
``fields``
    A structured answer against a dict ``expected``, field by field (with ``json=`` /
    ``--json``): the share of expected fields that ``Result.parsed`` gets right, ``how`` naming
    the misses (``3 of 4 fields match (age: got 35, expected 34)``); see
    :mod:`lmwidgets.prompting.fields`. ``Result.expected`` shows the dict as JSON text.
``likelihood``, ``perplexity``
    Given choices (``--choices``, a dataset's ``choices`` column; ``likelihood`` is what their
    runs use) and ``expected``'s log-likelihood per token: no generation, the columns are
    scored as they run (:mod:`lmwidgets.prompting.choices`, :mod:`lmwidgets.run.choices`).
a function ``(answer, expected, item) -> bool | float``
    Yours: ``answer`` is ``Result.answer``, ``expected`` one alternative, ``item`` the dataset
    row (a dict). It returns True/False or a score in 0..1. Pass the function itself, or (from
    ``%%prompt --score NAME``) the name of a function defined in the notebook; records keep
    ``callable:NAME``. A built-in name wins over a notebook function of the same name.

With a structured answer (a run with ``json=``, ``regex=``, ``one_of=`` or ``grammar=``), the
other scorers look at the structured answer of a valid column rather than at the whole text's
extracted answer: the label, the match or the JSON text, and for JSON a lone value (``42``,
``"Paris"``) or the value of an object's only field (``{"answer": 42}``) as text, so ``number``
or ``exact`` score ``{"answer": 42}`` against ``42``. An invalid column is scored on its text
as without a constraint.

Every scorer gives a score in 0..1 (``Result.score``; ``Result.correct`` is ``score >= 0.5``)
and says how it judged in a few words (``Result.verdict``, shown beside ✓ / ✗): a match says
how it matched (``equals 14``, ``contains Paris``, ``3.141 within 1% of 3.14``, ``chose B``,
``regex found 12``, ``myfn: 0.75``), a miss says what was found (``got 7`` for an answer
that is a short part of the text, else ``no match`` / ``not in the answer``; ``not in the
text``, ``no number in the answer``, ``chose C``) and the view adds what was expected.
``expected`` may list alternatives separated by ``|``: the best-scoring one counts. A column
without an answer (empty text, failed) scores 0 without calling the scorer. A scorer that fails
on an item (your function raises or returns something else; a ``number`` expected that is not a
number) leaves that item unscored with a note, and the other items are still scored.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from lmwidgets.checks import shown
from lmwidgets.core.answers import is_part, normalize
from lmwidgets.core.constraints import parsed_for_display
from lmwidgets.errors import InvalidArgumentError, StrategyError

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result

#: The built-in scorers as ``score=`` takes them (``auto`` is the default).
SCORERS = (
    "auto",
    "exact",
    "contains",
    "regex:PATTERN",
    "number[:TOL]",
    "choice",
    "fields",
    "likelihood",
    "perplexity",
)
#: Relative tolerance of ``number`` (and of ``auto`` with a numeric expected) without ``:TOL``.
DEFAULT_RELATIVE_TOLERANCE = 1e-6
#: Scoring failures shown one by one in ``Comparison.notes`` before they are counted.
_NOTED_FAILURES = 5
_COMPARED_LIMIT = 120
#: A verdict repeats an answer of at most this many characters ("got 7"), never a sentence.
_SAID_LIMIT = 40

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


class ScoreFailure(Exception):
    """A scorer could not score one item (its message says why); the run goes on."""


@dataclass(frozen=True)
class Output:
    """What a scorer looks at: one column's extracted answer, its text, the dataset item and,
    with a constraint, its structured answer as plain JSON data (None when invalid)."""

    answer: str | None
    text: str
    item: Mapping[str, Any] | None = None
    parsed: Any = None


class Judged(NamedTuple):
    """A scorer's verdict on one answer: its score in 0..1, what it compared with ``expected``
    and ``how``, in a few words for the reader (see the module docstring)."""

    score: float
    compared: str | None
    how: str


#: ``judge(output, expected_alternative) -> Judged``.
Judge = Callable[[Output, str], Judged]


@dataclass(frozen=True)
class Scorer:
    """One scorer: ``spec`` is how records name it, ``name`` how messages do;
    ``alternatives``: whether ``|`` separates alternatives in ``expected`` (not in JSON)."""

    spec: str
    name: str
    judge: Judge
    alternatives: bool = True

    def __call__(self, output: Output, expected: str) -> Judged:
        """The verdict on ``output`` against the best of ``expected``'s ``|`` alternatives;
        raises :class:`ScoreFailure` only when every alternative failed."""
        if output.answer is None:  # empty text or a failed column: nothing to judge
            return Judged(0.0, None, "no answer")
        best: Judged | None = None
        failure: ScoreFailure | None = None
        for option in expected.split("|") if self.alternatives else [expected]:
            try:
                verdict = self.judge(output, option)
            except ScoreFailure as exc:
                failure = failure or exc
                continue
            if best is None or verdict.score > best.score:
                best = verdict
        if best is None:
            raise failure or ScoreFailure("no alternative to compare with")
        return best


# Pieces the scorers share -------------------------------------------------------------------
def numbers_in(text: str | None) -> list[float]:
    """Every number written in ``text`` (``1,234.5``, ``-3``, ``2e-3``), in order."""
    found = []
    for match in _NUMBER.finditer(text or ""):
        try:
            found.append(float(match.group().replace(",", "")))
        except ValueError:  # pragma: no cover - the pattern only matches numbers
            continue
    return found


def as_number(value: str) -> float | None:
    """``value`` as a number when it is one and nothing else (``"1,000"``, ``"$5"``, ``"4.0"``)."""
    text = value.strip().lstrip("$€£").rstrip("%").strip()
    if not _NUMBER.fullmatch(text):
        return None
    return float(text.replace(",", ""))


def _show_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _has_words(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` as whole words (``4`` is not in ``14``)."""
    return (
        bool(needle) and re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", haystack) is not None
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _close(got: float, want: float, absolute: float | None, relative: float) -> bool:
    if absolute is not None:
        return abs(got - want) <= absolute
    return math.isclose(got, want, rel_tol=relative, abs_tol=0.0)


def _got(output: Output, otherwise: str) -> str:
    """A miss's "got X" when the answer is a short part of the text (else the text says it
    already: ``otherwise``)."""
    answer = output.answer
    if answer and len(answer) < _SAID_LIMIT and is_part(answer, output.text):
        return f"got {_short(answer)}"
    return otherwise


def _short(text: str | None, limit: int = _COMPARED_LIMIT) -> str | None:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis says it was cut)."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# The built-in scorers ------------------------------------------------------------------------
def score_exact(output: Output, expected: str) -> Judged:
    """Normalized exact match of the extracted answer: the strict scorer."""
    key = normalize(expected)
    if key and normalize(output.answer) == key:
        return Judged(1.0, output.answer, f"equals {_short(expected.strip(), _SAID_LIMIT)}")
    return Judged(0.0, output.answer, _got(output, "no match"))


def score_auto(output: Output, expected: str) -> Judged:
    """The default: exact, else numeric for a numeric expected, else ``expected`` as whole
    words in the answer or the text's last line (so a full-sentence answer is not wrong)."""
    exact = score_exact(output, expected)
    if exact.score:
        return exact
    if as_number(expected) is not None:
        return _number_judge(None, DEFAULT_RELATIVE_TOLERANCE)(output, expected)
    key = normalize(expected)
    found = _has_words(normalize(output.answer), key) or _has_words(
        normalize(_last_line(output.text)), key
    )
    if found:
        return Judged(1.0, output.answer, f"contains {_short(expected.strip(), _SAID_LIMIT)}")
    return Judged(0.0, output.answer, _got(output, "not in the answer"))


def score_contains(output: Output, expected: str) -> Judged:
    """``expected`` anywhere in the text as whole words (numbers compared as numbers): the
    lenient scorer, for answers whose wording the model chooses."""
    want = as_number(expected)
    if want is not None:
        found = any(
            _close(n, want, None, DEFAULT_RELATIVE_TOLERANCE) for n in numbers_in(output.text)
        )
    else:
        found = _has_words(normalize(output.text), normalize(expected))
    how = f"contains {_short(expected.strip(), _SAID_LIMIT)}" if found else "not in the text"
    return Judged(float(found), _short(output.text), how)


def _regex_judge(pattern: re.Pattern[str]) -> Judge:
    def score_regex(output: Output, expected: str) -> Judged:
        """The last match of the pattern in the text (group ``answer``, else the first group,
        else the whole match), compared with ``expected`` like ``exact``."""
        matches = list(pattern.finditer(output.text))
        if not matches:
            return Judged(0.0, None, "regex found nothing")
        last = matches[-1]
        if "answer" in pattern.groupindex:
            found = last.group("answer")
        else:
            found = last.group(1) if pattern.groups else last.group(0)
        found = found or ""
        key = normalize(expected)
        said = f"regex found {_short(found, _SAID_LIMIT)}"
        return Judged(float(bool(key) and normalize(found) == key), found, said)

    return score_regex


def _tolerance_text(absolute: float | None, relative: float) -> str:
    """``within 0.01`` / ``within 1%``; '' for the default (equal within rounding)."""
    if absolute is not None:
        return f"within {absolute:g}"
    if relative != DEFAULT_RELATIVE_TOLERANCE:
        return f"within {relative * 100:g}%"
    return ""


def _number_judge(absolute: float | None, relative: float) -> Judge:
    within = _tolerance_text(absolute, relative)

    def score_number(output: Output, expected: str) -> Judged:
        """The last number of the extracted answer against a numeric ``expected``."""
        want = as_number(expected)
        if want is None:
            raise ScoreFailure(f"expected {shown(expected.strip())} is not a number")
        found = numbers_in(output.answer)
        if not found:
            return Judged(0.0, None, "no number in the answer")
        got = _show_number(found[-1])
        if not _close(found[-1], want, absolute, relative):
            return Judged(0.0, got, f"got {got}" + (f", not {within}" if within else ""))
        target = _show_number(want)
        return Judged(1.0, got, f"{got} {within} of {target}" if within else f"equals {target}")

    return score_number


_LETTER = "A-E"
_CHOICE_PATTERNS = (
    # "The answer is (B)", "Answer: b", "final answer: C." (a lower-case letter needs a
    # closing mark, so that "the answer is a cat" chooses nothing)
    re.compile(
        rf"(?i:answer\s*(?:is|:)\s*:?)\s*\(?([{_LETTER}]|[{_LETTER.lower()}])"
        r"(?:\)|\s*(?:[.:,;!]|$))",
        re.MULTILINE,
    ),
    # "The answer is B because..."
    re.compile(rf"(?i:answer\s*(?:is|:)\s*:?)\s*([{_LETTER}])\b"),
    # "B", "(b)", "b.", "B)"
    re.compile(rf"^\s*\(?([{_LETTER}])\s*[).:]?\s*$", re.IGNORECASE),
    # "B) Paris", "b. Paris", "(C) 12", "D: yes"
    re.compile(rf"^\s*\(?([{_LETTER}])[).:](?:\s|$)", re.IGNORECASE),
    # "I pick (C) because..."
    re.compile(rf"\(([{_LETTER}])\)", re.IGNORECASE),
    # "option B", "choice (D)"
    re.compile(rf"(?i:\b(?:option|choice))\s*\(?([{_LETTER}])\)?(?!\w)"),
    # "... so it is C." (a capital letter ending the answer)
    re.compile(rf"(?<!\w)([{_LETTER}])[\s.)!]*$"),
)


def choice_letter(value: str | None) -> str | None:
    """The multiple-choice letter (A-E, upper case) that ``value`` chooses, or None."""
    for pattern in _CHOICE_PATTERNS:
        matches = list(pattern.finditer(value or ""))
        if matches:
            return matches[-1].group(1).upper()
    return None


def score_choice(output: Output, expected: str) -> Judged:
    """The letter chosen in the answer (else in the text's last line) against ``expected``'s."""
    want = choice_letter(expected)
    if want is None:
        raise ScoreFailure(f"expected {shown(expected.strip())} is not a choice letter A-E")
    got = choice_letter(output.answer) or choice_letter(_last_line(output.text))
    return Judged(float(got == want), got, f"chose {got}" if got else "no choice letter")


def _user_judge(function: Callable[..., Any], name: str) -> Judge:
    def score_with(output: Output, expected: str) -> Judged:
        """Your function, its verdict checked (a bool or a number in 0..1)."""
        try:
            verdict = function(output.answer, expected, dict(output.item or {}))
        except Exception as exc:  # any error of yours fails this item only, with its reason
            raise ScoreFailure(_short(f"{type(exc).__name__}: {exc}", 200)) from None
        score = as_score(verdict, name)
        said = {1.0: "yes", 0.0: "no"}.get(score, f"{score:.2f}")
        return Judged(score, output.answer, f"{_short(name, _SAID_LIMIT)}: {said}")

    return score_with


def as_score(value: Any, name: str) -> float:
    """A scoring function's verdict as a score in 0..1: True/False, or a number in 0..1."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):  # numpy scalars
        with contextlib.suppress(Exception):
            value = item()
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1:
        return float(value)
    raise ScoreFailure(f"{name} returned {shown(value)}, not True/False or a number from 0 to 1")


# Specs -------------------------------------------------------------------------------------
_FIXED: dict[str, Judge] = {
    "auto": score_auto,
    "exact": score_exact,
    "contains": score_contains,
    "choice": score_choice,
}


def _tolerance(spec: str, argument: str) -> tuple[float | None, float]:
    """(absolute, relative) tolerance of ``number:ARGUMENT``."""
    text = argument.strip()
    percent = text.endswith("%")
    try:
        value = float(text[:-1] if percent else text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(
            f"Scorer {spec!r}: the tolerance must be a number >= 0, absolute (number:0.01) or "
            "in percent (number:1%)."
        )
    return (None, value / 100) if percent else (value, 0.0)


def builtin_scorer(spec: str) -> Scorer | None:
    """The built-in scorer ``spec`` names, None when it names none; a malformed built-in
    (``regex:(``, ``number:x``, ``exact:x``) is an :class:`InvalidArgumentError`."""
    name, colon, argument = spec.partition(":")
    name = name.strip().lower()
    if name == "fields":
        from lmwidgets.prompting.fields import score_fields

        if colon:
            raise InvalidArgumentError(f"Scorer 'fields' takes no argument (got {spec!r}).")
        return Scorer("fields", "fields", score_fields, alternatives=False)
    if name in ("likelihood", "perplexity"):  # given choices: scored as they run
        if colon:
            raise InvalidArgumentError(f"Scorer {name!r} takes no argument (got {spec!r}).")
        return Scorer(spec=name, name=name, judge=score_exact)
    if name in _FIXED:
        if colon:
            raise InvalidArgumentError(f"Scorer {name!r} takes no argument (got {spec!r}).")
        return Scorer(spec=name, name=name, judge=_FIXED[name])
    if name == "number":
        if not colon:
            return Scorer("number", "number", _number_judge(None, DEFAULT_RELATIVE_TOLERANCE))
        absolute, relative = _tolerance(spec, argument)
        canonical = f"number:{argument.strip()}"
        return Scorer(canonical, canonical, _number_judge(absolute, relative))
    if name == "regex":
        if not argument:
            raise InvalidArgumentError(
                "Scorer 'regex' needs a pattern: regex:PATTERN (e.g. regex:Answer: (\\w+))."
            )
        try:
            pattern = re.compile(argument)
        except re.error as exc:
            raise InvalidArgumentError(
                f"Scorer 'regex:{argument}': the pattern does not compile ({exc})."
            ) from None
        return Scorer(f"regex:{argument}", f"regex:{argument}", _regex_judge(pattern))
    return None


def _unknown(name: str) -> StrategyError:
    return StrategyError(
        f"Unknown scorer {name!r}. Built-in scorers: {', '.join(SCORERS)}; or the name of a "
        "function (answer, expected, item) -> bool | float defined in the notebook (define it, "
        "then run the cell again)."
    )


def user_scorer(function: Any, name: str | None = None) -> Scorer:
    """A scorer from your function, checked to take (answer, expected, item)."""
    name = name or getattr(function, "__name__", None) or type(function).__name__
    if not callable(function):
        raise InvalidArgumentError(
            f"Scorer {name!r} is a {type(function).__name__} in the notebook, not a function "
            "(answer, expected, item) -> bool | float."
        )
    try:
        inspect.signature(function).bind(None, None, None)
    except TypeError:
        raise InvalidArgumentError(
            f"Scorer {name!r} must take three arguments (answer, expected, item)."
        ) from None
    except ValueError:  # no signature to check (some built-ins): calling it will tell
        pass
    return Scorer(spec=f"callable:{name}", name=name, judge=_user_judge(function, name))


def resolve_scorer(score: Any, variables: Mapping[str, Any] | None = None) -> Scorer:
    """The scorer ``score=`` asks for: None (``auto``), a built-in spec, a function, or the
    name of a function in ``variables`` (the notebook); checked before anything runs."""
    if score is None:
        return Scorer(spec="auto", name="auto", judge=score_auto)
    if callable(score):
        return user_scorer(score)
    if not isinstance(score, str) or not score.strip():
        raise InvalidArgumentError(
            f"score must be a scorer name ({', '.join(SCORERS)}) or a function "
            f"(answer, expected, item) -> bool | float, not {shown(score)}."
        )
    spec = score.strip()
    found = builtin_scorer(spec)
    if found is not None:
        return found
    name = spec.removeprefix("callable:").strip()
    if name not in (variables or {}):
        raise _unknown(name)
    return user_scorer((variables or {})[name], name)


def check_recorded_spec(spec: str) -> None:
    """Raise when a record's ``scorer`` is not one this lmwidgets can score with again."""
    if spec.startswith("callable:") and spec.removeprefix("callable:").strip():
        return
    if spec == "judge":  # the judge's verdicts (lmwidgets.run.judge), judged again by rerun
        return
    if builtin_scorer(spec) is None:
        raise _unknown(spec)


# Scoring a comparison ------------------------------------------------------------------------
def structured_answer(answer: str | None, parsed: Any, valid: bool | None) -> str | None:
    """The answer the text scorers judge: a valid JSON answer's lone value, or its only field's
    value, as text (``{"answer": 42}`` -> ``42``); else ``answer`` (see the module docstring)."""
    if not valid or parsed is None:
        return answer
    if isinstance(parsed, Mapping) and len(parsed) == 1:
        parsed = next(iter(parsed.values()))
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, (bool, int, float)) or parsed is None:
        return json.dumps(parsed)
    return answer


def score_result(result: Result, scorer: Scorer, row: int) -> str | None:
    """Fill ``result``'s score, correct and compared (and its record's); returns the failure
    note when the scorer failed on it (the item is then unscored)."""
    if getattr(result, "choice_logprobs", None) is not None:  # scored as it ran (run.choices)
        return None
    result.record["scorer"] = scorer.spec
    if result.expected is None:
        return None
    item = result.record.get("input")
    parsed = parsed_for_display(result.parsed) if result.valid else None
    output = Output(
        structured_answer(result.answer, parsed, result.valid),
        result.text,
        item if isinstance(item, Mapping) else None,
        parsed,
    )
    try:
        score, compared, how = scorer(output, result.expected)
    except ScoreFailure as exc:
        result.score = result.correct = result.compared = result.verdict = None
        result.score_error = str(exc)
        result.record.update(
            score=None, correct=None, compared=None, verdict=None, score_error=str(exc)
        )
        question = _short(result.input or "") or ""
        where = f"item {row} ({question[:40] + ('…' if len(question) > 40 else '')!r})"
        return f"{scorer.name} failed on {where}, column {result.variant!r}: {exc}"
    result.score, result.correct, result.compared = score, score >= 0.5, compared
    result.verdict, result.score_error = how, None
    result.record.update(score=score, correct=result.correct, compared=compared, verdict=how)
    result.record.pop("score_error", None)
    return None


def score_comparison(comparison: Comparison, scorer: Scorer) -> None:
    """Score every result that has ``expected``; ``Comparison.scores`` is the mean score per
    column over the items its scorer did not fail on (the failures are noted)."""
    failures: list[str] = []
    marks: dict[str, list[float]] = {}
    for row, results in enumerate(comparison.rows):
        for result in results:
            failure = score_result(result, scorer, row)
            if failure is not None:
                failures.append(failure)
            elif result.score is not None:
                marks.setdefault(result.variant, []).append(result.score)
    comparison.scores = {label: sum(s) / len(s) for label, s in marks.items()}
    comparison.notes.extend(failures[:_NOTED_FAILURES])
    if failures:
        more = len(failures) - _NOTED_FAILURES
        comparison.notes.append(
            (f"…and {more} more. " if more > 0 else "")
            + f"Scores leave out the {len(failures)} result(s) the scorer failed on."
        )
