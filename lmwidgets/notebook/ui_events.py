"""Receiving the widget's messages (Stop, re-run with a region) while a cell keeps the kernel busy.

A Jupyter kernel handles widget (comm) messages between cells. While ``%%prompt`` generates,
its cell is busy, so a Stop click would wait until generation ends by itself. How a click gets
through depends on the kernel; :func:`message_path` picks one path, and this module is the only
place that knows about the kernel's internals:

``"hook"``: ipykernel 7.4 (verified on the versions in :data:`VERIFIED_HOOK_VERSIONS`). Its
    shell-channel thread asks each comm where to route an incoming message, through the
    *private* method ``Comm._reply_subshell_for(data, default)``. :func:`watch_messages` wraps it
    to peek at the widget's custom messages as they arrive, on that thread, while the main
    thread generates. The peek only sets the (thread-safe) stop signal; the message itself is
    delivered as usual once the cell ends. Other ipykernel versions are not hooked, even where
    the method exists: its name and arguments are not a public API.
``"poll"``: ipykernel 6. jupyter-ui-poll's ``do_one_iteration`` processes pending messages from
    inside the running cell (:class:`UiPump`, every few tens of milliseconds; cell executions
    queued meanwhile wait until this one ends).
``"between-cells"``: any other kernel (ipykernel 7.0 to 7.3, versions outside the verified
    range, no jupyter-ui-poll). Stop then acts only between cells; interrupting the kernel
    (the ■ button, or I, I) still ends generation within a token and keeps the partial text
    (bound to ``--out`` and on ``GenerationInterrupted.partial``).
``"none"``: not in a Jupyter kernel (plain IPython, scripts, tests): nothing to do.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Callable
from typing import Any

from lmwidgets.checks import Throttle

#: ipykernel versions (``[low, high)`` as (major, minor)) on which the private routing hook was
#: verified: the real-browser Stop tests pass on them. Widen only after running those tests.
VERIFIED_HOOK_VERSIONS: tuple[tuple[int, int], tuple[int, int]] = ((7, 4), (7, 5))

#: The private ipykernel method the "hook" path wraps (see the module docstring).
HOOK_METHOD = "_reply_subshell_for"


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


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``"7.4.0"`` -> ``(7, 4, 0)``; pre-release tails are ignored; None when unreadable."""
    match = re.match(r"\d+(?:\.\d+)*", text or "")
    return tuple(int(part) for part in match.group(0).split(".")) if match else None


def ipykernel_version() -> tuple[int, ...] | None:
    """The installed ipykernel's version, or None."""
    try:
        import ipykernel
    except ImportError:
        return None
    return parse_version(getattr(ipykernel, "__version__", None))


def hook_verified(version: tuple[int, ...] | None) -> bool:
    """Whether the private routing hook was verified on this ipykernel version."""
    low, high = VERIFIED_HOOK_VERSIONS
    return version is not None and low <= tuple(version[:2]) < high


def _comm_class() -> Any:
    try:
        from ipykernel.comm import Comm
    except ImportError:
        return None
    return Comm


def message_path(kernel: Any, version: tuple[int, ...] | None, comm: Any = None) -> str:
    """How widget messages reach the kernel during a busy cell: ``"hook"``, ``"poll"``,
    ``"between-cells"`` or ``"none"`` (see the module docstring).

    ``kernel`` is the kernel object (None outside one), ``version`` ipykernel's version, and
    ``comm`` the comm (or comm class) the hook would wrap; by default ipykernel's ``Comm``.
    """
    if kernel is None:
        return "none"
    target = _comm_class() if comm is None else comm
    if (
        hook_verified(version)
        and getattr(kernel, "shell_channel_thread", None)
        and callable(getattr(target, HOOK_METHOD, None))
    ):
        return "hook"
    if callable(getattr(kernel, "do_one_iteration", None)) and importlib.util.find_spec(
        "jupyter_ui_poll"
    ):
        return "poll"
    return "between-cells"


def current_path(comm: Any = None) -> str:
    """:func:`message_path` for the running kernel and the installed ipykernel."""
    kernel = _kernel()
    return message_path(kernel, ipykernel_version() if kernel is not None else None, comm)


def watch_messages(comm: Any, peek: Callable[[dict[str, Any]], None]) -> bool:
    """Call ``peek(content)`` for each custom message to ``comm`` as soon as it arrives.

    Only on the ``"hook"`` path (otherwise False, and nothing changes). ``peek`` runs on the
    kernel's shell-channel thread while another cell may be running: it must be quick,
    thread-safe and must not touch widget traits. Errors in it are swallowed (message routing
    must never break), and the message is still delivered to the widget as usual.
    """
    if comm is None or current_path(comm) != "hook":
        return False
    original = getattr(comm, HOOK_METHOD)

    def route(data: Any, default: Any) -> Any:
        with contextlib.suppress(Exception):
            if isinstance(data, dict) and data.get("method") == "custom":
                content = data.get("content")
                if isinstance(content, dict):
                    peek(content)
        return original(data, default)

    setattr(comm, HOOK_METHOD, route)
    return True


class UiPump:
    """Context manager whose :meth:`poll` processes pending widget messages, throttled.

    Active on the ``"poll"`` path only (ipykernel 6, with jupyter-ui-poll); elsewhere
    :meth:`poll` does nothing (see the module docstring for what happens instead).
    """

    def __init__(self, interval: float = 0.04, enabled: bool | None = None) -> None:
        self.interval = interval
        self.enabled = current_path() == "poll" if enabled is None else enabled
        self._throttle = Throttle(interval)
        self._context: Any = None
        self._poll: Any = None

    def __enter__(self) -> UiPump:
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
        if self._poll is None or not self._throttle.ready(force):
            return
        with contextlib.suppress(Exception):
            self._poll(20)

    def __exit__(self, *exc: object) -> None:
        context, self._context, self._poll = self._context, None, None
        if context is not None:
            with contextlib.suppress(Exception):
                context.__exit__(None, None, None)
