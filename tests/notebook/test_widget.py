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
    assert first["cells"][0] == {"index": 0, "v": 1, "text": "start 0", "stats": "1 token"}

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


# Axes, agreement and notes: the live view of real variants on the scripted engine ---------------


def _scripted_run(registry, text, *, variables=None, max_new_tokens=64, title="t", **options):
    import lmwidgets
    from lmwidgets.engines.base import GenerationSettings
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    def reply(prompt: str, adapter: str | None) -> str:
        if "3+3" in prompt:
            return "Adding them. The answer is 7."
        return "Let me think. The answer is 4."

    if "script" not in registry.names():
        lmwidgets.load_model(
            engine="scripted",
            name="script",
            replies=reply,
            adapters={"pirate": lambda s: "Arr! " + s.replace("4", "5")},
        )
    plan = build_variants(
        text,
        registry=registry,
        model=None,
        system=options.pop("system", None),
        settings=GenerationSettings(max_new_tokens=max_new_tokens, seed=7),
        variables=variables or {},
        **options,
    )
    view = LiveView(plan.variants, title, show=False, grid=plan.grid)
    view.widget.send = lambda content, buffers=None: None
    comparison = run_variants(plan.variants, view=view, finalize=plan.finish, judge=plan.judge)
    return view, comparison


def test_strategies_by_adapters_is_a_matrix_with_headers(registry):
    view, comparison = _scripted_run(
        registry, "What is 2+2?", compare="zero-shot,cot", adapters="base,pirate"
    )
    widget = view.widget
    assert widget.layout == "matrix"
    assert widget.rows == ["zero-shot", "cot"] and widget.labels == ["base", "pirate"]
    assert widget.axes == {"rows": "strategy", "columns": "adapter"}
    places = {(c["row"], c["col"]): c for c in widget.columns}
    assert set(places) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for (row, col), cell in places.items():
        result = comparison.results[widget.columns.index(cell)]
        assert result.strategy == widget.rows[row]
        assert (result.adapter or "base") == widget.labels[col]
        assert cell["prompt"] == result.prompt and "temperature 0.0" in cell["settings"]
        assert "seed 7" in cell["settings"] and f"adapter {widget.labels[col]}" in cell["settings"]
    # cot extracts an answer in each adapter column; they disagree (4 vs 5).
    cot = [places[(1, 0)], places[(1, 1)]]
    assert [c["answer"] for c in cot] == ["4", "5"]
    assert {c["group"] for c in cot} == {0, 1}
    assert widget.summary and len(widget.row_summaries) == 2
    assert widget.min_column_width == 260


def test_one_axis_stays_one_row_of_columns(registry):
    view, _ = _scripted_run(registry, "What is 2+2?", compare="zero-shot,cot")
    assert view.widget.layout == "columns" and view.widget.rows == []
    assert view.widget.labels == ["zero-shot", "cot"]
    assert [(c["row"], c["col"]) for c in view.widget.columns] == [(0, 0), (0, 1)]


def test_dataset_grid_rows_are_items_with_verdicts_and_agreement(registry):
    data = [{"input": "2+2", "expected": "4"}, {"input": "3+3", "expected": "6"}]
    view, comparison = _scripted_run(
        registry, "Compute {input}.", dataset=data, compare="zero-shot,cot"
    )
    widget = view.widget
    assert widget.layout == "grid" and widget.labels == ["zero-shot", "cot"]
    by_row = {}
    for cell in widget.columns:
        by_row.setdefault(cell["row_label"], []).append(cell)
    assert set(by_row) == {"2+2", "3+3"}
    wrong = [c for c in by_row["3+3"] if c["correct"] is False]
    assert wrong and all(c["expected"] == "6" for c in wrong)
    assert all(c["correct"] is True for c in by_row["2+2"] if c["answer"] is not None)
    assert len(widget.row_summaries) == 2 and "items" in widget.summary
    assert len(widget.column_stats) == 2 and "mean" in widget.column_stats[0]
    assert widget.scores == comparison.scores


