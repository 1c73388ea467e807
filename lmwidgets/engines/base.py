"""The engine seam: what every loaded model offers the rest of lmwidgets.

An :class:`Engine` is a model that can be prompted: the in-kernel transformers engine
(:mod:`lmwidgets.engines.transformers`), the scripted engine for tests and demos
(:mod:`lmwidgets.engines.scripted`), and whatever comes next (served models). Strategies, the
runner, the live view, records and replay talk to engines only through this protocol, in the
spirit of simonw/llm's ``Model.execute``: render a prompt, generate a batch of rows streaming per
step with a stop signal, say how each row ended, and describe the model exactly for records.

Nothing here imports torch: everything above the engines runs without it.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from lmwidgets.checks import MAX_INT64, finite_number, shown, whole_number
from lmwidgets.errors import AdapterError, InvalidArgumentError

#: The smallest temperature that samples (dividing scores by less overflows them).
MIN_TEMPERATURE = 1e-3

#: The most alternatives per token ``--logprobs K`` may ask for (servers cap it near here too).
MAX_LOGPROBS = 20

#: Seeds lmwidgets draws (sampling without ``--seed``) or derives (later samples) are below
#: this, so that any server takes them (some read a seed as a 32-bit integer).
DRAWN_SEED_LIMIT = 2**31

#: Names that mean "no adapter" wherever an adapter name is accepted.
BASE_NAMES = ("base", "__base__", "none")

Message = dict[str, Any]


@dataclass(frozen=True)
class GenerationSettings:
    """Generation settings; invalid values raise :class:`InvalidArgumentError` at construction.

    ``temperature == 0`` is greedy decoding; ``> 0`` samples (with ``top_p`` nucleus
    filtering). ``seed`` makes sampling reproducible; when sampling without a seed, a seed is
    drawn and recorded so the run can be repeated. Rows of a batch may carry their own seeds
    (:attr:`PromptRow.seed`); this one then seeds only the rows without (see :func:`row_seeds`).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    #: Top alternatives to report per generated token (0: no log-probabilities, the default).
    logprobs: int = 0

    def __post_init__(self) -> None:
        whole_number(self.max_new_tokens, "--max-new-tokens", minimum=1)
        whole_number(self.logprobs, "--logprobs", minimum=0, maximum=MAX_LOGPROBS)
        if not finite_number(self.temperature) or self.temperature < 0:
            raise InvalidArgumentError(
                f"--temperature must be >= 0 (0 means greedy), not {shown(self.temperature)}."
            )
        if 0 < self.temperature < MIN_TEMPERATURE:  # the scores / temperature overflow
            raise InvalidArgumentError(
                f"--temperature must be 0 (greedy) or at least {MIN_TEMPERATURE}, not "
                f"{self.temperature}: a smaller one samples like greedy decoding and overflows "
                "the model's scores."
            )
        if not finite_number(self.top_p) or not 0 < self.top_p <= 1:
            raise InvalidArgumentError(f"--top-p must be in (0, 1], not {shown(self.top_p)}.")
        if self.seed is not None:
            whole_number(self.seed, "--seed", minimum=0, maximum=MAX_INT64)

    @property
    def sampling(self) -> bool:
        """True when tokens are sampled rather than chosen greedily."""
        return self.temperature > 0

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for records; ``logprobs`` only when asked for, so
        records of runs without it read as before)."""
        settings = {**asdict(self), "do_sample": self.sampling}
        if not self.logprobs:
            del settings["logprobs"]
        return settings


class StopSignal:
    """Set it (from a Stop button, another thread, a test) to end generation within a token."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stopped") -> None:
        """Ask generation to stop."""
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()


