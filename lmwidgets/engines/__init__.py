"""Engines: what runs a model. The registry of engine kinds lives here.

Each kind registers a loader, ``loader(source, *, name, registry, progress, **options)``, that
returns an :class:`~lmwidgets.engines.base.Engine` (or the one already loaded, when loading the
same model again). ``lmwidgets.load_model(source, engine=KIND)`` and ``%lm load --engine KIND``
use it. A new engine is one module plus one :func:`register_engine` call; the scripted engine
for tests and demos is registered exactly like the transformers engine. An engine whose libraries
take seconds to import names them as ``warm_up`` modules: ``%load_ext lmwidgets`` imports them
while the kernel is idle (:mod:`lmwidgets.engines.background_import`), and the loader imports
what is left first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lmwidgets.engines import background_import
from lmwidgets.errors import InvalidArgumentError

#: Engine kinds: name -> ``"module:function"`` of its loader (imported when first used, so that
#: registering the transformers engine does not import torch).
ENGINES: dict[str, str | Callable[..., Any]] = {}

#: Engine kind -> the modules worth importing ahead of its first load (see :func:`warm_up`).
WARM_UP: dict[str, tuple[str, ...]] = {}


def register_engine(
    kind: str, loader: str | Callable[..., Any], warm_up: tuple[str, ...] = ()
) -> None:
    """Register an engine kind: ``loader`` is a callable or a lazy ``"module:function"`` path;
    ``warm_up`` names the slow-to-import modules its loads need (imported in the background by
    ``%load_ext lmwidgets``)."""
    ENGINES[kind] = loader
    if warm_up:
        WARM_UP[kind] = tuple(warm_up)
    else:
        WARM_UP.pop(kind, None)


def warm_up(kind: str = "transformers") -> bool:
    """Schedule engine ``kind``'s libraries for import on the running event loop (the
    kernel's), one module at a time while it is idle, once per process; True if scheduled."""
    return background_import.start(WARM_UP.get(kind, ()))


def engine_loader(kind: str) -> Callable[..., Any]:
    """The loader of engine ``kind``, or :class:`InvalidArgumentError` listing the kinds."""
    loader = ENGINES.get(kind)
    if loader is None:
        raise InvalidArgumentError(
            f"Unknown engine {kind!r}. Choose from: {', '.join(sorted(ENGINES))}."
        )
    if isinstance(loader, str):
        if kind in WARM_UP:  # what the idle-time import has not reached yet, in order
            background_import.wait()
        module, _, function = loader.partition(":")
        loader = getattr(importlib.import_module(module), function)
    return loader


register_engine(
    "transformers",
    "lmwidgets.engines.transformers.load:load",
    warm_up=(  # what loading the default model imports, heaviest first
        "torch",
        "transformers",
        "transformers.modeling_utils",
        "transformers.modeling_layers",
        "transformers.generation.utils",
        "transformers.masking_utils",
        "transformers.processing_utils",
        "transformers.models.auto.modeling_auto",
        "transformers.models.auto.tokenization_auto",
        "transformers.models.llama.modeling_llama",
        "transformers.models.gpt2.tokenization_gpt2",
        "transformers.models.llama.tokenization_llama",
        "transformers.models.gemma.tokenization_gemma",
        "transformers.models.qwen2.tokenization_qwen2",
        "transformers.models.t5.tokenization_t5",
        "transformers.modeling_gguf_pytorch_utils",
        "lmwidgets.engines.transformers.load",
        "lmwidgets.engines.transformers.kernel_choice",
        "lmwidgets.engines.transformers.multimodal",
    ),
)


register_engine("scripted", "lmwidgets.engines.scripted:load")
register_engine("openai", "lmwidgets.engines.served:load")