def test_a_dataset_grid_is_titled_by_its_template_and_item_count(registry):
    data = [{"input": "2+2", "expected": "4"}, {"input": "3+3", "expected": "6"}]
    view, _ = _scripted_run(registry, "{input}", dataset=data, title="{input}")
    assert view.widget.title == "{input} · 2 items"  # not the bare "{input}"
    one, _ = _scripted_run(registry, "{input}", dataset=data[:1], title="")
    assert one.widget.title == "1 item"
    plain, _ = _scripted_run(registry, "What is 2+2?", title="What is 2+2?")
    assert plain.widget.title == "What is 2+2?"  # one prompt: its first line, as before


def test_probe_columns_get_no_agreement_summary_or_marks(registry):
    # Every column answers 4: with prompt wordings that is worth saying...
    view, _ = _scripted_run(registry, "What is 2+2?\n--- B\nHow much is 2+2?")
    assert view.widget.summary == "both columns agree on 4"
    # ...but probe columns are different attacks, where it means nothing.
    system = "You are a calculator. Only answer arithmetic questions."
    view, comparison = _scripted_run(registry, "What is 2+2?", system=system, probe="leak")
    assert len(comparison.results) > 2 and comparison.results[1].probe
    assert "agree" not in view.widget.summary
    assert all(cell["group"] is None for cell in view.widget.columns)
    # An attacked column's "answer" (a canary's digits, a last line) is no answer: no chip, in
    # the view or the static copy; the unprobed column answers the prompt as usual.
    baseline, *attacked = view.widget.columns
    assert baseline["chip"] and not baseline["answerless"]
    assert all(cell["answerless"] and not cell["chip"] for cell in attacked)
    assert all(r.answer for r in comparison.results)  # extraction found something in each
    assert comparison.to_markdown().count("Answer: ") == 1  # the unprobed column's
    assert comparison.to_html().count('class="lmw-answer"') == 1
    # A matrix with a probe axis: no row summaries either.
    view, _ = _scripted_run(
        registry, "What is 2+2?", system=system, probe="leak", adapters="base,pirate"
    )
    assert view.widget.layout == "matrix" and not any(view.widget.row_summaries)
    assert "agree" not in view.widget.summary


def test_a_pairwise_judged_grid_gets_no_agreement_summary(registry):
    import lmwidgets

    lmwidgets.load_model(engine="scripted", name="judge", replies={"*": "Alike.\n[[tie]]"})
    data = [{"input": "2+2"}, {"input": "5+5"}]
    view, comparison = _scripted_run(
        registry,
        "Compute {input}.\n--- child\nCompute {input} for a child.",
        dataset=data,
        judge="judge",
        judge_pairwise=True,
    )
    assert comparison.results[1].judge["mode"] == "pairwise"
    assert "agree" not in view.widget.summary and not any(view.widget.row_summaries)
    assert all(cell["group"] is None for cell in view.widget.columns)


def test_a_cut_off_answer_keeps_status_length(registry):
    view, comparison = _scripted_run(registry, "What is 2+2?", max_new_tokens=2)
    assert comparison.results[0].finish_reason == "length"
    assert view.widget.columns[0]["status"] == "length"


def test_undefined_name_is_noted_in_the_message(registry):
    view, _ = _scripted_run(
        registry, 'Hello {nme}, {{literal}} and {name} and {"json": 1}', variables={"name": "Ann"}
    )
    assert "{nme} is not defined in the notebook: left as written." in view.widget.message
    assert "literal" not in view.widget.message and "json" not in view.widget.message
    assert "{name}" not in view.widget.message


def test_undefined_fields_only_reports_fields_left_as_written():
    from lmwidgets.notebook.cell_info import undefined_fields

    assert undefined_fields("a {x} {y.z} {{w}}", "a {x} 3 {w}") == ["{x}"]
    assert undefined_fields('{"k": 1} {0}', '{"k": 1} {0}') == []


