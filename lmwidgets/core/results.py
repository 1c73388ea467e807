"""What a prompt produces: :class:`Result` (one column) and :class:`Comparison` (all of them)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmwidgets.core.answers import Agreement, scored_agreement
from lmwidgets.core.layout import agreement_applies, varying
from lmwidgets.errors import InvalidArgumentError

#: How a comparison is shown: ``"html"``, ``"markdown"``, ``"text"`` (each ``f(comparison) ->
#: str``) and ``"records"`` (``f(records) -> (mime type, payload)``). Rendering sits above the
#: data types: :mod:`lmwidgets.sharing.static_render` registers itself here when imported, and
#: ``import lmwidgets`` imports it.
RENDERERS: dict[str, Callable[..., Any]] = {}


_FINISH_ORDER = ("error", "stopped", "running", "length")


def result_from_record(record: dict[str, Any]) -> Result:
    """The :class:`Result` a saved run record describes (nothing runs): its text, answer,
    verdict and how it was made, as the record keeps them."""
    output = record.get("output") or {}
    reasons = set(output.get("finish_reasons") or ["eos"])
    reason = next((r for r in _FINISH_ORDER if r in reasons), "eos")
    timing = record.get("timing") or {}
    adapter = record.get("adapter")
    model = record.get("model") or {}
    expected = record.get("expected")
    extras = {**_record_extras(record), **choice_extras(record)}
    return Result(
        variant=str(record.get("variant", "")),
        text=str(output.get("text", "")),
        prompt=str((record.get("prompt") or {}).get("rendered", "")),
        tokens=int(output.get("tokens") or 0),
        seconds=float(timing.get("seconds") or 0.0),
        record=record,
        answer=output.get("answer"),
        strategy=str((record.get("strategy") or {}).get("name", "zero-shot")),
        model=str(model.get("name", "")) if isinstance(model, dict) else "",
        adapter=adapter.get("name") if isinstance(adapter, dict) else None,
        first_token_seconds=timing.get("first_token_seconds"),
        finish_reason="stopped" if reason == "running" else reason,
        input=None if record.get("input") is None else str(record["input"].get("input")),
        expected=None if expected is None else str(expected),
        correct=record.get("correct"),
        score=record.get("score"),
        compared=record.get("compared"),
        verdict=record.get("verdict"),
        score_error=record.get("score_error"),
        extras=extras,
        confidence=output.get("confidence"),
        cached=bool(record.get("cached")),
        **_structured_fields(output),
        choice_logprobs=_choice_logprobs(record),
    )


def _choice_logprobs(record: dict[str, Any]) -> list[float] | None:
    """A record of given choices' log-probabilities (None for a generated column)."""
    choices = record.get("choices")
    if not isinstance(choices, dict) or not isinstance(choices.get("logprobs"), list):
        return None
    return [float(v) for v in choices["logprobs"]]


def choice_extras(record: dict[str, Any]) -> dict[str, Any]:
    """The extras of a column of given choices, as its record keeps them (see
    :mod:`lmwidgets.run.choices`): the choices, the acc and acc_norm picks, tokens."""
    choices = record.get("choices")
    if _choice_logprobs(record) is None or not isinstance(choices, dict):
        return {}
    keys = ("options", "acc", "acc_norm", "n_tokens", "greedy", "perplexity", "per_token")
    found = {k: choices[k] for k in keys if k in choices}
    found["choices"] = found.pop("options", [])
    found["choice_logprobs"] = _choice_logprobs(record)
    return found


def _choice_columns(result: Result) -> dict[str, Any]:
    """A run of given choices' ``to_pandas()`` columns: the choices, their log-probabilities
    and the length-normalized (``acc_norm``) pick beside the answer (the ``acc`` pick)."""
    choices = result.extras.get("choices")
    norm = result.extras.get("acc_norm")
    picked = choices[norm] if isinstance(choices, list) and isinstance(norm, int) else None
    return {
        "choices": choices,
        "choice_logprobs": result.choice_logprobs,
        "acc_norm_answer": None if result.extras.get("perplexity") else picked,
    }