@dataclass(frozen=True)
class Capabilities:
    """What a loaded model can do; the layers above check these before anything runs."""

    #: Media kinds a prompt may carry (``{"image"}``); empty for text-only models.
    media: frozenset[str] = frozenset()
    #: Most media items one prompt may hold (None: as many as fit the context).
    max_media: int | None = None
    #: Whether LoRA adapters can be attached and routed per row.
    adapters: bool = False
    #: Whether generation can report per-token log-probabilities.
    token_logprobs: bool = False
    #: Whether prompts are rendered as chat turns (few-shot examples become turns).
    chat: bool = True
    #: Tokens the model reads at most (prompt plus answer); None when unknown.
    context_length: int | None = None
    #: Whether the engine scores given continuations of a prompt (``score_choices``; see
    #: :mod:`lmwidgets.engines.choices`): likelihood of given choices, ``--score perplexity``.
    choice_scores: bool = False


@dataclass
class Rendered:
    """A prompt as the engine will send it: the exact text, its length in tokens, and whatever
    the engine needs to run it (token ids, processor outputs...), opaque to the layers above."""

    text: str
    n_tokens: int
    payload: Any = None
    #: (width, height) of the first image after the model's processor resized it, if known.
    processed_size: tuple[int, int] | None = None


@dataclass
class PromptRow:
    """One sequence of a batch: a rendered prompt, its adapter (None: base) and its sampling.

    ``temperature``/``top_p`` override the batch settings for this row, so greedy and sampled
    rows (a zero-shot column beside self-consistency samples) still share one batch. ``seed``
    is the row's own sampling seed: a sampled row draws its tokens from a generator of its own,
    so it gives the same text in any batch as alone with the same seed (None: derived from the
    batch's seed, see :func:`row_seeds`).
    """

    prompt: Rendered
    adapter: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    #: A forced start of the answer (a fork at a token): the tokens the row must begin with,
    #: as ids (engines with a tokenizer) and as text (engines that take text, e.g. servers).
    #: They count as generated tokens (they are in the row's output), then generation goes on.
    forced_ids: tuple[int, ...] = ()
    forced_text: str = ""
    #: A structured-answer constraint to enforce while decoding this row
    #: (:class:`~lmwidgets.core.constraints.Constraint`; None: free generation). Engines that
    #: enforce constraints have a ``check_constraint(constraint)`` method.
    constraint: Any = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.seed is not None:
            whole_number(self.seed, "--seed", minimum=0, maximum=MAX_INT64)


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log-probability and the top alternatives at its position.

    ``id`` is the vocabulary id (None where an engine only knows text, e.g. some servers);
    ``text`` the token's text where the engine knows it (None: decode ``id``). ``top`` lists
    the ``K`` most likely tokens at that step as ``(id, text, logprob)``, most likely first
    (the chosen token may or may not be among them). Log-probabilities are natural logs of
    the distribution the token was drawn from, before temperature and top-p (the model's own
    belief), so greedy and sampled rows are comparable. ``forced``: a structured-answer
    constraint allowed only this token at its step (the model did not choose it; its
    log-probability still says how likely the model found it).
    """

    id: int | None
    text: str | None
    logprob: float
    top: tuple[tuple[int | None, str | None, float], ...] = ()
    forced: bool = False


@dataclass
class RowOutput:
    """What one row produced so far. Engines append tokens (or text pieces) as they arrive."""

    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "running"  # eos | length | stopped | error
    first_token_seconds: float | None = None
    seconds: float = 0.0
    #: Text pieces, for engines that stream text rather than token ids.
    pieces: list[str] = field(default_factory=list)
    #: One entry per generated token when log-probabilities were asked for (else empty).
    logprobs: list[TokenLogprob] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether this row stopped producing tokens."""
        return self.finish_reason != "running"

    @property
    def n_tokens(self) -> int:
        """Tokens generated (text pieces count one each for engines without token ids)."""
        return len(self.token_ids) or len(self.pieces)