def test_axes_of_models_and_adapters_and_fallbacks():
    from lmwidgets.core.layout import axes_of

    def variant(label, strategy="zero-shot", model="m", adapter=None, item=None):
        engine = SimpleNamespace(name=model)
        return SimpleNamespace(
            label=label, strategy=strategy, engine=engine, adapter=adapter, input=item
        )

    models = [variant("a", "cot", "m1"), variant("b", "cot", "m2"), variant("c", "zs", "m1")]
    models.append(variant("d", "zs", "m2"))
    axes = axes_of(models)
    assert (axes.layout, axes.rows, axes.columns) == ("matrix", ["cot", "zs"], ["m1", "m2"])
    assert axes.positions == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # Models by adapters (each adapter on one model) is a sparse matrix.
    sparse = [variant("x", model="m1"), variant("y", model="m1", adapter="p")]
    sparse.append(variant("z", model="m2"))
    axes = axes_of(sparse)
    assert axes.layout == "matrix" and axes.rows == ["m1", "m2"]
    assert axes.columns == ["base", "p"] and axes.positions == [(0, 0), (0, 1), (1, 0)]
    # Variants of different inputs (a replayed dataset) stay one row of columns.
    mixed = [variant("a", "cot", item="1"), variant("b", "zs", "m2", item="2")]
    assert axes_of(mixed).layout == "columns"


def test_min_column_width_is_bounded_and_reachable_from_the_comparison(registry):
    from lmwidgets.notebook.live import widget_of

    view, comparison = _scripted_run(registry, "What is 2+2?")
    assert widget_of(comparison) is view.widget
    view.widget.min_column_width = 10
    assert view.widget.min_column_width == 80


# Token view (issue 15): token data in the cells, streamed with the text, forks --------------


def _grow_tokens(stream: FakeStream, index: int, pieces: list[str], p: float = 0.5) -> None:
    import math

    from lmwidgets.engines.base import TokenLogprob

    for piece in pieces:
        stream.grow(index, piece)
        top = ((7, piece, math.log(p)), (8, "<script>alert(1)</script>", math.log(p / 2)))
        token = TokenLogprob(len(stream.texts[index]), piece, math.log(p), top)
        stream.outputs[index][0].logprobs.append(token)


def test_token_data_streams_as_tokens_append_in_the_same_messages():
    view, stream, _, sent = _live(labels=("a", "b"))
    _grow_tokens(stream, 0, ["Hi", " <b>"])
    view.update_running(stream)
    (first,) = sent
    cell = first["cells"][0]
    assert cell["text"] == "Hi <b>" and len(cell["tokens"]) == 2
    text, p, alternatives, token_id = cell["tokens"][1]
    assert (text, p, token_id) == (" <b>", 0.5, 6)
    assert alternatives == [[" <b>", 0.5, 7], ["<script>alert(1)</script>", 0.25, 8]]
    _grow_tokens(stream, 0, [" there"], p=0.125)
    view.update_running(stream)
    (update,) = sent[1]["cells"]
    assert update["append"] == " there" and update["base"] == 1 and "tokens" not in update
    assert [t[:2] for t in update["tokens_append"]] == [[" there", 0.125]]
    # The browser's store rebuilds the same cells (tokens included) from these messages.
    start = [{**c, "v": 0} for c in view.widget.columns]
    assert _apply_in_node(start, sent) == view.widget.get_state()["columns"]


def test_token_data_is_bounded_per_cell():
    from lmwidgets.notebook.widgets.prompt_view import MAX_CELL_TOKENS

    view, stream, _, sent = _live(labels=("a",))
    _grow_tokens(stream, 0, ["x"] * (MAX_CELL_TOKENS + 50))
    view.update_running(stream)
    cell = sent[0]["cells"][0]
    assert len(cell["tokens"]) == MAX_CELL_TOKENS
    assert f"first {MAX_CELL_TOKENS:,} of {MAX_CELL_TOKENS + 50:,} tokens" in cell["note"]
    _grow_tokens(stream, 0, ["y"])
    view.update_running(stream)
    assert "tokens_append" not in sent[1]["cells"][0] and "tokens" not in sent[1]["cells"][0]