def _record_extras(record: dict[str, Any]) -> dict[str, Any]:
    output = record.get("output") or {}
    keys = ("samples", "votes", "agreement", "display_text", "structured")
    return {k: output[k] for k in keys if k in output}


def _structured_fields(output: dict[str, Any]) -> dict[str, Any]:
    """``parsed`` and ``valid`` as a record keeps them (``parsed`` as plain JSON data)."""
    structured = output.get("structured")
    if not isinstance(structured, dict):
        return {}
    return {"parsed": structured.get("parsed"), "valid": structured.get("valid")}


def _group_label(label: str) -> str:
    """A trial's column label without its ``trial k`` part."""
    parts = [p for p in label.split(" · ") if not p.startswith("trial ")]
    return " · ".join(parts) or "all columns"


def _accuracy_spread(results: Sequence[Result], trials: list[str]) -> str:
    """``'accuracy mean 62%, range 55–70% over 3 trials'``."""
    by_trial: dict[str, list[float]] = {t: [] for t in trials}
    for result in results:
        if result.score is not None:
            by_trial[result.coords["trial"]].append(result.score)
    scores = [sum(v) / len(v) for v in by_trial.values() if v]
    if not scores:
        return f"not scored ({len(trials)} trials)"
    mean = sum(scores) / len(scores)
    return (
        f"accuracy mean {mean:.0%}, range {min(scores):.0%}–{max(scores):.0%} over "
        f"{len(trials)} trials"
    )


def _axis_column(axis: str) -> str:
    """A varied axis' column in ``to_pandas()``: its name (a template field's own name)."""
    return axis.split(":", 1)[1] if axis.startswith("field:") else axis


def _axis_value(axis: str, value: str | None) -> Any:
    """Numbers for the numeric axes (temperature, top_p, trial), text for the others."""
    if value is not None and axis in ("temperature", "top_p", "trial"):
        try:
            return int(value) if axis == "trial" else float(value)
        except ValueError:
            return value
    return value


def _kind_tables(results: Sequence[Result]) -> list[list[dict[str, Any]]]:
    """Each registered axis kind's ``to_pandas()`` columns for every result (a probe run's
    probe_kind, attack, canary, probe_verdict and attack_success), None-filled for the results
    that have nothing of the kind; kinds that no result has give none."""
    from lmwidgets.core.axis_kinds import all_kinds

    tables = []
    for kind in all_kinds():
        table = kind.hook("table")
        if table is None:
            continue
        found = [table(result) for result in results]
        names = next((list(t) for t in found if t), None)
        if names is not None:
            tables.append([t or dict.fromkeys(names) for t in found])
    return tables


def _judge_columns(result: Result) -> dict[str, Any]:
    """A judged run's ``to_pandas()`` columns: judge_verdict (``4/5``, ``pass``, ``better``;
    None unjudged), judge_score (0..1, pointwise) and judge_reasoning."""
    judge = result.judge or {}
    return {
        "judge_verdict": judge.get("label"),
        "judge_score": result.judge_score,
        "judge_reasoning": judge.get("reasoning"),
    }


def _render(kind: str, value: Any) -> Any:
    return RENDERERS[kind](value)


#: The columns of ``Comparison.to_pandas(tokens=True)``.
TOKEN_COLUMNS = ("variant", "input", "position", "token", "id", "logprob", "prob", "top")


def format_alternatives(top: Sequence[dict[str, Any]], digits: int = 2) -> str:
    """Alternatives as one readable string, ``"Paris 0.41 | Lyon 0.22"`` (each token's text as
    written, probability rounded to ``digits``)."""
    return " | ".join(f"{alt['text']} {math.exp(alt['logprob']):.{digits}f}" for alt in top)


