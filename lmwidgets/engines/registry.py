"""The registry of models loaded into the kernel."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

from lmwidgets.engines.transformers.sources import ModelSource
from lmwidgets.errors import NameTakenError, NoModelLoadedError, UnknownModelError


def format_bytes(count: float) -> str:
    """``1536`` -> ``'1.5 KB'`` (decimal units, as memory is usually quoted)."""
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def format_count(count: int) -> str:
    """``134515008`` -> ``'134.5M'``."""
    if count >= 1e9:
        return f"{count / 1e9:.2f}B"
    if count >= 1e6:
        return f"{count / 1e6:.1f}M"
    if count >= 1e3:
        return f"{count / 1e3:.1f}K"
    return str(count)


def release_heap() -> None:
    """Give freed memory back to the operating system.

    glibc keeps freed blocks in its heap arenas, so after unloading a model the process would
    still look (and, for the OS, be) as large as before; ``malloc_trim`` returns them.
    Elsewhere (macOS, musl, Windows) this does nothing.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


@dataclass
class LoadedModel:
    """A model and its tokenizer, loaded into this kernel, with what identifies its weights."""

    name: str
    source: ModelSource
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    weights_sha256: str | None
    revision: str | None
    n_params: int
    memory_bytes: int
    load_seconds: float
    context_length: int | None
    kind: str = "text"
    processor: Any = None
    from_cache: bool = False
    prepacked_layers: int = 0
    adapters: dict[str, Any] = field(default_factory=dict)
    default_adapter: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer has a chat template (prompts are then rendered as chat turns)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def architecture(self) -> str:
        """The transformers architecture, e.g. ``LlamaForCausalLM``."""
        archs = getattr(self.model.config, "architectures", None) or []
        return archs[0] if archs else type(self.model).__name__

    def summary(self) -> str:
        """One line: name, source, parameters, device, dtype, memory, load time."""
        origin = {"gguf": "GGUF", "directory": "local", "hub": "hub"}.get(self.source.kind, "")
        cached = ", cached" if self.from_cache else ""
        kind = " · vision-language" if self.kind == "vision" else ""
        kind += " · packed for CPU" if self.prepacked_layers else ""
        kind += f" · {self.extras['quantize']}" if self.extras.get("quantize") else ""
        kind += " · compiled decoding" if self.extras.get("static_cache") else ""
        return (
            f"{self.name} · {self.architecture} ({origin}{cached}){kind} · "
            f"{format_count(self.n_params)} params · {self.device} · {self.dtype} · "
            f"{format_bytes(self.memory_bytes)} · loaded in {self.load_seconds:.1f} s"
        )

    def record(self) -> dict[str, Any]:
        """What a run record says about this model."""
        return {
            "name": self.name,
            "source": self.source.spec,
            "kind": self.source.kind,
            "location": self.source.location,
            "gguf_file": self.source.gguf_file,
            "weights_sha256": self.weights_sha256,
            "revision": self.revision,
            "architecture": self.architecture,
            "parameters": self.n_params,
            "device": self.device,
            "dtype": self.dtype,
            "cpu_prepacked": bool(self.prepacked_layers),
            "modality": "image+text" if self.kind == "vision" else "text",
            "quantize": self.extras.get("quantize"),
            "compiled": bool(self.extras.get("static_cache")),
        }


class ModelRegistry:
    """Models loaded in this kernel, by name. The most recently loaded one is the current model."""

    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}
        self.current: str | None = None

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self):
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def names(self) -> list[str]:
        """Names of the loaded models, in load order."""
        return list(self._models)

    def get(self, name: str | None = None) -> LoadedModel:
        """The model called ``name``, or the current model when ``name`` is None."""
        if name is None:
            if self.current is None:
                raise NoModelLoadedError(
                    "No model is loaded. Run `%lm load` for the embedded default model "
                    "(or `%lm load PATH_OR_HUB_ID`)."
                )
            name = self.current
        try:
            return self._models[name]
        except KeyError:
            loaded = ", ".join(self._models) or "none"
            raise UnknownModelError(
                f"No model called {name!r} is loaded (loaded: {loaded}). "
                "Load it with `%lm load SOURCE --as NAME`, or see `%lm models`."
            ) from None

    def find(self, source_key: str, device: str, dtype: str) -> LoadedModel | None:
        """A loaded model with the same source, device and dtype, if any."""
        for loaded in self._models.values():
            if (loaded.source.key, loaded.device, loaded.dtype) == (source_key, device, dtype):
                return loaded
        return None

    def unique_name(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``... when taken."""
        name, index = base, 2
        while name in self._models:
            name, index = f"{base}-{index}", index + 1
        return name

    def check_free(self, name: str) -> None:
        """Raise :class:`NameTakenError` when ``name`` is in use."""
        if name in self._models:
            raise NameTakenError(
                f"A model called {name!r} is already loaded ({self._models[name].source.spec}). "
                f"Pick another name with --as, or free it first with `%lm unload {name}`."
            )

    def add(self, loaded: LoadedModel) -> None:
        """Register ``loaded`` and make it the current model."""
        self.check_free(loaded.name)
        self._models[loaded.name] = loaded
        self.current = loaded.name

    def remove(self, name: str) -> LoadedModel:
        """Unregister ``name`` and free its memory (weights, adapters, caches)."""
        loaded = self.get(name)
        del self._models[name]
        if self.current == name:
            self.current = next(reversed(self._models), None)
        device = loaded.device
        loaded.model = None
        loaded.tokenizer = None
        loaded.processor = None
        loaded.adapters.clear()
        loaded.extras.clear()
        gc.collect()
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
        release_heap()
        return loaded


#: The registry used by the notebook magics and the module-level API.
REGISTRY = ModelRegistry()