def _token_run(registry, logprobs: int, temperature: float = 0.0, **options):
    import lmwidgets
    from lmwidgets.engines.base import GenerationSettings
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    if "script" not in registry.names():
        lmwidgets.load_model(
            engine="scripted",
            name="script",
            replies=lambda prompt, adapter: "Let me think. The answer is 4. <script>x</script>",
            adapters={"pirate": lambda s: s.replace("4", "5")},
        )
    plan = build_variants(
        "What is 2+2?",
        registry=registry,
        model=None,
        system=None,
        settings=GenerationSettings(
            max_new_tokens=64, seed=7, logprobs=logprobs, temperature=temperature
        ),
        variables={},
        **options,
    )
    view = LiveView(plan.variants, "t", show=False, grid=plan.grid)
    sent: list[dict] = []
    view.widget.send = lambda content, buffers=None: sent.append(content)
    comparison = run_variants(plan.variants, view=view, finalize=plan.finish, update_interval=0)
    return view, comparison, sent


def test_finished_cells_carry_tokens_divergence_and_confidence(registry):
    view, comparison, _ = _token_run(registry, 5, adapters="base,pirate")
    base, pirate = view.widget.columns
    assert "".join(t[0] for t in base["tokens"]) == base["text"] == comparison[0].text
    assert all(0 < t[1] <= 1 and len(t[2]) == 5 and isinstance(t[3], int) for t in base["tokens"])
    assert "<script>" in base["text"]  # hostile text is data; the browser sets it as text
    # base says 4, pirate 5: the token streams part at " 4." vs " 5." (the 7th token).
    assert base["diverge"] == {"at": 6, "from": "pirate"}
    assert pirate["diverge"] == {"at": 6, "from": "base"}
    assert base["tokens"][6][0] == " 4." and pirate["tokens"][6][0] == " 5."
    assert base["confidence"] == round(comparison[0].confidence, 4)
    assert base["confidence_text"] == f"p={comparison[0].confidence:.2f}"


def test_self_consistency_confidence_is_the_vote(registry):
    view, _, _ = _token_run(registry, 5, strategy="self-consistency", samples=3, temperature=0.7)
    (cell,) = view.widget.columns
    assert cell["confidence_text"] == "vote 3/3"
    # Each sample's tokens, with a separator (p None) before each, as the text shows them.
    separators = [t for t in cell["tokens"] if t[1] is None]
    assert len(separators) == 3 and "sample 1" in separators[0][0]
    assert "".join(t[0] for t in cell["tokens"]) == cell["text"]
    assert cell["diverge"] is None


def test_token_data_adds_no_messages(registry):
    _, _, with_tokens = _token_run(registry, 5, adapters="base,pirate")
    _, _, without = _token_run(registry, 0, adapters="base,pirate")
    assert len(with_tokens) == len(without) > 3
    assert any("tokens_append" in c for m in with_tokens for c in m["cells"])
    assert not any("tokens" in c or "tokens_append" in c for m in without for c in m["cells"])


def test_the_toggle_is_the_views_own_state():
    view, _, _, _ = _live()
    view.widget.token_view = True  # what the browser's toggle does
    later, _, _, _ = _live()
    assert not later.widget.token_view  # a later view opens unshaded
    assert not later.widget.can_get_tokens  # nothing to re-run here
    later.widget._on_message(later.widget, {"type": "tokens"}, [])
    assert "run the cell with --logprobs 5" in later.widget.message


def test_the_tokens_message_reaches_the_handler_once_the_run_ended():
    view, _, _, _ = _live()
    calls = []
    view.enable_tokens(lambda: calls.append(1))
    assert view.widget.can_get_tokens
    view.widget.status = "running"
    view.widget._on_message(view.widget, {"type": "tokens"}, [])
    assert calls == [] and "Wait for the run to finish" in view.widget.message
    view.widget.status = "done"
    view.widget._on_message(view.widget, {"type": "tokens"}, [])
    assert calls == [1]


