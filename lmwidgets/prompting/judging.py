"""A model as judge: rubrics, the judge's prompts, and reading its verdicts.

``judge=MODEL`` (``--judge MODEL``) asks a loaded or connected model (the one being judged
included) to judge every column after generation (the pass itself is
:mod:`lmwidgets.run.judge`). ``rubric=`` is a built-in rubric's name or your own text:

``quality`` (the default)
    A general quality rubric (helpful, correct, clear, complete), scored 1-5.
``correctness``
    Is the answer right, given the dataset item's ``expected``? pass/fail; needs a dataset with
    ``expected``.
``faithfulness`` / ``faithfulness:COLUMN``
    Does the answer stay true to the item's ``reference`` column (or ``COLUMN``), adding nothing
    it does not support? scored 1-5; needs a dataset with that column.
your text
    Any rubric, scored 1-5 unless ``judge_scale="pass/fail"`` (``--judge-scale``).

Pointwise (the default), the judge sees the question, the answer (and the expected answer or
reference the rubric names) and writes its reasoning, then a last line ``Score: N`` or
``Verdict: PASS``/``FAIL``. Pairwise (``judge_pairwise=True``), it sees two columns' answers
to the same question (every column against the first) and ends with ``[[A]]``, ``[[B]]`` or
``[[tie]]``; each pair is asked in both orders, and orders that disagree make a tie.

The wording is overridable like the strategy templates: ``judge_templates={"quality": ...,
"pointwise": ..., "pairwise": ...}`` (the fields of :class:`JudgeTemplates`). Verdicts are read
robustly (:func:`parse_score`, :func:`parse_pass`, :func:`parse_pick`): ``Score: 4``, ``4/5``,
``**Rating:** 4``, ``{"score": 4}``, ``PASS``/``FAIL``, ``[[A]]``; a reply without a readable
verdict leaves that column unjudged with a note, never a failed run. Where the judge's engine
can, the verdict format is enforced while decoding (:mod:`.judge_format`; ``judge_free=True``
turns it off), so every reply holds a readable verdict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from lmwidgets.checks import optional_whole_number, shown
from lmwidgets.core.constraints import Constraint
from lmwidgets.engines.base import Engine, GenerationSettings, Message
from lmwidgets.engines.registry import ModelRegistry
from lmwidgets.errors import DatasetError, InvalidArgumentError, LmWidgetsError
from lmwidgets.prompting.judge_format import (
    ASKED_FREE,
    enforcement,
    verdict_constraint,
    verdict_part,
)

#: The built-in rubrics (``rubric=`` names), the default first.
RUBRICS = ("quality", "correctness", "faithfulness")
#: The scales a verdict is given on.
SCALES = ("1-5", "pass/fail")
#: Most new tokens of a judge's reply (its reasoning and verdict) unless ``judge_tokens`` says.
JUDGE_MAX_NEW_TOKENS = 256
#: A judge run this many calls or more says what it costs before it starts.
LARGE_JUDGE_RUN = 50


class JudgeError(LmWidgetsError):
    """A judge option is wrong (no such model, a rubric that is not text, a missing column)."""


@dataclass(frozen=True)
class JudgeTemplates:
    """The judge's wording. Override any field (``judge_templates={...}`` in the API, a
    ``--rubric VAR`` for the rubric itself)."""

    #: The general quality rubric (1-5).
    quality: str = (
        "Rate the overall quality of the answer: is it helpful, correct, clear and complete for "
        "the question asked? 1 is useless or wrong, 3 is acceptable with flaws, 5 is excellent."
    )
    #: The correctness rubric (pass/fail against the item's expected answer).
    correctness: str = (
        "Decide whether the answer is correct, given the expected answer. It passes when it "
        "gives the same answer as the expected one, however it is worded; it fails when it is "
        "wrong, gives several conflicting answers, or gives none."
    )
    #: The faithfulness rubric (1-5 against the item's reference text).
    faithfulness: str = (
        "Rate how faithful the answer is to the reference: every claim must be supported by the "
        "reference. 1 contradicts it or invents most of its content, 3 is mostly supported with "
        "some unsupported claims, 5 is fully supported."
    )
    #: The pointwise prompt: ``{rubric}``, ``{question}``, ``{context}`` (the expected answer
    #: or reference block, or nothing), ``{answer}`` and ``{format}`` (the verdict line).
    pointwise: str = (
        "You are a strict, impartial judge of an answer to a question.\n\n"
        "Rubric: {rubric}\n\n"
        "[Question]\n{question}\n[End of question]\n\n"
        "{context}"
        "[Answer]\n{answer}\n[End of answer]\n\n"
        "Explain your judgement in a few sentences, then end with a last line {format}."
    )
    #: The pairwise prompt: ``{rubric}``, ``{question}``, ``{context}``, ``{answer_a}``,
    #: ``{answer_b}``.
    pairwise: str = (
        "You are a strict, impartial judge comparing two answers to the same question. Do not "
        "let the order of the answers or their length sway you.\n\n"
        "Criterion: {rubric}\n\n"
        "[Question]\n{question}\n[End of question]\n\n"
        "{context}"
        "[Answer A]\n{answer_a}\n[End of answer A]\n\n"
        "[Answer B]\n{answer_b}\n[End of answer B]\n\n"
        "Explain your judgement in a few sentences, then end with a last line that is exactly "
        "[[A]] if answer A is better, [[B]] if answer B is better, or [[tie]]."
    )

    def as_dict(self) -> dict[str, str]:
        """All fields as a dict."""
        return asdict(self)


_FORMATS = {
    "1-5": '"Score: N", where N is a whole number from 1 to 5',
    "pass/fail": '"Verdict: PASS" or "Verdict: FAIL"',
}


@dataclass(frozen=True)
class Rubric:
    """One rubric: its name (a built-in's, or ``custom``), its text, its scale, and what it
    compares the answer with (``expected``, a ``reference`` column, or nothing)."""

    name: str
    text: str
    scale: str
    needs: str | None = None
    #: The dataset column a faithfulness rubric reads (``reference`` by default).
    column: str | None = None

    def record(self) -> dict[str, Any]:
        """The rubric as records keep it."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class JudgeSpec:
    """Everything the judge pass needs: the judge model, its rubric and wording, pointwise or
    pairwise, its (greedy) settings, and whether its verdict is the dataset's score."""

    engine: Engine
    rubric: Rubric
    templates: JudgeTemplates
    pairwise: bool = False
    settings: GenerationSettings = field(
        default_factory=lambda: GenerationSettings(JUDGE_MAX_NEW_TOKENS, 0.0, 1.0, 0)
    )
    score: bool = False
    #: The verdict format enforced while decoding (None: the reply is free text), and why it
    #: is free (``--judge-free``, or the engine cannot enforce it; :mod:`.judge_format`).
    constraint: Constraint | None = None
    free: str | None = None

    def calls(self, rows: list[list[Any]]) -> int:
        """The judge calls ``rows`` (the variants or results per dataset item) cost: one per
        column, or two per column after the first (pairwise, both orders)."""
        if self.pairwise:
            return sum(2 * max(0, len(row) - 1) for row in rows)
        return sum(len(row) for row in rows)

    def record(self) -> dict[str, Any]:
        """The judge as records keep it (``rerun`` rebuilds the spec from it)."""
        return {
            "model": self.engine.record(),
            "rubric": self.rubric.record(),
            "mode": "pairwise" if self.pairwise else "pointwise",
            "template": self.templates.pairwise if self.pairwise else self.templates.pointwise,
            "generation": self.settings.as_dict(),
            "scored": self.score,
            "enforced": self.constraint is not None,
            **(
                {"format": self.constraint.record()}
                if self.constraint is not None
                else {"free": self.free or ASKED_FREE}
            ),
        }


# Options -------------------------------------------------------------------------------------
def judge_templates(value: Any) -> JudgeTemplates:
    """The judge's wording: the defaults, or overrides given as a mapping or JudgeTemplates."""
    if value is None:
        return JudgeTemplates()
    if isinstance(value, JudgeTemplates):
        return value
    if not isinstance(value, Mapping):
        raise JudgeError(
            f"judge_templates must be a dict of wordings ({', '.join(_template_names())}), not "
            f"{type(value).__name__}."
        )
    unknown = sorted(set(value) - set(_template_names()))
    if unknown:
        raise JudgeError(
            f"Unknown judge template field(s): {', '.join(map(str, unknown))} (fields: "
            f"{', '.join(_template_names())})."
        )
    for key, text in value.items():
        if not isinstance(text, str) or not text.strip():
            raise JudgeError(f"judge_templates[{key!r}] must be non-empty text, not {shown(text)}.")
    return replace(JudgeTemplates(), **dict(value))


def _template_names() -> list[str]:
    return [f.name for f in fields(JudgeTemplates)]


def resolve_rubric(rubric: Any, scale: str | None, templates: JudgeTemplates) -> Rubric:
    """The rubric ``rubric=`` names: None (``quality``), a built-in's name (``faithfulness``
    may name its column: ``faithfulness:context``), or your text."""
    if scale is not None and scale not in SCALES:
        raise JudgeError(f"--judge-scale takes {' or '.join(SCALES)}, not {shown(scale)}.")
    if rubric is None:
        rubric = "quality"
    if not isinstance(rubric, str):
        raise JudgeError(
            f"--rubric takes text (a built-in rubric's name: {', '.join(RUBRICS)}, or your "
            f"rubric, or a variable holding it), not {type(rubric).__name__} {shown(rubric)}."
        )
    text = rubric.strip()
    if not text:
        raise JudgeError("--rubric is empty: name a built-in rubric or write your own.")
    name, colon, column = text.partition(":")
    if name == "faithfulness":
        column = column.strip() if colon else "reference"
        if not column:
            raise JudgeError("--rubric faithfulness:COLUMN needs the column's name.")
        return Rubric(name, templates.faithfulness, scale or "1-5", "reference", column)
    if text == "correctness":
        return Rubric(text, templates.correctness, scale or "pass/fail", "expected")
    if text == "quality":
        return Rubric(text, templates.quality, scale or "1-5")
    return Rubric("custom", text, scale or "1-5")


def resolve_judge(
    judge: Any,
    *,
    registry: ModelRegistry,
    rubric: Any = None,
    scale: str | None = None,
    pairwise: bool = False,
    templates: Any = None,
    score: bool = False,
    max_new_tokens: int | None = None,
    free: bool = False,
) -> JudgeSpec | None:
    """The run's judge (None without ``judge``), every option checked before anything runs."""
    if judge is None:
        extra = [
            flag
            for flag, value in (
                ("--rubric", rubric),
                ("--judge-scale", scale),
                ("--judge-pairwise", pairwise or None),
                ("judge_templates", templates),
                ("--judge-tokens", max_new_tokens),
                ("--judge-free", free or None),
            )
            if value is not None
        ]
        if extra or score:
            what = ", ".join(extra) or "--score judge"
            raise JudgeError(f"{what} needs a judge: add --judge MODEL (see `%lm models`).")
        return None
    engine = _judge_engine(judge, registry)
    wording = judge_templates(templates)
    chosen = resolve_rubric(rubric, scale, wording)
    if not isinstance(pairwise, bool):
        raise JudgeError(f"judge_pairwise must be True or False, not {shown(pairwise)}.")
    if score and pairwise:
        raise JudgeError(
            "--score judge scores each column by its own verdict: it needs pointwise judging "
            "(leave out --judge-pairwise)."
        )
    if not isinstance(free, bool):
        raise JudgeError(f"judge_free must be True or False, not {shown(free)}.")
    # Checked here so that a bad value names --judge-tokens, not the run's --max-new-tokens.
    given = optional_whole_number(max_new_tokens, "--judge-tokens", minimum=1)
    tokens = JUDGE_MAX_NEW_TOKENS if given is None else given
    settings = GenerationSettings(tokens, 0.0, 1.0, 0)
    spec = JudgeSpec(engine, chosen, wording, pairwise, settings, score)
    return spec if free else with_enforcement(spec)


def with_enforcement(spec: JudgeSpec) -> JudgeSpec:
    """``spec`` with its verdict format enforced while decoding where its engine can; free
    text (and why) where it cannot."""
    tokens = spec.settings.max_new_tokens or JUDGE_MAX_NEW_TOKENS
    constraint = verdict_constraint(spec.rubric.scale, spec.pairwise, tokens)
    why = enforcement(spec.engine, constraint)
    if why is not None:
        return replace(spec, constraint=None, free=f"cannot enforce: {why}")
    return replace(spec, constraint=constraint, free=None)


def _judge_engine(judge: Any, registry: ModelRegistry) -> Engine:
    """The judge model: a loaded or connected model's name (or the Engine itself)."""
    if not isinstance(judge, str):
        if hasattr(judge, "generate") and hasattr(judge, "render") and hasattr(judge, "name"):
            return judge
        raise JudgeError(
            f"--judge takes a model's name (see `%lm models`), not {type(judge).__name__}."
        )
    name = judge.strip()
    if name not in registry:
        loaded = ", ".join(m.name for m in registry) or "none"
        raise JudgeError(
            f"--judge {name}: no model called {name!r} is loaded or connected (loaded: "
            f"{loaded}). Load it (`%lm load ... --as {name}`) or connect it first."
        )
    return registry.get(name)


def check_judge_items(
    spec: JudgeSpec, items: Sequence[Mapping[str, Any] | None], columns: int
) -> None:
    """A rubric that compares with ``expected`` or a reference column needs them in the
    dataset, and pairwise judging needs two columns: errors before anything runs."""
    if spec.pairwise and columns < 2:
        raise JudgeError(
            "--judge-pairwise compares every column with the first, but this run has one column: "
            "compare something (--compare, --models, --prompts, ...) or judge pointwise."
        )
    needs = spec.rubric.needs
    if needs is None:
        return
    column = "expected" if needs == "expected" else spec.rubric.column or "reference"
    if all(item is None for item in items):
        raise DatasetError(
            f"The {spec.rubric.name} rubric compares each answer with the dataset's {column!r} "
            "column: give a dataset (--dataset VAR) that has it, or use --rubric quality."
        )
    missing = sum(1 for item in items if item is None or item.get(column) is None)
    if missing == len(items):
        raise DatasetError(
            f"The {spec.rubric.name} rubric compares each answer with the item's {column!r} "
            f"column, which no dataset item has."
        )


# Prompts --------------------------------------------------------------------------------------
def question_of(record: Mapping[str, Any]) -> str:
    """The question a column answered: its last user turn's text, as the record keeps it."""
    messages = (record.get("prompt") or {}).get("messages") or []
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(
                    part.get("text", "") if part.get("type") == "text" else f"[{part.get('type')}]"
                    for part in content
                    if isinstance(part, Mapping)
                )
            return str(content)
    return ""


def _context(rubric: Rubric, record: Mapping[str, Any]) -> str:
    """The expected answer or the reference the rubric compares with, as a prompt block."""
    if rubric.needs == "expected":
        expected = record.get("expected")
        return f"[Expected answer]\n{expected}\n[End of expected answer]\n\n"
    if rubric.needs == "reference":
        item = record.get("input") or {}
        value = item.get(rubric.column or "reference") if isinstance(item, Mapping) else None
        return f"[Reference]\n{value}\n[End of reference]\n\n"
    return ""


def _filled(template: str, **values: str) -> str:
    """``template`` with its ``{name}`` fields filled (other braces stay as written), in one
    pass, so an answer that contains ``{answer_b}`` is never filled again."""
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}")
    return pattern.sub(lambda match: values[match.group(1)], template)


