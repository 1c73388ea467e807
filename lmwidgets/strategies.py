"""Prompting strategies: how one prompt becomes the columns of a comparison."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chat import Message
from .errors import StrategyError
from .generation import GenerationSettings
from .registry import ModelRegistry
from .results import Comparison
from .runner import Variant

STRATEGIES = ("zero-shot",)


@dataclass
class Plan:
    """The variants to run and what to do with the comparison afterwards."""

    variants: list[Variant]
    batch_size: int = 16
    force_view: bool = False
    finishers: list[Callable[[Comparison], None]] = field(default_factory=list)

    def finish(self, comparison: Comparison) -> None:
        """Post-process the comparison (e.g. dataset scores)."""
        for finisher in self.finishers:
            finisher(comparison)


def _messages(system: str | None, user: str) -> list[Message]:
    messages: list[Message] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user})
    return messages


def build_variants(
    template: str,
    *,
    registry: ModelRegistry,
    model: str | None,
    system: str | None,
    settings: GenerationSettings,
    variables: Mapping[str, Any] | None = None,
    strategy: str = "zero-shot",
) -> Plan:
    """Expand a prompt into the variants (columns) to run."""
    loaded = registry.get(model)
    if strategy not in STRATEGIES:
        raise StrategyError(
            f"Unknown strategy {strategy!r}. Choose one of: {', '.join(STRATEGIES)}."
        )
    variant = Variant(
        label=loaded.name,
        messages=_messages(system, template),
        loaded=loaded,
        settings=settings,
        strategy=strategy,
        template=template,
    )
    return Plan(variants=[variant])
