"""Processing widget messages (a Stop click) while a cell is still running.

A notebook kernel handles comm messages between cells only. While ``%%prompt`` generates, the
cell is busy, so this module asks the kernel to process pending UI events every few tens of
milliseconds (via jupyter-ui-poll, which defers any queued cell executions until this one ends).
Outside a kernel (scripts, tests) it does nothing.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any


def _kernel() -> Any:
    """The running Jupyter kernel, or None (plain IPython, a script)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return getattr(get_ipython(), "kernel", None)


def in_kernel() -> bool:
    """Whether we run inside a Jupyter kernel (not plain IPython or a script)."""
    return _kernel() is not None


class UiPump:
    """Context manager whose :meth:`poll` processes pending widget messages, throttled."""

    def __init__(self, interval: float = 0.04, enabled: bool | None = None) -> None:
        self.interval = interval
        self.enabled = in_kernel() if enabled is None else enabled
        self._context: Any = None
        self._poll: Any = None
        self._last = 0.0

    def __enter__(self) -> UiPump:
        if self.enabled and not hasattr(_kernel(), "do_one_iteration"):
            # ipykernel 7 has no do_one_iteration; there the widget itself sees Stop requests
            # on the shell-channel thread (PromptView._watch_stop_while_busy).
            self.enabled = False
        if self.enabled:
            try:
                from jupyter_ui_poll import ui_events

                self._context = ui_events()
                self._poll = self._context.__enter__()
            except Exception:  # an unsupported kernel: Stop then works between cells only
                self._context = self._poll = None
        return self

    def poll(self, force: bool = False) -> None:
        """Process up to a few pending UI events, at most once per ``interval`` seconds."""
        if self._poll is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        with contextlib.suppress(Exception):
            self._poll(20)

    def __exit__(self, *exc: object) -> None:
        context, self._context, self._poll = self._context, None, None
        if context is not None:
            with contextlib.suppress(Exception):
                context.__exit__(None, None, None)
