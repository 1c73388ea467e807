"""Import an engine's heavy libraries while the kernel is idle, before the first load needs them.

Loading the default model takes about a second of lmwidgets' own work, but importing torch and
transformers 5.x (which imports ``torch.distributed.tensor``, sympy, ``torch._dynamo`` and,
where installed, scipy for every model) takes 3.5-5 s on a 2-core CPU, and nothing in
lmwidgets can make those imports shorter. ``%load_ext lmwidgets`` therefore schedules them on
the kernel's event loop (``LmMagics.warm_up``, on by default), one module per callback, after
the cell has finished: while the user reads or types the next cell, the libraries are imported,
and ``%lm load`` or ``%%prompt`` then pays only its own work.

Why on the kernel's loop and not in a thread: imports in two threads at once are not safe with
transformers' lazy module (measured: a cell that read ``transformers.PreTrainedTokenizerBase``
while a thread was importing transformers got an AttributeError). On the loop, the imports run
in the kernel's main thread between messages: a cell sent meanwhile waits for at most the
module being imported (torch alone is the longest, about 1.5 s), and a load that comes first
imports what is left itself (:func:`wait`). Without a running event loop (a terminal IPython,
a script) nothing is scheduled: the load imports as it always did.
"""

from __future__ import annotations

import importlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Seconds between one module's import and the next (lets a waiting message in first).
PAUSE_S = 0.05


@dataclass
class WarmUpState:
    """What the idle-time import did: for the load steps, tests and the benchmark."""

    modules: tuple[str, ...] = ()
    started: float | None = None
    spent: float = 0.0  # seconds spent importing so far
    failed: dict[str, str] = field(default_factory=dict)  # module -> exception type name
    pending: deque[str] = field(default_factory=deque)

    @property
    def running(self) -> bool:
        return self.started is not None and bool(self.pending)

    @property
    def seconds(self) -> float | None:
        """Seconds the imports took, once all are done (None before)."""
        return None if self.started is None or self.pending else self.spent


_STATE = WarmUpState()


def start(modules: Sequence[str], loop: Any = None) -> bool:
    """Schedule ``modules`` for import on ``loop`` (default: this thread's running asyncio
    loop), one per callback, once per process; True if scheduled now, False when there is no
    running loop, nothing to import or a warm-up was scheduled before."""
    if _STATE.started is not None or not modules:
        return False
    if loop is None:
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
    _STATE.modules = tuple(modules)
    _STATE.pending = deque(modules)
    _STATE.started = time.perf_counter()
    loop.call_later(PAUSE_S, _import_next, loop)
    return True


def _import_one(name: str) -> None:
    """Import ``name``; a failure is noted (the load that needs it reports it in its words)."""
    started = time.perf_counter()
    try:
        importlib.import_module(name)
    except Exception as exc:
        _STATE.failed[name] = type(exc).__name__
    finally:
        _STATE.spent += time.perf_counter() - started


def _import_next(loop: Any) -> None:
    """One module per callback, so that a message that arrives meanwhile is handled between."""
    if not _STATE.pending:
        return
    try:
        _import_one(_STATE.pending.popleft())
    finally:
        if _STATE.pending:
            loop.call_later(PAUSE_S, _import_next, loop)


def wait() -> float:
    """Import now whatever the warm-up has not imported yet (a load that comes before the
    kernel was idle long enough); the seconds that took."""
    if not _STATE.pending:
        return 0.0
    started = time.perf_counter()
    while _STATE.pending:
        _import_one(_STATE.pending.popleft())
    return time.perf_counter() - started


def state() -> WarmUpState:
    """The warm-up's progress: modules, seconds taken (None until all were imported), failures."""
    return _STATE
