"""The scripted engine: a model without weights whose answers are written in advance.

It implements the whole :class:`~lmwidgets.engines.base.Engine` protocol without torch, so
everything above the engines (strategies, the runner, the live view, records, replay, the magics)
can be tested in milliseconds, and a notebook or the widget can be tried without a model, as
simonw/llm tests everything with its mock model. It is registered as engine ``scripted``, exactly
like the transformers engine: ``%lm load --engine scripted`` or
``lmwidgets.load_model(engine="scripted", replies={...})``.

Answers: ``replies`` maps a piece of prompt text to the answer (the first key found in the
rendered prompt wins; the key ``"*"`` is the fallback), or is a callable
``(prompt_text, adapter) -> answer``; without replies it answers ``You said: <last user text>``.
Text streams one word per step. Adapters are named text transforms (``{"loud": str.upper}``).
Seeds are handled as by the other engines (each row's own, or one derived from the batch's, drawn
when sampling without one: :func:`~lmwidgets.engines.base.row_seeds`) and reported in
``BatchOutcome.row_seeds``, but a scripted answer does not depend on them.

Token probabilities (``--logprobs K``): each piece is one "token" whose id is a stable hash of its
text (:func:`piece_id`) and whose log-probability and top alternatives are made up, but
deterministic: they depend only on the prompt, the position and the scripted piece there
(:func:`piece_distribution`), never on ``K`` (asking for fewer alternatives truncates the same
list) nor on the run. The scripted piece is always the most likely token (greedy decoding picks
it); the alternatives are common words with the same leading whitespace.

Given choices (``score_choices``): each choice's pieces score log 0.8 where they equal the
scripted answer's (after the row's adapter) at their position and a stable made-up
log-probability elsewhere (:func:`scripted_choice_score`), so the scripted answer is the
likeliest choice and the numbers never change between runs.

Forks (``PromptRow.forced_ids`` / ``forced_text``): the answer begins with the forced tokens (the
ids decoded through the pieces this engine has seen, else ``forced_text`` split into pieces) and
then continues with the script *from the position after them*, as if the model had gone on with
its original answer: forcing ``" Lyon"`` at position 5 of ``"The capital of France is Paris."``
gives ``"The capital of France Lyon Paris."`` (a scripted model does not react to what it said). A
forced token's log-probability is its entry among that position's alternatives, or a low
fixed value when it is not one of them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lmwidgets.engines.base import (
    MAX_LOGPROBS,
    BatchOutcome,
    Capabilities,
    GenerationSettings,
    Message,
    PromptRow,
    Rendered,
    RowOutput,
    StepCallback,
    StopSignal,
    TokenLogprob,
    batch_row_seeds,
    close_outputs,
)
from lmwidgets.engines.choices import ChoiceRequest, ChoiceScore, ScoringStopped
from lmwidgets.errors import AdapterError, InvalidArgumentError, ModelNotFoundError
from lmwidgets.media.base import MediaInput, check_accepted

Replies = Mapping[str, str] | Callable[[str, str | None], str]

_PIECE = re.compile(r"\s*\S+|\s+")


def pieces(text: str) -> list[str]:
    """``text`` split into the pieces that stream one per step (a word with its leading space)."""
    return _PIECE.findall(text)


#: Words the made-up alternatives are drawn from (with the scripted piece's leading whitespace).
_ALTERNATIVE_WORDS = (
    "the", "a", "is", "of", "and", "to", "it", "not", "yes", "no", "maybe", "Paris", "Lyon",
    "15", "16", "14", "answer", "so", "then", "because", "first", "we", "I", "think", "The",
    "This", "that", "in", "on", "for", "with", "as", "be", "one", "two", "three", ".", ",",
)  # fmt: skip

#: The log-probability of a forced token that is not among its position's alternatives.
UNLISTED_LOGPROB = math.log(1e-6)


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from ``parts`` (the same on every run and machine)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def piece_id(piece: str) -> int:
    """A piece's token id: a stable hash of its text, so records and forks name it the same way
    on every run (two pieces sharing an id is possible but vanishingly rare)."""
    digest = hashlib.sha256(piece.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 1_000_000 + 1


def piece_distribution(prompt: str, position: int, piece: str) -> list[tuple[str, float]]:
    """The made-up distribution at ``position`` of the answer to ``prompt`` whose scripted piece
    there is ``piece``: (piece, logprob) for the :data:`~lmwidgets.engines.base.MAX_LOGPROBS`
    most likely tokens, most likely first (``piece`` itself). Deterministic, so tests can pin it.
    """
    lead = piece[: len(piece) - len(piece.lstrip())]
    chosen = 0.35 + 0.6 * _unit(prompt, position, piece)  # between 0.35 and 0.95
    rest = 1.0 - chosen
    start = int(_unit("alternatives", prompt, position) * len(_ALTERNATIVE_WORDS))
    words = _ALTERNATIVE_WORDS[start:] + _ALTERNATIVE_WORDS[:start]
    out = [(piece, math.log(chosen))]
    for word in words:
        if len(out) == MAX_LOGPROBS:
            break
        if lead + word != piece:
            out.append((lead + word, math.log(rest * 0.5 ** len(out))))
    return out


#: A scripted answer's own piece at its position, in a choice being scored.
SCRIPTED_PIECE_LOGPROB = math.log(0.8)


def scripted_choice_score(prompt: str, answer: str, choice: str) -> ChoiceScore:
    """The scripted engine's score of ``choice`` after ``prompt`` whose scripted answer is
    ``answer``: each piece that equals the answer's piece at its position costs log 0.8, any
    other a stable made-up log-probability between log 0.001 and log 0.3. So the answer itself
    (or a choice it starts with) scores best, and the numbers never change between runs."""
    expected = pieces(answer)
    total = 0.0
    own = pieces(choice)
    for position, piece in enumerate(own):
        if position < len(expected) and piece == expected[position]:
            total += SCRIPTED_PIECE_LOGPROB
        else:
            total += math.log(0.001 + 0.299 * _unit("choice", prompt, position, piece))
    greedy = own == expected[: len(own)]
    return ChoiceScore(logprob=total, n_tokens=len(own), greedy=greedy)


def _content_text(content: Any) -> str:
    if isinstance(content, list):  # a content list: media parts become markers
        return "".join(
            part.get("text", "") if part.get("type") == "text" else f"[{part.get('type')}]"
            for part in content
        )
    return str(content)


class ScriptedEngine:
    """A scripted model (see the module docstring)."""

    engine = "scripted"

    def __init__(
        self,
        name: str = "scripted",
        *,
        replies: Replies | None = None,
        adapters: Mapping[str, Callable[[str], str]] | None = None,
        media: Sequence[str] = (),
        max_media: int | None = None,
        context_length: int | None = 4096,
        chat: bool = True,
        step_seconds: float = 0.0,
        fail_after: int | None = None,
        token_logprobs: bool = True,
        choice_scores: bool = True,
    ) -> None:
        self.name = name
        self.replies = replies
        self.transforms = dict(adapters or {})
        self.adapters: dict[str, Any] = {n: _ScriptedAdapter(n) for n in self.transforms}
        self.default_adapter: str | None = None
        self._caps = Capabilities(
            media=frozenset(media),
            max_media=max_media,
            adapters=bool(self.transforms),
            token_logprobs=token_logprobs,
            chat=chat,
            context_length=context_length,
            choice_scores=choice_scores,
        )
        self.step_seconds = step_seconds
        #: Steps after which generation fails as if out of memory (tests of that path).
        self.fail_after = fail_after
        self.calls: list[list[PromptRow]] = []
        #: Every ``score_choices`` call's requests (tests check the batching).
        self.choice_calls: list[list[ChoiceRequest]] = []
        #: The text of every token id this engine produced or listed (to decode forced ids).
        self.vocabulary: dict[int, str] = {}

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    # -- prompts ----------------------------------------------------------------------------

    def render(self, messages: list[Message], media: Sequence[MediaInput] = ()) -> Rendered:
        if self._caps.chat:
            text = (
                "".join(f"<|{m['role']}|>\n{_content_text(m['content'])}\n" for m in messages)
                + "<|assistant|>\n"
            )
        else:
            text = "\n\n".join(_content_text(m["content"]) for m in messages)
        return Rendered(text, len(pieces(text)), payload=(text, _last_user(messages)))

    def check_media(self, media: Sequence[MediaInput]) -> None:
        check_accepted(self.name, "scripted", self._caps.media, self._caps.max_media, media)

    def answer(self, row: PromptRow) -> str:
        """The scripted answer to ``row`` (before its adapter's transform)."""
        text, question = row.prompt.payload
        if callable(self.replies):
            answer = self.replies(text, row.adapter)
        elif self.replies:
            found = next((v for k, v in self.replies.items() if k != "*" and k in text), None)
            answer = found if found is not None else self.replies.get("*", f"You said: {question}")
        else:
            answer = f"You said: {question}"
        if row.adapter is not None:
            answer = self.transforms[row.adapter](answer)
        return answer

    # -- generation -------------------------------------------------------------------------

    def generate(
        self,
        rows: Sequence[PromptRow],
        settings: GenerationSettings,
        *,
        stop: StopSignal,
        on_step: StepCallback | None = None,
        ignore_eos: bool = False,
        prefix_reuse: bool = True,
    ) -> BatchOutcome:
        self.calls.append(list(rows))
        started = time.perf_counter()
        seed, seeds = batch_row_seeds(rows, settings)
        originals = [pieces(self.answer(row)) for row in rows]
        scripts = [self._script(row, o) for row, o in zip(rows, originals, strict=True)]
        outputs = [RowOutput() for _ in rows]
        error: BaseException | None = None
        try:
            for step in range(settings.max_new_tokens):
                if stop.is_set() or all(o.finished for o in outputs):
                    break
                if self.fail_after is not None and step >= self.fail_after:
                    error = MemoryError("scripted out of memory")
                    break
                self._step(outputs, scripts, step, started, ignore_eos)
                if settings.logprobs:
                    self._score(rows, outputs, originals, step, settings.logprobs)
                if on_step is not None:
                    on_step(outputs)
                if self.step_seconds:
                    time.sleep(self.step_seconds)
        except KeyboardInterrupt as exc:  # like the real engines: the text so far is kept
            error = exc
        elapsed = time.perf_counter() - started
        close_outputs(outputs, error, stop.is_set(), elapsed)
        return BatchOutcome(
            outputs=outputs, seconds=elapsed, seed=seed, error=error, row_seeds=seeds
        )

    def _script(self, row: PromptRow, script: list[str]) -> list[str]:
        """The pieces ``row`` streams: its forced start (a fork), then its scripted ``script``
        from the position after it (see the module docstring)."""
        forced = self._forced_pieces(row)
        return forced + script[len(forced) :] if forced else script

    def _forced_pieces(self, row: PromptRow) -> list[str]:
        """A fork's forced pieces: its ids decoded when this engine knows them all (they came
        from its own tokens), else its text split into pieces (a record replayed later)."""
        if row.forced_ids and all(i in self.vocabulary for i in row.forced_ids):
            return [self.vocabulary[i] for i in row.forced_ids]
        if row.forced_text:
            return pieces(row.forced_text)
        if row.forced_ids:
            raise InvalidArgumentError(
                f"{self.name} (scripted) does not know the forced token ids "
                f"{list(row.forced_ids)[:5]}: give the forced text too."
            )
        return []

    def _score(
        self,
        rows: Sequence[PromptRow],
        outputs: list[RowOutput],
        originals: list[list[str]],
        step: int,
        k: int,
    ) -> None:
        """Append this step's log-probability to every row that produced a piece in it.

        The distribution is keyed on the piece the *unforced* script has there, so a fork sees
        the same alternatives (and the forced one its logprob) as the answer it forked from.
        """
        for row, output, original in zip(rows, outputs, originals, strict=True):
            if len(output.logprobs) >= len(output.pieces):
                continue  # no piece this step (finished)
            piece = output.pieces[-1]
            base = original[step] if step < len(original) else piece
            listed = piece_distribution(row.prompt.text, step, base)
            for text, _ in listed:
                self.vocabulary.setdefault(piece_id(text), text)
            self.vocabulary.setdefault(piece_id(piece), piece)
            logprob = next((lp for t, lp in listed if t == piece), UNLISTED_LOGPROB)
            top = tuple((piece_id(t), t, lp) for t, lp in listed[:k])
            output.logprobs.append(TokenLogprob(piece_id(piece), piece, logprob, top))

    @staticmethod
    def _step(
        outputs: list[RowOutput],
        scripts: list[list[str]],
        step: int,
        started: float,
        ignore_eos: bool,
    ) -> None:
        now = time.perf_counter() - started
        for output, script in zip(outputs, scripts, strict=True):
            if output.finished:
                continue
            if step >= len(script) and not ignore_eos:
                output.finish_reason = "eos"
                continue
            output.pieces.append(script[step] if step < len(script) else " .")
            output.first_token_seconds = output.first_token_seconds or now
            output.seconds = now

    def score_choices(
        self, requests: Sequence[ChoiceRequest], *, stop: StopSignal | None = None
    ) -> list[list[ChoiceScore]]:
        """Made-up but deterministic choice scores (:func:`scripted_choice_score`): the
        scripted answer (after the row's adapter) is the likeliest continuation."""
        self.choice_calls.append(list(requests))
        if self.fail_after is not None:
            raise MemoryError("scripted out of memory")
        scored: list[list[ChoiceScore]] = []
        for request in requests:
            if stop is not None and stop.is_set():  # as a model stops between prompts
                raise ScoringStopped(scored)
            row = PromptRow(request.prompt, request.adapter)
            answer = self.answer(row)
            scored.append(
                [scripted_choice_score(request.prompt.text, answer, c) for c in request.choices]
            )
        return scored

    def text_of(self, output: RowOutput, *, streaming: bool = False) -> str:
        return "".join(output.pieces)

    # -- what it is -------------------------------------------------------------------------

    def box_convention(self) -> str:
        return ""

    def script_sha256(self) -> str | None:
        """sha256 of the replies (None when they are code, which cannot be pinned)."""
        if callable(self.replies):
            return None
        data = json.dumps(self.replies or {}, sort_keys=True).encode("utf-8")
        return hashlib.sha256(data).hexdigest()

    def record(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "name": self.name,
            "source": "scripted",
            "kind": "scripted",
            "weights_sha256": self.script_sha256(),
            "device": "none",
            "dtype": None,
        }

    def identity(self) -> tuple[Any, ...]:
        return (self.engine, self.name, self.script_sha256())

    def summary(self) -> str:
        count = "code" if callable(self.replies) else f"{len(self.replies or {})} replies"
        return f"{self.name} · scripted ({count}) · no weights"

    def attach_adapter(self, path: Any, **options: Any) -> Any:
        raise AdapterError(
            f"{self.name} is a scripted model: its adapters are given when it is made "
            "(adapters={name: transform})."
        )

    def detach_adapter(self, name: str) -> Any:
        raise AdapterError(f"{self.name} is a scripted model: its adapters cannot be detached.")

    def unload(self) -> None:
        self.calls.clear()


class _ScriptedAdapter:
    """What records and ``%lm adapter list`` say about a scripted adapter."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.model = "scripted"
        self.rank = 0
        self.target_modules: list[str] = []
        self.scale = 1.0
        self.parameters = 0
        self.bytes = 0

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "scripted": True}

    def summary(self) -> str:
        return f"{self.name} · scripted transform"


def _last_user(messages: list[Message]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _content_text(users[-1]["content"]) if users else ""


def load(
    source: Any,
    *,
    name: str | None,
    registry: Any,
    progress: Any = None,
    **options: Any,
) -> ScriptedEngine:
    """The ``scripted`` engine's loader: ``source`` is None or a JSON file of replies."""
    replies = options.pop("replies", None)
    if source is not None:
        path = Path(os.path.expanduser(source))  # an unknown ~user stays as written
        try:
            replies = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelNotFoundError(f"No replies file at {str(path)!r}.") from None
        except (OSError, ValueError) as exc:
            raise InvalidArgumentError(
                f"Cannot read {str(path)!r} as JSON replies: {exc}"
            ) from None
        if not isinstance(replies, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in replies.items()
        ):
            raise InvalidArgumentError(
                f"{str(path)!r} must hold a JSON object of prompt text -> answer strings."
            )
    if name is not None:
        registry.check_free(name)
    try:
        engine = ScriptedEngine(
            name or registry.unique_name("scripted"), replies=replies, **options
        )
    except TypeError as exc:
        raise InvalidArgumentError(f"Unknown option for the scripted engine: {exc}") from None
    if progress is not None:
        progress(1.0, "Ready")
    return engine
