"""lmwidgets: prompt local language models side by side in JupyterLab.

In a notebook::

    %load_ext lmwidgets
    %lm load                 # the embedded default model (SmolLM2-135M-Instruct)

    %%prompt --out answer
    What is the capital of France?

``import lmwidgets`` is cheap: torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmwidgets._version import __version__
from lmwidgets.errors import (
    AdapterError,
    DatasetError,
    DeviceError,
    ExamplesError,
    ForkError,
    GenerationError,
    ImageError,
    InvalidArgumentError,
    KernelInterruptedError,
    LmWidgetsError,
    LoadOutOfMemoryError,
    MediaError,
    ModelLoadError,
    ModelNotFoundError,
    NameTakenError,
    NoEarlierRunError,
    NoModelLoadedError,
    OutOfMemoryError,
    ProbeUnavailableError,
    PromptError,
    PromptTooLongError,
    RatingError,
    RecordError,
    RemoteCodeError,
    ServerError,
    StrategyError,
    UnknownModelError,
    UnsafeWeightsError,
)
from lmwidgets.run.records import RECORD_MIME, records
from lmwidgets.sharing import static_render as _static_render  # noqa: F401  (registers how results show)

if TYPE_CHECKING:
    from lmwidgets.api import (
        connect,
        fork,
        load_adapter,
        load_model,
        models,
        prompt,
        unload_adapter,
        unload_model,
        use_adapter,
    )
    from lmwidgets.core.results import Comparison, Result
    from lmwidgets.engines import register_engine
    from lmwidgets.engines.base import Capabilities, Engine, GenerationSettings, StopSignal
    from lmwidgets.engines.registry import REGISTRY
    from lmwidgets.engines.scripted import ScriptedEngine
    from lmwidgets.engines.transformers.engine import LoadedModel, TransformersEngine
    from lmwidgets.engines.transformers.training import train_lora
    from lmwidgets.run.history import history
    from lmwidgets.run.leaderboard import leaderboard
    from lmwidgets.run.replay import rerun

_LAZY = {
    "load_model": "api",
    "unload_model": "api",
    "models": "api",
    "prompt": "api",
    "fork": "api",
    "rerun": "run.replay",
    "history": "run.history",
    "leaderboard": "run.leaderboard",
    "load_adapter": "api",
    "unload_adapter": "api",
    "train_lora": "engines.transformers.training",
    "Comparison": "core.results",
    "Result": "core.results",
    "GenerationSettings": "engines.base",
    "StopSignal": "engines.base",
    "Engine": "engines.base",
    "Capabilities": "engines.base",
    "ScriptedEngine": "engines.scripted",
    "TransformersEngine": "engines.transformers.engine",
    "LoadedModel": "engines.transformers.engine",
    "use_adapter": "api",
    "connect": "api",
    "register_engine": "engines",
    "REGISTRY": "engines.registry",
    "default_attacks": "prompting.attacks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lmwidgets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext lmwidgets``: register ``%lm`` and ``%%prompt``."""
    from lmwidgets.notebook.magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext lmwidgets``: remove the error display hook (magics stay registered)."""
    from lmwidgets.notebook.magics import unregister

    unregister(ipython)


__all__ = [
    "RECORD_MIME",
    "REGISTRY",
    "AdapterError",
    "Capabilities",
    "Comparison",
    "DatasetError",
    "DeviceError",
    "Engine",
    "ExamplesError",
    "ForkError",
    "GenerationError",
    "GenerationSettings",
    "ImageError",
    "InvalidArgumentError",
    "KernelInterruptedError",
    "LmWidgetsError",
    "LoadOutOfMemoryError",
    "LoadedModel",
    "MediaError",
    "ModelLoadError",
    "ModelNotFoundError",
    "NameTakenError",
    "NoEarlierRunError",
    "NoModelLoadedError",
    "OutOfMemoryError",
    "ProbeUnavailableError",
    "PromptError",
    "PromptTooLongError",
    "RatingError",
    "RecordError",
    "RemoteCodeError",
    "Result",
    "ScriptedEngine",
    "ServerError",
    "StopSignal",
    "StrategyError",
    "TransformersEngine",
    "UnknownModelError",
    "UnsafeWeightsError",
    "__version__",
    "connect",
    "default_attacks",
    "fork",
    "history",
    "leaderboard",
    "load_adapter",
    "load_ipython_extension",
    "load_model",
    "models",
    "prompt",
    "records",
    "register_engine",
    "rerun",
    "train_lora",
    "unload_adapter",
    "unload_ipython_extension",
    "unload_model",
    "use_adapter",
]
