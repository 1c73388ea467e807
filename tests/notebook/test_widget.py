"""The live view's widget protocol without a browser: what each push sends, what a late view
gets, Stop and re-run requests, and the browser-side store fed the kernel's real messages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from lmwidgets.engines.base import RowOutput, StopSignal
from lmwidgets.notebook.live import LiveView
from lmwidgets.notebook.widgets import PromptView
from lmwidgets.notebook.widgets.prompt_view import cell_update

JS_SRC = Path(__file__).resolve().parents[2] / "js" / "src"


class FakeStream:
    """What LiveView reads from the runner's stream: outputs per variant and the live text."""

    def __init__(self, n: int) -> None:
        self.outputs: list[list[RowOutput]] = [[] for _ in range(n)]
        self.texts = [""] * n

    def live_text(self, index: int) -> str:
        return self.texts[index]

    def grow(self, index: int, text: str, finish: str = "running") -> None:
        if not self.outputs[index]:
            self.outputs[index] = [RowOutput()]
        self.outputs[index][0].token_ids.append(len(self.texts[index]))
        self.outputs[index][0].finish_reason = finish
        self.texts[index] += text


def _live(labels=("a", "b", "c"), grid=False):
    variants = [
        SimpleNamespace(label=label, input=None, media=[], images=[], expected=None)
        for label in labels
    ]
    view = LiveView(variants, "title", show=False, grid=grid)
    sent: list[dict] = []
    view.widget.send = lambda content, buffers=None: sent.append(json.loads(json.dumps(content)))
    stop = StopSignal()
    stream = FakeStream(len(variants))
    view.start(stream, stop, [])
    return view, stream, stop, sent


def test_each_push_sends_only_the_changed_columns():
    view, stream, _, sent = _live()
    for index in range(3):
        stream.grow(index, f"start {index}")
    view.update_running(stream)
    (first,) = sent
    assert first["type"] == "cells" and [c["index"] for c in first["cells"]] == [0, 1, 2]
    assert first["cells"][0] == {"index": 0, "v": 1, "text": "start 0", "stats": "1 tokens"}

    # Only the middle column grew: one cell, only its new text and its new stats.
    stream.grow(1, ", more")
    view.update_running(stream)
    assert len(sent) == 2
    assert sent[1]["cells"] == [
        {"index": 1, "v": 2, "stats": "2 tokens", "append": ", more", "base": 1}
    ]
    # Nothing changed: nothing is sent.
    view.update_running(stream)
    assert len(sent) == 2
    # A column finishes without new text: its status alone.
    stream.outputs[2][0].finish_reason = "eos"
    view.update_running(stream)
    assert sent[2]["cells"] == [{"index": 2, "v": 2, "status": "eos"}]
    # The synced trait is not re-sent while streaming: it still holds the start.
    assert [c["text"] for c in view.widget.columns] == ["", "", ""]


def test_a_rewritten_text_is_sent_whole():
    old = PromptView.column("a", "Hello wor")
    new = PromptView.column("a", "Hello, world")
    assert cell_update(4, {**old, "v": 7}, new) == {"index": 4, "v": 8, "text": "Hello, world"}
    assert cell_update(0, {**new, "v": 3}, new) is None


def test_a_late_view_gets_the_streamed_state_and_the_end_is_a_full_copy():
    view, stream, _, _ = _live()
    stream.grow(0, "one")
    view.update_running(stream)
    stream.grow(0, " two")
    view.update_running(stream)
    # What the kernel hands a view that asks now (a page reload, a second frontend).
    state = view.widget.get_state()["columns"]
    assert state[0]["text"] == "one two" and state[0]["v"] == 2
    assert view.widget.get_state("columns")["columns"] == state

    synced = []
    view.widget.send_state = lambda key=None: synced.append(key)
    result = SimpleNamespace(
        complete=True,
        finish_reason="eos",
        extras={},
        correct=None,
        expected=None,
        text="one two three",
        answer="three",
        boxes=[],
        stats=lambda: "3 tokens",
        score=None,
        compared=None,
        prompt="<|user|>\nq",
        record={},
        model="m",
        adapter=None,
    )
    comparison = SimpleNamespace(
        results=[result] * 3, scores={}, notes=[], status="done", mimebundle=dict
    )
    view.finish(comparison)
    assert "columns" in synced  # the end of a run is a full copy to every view
    assert [c["text"] for c in view.widget.columns] == ["one two three"] * 3
    assert view.widget.get_state()["columns"] == view.widget.columns
    assert view.widget.columns[0]["answer"] == "three" and view.widget.status == "done"


def test_setting_the_same_columns_after_streaming_still_reaches_the_views():
    view, stream, _, _ = _live(labels=("a",))
    start = list(view.widget.columns)
    stream.grow(0, "text")
    view.update_running(stream)
    synced = []
    view.widget.send_state = lambda key=None: synced.append(key)
    view.widget.set_columns(start)  # equal to the trait: traitlets alone would send nothing
    assert synced == ["columns"]
    assert view.widget.get_state()["columns"][0]["text"] == ""