@dataclass
class BatchOutcome:
    """The outputs of one batch plus how it ended.

    ``error`` holds an out-of-memory error or a :class:`KeyboardInterrupt` that ended the batch
    early; the outputs then hold the partial text, and the caller decides how to report it.
    ``seed`` is the batch's seed (the settings' one, or the one drawn for sampled rows without a
    seed of their own); ``row_seeds[i]`` the seed row ``i`` sampled with (None: a greedy row
    without one), so any sampled row can be run again alone with the same text.
    """

    outputs: list[RowOutput]
    seconds: float
    seed: int | None
    error: BaseException | None = None
    row_seeds: list[int | None] = field(default_factory=list)


StepCallback = Callable[[list[RowOutput]], None]


@runtime_checkable
class Engine(Protocol):
    """A loaded model, whatever runs it. See the module docstring."""

    #: The name it is loaded under (``%lm models``; ``--model NAME``).
    name: str
    #: The engine's kind (``transformers``, ``scripted``...), as registered in
    #: :data:`lmwidgets.engines.ENGINES`.
    engine: str
    #: The adapter later prompts use when none is named (None: the base model).
    default_adapter: str | None

    @property
    def adapters(self) -> Mapping[str, Any]:
        """Attached adapters by name; each has ``.name``, ``.record()`` and ``.summary()``."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def render(self, messages: list[Message], media: Sequence[Any] = ()) -> Rendered:
        """The exact prompt the model receives for ``messages`` (with ``media``)."""
        ...

    def check_media(self, media: Sequence[Any]) -> None:
        """Raise a :class:`~lmwidgets.errors.MediaError` when this model cannot take ``media``."""
        ...

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
        """Generate every row as one batch, calling ``on_step(outputs)`` after each step.

        ``ignore_eos`` makes every row produce exactly ``max_new_tokens`` (benchmarks);
        ``prefix_reuse`` lets the engine reuse work for a prefix rows share.
        """
        ...

    def text_of(self, output: RowOutput, *, streaming: bool = False) -> str:
        """The text of ``output`` (``streaming``: drop an unfinished trailing character)."""
        ...

    def box_convention(self) -> str:
        """The model family whose box coordinate convention answers follow (``qwen2_5_vl``...)."""
        ...

    def record(self) -> dict[str, Any]:
        """What a run record says about this model: enough to find exactly it again."""
        ...

    def summary(self) -> str:
        """One line for ``%lm load`` and ``%lm models``."""
        ...

    def identity(self) -> tuple[Any, ...]:
        """What makes two loads the same model (loading it again is then a no-op)."""
        ...

    def unload(self) -> None:
        """Free the model's memory (weights, adapters, caches)."""
        ...


def adapter_label(name: str | None) -> str:
    """The column label of an adapter (``base`` for none)."""
    return name or "base"


def resolve_adapter(engine: Engine, name: str | None) -> str | None:
    """An adapter name checked against ``engine`` (None, ``base`` or ``__base__``: the base)."""
    if name is None or name.strip().lower() in BASE_NAMES:
        return None
    name = name.strip()
    if name not in engine.adapters:
        have = ", ".join(engine.adapters) or "none"
        raise AdapterError(
            f"No adapter called {name!r} on {engine.name} (adapters: {have}). "
            "Load one with `%lm adapter load PATH --as NAME`, or use 'base'."
        )
    return name


def use_adapter(engine: Engine, name: str | None) -> str | None:
    """Make ``name`` (or the base, for None/``base``) the default for later prompts of ``engine``."""
    engine.default_adapter = resolve_adapter(engine, name)
    return engine.default_adapter


def adapter_record(engine: Engine, adapter: str | None) -> dict[str, Any] | None:
    """What a record says about an adapter (None for the base model)."""
    if adapter is None:
        return None
    info = engine.adapters.get(adapter)
    if info is None or not hasattr(info, "record"):
        return {"name": adapter}
    record: dict[str, Any] = info.record()
    return record