def pointwise_messages(spec: JudgeSpec, record: Mapping[str, Any], answer: str) -> list[Message]:
    """The judge's chat messages for one column's ``answer``."""
    text = _filled(
        spec.templates.pointwise,
        rubric=spec.rubric.text,
        question=question_of(record),
        context=_context(spec.rubric, record),
        answer=answer,
        format=_FORMATS[spec.rubric.scale],
    )
    return [{"role": "user", "content": text}]


def pairwise_messages(
    spec: JudgeSpec, record: Mapping[str, Any], answer_a: str, answer_b: str
) -> list[Message]:
    """The judge's chat messages comparing ``answer_a`` with ``answer_b``."""
    text = _filled(
        spec.templates.pairwise,
        rubric=spec.rubric.text,
        question=question_of(record),
        context=_context(spec.rubric, record),
        answer_a=answer_a,
        answer_b=answer_b,
    )
    return [{"role": "user", "content": text}]


# Verdicts -------------------------------------------------------------------------------------
_NUMBER = r"(\d+(?:\.\d+)?)"
_LABEL = r"(?:score|rating|grade|verdict|mark)"
_SCORE_PATTERNS = (
    # {"score": 4}, {"rating": "4"}
    re.compile(rf'"{_LABEL}"\s*:\s*"?{_NUMBER}', re.IGNORECASE),
    # Score: 4, **Rating:** 4, Score = 4/5, Final score - 4
    re.compile(rf"{_LABEL}\W{{0,6}}?[:=\-]\W{{0,4}}{_NUMBER}", re.IGNORECASE),
    # [[4]]
    re.compile(rf"\[\[\s*{_NUMBER}\s*\]\]"),
    # 4/5, 4 out of 5
    re.compile(rf"(?<![\d.]){_NUMBER}\s*(?:/|out of)\s*5\b", re.IGNORECASE),
)
_LONE_NUMBER = re.compile(rf"^\W*{_NUMBER}\W*$")


