"""Library notices that are not the user's business, silenced while lmwidgets loads a model or
generates: transformers' and torch's warnings (deprecations, the torchvision notice of image
processors, generation-config notes), peft's, huggingface_hub's.

:func:`quiet_libraries` changes process-wide state (the :mod:`warnings` filters and the libraries'
logger levels) only while it is entered and restores it in ``finally``. It is reference-counted
under a lock: the first entry saves and installs, the last exit restores, so nested uses and
concurrent ones (one worker thread per model when models run side by side) leave everything as
they found it. Warnings that lmwidgets itself gives the user (``UserWarning`` from lmwidgets) and
warnings from the user's own code are never silenced.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator

#: Libraries whose warnings and log notes are silenced.
LIBRARIES = (
    "transformers",
    "torch",
    "torchvision",
    "peft",
    "accelerate",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
    "bitsandbytes",
    "gguf",
)

#: A warning's module (where ``warnings.warn`` points) in one of :data:`LIBRARIES`.
LIBRARY_MODULE = r"(?:{})(?:\..*)?\Z".format("|".join(LIBRARIES))

#: lmwidgets' own modules: only their deprecation notices (a library API lmwidgets calls) go.
OWN_MODULE = r"lmwidgets(?:\..*)?\Z"

_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class _Quiet:
    """The reference-counted state behind :func:`quiet_libraries`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._catcher: warnings.catch_warnings | None = None
        self._levels: dict[str, int] = {}

    @property
    def active(self) -> bool:
        """Whether some caller is inside :func:`quiet_libraries` now."""
        return self._depth > 0

    def enter(self) -> None:
        """Install the filters and logger levels on the first entry."""
        with self._lock:
            if self._depth == 0:
                self._install()
            self._depth += 1

    def exit(self) -> None:
        """Restore what was there on the last exit."""
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._restore()

    def _install(self) -> None:
        catcher = warnings.catch_warnings()
        catcher.__enter__()
        self._catcher = catcher
        warnings.filterwarnings("ignore", module=LIBRARY_MODULE)
        for category in _DEPRECATIONS:
            warnings.filterwarnings("ignore", category=category, module=OWN_MODULE)
        with contextlib.suppress(ImportError):  # transformers sets its level when imported
            import transformers.utils.logging  # noqa: F401
        self._levels = {name: logging.getLogger(name).level for name in LIBRARIES}
        for name in LIBRARIES:
            logging.getLogger(name).setLevel(logging.ERROR)

    def _restore(self) -> None:
        try:
            for name, level in self._levels.items():
                logging.getLogger(name).setLevel(level)
        finally:
            catcher, self._catcher, self._levels = self._catcher, None, {}
            if catcher is not None:
                catcher.__exit__(None, None, None)


_QUIET = _Quiet()


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence library warnings and log notes inside the block (see the module docstring)."""
    _QUIET.enter()
    try:
        yield
    finally:
        _QUIET.exit()


def is_quiet() -> bool:
    """Whether library notices are being silenced now (some thread is inside the block)."""
    return _QUIET.active
