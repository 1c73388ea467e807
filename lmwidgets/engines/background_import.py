"""Import an engine's heavy libraries in the background, before the first load needs them.

Loading the default model takes about a second of lmwidgets' own work, but importing torch and
transformers 5.x (which imports ``torch.distributed.tensor``, sympy, ``torch._dynamo`` and,
where installed, scipy for every model) takes 3.5-5 s on a 2-core CPU, and nothing in
lmwidgets can make those imports shorter. ``%load_ext lmwidgets`` therefore starts them in a
daemon thread (``LmMagics.warm_up``, on by default): by the time the next cell runs ``%lm load``
or ``%%prompt``, the libraries are usually in ``sys.modules`` and the load pays only its own
work. Nothing is lost when they are not: the load waits for the thread (:func:`wait`) and then
imports whatever is left itself, so a failed import surfaces as the load's own clear error.

Why a thread is safe here: Python serialises imports per module, so a cell that imports torch
while the thread is importing it waits for it; lmwidgets' loaders :func:`wait` before importing
anything themselves, so they never import half of a package beside the thread.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class WarmUpState:
    """What the background import did: for the load summary, tests and the benchmark."""

    modules: tuple[str, ...] = ()
    started: float | None = None
    seconds: float | None = None  # None while running or never started
    failed: dict[str, str] = field(default_factory=dict)  # module -> exception type name

    @property
    def running(self) -> bool:
        return self.started is not None and self.seconds is None


_STATE = WarmUpState()
_THREAD: threading.Thread | None = None
_LOCK = threading.Lock()


def start(modules: Sequence[str]) -> bool:
    """Import ``modules`` in order in a daemon thread, once per process; True if started now.

    A module that fails to import is noted in :func:`state` and skipped: the load that needs
    it imports it again itself and reports the failure in its own words.
    """
    global _THREAD
    with _LOCK:
        if _THREAD is not None or not modules:
            return False
        _STATE.modules = tuple(modules)
        _STATE.started = time.perf_counter()
        _THREAD = threading.Thread(
            target=_import_all, args=(_STATE.modules,), name="lmwidgets-warm-up", daemon=True
        )
        _THREAD.start()
        return True


def _import_all(modules: tuple[str, ...]) -> None:
    started = time.perf_counter()
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except BaseException as exc:
                _STATE.failed[name] = type(exc).__name__
    finally:
        _STATE.seconds = time.perf_counter() - started


def wait(timeout: float | None = None) -> float:
    """Block until the background import (if any) has finished; the seconds waited."""
    thread = _THREAD
    if thread is None or not thread.is_alive():
        return 0.0
    started = time.perf_counter()
    thread.join(timeout)
    return time.perf_counter() - started


def state() -> WarmUpState:
    """The warm-up's progress: modules, seconds taken (None while running), failures."""
    return _STATE