def parse_score(reply: str) -> tuple[int | None, str | None]:
    """The 1-5 score of a reply (the last one written in any known form), or None and why."""
    for pattern in _SCORE_PATTERNS:
        matches = pattern.findall(reply)
        if matches:
            return _in_range(matches[-1])
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    lone = _LONE_NUMBER.match(lines[-1]) if lines else None
    if lone:
        return _in_range(lone.group(1))
    return None, "no score from 1 to 5 in the reply"


def _in_range(text: str) -> tuple[int | None, str | None]:
    value = float(text)
    if value.is_integer() and 1 <= value <= 5:
        return int(value), None
    return None, f"the score {text} is not a whole number from 1 to 5"


_PASS_WORDS = {"pass": True, "passed": True, "fail": False, "failed": False}
_PASS_LABELLED = re.compile(
    r"(?:verdict|result|grade|decision|answer)\W{0,6}?[:=\-]\W{0,4}(pass(?:ed)?|fail(?:ed)?)\b",
    re.IGNORECASE,
)
_PASS_JSON = re.compile(r'"(?:verdict|result|pass)"\s*:\s*"?(pass|fail|true|false)', re.I)
_PASS_UPPER = re.compile(r"\b(PASS(?:ED)?|FAIL(?:ED)?)\b")
_PASS_LAST_LINE = re.compile(r"^\W*(pass(?:ed)?|fail(?:ed)?)\W*$", re.IGNORECASE)