@dataclass
class Result:
    """One column of a comparison: one variant's text and exactly how it was produced.

    ``prompt`` is the exact text the model received (after templating); ``answer`` is the final
    answer extracted from the text for every strategy (the rules of
    :mod:`lmwidgets.core.answers`; self-consistency's is the vote's winner), None only when
    the text is empty or the column failed; ``record`` says exactly what ran. With a dataset's
    ``expected``, the run's scorer (:mod:`lmwidgets.prompting.scoring`) fills ``score``,
    ``correct``, ``compared`` and ``verdict``.
    """

    variant: str
    text: str
    prompt: str
    tokens: int
    seconds: float
    record: dict[str, Any]
    answer: str | None = None
    strategy: str = "zero-shot"
    model: str = ""
    adapter: str | None = None
    first_token_seconds: float | None = None
    finish_reason: str = "eos"
    error: str | None = None
    input: str | None = None
    expected: str | None = None
    #: Whether the answer matched ``expected`` (``score >= 0.5``); None without ``expected``.
    correct: bool | None = None
    #: The scorer's verdict in 0..1 (1.0/0.0 for yes/no scorers); None without ``expected``.
    score: float | None = None
    #: What the scorer compared with ``expected`` (the extracted answer, number or letter).
    compared: str | None = None
    #: How the scorer judged, in a few words: "contains Paris", "equals 14", "got 7" (a miss;
    #: the view adds what was expected). See :mod:`lmwidgets.prompting.scoring`.
    verdict: str | None = None
    #: Why the scorer could not score this item (then ``score`` and ``correct`` are None).
    score_error: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: Per generated token with ``--logprobs K``: ``{"text", "id", "logprob", "top": [{"text",
    #: "id", "logprob"}, ...]}`` (empty when log-probabilities were not asked for).
    tokens_detail: list[dict[str, Any]] = field(default_factory=list)
    #: Probability of the answer's tokens (self-consistency: the vote share); None unknown.
    confidence: float | None = None
    #: Boxes found in the answer (label, x1, y1, x2, y2 in pixels of the first image).
    boxes: list[Any] = field(default_factory=list)
    #: The prompt's media as records say them (kind, name, sha256, size, region...).
    media: list[dict[str, Any]] = field(default_factory=list)
    #: Previews of a dataset item's own media (``--dataset`` with an ``image`` column...):
    #: kind, name, a small ``src``, caption; shown in the item's row.
    item_media: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the text came from the response cache (its timing is the generating run's).
    cached: bool = False
    #: With a structured-answer constraint (``--json``, ``--regex``, ``--one-of``,
    #: ``--grammar``): the answer as Python data (a pydantic instance when a model class was
    #: given; None when invalid), and whether the text satisfied the constraint (None: the run
    #: had none). Enforced columns are valid unless cut off by ``--max-new-tokens``.
    parsed: Any = None
    valid: bool | None = None
    #: With given choices (``--choices``): each choice's total log-probability after the
    #: prompt, in the choices' order (``extras["choices"]`` names them; ``extras["acc"]`` and
    #: ``extras["acc_norm"]`` are the picks' indexes). None for generated columns.
    choice_logprobs: list[float] | None = None

    @property
    def label(self) -> str:
        """The column's label (the same as ``variant``)."""
        return self.variant

    @property
    def coords(self) -> dict[str, str]:
        """The column's value on every axis of its run (``{"prompt": "B", "temperature":
        "0.7", ...}``), as its record says (empty for records made before axes were
        recorded)."""
        axes = self.record.get("axes") if isinstance(self.record, dict) else None
        return dict(axes) if isinstance(axes, dict) else {}

    @property
    def item_index(self) -> int | None:
        """The dataset item's number, as its record keeps it (None: no dataset, or a record
        made before items were numbered): two items asking the same question of different
        images or clips stay two rows."""
        index = self.record.get("item_index") if isinstance(self.record, dict) else None
        return index if isinstance(index, int) and not isinstance(index, bool) else None

    @property
    def rating(self) -> str | None:
        """Your thumbs on this column: ``"up"``, ``"down"`` or None (unrated), as its record
        keeps them (:meth:`Comparison.rate`, the live view's thumbs)."""
        from lmwidgets.core.ratings import rating_of

        return rating_of(self.record)

    @property
    def images(self) -> list[dict[str, Any]]:
        """The prompt's images as records say them (its media of kind ``image``)."""
        return [m for m in self.media if m.get("kind", "image") == "image"]

    @property
    def probe(self) -> dict[str, Any] | None:
        """A probe column's attack, canary and verdict as its record keeps them (``kind``,
        ``attack``, ``canary``, ``verdict``: held / leaked / followed, ``evidence``); None for
        a column that attacks nothing (see :mod:`lmwidgets.prompting.probes`)."""
        probe = self.record.get("probe") if isinstance(self.record, dict) else None
        return probe if isinstance(probe, dict) else None

    @property
    def probe_verdict(self) -> str | None:
        """A probe column's verdict: ``held``, ``leaked`` or ``followed`` (None otherwise)."""
        probe = self.probe
        return None if probe is None else probe.get("verdict")

    @property
    def judge(self) -> dict[str, Any] | None:
        """The judge's verdict on this column as its record keeps it (None: no judge;
        :mod:`lmwidgets.prompting.judging`): ``model``, ``rubric``, ``mode``, ``prompt``,
        ``raw``, ``reasoning``, ``label`` (``4/5``, ``pass``, ``better``; None when unjudged,
        ``note`` then says why) and ``value``; pairwise also ``against``, ``calls`` and
        ``outcome``."""
        judge = self.record.get("judge") if isinstance(self.record, dict) else None
        return judge if isinstance(judge, dict) else None

    @property
    def judge_score(self) -> float | None:
        """The judge's pointwise verdict in 0..1 (``4/5`` is 0.75, pass 1.0, fail 0.0); None
        when unjudged, judged pairwise, or without a judge."""
        value = (self.judge or {}).get("value")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def judge_outcome(self) -> str | None:
        """Pairwise: this column against the first, ``better``, ``worse`` or ``tie`` (orders
        that disagree are a tie); None otherwise."""
        outcome = (self.judge or {}).get("outcome")
        return outcome if isinstance(outcome, str) else None

    @property
    def complete(self) -> bool:
        """False when the run was stopped or failed before this column finished."""
        return self.finish_reason in ("eos", "length")

    @property
    def cut_off(self) -> bool:
        """True when the answer stopped at the token budget (``--max-new-tokens``), not at its
        end: the text is whole as generated, but the model had more to say."""
        return self.finish_reason == "length"

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of this column. Columns of one batch advance together,
        so this is not the model's speed: :meth:`Comparison.throughput` says that."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def stats(self) -> str:
        """``'42 tokens · 3.1 s · first token 0.20 s'``: the column's tokens and time, not a
        speed (in a batch every column advances together; the run's speed is said once, by
        :meth:`Comparison.throughput`); ``· cached`` when the text came from the response cache
        (the times are then those of the run that generated it)."""
        parts = [
            f"{self.tokens} token{'' if self.tokens == 1 else 's'}",
            f"{self.seconds:.1f} s",
        ]
        if self.choice_logprobs is not None:  # given choices: scored, nothing generated
            count = len(self.choice_logprobs)
            parts[0] = f"{count} choice{'' if count == 1 else 's'} scored"
        if self.first_token_seconds is not None:
            parts.append(f"first token {self.first_token_seconds:.2f} s")
        if self.cached:
            parts.append("cached")
        return " · ".join(parts)

    def __str__(self) -> str:
        return self.text


class Comparison:
    """The results of one ``%%prompt`` run: one :class:`Result` per column (and per dataset item).

    Index it by position or by variant label; ``.text`` is the text of a single-column run.
    In a notebook it displays as a static, escaped table.
    """

    def __init__(
        self,
        results: list[Result],
        *,
        title: str = "",
        status: str = "done",
        notes: list[str] | None = None,
        scores: dict[str, float] | None = None,
        media: list[dict[str, Any]] | None = None,
        columns: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self.results = results
        #: The axis that forms the columns of the view and the static copy (``--columns``);
        #: None: the default layout (:func:`lmwidgets.core.layout.axes_of`).
        self.columns = columns
        self.title = title
        self.status = status
        self.notes = list(notes or [])
        self.scores = dict(scores or {})
        #: Previews of the prompt's media: kind, name, thumbnail (``src``), size, region.
        self.media: list[dict[str, Any]] = list(media or [])
        #: Wall-clock seconds the run took, every column together (None: not measured).
        self.seconds = seconds

    @property
    def images(self) -> list[dict[str, Any]]:
        """Previews of the prompt's images (its media of kind ``image``)."""
        return [m for m in self.media if m.get("kind", "image") == "image"]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __getitem__(self, key: int | str) -> Result:
        if isinstance(key, int):
            return self.results[key]
        for result in self.results:
            if result.variant == key:
                return result
        labels = ", ".join(self.variants)
        raise KeyError(f"No column {key!r} (columns: {labels})")

    @property
    def variants(self) -> list[str]:
        """Column labels, in order, without repeats."""
        return list(dict.fromkeys(result.variant for result in self.results))

    @property
    def text(self) -> str:
        """The text of the first result (the only one in a single-column run)."""
        return self.results[0].text if self.results else ""

    @property
    def complete(self) -> bool:
        """True when every column finished (not stopped, no error)."""
        return all(result.complete for result in self.results)

    @property
    def rows(self) -> list[list[Result]]:
        """The results per dataset item, in item order (``rows[i][j]`` is item ``i`` in column
        ``variants[j]``); a run without a dataset is one row of all its columns. Results are
        item-major with one result per column, as every run and re-run makes them."""
        width = len(self.variants) or 1
        return [self.results[start : start + width] for start in range(0, len(self.results), width)]

    def agreement(self, row: int | None = None) -> Agreement | None:
        """How the columns' answers agree (:func:`lmwidgets.core.answers.agreement`):
        ``groups`` numbers each column's normalized answer (0 the most common, None without
        an answer) and ``summary`` says it in one line ("2 of 3 columns agree on cold").

        ``row`` is the dataset item's index (see :attr:`rows`); leave it None for a run without
        a dataset. A single column's summary is empty. On a scored dataset the marks follow the
        scorer: answers it judged right agree (:func:`~lmwidgets.core.answers.scored_agreement`).

        None where the columns do not answer one question, so that how many agree would mean
        nothing: an axis of a kind with ``agreement=False`` (probes: each column another attack)
        or a pairwise-judged run (the judge's verdict is the comparison). The live view and the
        static copy leave the summary out there too (:func:`~lmwidgets.core.layout.
        agreement_applies`). A bad ``row`` raises even then."""
        rows = self.rows
        dataset = any(result.input is not None for result in self.results)
        if row is None and dataset and len(rows) > 1:
            raise InvalidArgumentError(
                f"This comparison has {len(rows)} dataset items: say which with row=0.."
                f"{len(rows) - 1}."
            )
        index = 0 if row is None else row
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(rows):
            raise InvalidArgumentError(
                f"row must be a dataset item index from 0 to {len(rows) - 1}, not {row!r}."
            )
        if not agreement_applies(self.results):
            return None
        return scored_agreement(rows[index])

    def stats(self):
        """Each column's accuracy with its 95% interval, as a DataFrame (column, n, accuracy,
        ci_low, ci_high, method): Wilson for right/wrong scores, a bootstrap for graded ones
        (:mod:`lmwidgets.core.stats`). Raises :class:`~lmwidgets.errors.StatisticsError` on a
        run without a dataset or scores, or one still running."""
        from lmwidgets.core.stats import stats_frame

        return stats_frame(self)

    def paired(self, a: int | str, b: int | str):
        """Columns ``a`` and ``b`` (labels or indexes) on the same items: wins, losses, ties
        and an exact McNemar p-value, said in one line by ``str()`` ("B is right where A is
        wrong on 14 of 50 items, the reverse on 3; p = 0.013 (exact McNemar)"); with too few
        items it says so instead (:func:`lmwidgets.core.stats.paired`)."""
        from lmwidgets.core.stats import paired

        return paired(self, a, b)

    def throughput(self) -> str:
        """The run's speed, said once for all its columns: ``'120 tokens in 3.1 s · 38.7
        tok/s'`` ('' when the run's time was not measured). A column's own tok/s would
        mislead: the columns of one batch advance together. Answers from the response cache
        are left out of the speed and said apart, as are columns shown as they ran before (an
        earlier run's beside this one, a forked row's)."""
        if not self.seconds or self.seconds <= 0:
            return ""
        scored = [r.choice_logprobs for r in self.results if r.choice_logprobs is not None]
        if scored and len(scored) == len(self.results):  # given choices: nothing generated
            count = sum(len(c) for c in scored)
            return f"{count} choice{'' if count == 1 else 's'} scored in {self.seconds:.1f} s"
        # Text from the response cache took no generating: counted in, it read as a speed
        # the model never had (a cached judging run said "490.6 tok/s").
        ran = [result for result in self.results if not result.record.get("shown_as")]
        shown = len(self.results) - len(ran)
        before = f" · {shown} column{'s' if shown > 1 else ''} as {'they' if shown > 1 else 'it'}"
        before = f"{before} ran before" if shown else ""
        cached = sum(1 for result in ran if result.cached)
        tokens = sum(result.tokens for result in ran if not result.cached)
        if ran and cached == len(ran):
            every = sum(result.tokens for result in ran)
            return f"{every} token{'' if every == 1 else 's'}, all from the response cache{before}"
        count = f"{tokens} token{'' if tokens == 1 else 's'}"
        speed = f"{count} in {self.seconds:.1f} s · {tokens / self.seconds:.1f} tok/s"
        if cached:
            speed += f" ({cached} of {len(ran)} cached)"
        return speed + before

    # Your own ratings (lmwidgets.core.ratings) ---------------------------------------------
    def rate(self, column: int | str, value: Any, *, row: int | None = None) -> None:
        """Thumbs on a column: ``value`` ``"up"`` or ``"down"`` (or 1 / -1; None clears).
        ``column`` is a label or a position among :attr:`variants`; ``row`` the dataset item
        (needed when there are several). Kept in the column's record, so a saved notebook
        keeps it; a live view showing this comparison follows. :class:`RatingError` for a
        comparison still running, an unknown column or item, or another value."""
        from lmwidgets.core.ratings import locate, set_rating

        set_rating(self, locate(self, column, row), value)

    def prefer(
        self, a: int | str, b: int | str, *, tie: bool = False, row: int | None = None
    ) -> None:
        """Record that column ``a`` is better than column ``b`` (``tie=True``: as good) on
        dataset item ``row``; judging the same pair again replaces the earlier judgment. Kept
        in ``a``'s record; :func:`lmwidgets.leaderboard` ranks the variants from them."""
        from lmwidgets.core.ratings import locate, set_preference

        first, second = locate(self, a, row), locate(self, b, row)
        set_preference(self, first, second, "tie" if tie else "win")

    @property
    def preferences(self) -> list[Any]:
        """Every pairwise judgment recorded on this comparison
        (:class:`lmwidgets.core.ratings.Preference`: ``a``, ``b``, ``winner`` (None: a tie),
        ``row``, ``blind``, ``seed``, ``time``)."""
        from lmwidgets.core.ratings import preferences

        return preferences(self)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The run record of every result."""
        return [result.record for result in self.results]

    def __repr__(self) -> str:
        """``<Comparison done, 1 of 2 truncated (max tokens): 2 result(s), columns [...]>``:
        a text cut off by ``max_new_tokens`` is said here too (``.text`` cannot say it)."""
        cut = sum(result.cut_off for result in self.results)
        status = self.status
        if cut:
            status += f", {cut} of {len(self.results)} truncated (max tokens)"
        return f"<Comparison {status}: {len(self.results)} result(s), columns {self.variants}>"

    # Exports -----------------------------------------------------------------------------
    def to_pandas(self, tokens: bool = False):
        """One row per result: variant, strategy, model, adapter, input (and item, the item's
        number, when items share a question), text, answer, stats;
        with your thumbs on any column also rating (``up``, ``down``, None); with a dataset's
        ``expected`` also expected, correct, score, compared and verdict; with an answer
        confidence (``--logprobs``, self-consistency) also confidence; with given choices also
        choices, choice_logprobs and acc_norm_answer; with a judge also judge_verdict,
        judge_score and judge_reasoning; with probes (or another registered axis kind that
        has columns, :mod:`lmwidgets.core.axis_kinds`) also its columns (probe_kind, attack,
        canary, probe_verdict, attack_success); when a column came from the response cache
        also cached.

        ``tokens=True`` gives one row per generated token instead (:meth:`token_rows`)."""
        import pandas as pd

        if tokens:
            return pd.DataFrame(self.token_rows(), columns=list(TOKEN_COLUMNS))
        rows = []
        axes = self.varied_axes()
        # Items asking the same question (of different images or clips) need their number.
        shared = len({(r.input, r.item_index) for r in self.results}) > len(
            {r.input for r in self.results}
        )
        kinds = _kind_tables(self.results)
        for index, result in enumerate(self.results):
            row = {
                "variant": result.variant,
                "strategy": result.strategy,
                "model": result.model,
                "adapter": result.adapter,
                **{_axis_column(a): _axis_value(a, result.coords.get(a)) for a in axes},
                "input": result.input,
                **({"item": result.item_index} if shared else {}),
                "text": result.text,
                "answer": result.answer,
                "tokens": result.tokens,
                "seconds": result.seconds,
                "tokens_per_second": result.tokens_per_second,
                "finish_reason": result.finish_reason,
            }
            if any(r.cached for r in self.results):
                row["cached"] = result.cached
            if any(r.rating for r in self.results):
                row["rating"] = result.rating
            for table in kinds:  # a probe run's probe_kind, attack, canary, verdict...
                row.update(table[index])
            if any(r.confidence is not None for r in self.results):
                row["confidence"] = result.confidence
            if any(r.judge is not None for r in self.results):
                row.update(_judge_columns(result))
            if any(r.choice_logprobs is not None for r in self.results):
                row.update(_choice_columns(result))
            if any(r.expected is not None for r in self.results):
                row["expected"] = result.expected
                row["correct"] = result.correct
                row["score"] = result.score
                row["compared"] = result.compared
                row["verdict"] = result.verdict
            rows.append(row)
        return pd.DataFrame(rows)

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]], title: str = "") -> Comparison:
        """The comparison saved records describe (a saved notebook's earlier run): the texts,
        answers and verdicts as recorded, nothing re-run (:func:`lmwidgets.rerun` re-runs)."""
        results = [result_from_record(dict(record)) for record in records]
        scores: dict[str, list[float]] = {}
        for result in results:
            if result.score is not None:
                scores.setdefault(result.variant, []).append(float(result.score))
        return cls(
            results,
            title=title,
            status="done" if all(r.complete for r in results) else "stopped",
            scores={label: sum(v) / len(v) for label, v in scores.items()},
        )

    def spread(self) -> list[str]:
        """How repeated trials (``--trials N``) spread, one line per column without its trial:
        the distinct answers with their counts (``"T=0.7: Paris ×2, Lyon ×1 (3 trials)"``),
        or on a dataset the accuracy's mean and range over the trials. Empty without trials."""
        groups: dict[tuple[tuple[str, str], ...], list[Result]] = {}
        for result in self.results:
            coords = result.coords
            if "trial" in coords:
                key = tuple((k, v) for k, v in coords.items() if k != "trial")
                groups.setdefault(key, []).append(result)
        lines = []
        for results in groups.values():
            trials = sorted({r.coords["trial"] for r in results}, key=int)
            if len(trials) < 2:
                continue
            name = _group_label(results[0].variant)
            if any(r.expected is not None for r in results):
                lines.append(f"{name}: {_accuracy_spread(results, trials)}")
            else:
                counts = Counter(r.answer for r in results if r.answer is not None)
                shown = ", ".join(f"{a} ×{n}" for a, n in counts.most_common(5))
                more = len(counts) - 5
                lines.append(
                    f"{name}: {shown or 'no answers'}{f' and {more} more' if more > 0 else ''} "
                    f"({len(trials)} trials)"
                )
        return lines

    @property
    def attack_success(self) -> dict[str, float]:
        """The probes' attack success rate per kind (``{"leak": 0.33, "inject": 1.0}``): the
        share of judged probe columns (and dataset items) that leaked or followed. Rates per
        strategy, model, adapter or prompt: ``to_pandas()`` grouped by those columns, or the
        summary lines in ``notes``."""
        hits: dict[str, list[bool]] = {}
        for result in self.results:
            probe = result.probe
            if probe is not None and probe.get("verdict") is not None:
                success = probe["verdict"] in ("leaked", "followed")
                hits.setdefault(str(probe.get("kind")), []).append(success)
        return {kind: sum(marks) / len(marks) for kind, marks in hits.items()}

    def varied_axes(self) -> list[str]:
        """The axes (besides strategy, model and adapter) whose value differs between this
        comparison's columns: ``prompt``, ``system``, ``field:NAME``, ``temperature``,
        ``top_p``, ``trial``."""

        found = varying([result.coords for result in self.results])
        return [a for a in found if a not in ("strategy", "model", "adapter")]

    def token_rows(self) -> list[dict[str, Any]]:
        """One dict per generated token of every column that has tokens (``--logprobs K``):
        variant, input, position, token, id, logprob, prob and top (the alternatives as
        ``"Paris 0.41 | Lyon 0.22"``). Raises :class:`InvalidArgumentError` when no column has
        any, saying how to get them."""
        if not any(result.tokens_detail for result in self.results):
            raise InvalidArgumentError(
                "This comparison has no token details: run it with --logprobs K (logprobs=K in "
                "lmwidgets.prompt), or switch the live view's tokens toggle on and run again."
            )
        return [
            {
                "variant": result.variant,
                "input": result.input,
                "position": position,
                "token": token["text"],
                "id": token["id"],
                "logprob": token["logprob"],
                "prob": math.exp(token["logprob"]),
                "top": format_alternatives(token["top"]),
            }
            for result in self.results
            for position, token in enumerate(result.tokens_detail)
        ]

    def to_json(self, **kwargs: Any) -> str:
        """JSON with the results and their full records."""
        payload = {
            "title": self.title,
            "status": self.status,
            "notes": self.notes,
            "scores": self.scores,
            "seconds": self.seconds,
            "media": next((r.media for r in self.results if r.media), []),
            "results": [
                {
                    "variant": r.variant,
                    "strategy": r.strategy,
                    "model": r.model,
                    "adapter": r.adapter,
                    "input": r.input,
                    "expected": r.expected,
                    "correct": r.correct,
                    "score": r.score,
                    "compared": r.compared,
                    "verdict": r.verdict,
                    "score_error": r.score_error,
                    "text": r.text,
                    "answer": r.answer,
                    "prompt": r.prompt,
                    "tokens": r.tokens,
                    "seconds": r.seconds,
                    "finish_reason": r.finish_reason,
                    "error": r.error,
                    "confidence": r.confidence,
                    "cached": r.cached,
                    "boxes": [box.as_dict() for box in r.boxes],
                    "record": r.record,
                }
                for r in self.results
            ],
        }
        return json.dumps(payload, ensure_ascii=False, **kwargs)

    def to_html(self) -> str:
        """A self-contained, escaped HTML table of the results."""
        return _render("html", self)

    def to_markdown(self) -> str:
        """Markdown with each text in a code fence (never interpreted as HTML)."""
        return _render("markdown", self)

    def to_text(self) -> str:
        """Plain text of the results."""
        return _render("text", self)

    def mimebundle(self, include_records: bool = True) -> dict[str, Any]:
        """The static output: HTML, markdown, plain text and (optionally) the run records."""
        bundle: dict[str, Any] = {
            "text/plain": self.to_text(),
            "text/markdown": self.to_markdown(),
            "text/html": self.to_html(),
        }
        if include_records:
            mime, payload = _render("records", self.records)
            bundle[mime] = payload
        return bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.mimebundle(include_records=False)