def test_fork_message_reaches_the_handler_with_the_variant():
    view, _, _, _ = _live(labels=("a", "b"))
    widget = view.widget
    message = {"type": "fork", "index": 1, "position": 3, "token": {"id": 42, "text": " no"}}
    widget._handle_custom_msg(message, [])
    assert "not available" in widget.message
    requests = []
    view.enable_fork(requests.append)
    assert widget.can_fork
    widget._handle_custom_msg(message, [])
    assert "Wait for the run" in widget.message and not requests  # never while it streams
    widget.status = "done"
    widget._handle_custom_msg({**message, "extra": "ignored"}, [])
    assert requests == [
        {"index": 1, "label": "b", "position": 3, "token": {"id": 42, "text": " no"}}
    ]
    for bad in ({"index": 9}, {"position": -1}, {"token": {"text": 3}}, {"token": "x"}):
        widget._handle_custom_msg({**message, **bad}, [])
        assert "not a token position" in widget.message
    assert len(requests) == 1

    def fails(request):
        raise ValueError("no such token")

    view.enable_fork(fails)
    widget._handle_custom_msg(message, [])
    assert widget.message == "Cannot fork at that token: no such token"


DIFF_SCRIPT = """
import { wordDiff, words } from %s;
const out = [];
for (const [a, b] of %s) {
  const { parts, approximate } = wordDiff(a, b, 50);
  out.push({ parts, approximate, words: words(b) });
}
console.log(JSON.stringify(out));
"""


def test_word_diff_in_node():
    if shutil.which("node") is None:
        pytest.skip("node is missing (it builds the widget: see README)")
    pairs = [
        ["The answer is 4.", "The answer is 5."],
        ["a b c", "a x b c"],
        ["", "new"],
        ["w " * 200, "v " * 200],
    ]
    script = DIFF_SCRIPT % (json.dumps((JS_SRC / "diff.js").as_uri()), json.dumps(pairs))
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    first, second, third, far = json.loads(done.stdout)
    assert first["parts"] == [
        {"op": "eq", "text": "The answer is "},
        {"op": "del", "text": "4"},
        {"op": "ins", "text": "5"},
        {"op": "eq", "text": "."},
    ]
    assert second["parts"][1] == {"op": "ins", "text": "x "}
    assert third["parts"] == [{"op": "ins", "text": "new"}]
    assert far["approximate"] and [p["op"] for p in far["parts"]] == ["del", "ins", "eq"]
    for (before, after), found in zip(pairs, (first, second, third, far), strict=True):
        assert "".join(p["text"] for p in found["parts"] if p["op"] != "ins") == before
        assert "".join(p["text"] for p in found["parts"] if p["op"] != "del") == after


def test_three_axes_show_grouped_rows_and_the_columns_menu_lays_out_again(registry):
    systems = {"none": None, "terse": "Be terse."}
    view, comparison = _scripted_run(
        registry, "What is 2+2?\n--- B\nWhat is 3+3?", systems=systems, temperatures="0,0.5"
    )
    widget = view.widget
    assert widget.layout == "matrix" and widget.labels == ["T=0", "T=0.5"]
    assert widget.row_parts == [["A", "none"], ["A", "terse"], ["B", "none"], ["B", "terse"]]
    assert widget.column_choices == ["prompt", "system", "temperature"]
    assert widget.column_axis == "temperature"
    before = {c["label"]: c["text"] for c in widget.columns}
    synced: list = []
    widget.send_state = lambda key=None: synced.append(set([key] if isinstance(key, str) else key))
    widget.column_axis = "prompt"  # what the view's columns menu sets
    del widget.send_state
    # One state message: a view never draws the new headers over the old rows.
    laid_out = [keys for keys in synced if keys != {"column_axis"}]
    assert len(laid_out) == 1 and {"labels", "rows", "row_parts", "columns"} <= laid_out[0]
    assert widget.labels == ["A", "B"] and widget.axes["columns"] == "prompt"
    assert widget.row_parts[1] == ["none", "T=0.5"]
    assert comparison.columns == "prompt"
    assert {c["label"]: c["text"] for c in widget.columns} == before  # nothing re-ran
    assert {(c["row"], c["col"]) for c in widget.columns} == {
        (r, c) for r in range(4) for c in (0, 1)
    }
    widget.column_axis = "trial"  # not an axis of this run: said, nothing changes
    assert "does not vary" in widget.message and widget.labels == ["A", "B"]