def parse_pass(reply: str) -> tuple[bool | None, str | None]:
    """PASS (True) or FAIL (False) from a reply, or None and why: a labelled verdict
    (``Verdict: PASS``), JSON, the last upper-case PASS/FAIL, or a last line of one word."""
    for pattern in (_PASS_JSON, _PASS_LABELLED, _PASS_UPPER):
        matches = pattern.findall(reply)
        if matches:
            word = matches[-1].lower()
            return _PASS_WORDS.get(word, word == "true"), None
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    last = _PASS_LAST_LINE.match(lines[-1]) if lines else None
    if last:
        return _PASS_WORDS[last.group(1).lower()], None
    return None, "no PASS or FAIL in the reply"


_PICK_BRACKETS = re.compile(r"\[\[\s*(A|B|tie|C)\s*\]\]", re.IGNORECASE)
_PICK_LABELLED = re.compile(
    r"(?:verdict|winner|better|choice|answer)\W{0,6}?[:=\-]\W{0,4}(A|B|tie)\b", re.IGNORECASE
)
_PICK_JSON = re.compile(r'"(?:winner|verdict|better|choice)"\s*:\s*"(A|B|tie)"', re.IGNORECASE)
_PICK_LAST_LINE = re.compile(r"^\W*(A|B|tie)\W*$", re.IGNORECASE)


