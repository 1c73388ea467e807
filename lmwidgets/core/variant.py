"""A variant: one column to generate, as the layers that build, run and render it share it.

Data only: :mod:`lmwidgets.prompting` builds variants, :mod:`lmwidgets.run` generates them and
:mod:`lmwidgets.sharing` / :mod:`lmwidgets.notebook` show their results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmwidgets.engines.base import Engine, GenerationSettings, Message
    from lmwidgets.media.base import MediaInput

#: ``postprocess(texts) -> (text, answer, extras)``: turns a variant's sample texts into a column.
Postprocess = Callable[[list[str]], tuple[str, str | None, dict[str, Any]]]


def _single_text(texts: list[str]) -> tuple[str, str | None, dict[str, Any]]:
    return texts[0], None, {}


@dataclass
class Variant:
    """One column to generate: a label, the chat messages, the engine, adapter and settings."""

    label: str
    messages: list[Message]
    engine: Engine
    settings: GenerationSettings
    strategy: str = "zero-shot"
    strategy_info: dict[str, Any] = field(default_factory=dict)
    adapter: str | None = None
    template: str = ""
    samples: int = 1
    postprocess: Postprocess = _single_text
    item: dict[str, Any] | None = None
    input: str | None = None
    expected: str | None = None
    media: list[MediaInput] = field(default_factory=list)
    #: The dataset item's number (None: no dataset): the grid's row, even when two items ask
    #: the same question (of different images or clips).
    item_index: int | None = None
    #: A fork's forced start of the answer (see :mod:`lmwidgets.run.fork`): token ids and text.
    forced_ids: tuple[int, ...] = ()
    forced_text: str = ""
    #: What the record says about the fork (None: not a fork).
    fork: dict[str, Any] | None = None
    #: The column's value on every axis of its run (``{"prompt": "A", "strategy": "cot",
    #: "temperature": "0.7"}``; see :mod:`lmwidgets.prompting.axes`); recorded as ``axes``.
    coords: dict[str, str] = field(default_factory=dict)
    #: True when the seed was drawn for the run (``--trials`` without ``--seed``), not given.
    seed_drawn: bool = False
    #: A column shown as it already is, not generated (an earlier run beside this one with
    #: ``--vs``): its finished result.
    precomputed: Any = None
    #: What registered axis kinds (:mod:`lmwidgets.core.axis_kinds`) add to the column's
    #: record, by top-level key: a probe column's ``probe`` (kind, attack, canary, field; see
    #: :mod:`lmwidgets.prompting.probes`); empty for most columns.
    recorded: dict[str, Any] = field(default_factory=dict)
    #: The structured-answer constraint the column is checked against
    #: (:class:`~lmwidgets.core.constraints.Constraint`; None: no structured answer), and
    #: whether it is enforced while decoding (else the column is free and only checked).
    constraint: Any = None
    enforced: bool = False
    #: Given choices to score instead of generating (``--choices``; see
    #: :mod:`lmwidgets.prompting.choices`), None for a generated column; ``perplexity``: the
    #: one choice is ``expected``, scored per token (``--score perplexity``).
    choices: list[str] | None = None
    perplexity: bool = False
    # Filled by prepare():
    rendered: Any = None
    max_new_tokens: int = 0

    @property
    def prompt_text(self) -> str:
        """The exact prompt text the model receives (after :func:`prepare`)."""
        return self.rendered.text if self.rendered is not None else ""

    @property
    def images(self) -> list[MediaInput]:
        """The variant's images (its media of kind ``image``)."""
        return [item for item in self.media if item.kind == "image"]
