"""Engines: what runs a model. The registry of engine kinds lives here.

Each kind registers a loader, ``loader(source, *, name, registry, progress, **options)``, that
returns an :class:`~lmwidgets.engines.base.Engine` (or the one already loaded, when loading the
same model again). ``lmwidgets.load_model(source, engine=KIND)`` and ``%lm load --engine KIND``
use it. A new engine is one module plus one :func:`register_engine` call; the scripted engine
for tests and demos is registered exactly like the transformers engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lmwidgets.errors import InvalidArgumentError

#: Engine kinds: name -> ``"module:function"`` of its loader (imported when first used, so that
#: registering the transformers engine does not import torch).
ENGINES: dict[str, str | Callable[..., Any]] = {}


def register_engine(kind: str, loader: str | Callable[..., Any]) -> None:
    """Register an engine kind: ``loader`` is a callable or a lazy ``"module:function"`` path."""
    ENGINES[kind] = loader


def engine_loader(kind: str) -> Callable[..., Any]:
    """The loader of engine ``kind``, or :class:`InvalidArgumentError` listing the kinds."""
    loader = ENGINES.get(kind)
    if loader is None:
        raise InvalidArgumentError(
            f"Unknown engine {kind!r}. Choose from: {', '.join(sorted(ENGINES))}."
        )
    if isinstance(loader, str):
        module, _, function = loader.partition(":")
        loader = getattr(importlib.import_module(module), function)
    return loader


register_engine("transformers", "lmwidgets.engines.transformers.load:load")
register_engine("scripted", "lmwidgets.engines.scripted:load")
register_engine("openai", "lmwidgets.engines.served:load")