def parse_pick(reply: str) -> tuple[str | None, str | None]:
    """``A``, ``B`` or ``tie`` from a pairwise reply (``[[A]]``; ``[[C]]`` is MT-Bench's tie),
    or None and why."""
    for pattern in (_PICK_BRACKETS, _PICK_JSON, _PICK_LABELLED):
        matches = pattern.findall(reply)
        if matches:
            return _pick(matches[-1]), None
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    last = _PICK_LAST_LINE.match(lines[-1]) if lines else None
    if last:
        return _pick(last.group(1)), None
    return None, "no [[A]], [[B]] or [[tie]] in the reply"


def _pick(word: str) -> str:
    word = word.upper()
    return "tie" if word in ("TIE", "C") else word


def reasoning_of(reply: str) -> str:
    """The judge's reasoning: its reply without a last line that only gives the verdict."""
    lines = reply.strip().splitlines()
    if lines and len(lines) > 1 and len(lines[-1].strip()) <= 40:
        last = lines[-1]
        if (
            parse_score(last)[0] is not None
            or parse_pass(last)[0] is not None
            or parse_pick(last)[0] is not None
        ):
            lines = lines[:-1]
    return "\n".join(lines).strip()


def pointwise_verdict(spec_scale: str, reply: str, enforced: bool = False) -> dict[str, Any]:
    """One pointwise reply read: ``score`` (1-5) or ``pass``, ``value`` in 0..1 (what
    ``--score judge`` scores), ``label`` (``4/5``, ``pass``) and ``reasoning``; a reply
    without a verdict has ``value`` None and a ``note`` that says why. An ``enforced`` reply's
    verdict is its last line."""
    verdict: dict[str, Any] = {"raw": reply, "reasoning": reasoning_of(reply)}
    read = verdict_part(reply, enforced)
    if spec_scale == "pass/fail":
        passed, why = parse_pass(read)
        verdict["pass"] = passed
        if passed is not None:
            verdict.update(value=1.0 if passed else 0.0, label="pass" if passed else "fail")
    else:
        score, why = parse_score(read)
        verdict["score"] = score
        if score is not None:
            verdict.update(value=(score - 1) / 4, label=f"{score}/5")
    if "value" not in verdict:
        verdict.update(value=None, label=None, note=f"not judged: {why}")
    return verdict


