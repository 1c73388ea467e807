"""Extracting a final answer from a model's text, normalizing it, and voting.

Extraction rules, in order (the first that matches wins):

1. the last "The answer is X" / "The final answer is: X" (case-insensitive);
2. the last "Answer: X" / "Final answer: X" at the start of a line;
3. the last number in the text (``-1,234.5`` style);
4. the last non-empty line.

``X`` runs to the end of its sentence (a period followed by a space) or line. Every strategy's
column gets its answer by these rules (self-consistency votes over its samples' answers).
An extracted answer is a span of the text, character for character: only its ends are trimmed
(spaces, closing punctuation ``.,;:!`` and markdown marks around it, as in ``**Paris**.``), so
``{undefined_var}`` stays ``{undefined_var}``. :func:`is_part` says whether an answer is worth
showing apart from its text (it is a part of it, not the whole free-form text).
Normalization (for voting, agreement and the scorers of :mod:`lmwidgets.prompting.scoring`)
lowercases, drops surrounding punctuation, quotes and the articles a/an/the, collapses spaces (a
lone letter such as a multiple-choice "A" is kept), and writes numbers canonically (``1,000`` ->
``1000``, ``4.0`` -> ``4``).

Agreement (:func:`agreement`) groups the columns' answers by that normal form; on a scored
dataset :func:`scored_agreement` follows the scorer instead (answers judged right agree), and
:func:`agree_marks` marks the differing answers symmetrically (the minority, or all of them
when no answer has a majority).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_ANSWER_IS = re.compile(
    r"(?:final\s+)?answer\s+is\s*:?\s*([^\n]+?)(?=\.\s|\.$|\n|$)", re.IGNORECASE | re.MULTILINE
)
_ANSWER_LINE = re.compile(r"^\s*(?:final\s+)?answer\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
# A minus sign only where no word touches it: in "PELICAN-5299" or "pages 3-4" the dash is a
# hyphen, and the last number is 5299 or 4 (it read "-5299", and columns "agreed" on it).
_NUMBER = re.compile(r"(?:(?<![\w.])-)?\d[\d,]*(?:\.\d+)?")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


#: Markdown marks around a whole answer (``**Paris**``, ``_Paris_``, `` `x_y` ``), not inside it.
_WRAPPER = re.compile(r"^(\*\*|\*|__|_|`+)(?![*_`])(.+?)(?<![*_`])\1$")


def _clean(value: str) -> str:
    """``value``'s first line with its ends trimmed (spaces, closing punctuation, markdown marks
    wrapped around it as in ``**Paris**``): still a span of the text, nothing inside it changes."""
    value = value.strip().splitlines()[0] if value.strip() else ""
    previous = None
    while value != previous:
        previous = value
        value = value.strip().rstrip(".,;:!")
        wrapped = _WRAPPER.match(value)
        if wrapped and wrapped.group(1) not in wrapped.group(2):
            value = wrapped.group(2)
    return value


def extract_answer(text: str) -> str | None:
    """The final answer in ``text`` by the rules above, or None when there is none (empty
    text, or only punctuation)."""
    if not text or not text.strip():
        return None
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        answer = _clean(matches[-1].group(1))
        if answer:
            return answer
    matches = list(_ANSWER_LINE.finditer(text))
    if matches:
        answer = _clean(matches[-1].group(1))
        if answer:
            return answer
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1]
    lines = [line for line in text.splitlines() if line.strip()]
    return (_clean(lines[-1]) or None) if lines else None  # ":" alone is no answer


_LETTERS = re.compile(r"[\W_]+")


def is_part(answer: object, text: str) -> bool:
    """Whether ``answer`` is a part of ``text`` worth showing apart from it: the text says more
    than the answer (their letters and digits differ). A free-form answer extracted as the
    whole text (``The capital is Paris.`` -> ``The capital is Paris``) is not."""
    if answer is None or not str(answer).strip():
        return False
    return _LETTERS.sub("", str(answer)) != _LETTERS.sub("", text or "")


#: An answer of at most this many characters is short: its confidence (the probability of its
#: tokens) is shown beside it. A longer one's is a product of many token probabilities.
SHORT_ANSWER_CHARS = 32


def _number(value: str) -> str | None:
    compact = value.replace(",", "")
    try:
        number = float(compact)
    except ValueError:
        return None
    return str(int(number)) if number.is_integer() else repr(number)


def normalize(answer: object) -> str:
    """A canonical form of an answer for comparison (see the module docstring)."""
    if answer is None:
        return ""
    text = str(answer).strip().lower()
    text = text.strip(" \t\n.,;:!?\"'`()[]{}*")
    number = _number(text)
    if number is not None:
        return number
    text = " ".join(re.sub(r"[^\w\s-]", " ", text).split())
    without_articles = " ".join(_ARTICLES.sub(" ", text).split())
    return without_articles or text  # a lone "A" (a multiple-choice letter) stays


def majority_vote(answers: list[str | None]) -> tuple[str | None, dict[str, int]]:
    """(the winning answer as first written, votes per normalized answer).

    Empty answers do not vote. Ties go to the answer that reached the top count first.
    """
    votes: Counter[str] = Counter()
    first_form: dict[str, str] = {}
    for answer in answers:
        key = normalize(answer)
        if not key:
            continue
        votes[key] += 1
        first_form.setdefault(key, str(answer))
    if not votes:
        return None, {}
    top = max(votes.values())
    winner = next(key for key in first_form if votes[key] == top)
    return first_form[winner], dict(votes)


def is_correct(answer: object, expected: object) -> bool:
    """Normalized exact match (``expected`` may list alternatives separated by ``|``): the
    ``exact`` scorer's rule, and the only one records written before scorers used."""
    got = normalize(answer)
    if not got:
        return False
    options = str(expected).split("|") if isinstance(expected, str) else [expected]
    return any(got == normalize(option) for option in options)


