"""The registry of loaded models: engines by name (in-kernel, scripted, served alike)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lmwidgets.errors import NameTakenError, NoModelLoadedError, UnknownModelError

if TYPE_CHECKING:
    from lmwidgets.engines.base import Engine


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


class ModelRegistry:
    """Models loaded in this kernel, by name. The most recently loaded one is the current model."""

    def __init__(self) -> None:
        self._models: dict[str, Engine] = {}
        self.current: str | None = None

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self) -> Iterator[Engine]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def names(self) -> list[str]:
        """Names of the loaded models, in load order."""
        return list(self._models)

    def get(self, name: str | None = None) -> Engine:
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

    def find(self, identity: tuple[Any, ...]) -> Engine | None:
        """A loaded model with this :meth:`~lmwidgets.engines.base.Engine.identity`, if any."""
        for engine in self._models.values():
            if engine.identity() == identity:
                return engine
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
                f"A model called {name!r} is already loaded ({self._models[name].record().get('source')}). "
                f"Pick another name with --as, or free it first with `%lm unload {name}`."
            )

    def add(self, loaded: Engine) -> None:
        """Register ``loaded`` and make it the current model."""
        self.check_free(loaded.name)
        self._models[loaded.name] = loaded
        self.current = loaded.name

    def remove(self, name: str) -> Engine:
        """Unregister ``name`` and free its memory (weights, adapters, caches)."""
        loaded = self.get(name)
        del self._models[name]
        if self.current == name:
            self.current = next(reversed(self._models), None)
        loaded.unload()
        return loaded


#: The registry used by the notebook magics and the module-level API.
REGISTRY = ModelRegistry()