def pairwise_outcome(picks: list[str | None]) -> str | None:
    """The column against the first from the picks of both orders (the column is A in the
    first, B in the second): ``better``, ``worse`` or ``tie``; orders that disagree (position
    bias) make a tie; None when a pick could not be read."""
    if len(picks) != 2 or any(pick is None for pick in picks):
        return None
    first = {"A": "better", "B": "worse", "tie": "tie"}[str(picks[0])]
    second = {"B": "better", "A": "worse", "tie": "tie"}[str(picks[1])]
    return first if first == second else "tie"


def recorded_spec(
    info: Mapping[str, Any], engine: Engine, *, templates: JudgeTemplates | None = None
) -> JudgeSpec:
    """The judge spec a record's ``judge`` describes, on ``engine`` (found again by rerun)."""
    rubric = info.get("rubric") or {}
    generation = info.get("generation") or {}
    wording = templates or JudgeTemplates()
    template = info.get("template")
    pairwise = info.get("mode") == "pairwise"
    if isinstance(template, str):
        wording = replace(wording, **{"pairwise" if pairwise else "pointwise": template})
    try:
        chosen = Rubric(
            str(rubric["name"]),
            str(rubric["text"]),
            str(rubric.get("scale", "1-5")),
            rubric.get("needs"),
            rubric.get("column"),
        )
        settings = GenerationSettings(
            int(generation.get("max_new_tokens", JUDGE_MAX_NEW_TOKENS)),
            float(generation.get("temperature", 0.0)),
            float(generation.get("top_p", 1.0)),
            generation.get("seed", 0),
        )
    except (KeyError, TypeError, ValueError, InvalidArgumentError) as exc:
        raise JudgeError(f"The record's judge is incomplete or malformed ({exc}).") from None
    if chosen.scale not in SCALES:
        raise JudgeError(f"The record's judge scale {shown(chosen.scale)} is not one of {SCALES}.")
    spec = JudgeSpec(engine, chosen, wording, pairwise, settings, bool(info.get("scored")))
    # A record from before enforcement (no ``enforced``) or a free one asked for stays free.
    if info.get("enforced"):
        return with_enforcement(spec)
    return replace(spec, free=str(info.get("free") or "recorded free"))