@dataclass(frozen=True)
class Agreement:
    """How the answers of columns compare: ``groups[i]`` numbers column ``i``'s answer (0 is
    the most common normalized answer, 1 the next...; None when it has no answer) and
    ``summary`` says it in one line."""

    groups: list[int | None]
    summary: str

    @property
    def all_agree(self) -> bool:
        """Every column answered, and the same."""
        return bool(self.groups) and all(group == 0 for group in self.groups)

    @property
    def marks(self) -> list[str]:
        """Each column's mark, symmetric in the columns: ``"all"`` (every column agrees),
        ``"major"`` (the one answer more columns gave than any other), ``"minor"`` (an answer
        that differs: the minority, or every answer when no answer has a majority, as in a
        1-1 split), ``""`` (no answer). Never a column by its position."""
        return agree_marks(self.groups)


def agree_marks(groups: Sequence[int | None]) -> list[str]:
    """:attr:`Agreement.marks` of ``groups`` (the same rule as the view's ``agreeMarks``)."""
    counts = Counter(group for group in groups if group is not None)
    if len(groups) > 1 and len(counts) == 1 and None not in groups:
        return ["all"] * len(groups)
    top = max(counts.values(), default=0)
    leaders = [group for group, count in counts.items() if count == top]
    major = leaders[0] if len(leaders) == 1 else None
    return ["" if g is None else "major" if g == major else "minor" for g in groups]


#: The agreement key every answer its scorer judged right shares.
_RIGHT = "\x00right"


def _first_alternative(expected: object) -> str:
    text = str(expected)
    return text.split("|")[0].strip() if "|" in text else text


def scored_agreement(results: Sequence[Any]) -> Agreement:
    """:func:`agreement` of results (``Result``-like: ``answer``, ``correct``, ``compared``,
    ``expected``) that follows their scorer: answers it judged right against the same
    ``expected`` agree, said as that ``expected`` ("The opposite of hot is cold." and "cold"
    both agree on ``cold``); a wrong answer groups by what the scorer compared (its number,
    letter or extracted answer), normalized. Unscored results group by their answer."""
    keys: list[str | None] = []
    shown: list[object] = []
    for result in results:
        answer = getattr(result, "answer", None)
        if getattr(result, "correct", None) is True:
            keys.append(_RIGHT)
            shown.append(_first_alternative(result.expected))
            continue
        compared = getattr(result, "compared", None)
        key = normalize(compared) if compared is not None and answer is not None else ""
        keys.append(key or normalize(answer) or None)
        shown.append(answer)
    return agreement(shown, keys)


def agreement(answers: Sequence[object], keys: Sequence[str | None] | None = None) -> Agreement:
    """Group ``answers`` by their normalized form (see :func:`normalize`), or by ``keys`` when
    given (one per answer: equal keys agree, None or '' is no answer).

    >>> agreement(["4", "four", "4.0", None]).summary
    '2 of 4 columns agree on 4'
    """
    keys = [normalize(answer) for answer in answers] if keys is None else list(keys)
    counts = Counter(key for key in keys if key)
    order = {key: rank for rank, (key, _) in enumerate(counts.most_common())}
    groups = [order[key] if key else None for key in keys]
    total = len(answers)
    if not counts:
        summary = "no column has an answer" if total > 1 else ""
    else:
        top, size = counts.most_common(1)[0]
        first = next(str(a) for a, k in zip(answers, keys, strict=True) if k == top)
        if total < 2:
            summary = ""
        elif size == total:
            summary = f"{'both' if total == 2 else f'all {total}'} columns agree on {first}"
        elif size == 1:
            summary = "the 2 columns disagree" if total == 2 else f"no two of {total} columns agree"
        else:
            summary = f"{size} of {total} columns agree on {first}"
    return Agreement(groups=groups, summary=summary)