def test_an_undefined_name_note_reaches_the_static_copy(registry):
    view, comparison = _scripted_run(registry, "Hello {nme}")
    note = "{nme} is not defined in the notebook: left as written."
    assert note in comparison.notes  # the Comparison, its static copy and the live message
    assert view.widget.message.count(note) == 1
    assert note in comparison.to_html() and note in comparison.to_text()


def test_the_run_speed_is_said_once_and_each_column_has_its_tokens_and_time(registry):
    view, comparison = _scripted_run(registry, "What is 2+2?", compare="zero-shot,cot")
    assert comparison.seconds is not None and comparison.seconds > 0
    speed = comparison.throughput()
    tokens = sum(r.tokens for r in comparison)
    assert speed.startswith(f"{tokens} tokens in ") and speed.endswith(" tok/s")
    assert view.widget.run_stats == speed
    for cell in view.widget.columns:
        assert "tok/s" not in cell["stats"] and "tokens ·" in cell["stats"]
    assert comparison.to_html().count("tok/s") == 1  # in the caption, once
    assert comparison.to_text().count("tok/s") == 1


def test_scored_cells_carry_their_verdict_and_no_chip(registry):
    data = [{"input": "2+2", "expected": "4"}, {"input": "3+3", "expected": "6"}]
    view, _ = _scripted_run(registry, "Compute {input}.", dataset=data)
    cells = {c["row_label"]: c for c in view.widget.columns}
    assert cells["2+2"]["verdict"] == "equals 4" and cells["2+2"]["correct"] is True
    assert cells["3+3"]["verdict"] == "got 7 · expected 6"
    assert not any(c["chip"] for c in cells.values())  # the verdict says it


def test_a_free_form_answer_is_not_repeated_in_a_chip(registry):
    view, comparison = _scripted_run(registry, "What is 2+2?")
    assert view.widget.columns[0]["chip"] is True  # "4" is a part of the text
    result = comparison[0]
    result.text, result.answer = "Paris is the capital.", "Paris is the capital"
    assert view._final_cell(0, result, None)["chip"] is False  # the answer is the whole text


def test_the_widget_output_says_the_runs_shape_not_a_status_that_goes_stale(registry):
    data = [{"input": f"{i}+{i}", "expected": str(2 * i)} for i in range(5)]
    view, _ = _scripted_run(registry, "Compute {input}.", dataset=data, compare="zero-shot,cot")
    text = repr(view.widget)
    assert text == (
        "lmwidgets live view of 5 items × 2 columns; the finished run follows as a static copy"
    )
    matrix, _ = _scripted_run(
        registry, "What is 2+2?", compare="zero-shot,cot", adapters="base,pirate"
    )
    assert repr(matrix.widget).startswith("lmwidgets live view of 2 × 2 matrix;")
    plain, _ = _scripted_run(registry, "What is 2+2?")
    assert repr(plain.widget).startswith("lmwidgets live view of 1 column;")


def test_the_static_copy_of_a_live_view_carries_the_rule_that_lets_it_stand_alone(registry):
    from lmwidgets.notebook.live import LIVE_COPY_STYLE, live_copy, placeholder_bundle

    _, comparison = _scripted_run(registry, "What is 2+2?")
    bundle = live_copy(comparison.mimebundle())
    html = bundle["text/html"]
    assert html.startswith(f'<div class="lmw-livecopy"><style>{LIVE_COPY_STYLE}</style>')
    assert html.endswith("</div>") and comparison.to_html() in html
    assert bundle["text/plain"] == comparison.to_text()  # only the HTML is marked
    # Never a rendered live view, only the output right before the copy.
    assert ":not(:has(.lmw-live))" in LIVE_COPY_STYLE and ":has(+ " in LIVE_COPY_STYLE
    assert "lmw-livecopy" in live_copy(placeholder_bundle("t"))["text/html"]