def decoding_words(judge: Mapping[str, Any]) -> str:
    """`` · format enforced while decoding`` or `` · free text (why)``: whether the verdict's
    format was held by constrained decoding (a free reply may miss it); '' for a record from
    before enforcement, which does not say."""
    enforced = judge.get("enforced")
    if enforced is True:
        return " · format enforced while decoding"
    if enforced is False:
        free = str(judge.get("free") or "").removeprefix("cannot enforce: ")
        return " · free text" + (f" ({free})" if free else "")
    return ""


#: A pairwise outcome as a chip says it (``better than A``) and its tone.
_PAIRWISE_WORDS = {
    "better": ("better than", "good"),
    "worse": ("worse than", "bad"),
    "tie": ("tie with", "mid"),
}


def _unknown_outcome(outcome: Any) -> str:
    """Why a pairwise record's ``outcome`` cannot be shown ('' when it can)."""
    if outcome is None:
        return "not judged: the record has no pairwise outcome"
    if not isinstance(outcome, str) or outcome not in _PAIRWISE_WORDS:
        return f"not judged: unknown pairwise outcome {shown(outcome, 40)}"
    return ""


def shown_verdict(judge: Any) -> dict[str, str] | None:
    """How a column's judge verdict (``record["judge"]``) shows in a cell and the static copy:
    ``chip`` (``judge 4/5``, ``judge pass``, ``better than A``, ``not judged``), ``tone``
    (good, mid, bad; none: unjudged; base: the column a pairwise judge compares the others
    with), ``title`` (the judge, rubric, whether the format was enforced while decoding, and
    any note) and ``reasoning``; None for a column
    without a judge. A pairwise record without a known ``outcome`` (written by hand, or
    damaged) shows as ``not judged``, its note saying why: a notebook opens whatever it holds."""
    if not isinstance(judge, Mapping):
        return None
    model: Mapping[str, Any] = judge.get("model") or {}
    rubric: Mapping[str, Any] = judge.get("rubric") or {}
    if not isinstance(model, Mapping) or not isinstance(rubric, Mapping):
        model, rubric = {}, {}
    label = judge.get("label")
    note = str(judge.get("note") or "")
    title = f"judged by {model.get('name', '?')} · rubric {rubric.get('name', '?')}"
    title += f" ({rubric.get('scale', '')})" if judge.get("mode") != "pairwise" else " (pairwise)"
    title += decoding_words(judge)
    if judge.get("baseline"):
        title += ": every other column is compared with this one"
        return {"chip": "pairwise baseline", "tone": "base", "title": title, "reasoning": ""}
    outcome = judge.get("outcome")
    if judge.get("mode") == "pairwise" and label is not None:
        missing = _unknown_outcome(outcome)
        if missing:  # hand-made or damaged: a label without an outcome is no verdict to show
            label, note = None, missing
    if label is None:
        return {"chip": "not judged", "tone": "none", "title": f"{title} · {note}", "reasoning": ""}
    if judge.get("mode") == "pairwise":
        words, tone = _PAIRWISE_WORDS[outcome]
        chip = f"{words} {judge.get('against') or 'the first column'}"
        if "disagree" in str(label):
            chip += " (orders disagree)"
    else:
        chip = f"judge {label}"
        value = judge.get("value")
        value = float(value) if isinstance(value, (int, float)) else 0.0
        tone = "good" if value >= 0.75 else "mid" if value >= 0.5 else "bad"
    return {
        "chip": chip,
        "tone": tone,
        "title": title,
        "reasoning": str(judge.get("reasoning") or ""),
    }