def test_each_widget_has_its_own_uid_for_the_browser_store():
    first, second = PromptView(), PromptView()
    assert first.uid and first.uid != second.uid
    assert first.get_state()["uid"] == first.uid


def test_stop_message_stops_the_current_run_only():
    view, _, stop, _ = _live()
    widget = view.widget
    assert widget.run == 1
    widget._handle_custom_msg({"type": "stop", "run": 0}, [])  # an earlier run's click
    assert not stop.is_set() and not widget.stop_requested
    widget._handle_custom_msg({"type": "stop", "run": 1}, [])
    assert stop.is_set() and stop.reason == "stopped by user" and widget.stop_requested


def test_stop_seen_on_another_thread_fires_once_and_touches_no_trait():
    view, _, stop, _ = _live()
    widget = view.widget
    calls = []
    widget.on_stop(lambda: calls.append(threading.current_thread().name))
    thread = threading.Thread(target=widget._peek, args=({"type": "stop", "run": 1},), name="shell")
    thread.start()
    thread.join()
    assert stop.is_set() and calls == ["shell"] and not widget.stop_requested
    widget._handle_custom_msg({"type": "stop", "run": 1}, [])  # the same click, delivered later
    assert calls == ["shell"] and widget.stop_requested
    # A new run re-arms Stop.
    view.start(FakeStream(3), StopSignal(), [])
    assert widget.run == 2 and not widget.stop_requested


def test_rerun_message_and_region_request_reach_the_handler():
    view, _, _, _ = _live()
    requests = []
    view.enable_rerun(requests.append)
    assert view.widget.can_rerun
    message = {"type": "rerun", "image": 0, "box": [1, 2, 30, 40], "mode": "crop", "x": "?"}
    view.widget._handle_custom_msg(message, [])
    view.widget.region_request = {"image": 1, "box": [5, 6, 7, 8], "mode": "box"}
    view.widget._handle_custom_msg({"type": "unknown"}, [])
    view.widget._handle_custom_msg(["not", "a", "dict"], [])
    assert requests == [
        {"image": 0, "box": [1, 2, 30, 40], "mode": "crop"},
        {"image": 1, "box": [5, 6, 7, 8], "mode": "box"},
    ]


def test_grid_cells_wait_until_their_batch_runs():
    view, stream, _, sent = _live(labels=("a", "b"), grid=True)
    assert {c["status"] for c in view.widget.columns} == {"waiting"}
    stream.grow(1, "x")
    view.update_running(stream)
    assert [c["index"] for c in sent[0]["cells"]] == [1]
    assert sent[0]["cells"][0]["status"] == "running"


def test_widget_sources_never_parse_text_as_html():
    sources = {path.name: path.read_text() for path in JS_SRC.glob("*.js")}
    assert {"view.js", "cells.js", "gallery.js", "region.js", "store.js"} <= set(sources)
    for name, source in sources.items():
        assert source.startswith("// @ts-check"), name
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", source)


NODE_SCRIPT = """
import { applyUpdates } from %s;
const input = JSON.parse(await new Promise((done) => {
  let data = ""; process.stdin.on("data", (c) => (data += c)); process.stdin.on("end", () => done(data));
}));
const cells = input.columns.map((c) => ({ ...c }));
for (const message of input.messages) applyUpdates(cells, message.cells);
console.log(JSON.stringify(cells));
"""


def _apply_in_node(columns, messages):
    if shutil.which("node") is None:
        pytest.skip("node is missing (it builds the widget: see README)")
    script = NODE_SCRIPT % json.dumps((JS_SRC / "store.js").as_uri())
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=json.dumps({"columns": columns, "messages": messages}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_browser_store_rebuilds_the_kernel_state_from_its_messages():
    view, stream, _, sent = _live()
    start = view.widget.get_state()["columns"]
    texts = ["Ünïcödé 🎉 ", "<b>not html</b>", ""]
    for step in range(4):
        for index, text in enumerate(texts):
            if index != 2 or step == 3:
                stream.grow(index, f"{text}{step} ")
        view.update_running(stream)
    stream.texts[1] = "rewritten"
    view.update_running(stream)
    cells = _apply_in_node(start, sent)
    assert cells == view.widget.get_state()["columns"]

    # A view that missed a message keeps its text (and version) but takes the other fields.
    late = view.widget.get_state()["columns"]
    stream.grow(0, "a")
    view.update_running(stream)
    stream.grow(0, "b", finish="eos")
    view.update_running(stream)
    (cell,) = _apply_in_node(late[:1], sent[-1:])
    assert cell["text"] == late[0]["text"] and cell["v"] == late[0]["v"]
    assert cell["status"] == "eos" and cell["stats"] == sent[-1]["cells"][0]["stats"]