def fresh_seed() -> int:
    """A newly drawn seed (below :data:`DRAWN_SEED_LIMIT`), for sampling without ``--seed``."""
    return random.randrange(DRAWN_SEED_LIMIT)


def batch_seed(temperatures: Sequence[float], seed: int | None) -> int | None:
    """The seed a batch (or a variant) runs with: the given one, or (when any row samples) a
    fresh one that the record keeps, so the run can be repeated; None for an all-greedy batch
    without one."""
    if seed is None and any(t > 0 for t in temperatures):
        return fresh_seed()
    return seed


def sample_seed(seed: int | None, sample_index: int) -> int | None:
    """The seed of sample ``sample_index`` of a column whose seed is ``seed``.

    Sample 0 uses ``seed`` itself, so a one-sample column gives the same text in any batch as it
    does alone with that seed. Later samples (self-consistency) use a seed derived from
    ``(seed, sample_index)`` by a hash, below :data:`DRAWN_SEED_LIMIT`: the samples of one
    column differ from each other, and the column's one recorded seed repeats all of them.
    None stays None (the engine draws a seed and reports it).
    """
    whole_number(sample_index, "sample index", minimum=0)
    if seed is None:
        return None
    whole_number(seed, "--seed", minimum=0, maximum=MAX_INT64)
    if sample_index == 0:
        return seed
    digest = hashlib.sha256(f"lmwidgets sample {seed} {sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % DRAWN_SEED_LIMIT


def row_seeds(
    temperatures: Sequence[float], seeds: Sequence[int | None], seed: int | None
) -> tuple[int | None, list[int | None]]:
    """(batch seed, each row's seed) for a batch whose rows sample at ``temperatures`` and
    carry their own ``seeds`` (None: none), with the settings' ``seed``.

    A row's own seed wins. A sampled row without one takes ``sample_seed(batch seed, row)``,
    where the batch seed is ``seed`` or, when such a row exists, a fresh one: the rows of one
    batch differ, and every row's reported seed repeats it. A greedy row without a seed has
    none (None).
    """
    pairs = list(zip(temperatures, seeds, strict=True))
    unseeded = any(t > 0 and own is None for t, own in pairs)
    batch = fresh_seed() if seed is None and unseeded else seed
    chosen: list[int | None] = []
    for index, (temperature, own) in enumerate(pairs):
        if own is not None:
            chosen.append(own)
        else:
            chosen.append(sample_seed(batch, index) if temperature > 0 else None)
    return batch, chosen


def row_temperatures(rows: Sequence[PromptRow], settings: GenerationSettings) -> list[float]:
    """Each row's temperature (its own, or the batch's)."""
    return [settings.temperature if r.temperature is None else r.temperature for r in rows]


def batch_row_seeds(
    rows: Sequence[PromptRow], settings: GenerationSettings
) -> tuple[int | None, list[int | None]]:
    """:func:`row_seeds` of ``rows`` run with ``settings``: (batch seed, each row's seed)."""
    return row_seeds(row_temperatures(rows, settings), [r.seed for r in rows], settings.seed)


def finish_reason(outputs: Sequence[RowOutput]) -> str:
    """One column's finish reason from its rows' (the most telling one wins)."""
    reasons = {o.finish_reason for o in outputs}
    for reason in ("error", "stopped", "running", "length"):
        if reason in reasons:
            return "stopped" if reason == "running" else reason
    return "eos"


def close_outputs(
    outputs: Sequence[RowOutput], error: BaseException | None, stopped: bool, elapsed: float
) -> None:
    """Give every still-running row its finish reason once a batch ended."""
    for output in outputs:
        if output.finished:
            continue
        if error is not None:
            output.finish_reason = "stopped" if isinstance(error, KeyboardInterrupt) else "error"
        elif stopped:
            output.finish_reason = "stopped"
        else:
            output.finish_reason = "length"
        output.seconds = output.seconds or elapsed
