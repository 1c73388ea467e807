"""Which path Stop takes while a cell is busy (the private ipykernel hook, jupyter-ui-poll, or
between cells), and that the hook only peeks: messages are still routed as before."""

from __future__ import annotations

import threading

import pytest

from lmwidgets.notebook import ui_events
from lmwidgets.notebook.ui_events import (
    HOOK_METHOD,
    UiPump,
    hook_verified,
    message_path,
    parse_version,
    watch_messages,
)


class HookedComm:
    """Like ipykernel 7.4's comm: the shell-channel thread asks it where to route a message."""

    def __init__(self) -> None:
        self.routed: list = []

    def _reply_subshell_for(self, data, default):
        self.routed.append(data)
        return "subshell-of-" + str(default)


class PlainComm:
    pass


class Kernel7:
    shell_channel_thread = object()


class Kernel6:
    def do_one_iteration(self):
        pass


class OtherKernel:
    pass


@pytest.mark.parametrize(
    ("kernel", "version", "comm", "path"),
    [
        (Kernel7(), (7, 4, 0), HookedComm(), "hook"),
        (Kernel7(), (7, 4, 9), HookedComm, "hook"),
        (Kernel7(), (7, 3, 0), HookedComm(), "between-cells"),  # before the verified range
        (Kernel7(), (7, 5, 0), HookedComm(), "between-cells"),  # after it: not verified
        (Kernel7(), (8, 0), HookedComm(), "between-cells"),
        (Kernel7(), None, HookedComm(), "between-cells"),
        (Kernel7(), (7, 4, 0), PlainComm(), "between-cells"),  # no hook on the comm
        (OtherKernel(), (7, 4, 0), HookedComm(), "between-cells"),  # no shell-channel thread
        (Kernel6(), (6, 29, 5), PlainComm(), "poll"),
        (Kernel6(), (6, 29, 5), HookedComm(), "poll"),
        (None, (7, 4, 0), HookedComm(), "none"),
    ],
)
def test_the_guard_picks_the_path(kernel, version, comm, path):
    assert message_path(kernel, version, comm) == path


def test_versions():
    assert parse_version("7.4.0") == (7, 4, 0)
    assert parse_version("7.4.0rc1") == (7, 4, 0)
    assert parse_version("x") is None and parse_version(None) is None
    assert hook_verified((7, 4)) and hook_verified((7, 4, 2))
    assert not hook_verified((7, 3, 9)) and not hook_verified((7, 5)) and not hook_verified(None)


def test_the_installed_ipykernel_has_a_path_for_stop_while_busy():
    """Fails when ipykernel moves outside the verified versions: re-run the browser tests on the
    new version, then widen VERIFIED_HOOK_VERSIONS (or fix the hook)."""
    import ipykernel
    from ipykernel.comm import Comm
    from ipykernel.kernelbase import Kernel

    version = parse_version(ipykernel.__version__)
    if version[0] == 6:
        assert hasattr(Kernel, "do_one_iteration")
    else:
        assert hook_verified(version), f"ipykernel {ipykernel.__version__} is not verified"
        assert callable(getattr(Comm, HOOK_METHOD, None))


@pytest.fixture
def kernel74(monkeypatch):
    monkeypatch.setattr(ui_events, "_kernel", lambda: Kernel7())
    monkeypatch.setattr(ui_events, "ipykernel_version", lambda: (7, 4, 0))


def test_the_hook_peeks_at_custom_messages_and_routes_as_before(kernel74):
    comm = HookedComm()
    seen = []
    assert watch_messages(comm, seen.append)
    stop = {"method": "custom", "content": {"type": "stop", "run": 1}}
    update = {"method": "update", "state": {"title": "x"}}
    assert comm._reply_subshell_for(stop, None) == "subshell-of-None"
    assert comm._reply_subshell_for(update, "s1") == "subshell-of-s1"
    assert comm._reply_subshell_for("junk", None) == "subshell-of-None"
    assert seen == [{"type": "stop", "run": 1}]
    assert comm.routed == [stop, update, "junk"]


def test_a_failing_peek_never_breaks_routing(kernel74):
    comm = HookedComm()

    def broken(content):
        raise RuntimeError("boom")

    watch_messages(comm, broken)
    assert comm._reply_subshell_for({"method": "custom", "content": {}}, "d") == "subshell-of-d"


def test_no_hook_outside_the_verified_versions(monkeypatch):
    monkeypatch.setattr(ui_events, "_kernel", lambda: Kernel7())
    monkeypatch.setattr(ui_events, "ipykernel_version", lambda: (7, 5, 0))
    comm = HookedComm()
    original = comm._reply_subshell_for
    assert not watch_messages(comm, lambda content: None)
    assert comm._reply_subshell_for == original
    assert not watch_messages(None, lambda content: None)


def test_outside_a_kernel_nothing_is_hooked_or_polled():
    comm = HookedComm()
    assert ui_events.current_path(comm) == "none"
    assert not watch_messages(comm, lambda content: None)
    with UiPump() as pump:
        assert not pump.enabled
        pump.poll(force=True)


def test_a_stop_click_seen_by_the_hook_stops_the_widget_from_the_shell_thread(kernel74):
    from lmwidgets.engines.base import StopSignal
    from lmwidgets.notebook.widgets import PromptView

    widget = PromptView()
    widget.reset_stop()
    stop = StopSignal()
    widget.on_stop(lambda: stop.set("stopped by user"))
    comm = HookedComm()
    assert watch_messages(comm, widget._peek)
    message = {"method": "custom", "content": {"type": "stop", "run": widget.run}}
    shell = threading.Thread(target=comm._reply_subshell_for, args=(message, None))
    shell.start()
    shell.join()
    assert stop.is_set() and comm.routed == [message]


def test_polling_is_throttled():
    pump = UiPump(interval=60, enabled=False)
    calls = []
    pump._poll = calls.append
    pump.poll()
    pump.poll()
    pump.poll(force=True)
    assert calls == [20, 20]
