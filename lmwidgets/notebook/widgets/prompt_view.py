"""The live comparison view: columns that stream tokens side by side, with a Stop button."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from lmwidgets.core.safe_text import (
    LABEL_LIMIT,
    SHORT_LIMIT,
    WIDGET_TEXT_LIMIT,
    clean,
    shorten,
    truncate,
)
from lmwidgets.errors import LmWidgetsError
from lmwidgets.notebook.ui_events import watch_messages

_STATIC = Path(__file__).resolve().parents[2] / "static"
#: ``handler(request)`` for a region drawn in the browser: {'image', 'box', 'mode'}.
RegionHandler = Callable[[dict[str, Any]], None]
#: At most this many boxes are drawn per column (all are in Result.boxes).
MAX_BOXES = 100
#: Most axis-kind badges a cell keeps (:func:`lmwidgets.core.axis_kinds.badges`).
MAX_BADGES = 8
#: The default of :attr:`PromptView.min_column_width` (CSS pixels) for new views.
DEFAULT_MIN_COLUMN_WIDTH = 260
#: ``handler(request)`` for a fork at a token: {'index', 'position', 'token': {'id', 'text'}}.
ForkHandler = Callable[[dict[str, Any]], None]
#: A cell carries at most this many tokens for the token view (the text goes on as plain text).
MAX_CELL_TOKENS = 4_000
#: A token's text in a cell is cut to this many characters (a token is a few characters).
TOKEN_TEXT_LIMIT = 200


def _asset(name: str) -> Path | str:
    path = _STATIC / name
    if not path.is_file():
        raise LmWidgetsError(
            f"The widget bundle {path} is missing: the JavaScript was not built. Run `make setup` "
            "(or `npm --prefix js ci && npm --prefix js run build`)."
        )
    return path


def _columns_to_json(value: list[dict[str, Any]], widget: PromptView) -> list[dict[str, Any]]:
    """The ``columns`` state the kernel hands out: the streamed one while a run streams."""
    streamed = getattr(widget, "_streamed", None)
    return value if streamed is None else streamed


def cell_update(index: int, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The change from column ``old`` to ``new`` as one entry of a ``cells`` message, or None.

    Only changed fields are included. A text that grew at its end is sent as ``append`` (the new
    part) with ``base``, the version it extends; token data that grew is sent the same way, as
    ``tokens_append`` (the new tokens) with the same ``base``; ``v`` is the column's new version.
    """
    changed = {key: value for key, value in new.items() if key != "v" and old.get(key) != value}
    if not changed:
        return None
    version = old.get("v", 0)
    before = old.get("text") or ""
    if "text" in changed and before and changed["text"].startswith(before):
        changed["append"] = changed.pop("text")[len(before) :]
        changed["base"] = version
    tokens = old.get("tokens") or []
    if "tokens" in changed and tokens and changed["tokens"][: len(tokens)] == tokens:
        changed["tokens_append"] = changed.pop("tokens")[len(tokens) :]
        changed["base"] = version
    return {"index": index, "v": version + 1, **changed}


#: Most previews of a dataset item's own media shown in its row.
MAX_ROW_MEDIA = 8


class PromptView(anywidget.AnyWidget):
    """Columns of streamed text (one per variant) with stats and one Stop button for all.

    Columns are laid out on axes (``layout``, ``labels``, ``rows``, ``axes``): one row of
    columns, a matrix with row and column headers, or a dataset grid.

    The Python side owns the content; the browser renders it as text (never HTML). Besides the
    synced traits, the widget and the browser exchange anywidget custom messages:

    kernel to browser, :meth:`stream_columns` (one message per push while generating)::

        {"type": "cells", "cells": [{"index": i, "v": n, <changed fields>}, ...]}

    holds only the columns that changed since the previous push, and only their changed
    fields; a text that grew is sent as ``"append": <new part>, "base": <version it extends>``,
    and token data that grew as ``"tokens_append": [<new tokens>]`` with the same ``base`` (in
    the same message: token data never adds messages).
    ``columns`` itself is set (a full copy to every view) at the start and end of a run
    (:meth:`set_columns`).

    browser to kernel::

        {"type": "stop", "run": n}                 the Stop button, for run ``n``
        {"type": "rerun", "image": i, "box": [x1, y1, x2, y2], "mode": "box" | "crop"}
        {"type": "fork", "index": i, "position": p, "token": {"id": id | None, "text": t}}
        {"type": "tokens"}                         get this run's token probabilities
        {"type": "rate", "index": i, "value": "up" | "down" | None}   thumbs on cell ``i``
        {"type": "prefer", "a": i, "b": j, "choice": "a" | "b" | "tie" | "skip",
         "revealed": bool}                         blind pairwise mode's answer for its pair
        {"type": "audio", "index": i}              play the prompt's i-th audio clip

    ``audio`` is answered with ``{"type": "audio", "index": i, "src": "data:audio/wav;..."}``
    (or ``"error": text``): the audio goes to the browser only on demand, in a message the
    saved notebook does not keep (its synced state holds the waveform picture only).

    ``fork`` is a click on an alternative in a token's popover (token view): continue cell
    ``i``'s prompt with its first ``p`` generated tokens and then ``token`` forced (a multi-sample
    cell adds ``"sample": s``); it reaches the :meth:`on_fork` callbacks, and any error they
    raise is shown in ``message``.

    Token data (``--logprobs K``): a cell's ``tokens`` is a compact list, one entry per generated
    token, ``[text, p, [[alt_text, alt_p, alt_id], ...], id]`` (``p`` the probability rounded to
    4 digits; an entry ``[text, None, [], None]`` is not a token: the separator between the
    samples of a multi-sample cell), at most :data:`MAX_CELL_TOKENS` per cell (the note says
    when cut). ``diverge`` is ``{"at": position, "from": label}`` (where the cell's tokens part
    from its closest sibling: see :mod:`lmwidgets.notebook.divergence`) or None; ``confidence``
    (0..1) and ``confidence_text`` (``"p=0.82"`` or ``"vote 3/5"``) go beside the answer.

    Stop while the generating cell keeps the kernel busy (:mod:`lmwidgets.notebook.ui_events`):
    on ipykernel 7.4 it acts within a token (a guarded private hook sees the message as it
    arrives), on ipykernel 6 within a few tens of milliseconds (jupyter-ui-poll); on other
    kernels it acts only between cells, and interrupting the kernel stops generation and keeps
    the partial text.

    Trade-off: streaming sends only what changed, so the ``columns`` trait (what Python reads)
    is the last full copy, made at the start and the end of each run. Late views still see the
    latest state: views of one widget in a page share one store of streamed columns (found by
    ``uid``), so a second view opened mid-run is current at once; a new page (a reload while
    the kernel is alive) asks the kernel for the widget's state, and the kernel then
    serializes the streamed columns, not the trait. On ipykernel 7 that request waits until
    the busy cell ends (the page then shows the final state); on ipykernel 6 it is answered
    while polling. A view that missed an ``append`` (its version is not ``base``) keeps its
    text, and takes the other fields, until the next full copy (at the latest the run's end).
    No full copy is re-sent while streaming: that is the bandwidth the messages save.
    """

    _esm = _asset("prompt.js")
    _css = _asset("prompt.css")

    title = traitlets.Unicode(
        "", help="Heading shown above the columns (the prompt's first line)."
    ).tag(sync=True)
    columns = traitlets.List(
        traitlets.Dict(),
        help=(
            "One dict per column: label, text, answer, chip (whether the answer is shown apart "
            "from the text: not when it is the whole text), answerless (a probe column: no "
            "answer chip at all), status (running|waiting|eos|length|"
            "stopped|error; length is an answer cut off by max tokens), stats (a one-line "
            "summary), note (e.g. what was cut), row, col, row_label, boxes, group (the "
            "agreement group of its answer: 0 the most common, None without an answer), "
            "correct (True/False/None), score (0..1 or None), compared (what the scorer "
            "compared with expected), verdict (how it judged, in words: 'contains Paris', "
            "'got 7 · expected 6'), expected, prompt (the exact prompt, cut), settings (one "
            "line: temperature, seed, max tokens, adapter, model), tokens (token data for the "
            "token view: [text, p, [[alt_text, alt_p, alt_id], ...], id] per token, empty "
            "without --logprobs), diverge ({'at': position, 'from': label} or None), "
            "confidence and confidence_text (beside the answer), and v (its version, for "
            "streamed updates)."
        ),
    ).tag(sync=True, to_json=_columns_to_json)
    status = traitlets.Unicode("running", help="Run state: running, done, stopped or error.").tag(
        sync=True
    )
    message = traitlets.Unicode("", help="An error or notice shown under the columns.").tag(
        sync=True
    )
    layout = traitlets.Unicode(
        "columns",
        help=(
            "'columns' (one row of columns, one per variant), 'matrix' (two things vary, e.g. "
            "strategies x adapters: rows and columns with headers) or 'grid' (a dataset: one "
            "row per item, one column per variant). Each cell's row and col place it."
        ),
    ).tag(sync=True)
    labels = traitlets.List(
        traitlets.Unicode(),
        help=(
            "The column headers, in order: variant labels ('columns', 'grid'), or the values "
            "of the column axis ('matrix': e.g. the adapters, or 'model · adapter')."
        ),
    ).tag(sync=True)
    rows = traitlets.List(
        traitlets.Unicode(),
        help=(
            "Matrix layout: the row headers (the values of the row axis, e.g. the strategies); "
            "empty otherwise (a grid's row headers are its cells' row_label, the item)."
        ),
    ).tag(sync=True)
    axes = traitlets.Dict(
        {},
        help=(
            "What varies along each axis: {'rows': 'strategy' | 'model' | 'input' | '', "
            "'columns': 'adapter' | 'model' | 'model · adapter' | 'variant' | ...}; shown in "
            "the header's corner."
        ),
    ).tag(sync=True)
    row_parts = traitlets.List(
        traitlets.List(traitlets.Unicode()),
        help=(
            "Matrix layout with several row axes (three or more axes vary): each row's value on "
            "each row axis, drawn as grouped headers (a value equal to the row above is muted); "
            "empty otherwise."
        ),
    ).tag(sync=True)
    column_choices = traitlets.List(
        traitlets.Unicode(),
        help=(
            "The axes that can form the columns of this matrix (everything that varies); the "
            "view offers them in a 'columns' menu once the run is done. Empty: nothing to swap."
        ),
    ).tag(sync=True)
    column_axis = traitlets.Unicode(
        "",
        help=(
            "The axis that forms the columns (one of column_choices). The view sets it when the "
            "user picks another one; the kernel then lays the same results out again (no re-run) "
            "and updates the static copy."
        ),
    ).tag(sync=True)
    summary = traitlets.Unicode(
        "",
        help=(
            "One line above the columns saying how many agree (set at the end of a run, from "
            "lmwidgets.core.answers.agreement; a dataset counts the items all agree on; none "
            "where the columns ask different things: lmwidgets.core.layout.agreement_applies), "
            "and on "
            "a scored two-column dataset a line comparing them item by item "
            "(lmwidgets.core.stats.paired)."
        ),
    ).tag(sync=True)
    row_summaries = traitlets.List(
        traitlets.Unicode(),
        help="Matrix and grid layouts: the agreement summary of each row, under its header.",
    ).tag(sync=True)
    column_stats = traitlets.List(
        traitlets.Unicode(),
        help=(
            "Grid layout: each column's stats in one line (mean tokens, seconds, first token), "
            "shown in a footer row instead of repeated in every cell."
        ),
    ).tag(sync=True)
    min_column_width = traitlets.Int(
        help=(
            "The narrowest a column gets, in CSS pixels (default DEFAULT_MIN_COLUMN_WIDTH, "
            "260): with more columns than fit, the view scrolls sideways and its headers stay "
            "in place. Set it from Python, e.g. lmwidgets.notebook.live.widget_of(r)"
            ".min_column_width = 400 (or the module default for new views)."
        ),
    ).tag(sync=True)

    @traitlets.default("min_column_width")
    def _default_min_column_width(self) -> int:
        return DEFAULT_MIN_COLUMN_WIDTH

    @traitlets.validate("min_column_width")
    def _valid_min_column_width(self, proposal: dict) -> int:
        return max(80, min(int(proposal["value"]), 2000))

    scores = traitlets.Dict(
        {}, help="Grid layout: accuracy per variant label (0..1), shown under the headers."
    ).tag(sync=True)
    score_intervals = traitlets.Dict(
        {},
        help=(
            "Grid layout: the 95% interval of each scored column's accuracy, {label: [low, "
            "high]} (lmwidgets.core.stats), shown beside it: '70% (48–87%)'."
        ),
    ).tag(sync=True)
    run_stats = traitlets.Unicode(
        "",
        help=(
            "The finished run's speed, said once in the header for every column "
            "('120 tokens in 3.1 s · 38.7 tok/s'): the columns of one batch advance together, "
            "so each column shows only its own tokens and time."
        ),
    ).tag(sync=True)
    progress = traitlets.Dict(
        {},
        help=(
            "Batch progress: {'done': n, 'total': m, 'text': '3 of 10 batches · about 40 s "
            "left'}; empty for a run of one batch."
        ),
    ).tag(sync=True)
    stop_requested = traitlets.Bool(
        False,
        help=(
            "True once a Stop request for this run was handled (every view then shows "
            "'stopping…'); setting it from Python stops the run too."
        ),
    ).tag(sync=True)
    run = traitlets.Int(0, help="Counts the runs shown in this view; a Stop names its run.").tag(
        sync=True
    )
    uid = traitlets.Unicode(
        help=(
            "Identifies this widget to the browser, where its views share one store of "
            "streamed columns (anywidget gives each view its own proxy of the model)."
        )
    ).tag(sync=True)

    @traitlets.default("uid")
    def _default_uid(self) -> str:
        return uuid.uuid4().hex

    media = traitlets.List(
        traitlets.Dict(),
        help=(
            "The prompt's media, shown above the columns, each as its kind's preview module "
            "draws it (js/src/media/): kind, name, src (a small data URL picture, never the "
            "full item), caption; images add width and height of the original and region."
        ),
    ).tag(sync=True)

    @property
    def images(self) -> list[dict[str, Any]]:
        """The previews of the prompt's images (its media of kind ``image``)."""
        return [item for item in self.media if item.get("kind", "image") == "image"]

    can_rerun = traitlets.Bool(
        False, help="Whether the user may draw a region on a thumbnail and re-run with it."
    ).tag(sync=True)
    token_view = traitlets.Bool(
        False,
        help=(
            "The 'tokens' toggle in the view's header: when on, each column's text is shown as "
            "tokens shaded by their probability (hover or focus one for its top alternatives; "
            "click an alternative to fork). Cells need token data (--logprobs K). It is this "
            "view's own state: it never changes what later runs ask for."
        ),
    ).tag(sync=True)
    can_get_tokens = traitlets.Bool(
        False,
        help=(
            "Whether a view without token data may get them: its 'get them' button sends "
            "{'type': 'tokens'}, which re-runs this comparison with --logprobs 5 in this view "
            "(LiveView.enable_tokens)."
        ),
    ).tag(sync=True)
    can_fork = traitlets.Bool(
        False,
        help="Whether clicking an alternative token forks a column (LiveView.enable_fork).",
    ).tag(sync=True)
    can_rate = traitlets.Bool(
        False,
        help=(
            "Whether the cells offer thumbs up / down and the header a 'blind' toggle (a "
            "finished run: lmwidgets.notebook.live_ratings)."
        ),
    ).tag(sync=True)
    blind = traitlets.Bool(
        False,
        help=(
            "Blind pairwise mode (the header's 'blind' toggle): two columns at a time, labels "
            "hidden, asked 'which is better: A, B, tie'. The kernel draws the pairs."
        ),
    ).tag(sync=True)
    blind_pair = traitlets.Dict(
        {},
        help=(
            "Blind mode's current pair: {'a': cell, 'b': cell (shown as A and B), 'number': k, "
            "'total': n, 'seed': s, 'item': the dataset item}; {'done': True, 'total': n} when "
            "every pair is judged; empty outside blind mode."
        ),
    ).tag(sync=True)
    region_request = traitlets.Dict(
        {},
        help=(
            "Set from Python to re-run with a region, as the browser's 'rerun' message does: "
            "{'image': index, 'box': [x1, y1, x2, y2] in pixels of the original image, "
            "'mode': 'box' or 'crop'}."
        ),
    )

    def __init__(self, **kwargs: Any) -> None:
        self._streamed: list[dict[str, Any]] | None = None
        self._on_columns: list[Callable[[str], None]] = []
        #: True while the kernel itself sets the layout traits (not a user's pick).
        self._laying_out = False
        super().__init__(**kwargs)
        self._on_stop: list[Callable[[], None]] = []
        self._on_region: list[RegionHandler] = []
        self._on_fork: list[ForkHandler] = []
        self._on_tokens: list[Callable[[], None]] = []
        self._on_rating: list[Callable[[dict[str, Any]], None]] = []
        self._stop_fired = False
        self._stop_lock = threading.Lock()
        #: The prompt's media items in preview order (not synced): the play control asks for
        #: an audio clip by its index here.
        self.media_sources: list[Any] = []
        #: Grid layout: the run's dataset items (the grid shows at most the first 100).
        self.total_items: int | None = None
        self.on_msg(self._on_message)
        watch_messages(getattr(self, "comm", None), self._peek)

    def __repr__(self) -> str:
        """The widget output's text/plain, which a saved notebook keeps (shown where widgets
        are not and styles are dropped, e.g. GitHub): the run's shape in its own words, known
        when it is displayed. It names no status: the static copy right after it, filled in
        when the run ends, says how the run finished."""
        return f"lmwidgets live view of {self.shape()}; the finished run follows as a static copy"

    def shape(self) -> str:
        """``'3 columns'``, ``'2 × 3 matrix'`` or ``'5 items × 2 columns'``."""

        def count(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        width = len(self.labels) or len({c.get("col", 0) for c in self.columns})
        if self.layout == "grid":
            items = self.total_items or len({c.get("row", 0) for c in self.columns})
            return f"{count(items, 'item')} × {count(width, 'column')}"
        if self.layout == "matrix":
            return f"{len(self.rows)} × {width} matrix"
        return count(width, "column")

    def set_layout(self, axes: Any) -> None:
        """Show ``axes`` (a :class:`lmwidgets.core.layout.Axes`): layout, headers, grouped row
        headers and the column axes to choose from (one state message, so a view never
        draws new column headers over old row headers)."""
        self._laying_out = True
        try:
            with self.hold_sync():
                self.layout = axes.layout
                self.labels = axes.columns
                self.rows = axes.rows
                self.row_parts = axes.row_parts
                self.axes = {"rows": axes.row_axis, "columns": axes.column_axis}
                self.column_choices = axes.choices
                self.column_axis = axes.column_axis if axes.choices else ""
        finally:
            self._laying_out = False

    # Columns ---------------------------------------------------------------------------------

    def set_columns(self, columns: list[dict[str, Any]]) -> None:
        """Replace every column: one full copy to every view (the start and end of a run)."""
        streamed, self._streamed = self._streamed, None
        if streamed is not None and columns == self.columns:
            self.send_state("columns")  # the trait did not change, but the views did
        self.columns = columns

    def stream_columns(self, columns: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Send the views only the columns that changed since the last push (one message).

        Returns the message sent (None when nothing changed). A different number of columns
        is a full copy (:meth:`set_columns`).
        """
        current = self.columns if self._streamed is None else self._streamed
        if len(columns) != len(current):
            self.set_columns(columns)
            return None
        updates, streamed = [], []
        for index, (old, new) in enumerate(zip(current, columns, strict=True)):
            update = cell_update(index, old, new)
            if update is not None:
                updates.append(update)
            streamed.append({**new, "v": update["v"] if update else old.get("v", 0)})
        self._streamed = streamed
        if not updates:
            return None
        message = {"type": "cells", "cells": updates}
        self.send(message)
        return message

    # Requests from the browser ---------------------------------------------------------------

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the user clicks Stop (possibly from another thread)."""
        self._on_stop.append(callback)

    def on_region(self, callback: RegionHandler) -> None:
        """Call ``callback(request)`` when the user draws a region and clicks Re-run."""
        self._on_region.append(callback)
        self.can_rerun = True

    def on_columns(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(axis)`` when the user picks another column axis in the view."""
        self._on_columns.append(callback)

    @traitlets.observe("column_axis")
    def _column_axis_changed(self, change: dict) -> None:
        axis = change["new"]
        if not axis or axis == change["old"] or self._laying_out:
            return
        if axis not in self.column_choices:
            self.message = f"Cannot lay out by {axis!r}: it does not vary in this run."
            return
        for callback in list(self._on_columns):
            try:
                callback(axis)
            except Exception as exc:  # shown in the view: there is no cell to show it
                self.message = f"Cannot lay out by {axis}: {exc}"
                return

    def on_fork(self, callback: ForkHandler) -> None:
        """Call ``callback(request)`` when the user clicks an alternative token (a fork):
        ``{'index': cell, 'position': p, 'token': {'id': id or None, 'text': text}}`` (plus
        ``'sample'`` for a multi-sample cell)."""
        self._on_fork.append(callback)
        self.can_fork = True

    def on_tokens(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the user asks for this run's token probabilities (the
        tokens toggle's "get them", in a view without token data)."""
        self._on_tokens.append(callback)
        self.can_get_tokens = True

    def reset_stop(self) -> None:
        """Arm the Stop button again for a new run in this view."""
        with self._stop_lock:
            self._stop_fired = False
            self._on_stop.clear()
        self.stop_requested = False
        self.run += 1

    def _is_current_stop(self, content: dict[str, Any]) -> bool:
        return content.get("type") == "stop" and content.get("run", self.run) == self.run

    def _peek(self, content: dict[str, Any]) -> None:
        """A message as it arrives, possibly while a cell runs (see ``watch_messages``)."""
        if self._is_current_stop(content):
            self._fire_stop()

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if self._is_current_stop(content):
            self.stop_requested = True
        elif content.get("type") == "rerun":
            request = {key: content.get(key) for key in ("image", "box", "mode")}
            self._request_region(request)
        elif content.get("type") == "fork":
            self._request_fork(content)
        elif content.get("type") == "tokens":
            self._request_tokens()
        elif content.get("type") in ("rate", "prefer"):
            for callback in list(self._on_rating):
                callback(dict(content))
        elif content.get("type") == "audio":
            self._send_audio(content.get("index"))

    def on_rating(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(content)`` for each ``rate`` and ``prefer`` message (see the class
        docstring; :mod:`lmwidgets.notebook.live_ratings` checks and records them)."""
        self._on_rating.append(callback)

    def _send_audio(self, index: Any) -> None:
        """Answer a play button: the WAV of the prompt's ``index``-th audio clip (what the
        model heard), sent as a custom message, never as synced state."""
        clips = [item for item in self.media_sources if getattr(item, "kind", None) == "audio"]
        ok = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(clips)
        item = clips[index] if ok else None
        if item is None:
            self.send({"type": "audio", "index": index, "error": "audio unavailable"})
            return
        from lmwidgets.media.audio import wav_data_url

        try:
            src = wav_data_url(item.resolve() if hasattr(item, "resolve") else item)
        except Exception as exc:  # a released or unreadable clip: said next to the button
            self.send({"type": "audio", "index": index, "error": str(exc)[:200]})
            return
        self.send({"type": "audio", "index": index, "src": src})

    def _request_tokens(self) -> None:
        """The "get them" button: checked, then handed to the :meth:`on_tokens` callbacks;
        what goes wrong is said in ``message``."""
        if not self._on_tokens:
            self.message = (
                "This view cannot get token probabilities: run the cell with --logprobs 5."
            )
            return
        if self.status == "running":
            self.message = "Wait for the run to finish (or stop it) before getting its tokens."
            return
        for callback in list(self._on_tokens):
            try:
                callback()
            except Exception as exc:  # shown in the view: there is no cell to show it
                self.message = f"Cannot get the token probabilities: {exc}"
                return

    def _request_fork(self, content: dict[str, Any]) -> None:
        """A click on an alternative token: checked, then handed to the :meth:`on_fork`
        callbacks; what goes wrong is said in ``message`` (no cell shows errors here)."""
        index, position = content.get("index"), content.get("position")
        token = content.get("token")
        ok = (
            isinstance(index, int)
            and isinstance(position, int)
            and 0 <= index < len(self.columns)
            and position >= 0
            and isinstance(token, dict)
            and isinstance(token.get("text"), str)
            and (token.get("id") is None or isinstance(token.get("id"), int))
        )
        if not ok:
            self.message = "Cannot fork: the request from the browser is not a token position."
            return
        if not self._on_fork:
            self.message = "Forking at a token is not available for this run."
            return
        if self.status == "running":
            self.message = "Wait for the run to finish (or stop it) before forking at a token."
            return
        assert isinstance(token, dict)
        request: dict[str, Any] = {
            "index": index,
            "position": position,
            "token": {"id": token.get("id"), "text": token["text"]},
        }
        if isinstance(content.get("sample"), int):
            request["sample"] = content["sample"]
        for callback in list(self._on_fork):
            try:
                callback(dict(request))
            except Exception as exc:  # shown in the view: there is no cell to show it
                self.message = f"Cannot fork at that token: {exc}"
                return

    def _fire_stop(self) -> None:
        with self._stop_lock:
            if self._stop_fired:
                return
            self._stop_fired = True
            callbacks = list(self._on_stop)
        for callback in callbacks:
            callback()

    def _request_region(self, request: dict[str, Any]) -> None:
        for callback in list(self._on_region):
            callback(dict(request))

    @traitlets.observe("region_request")
    def _region_changed(self, change: dict) -> None:
        if change["new"]:
            self._request_region(change["new"])

    @traitlets.observe("stop_requested")
    def _stop_changed(self, change: dict) -> None:
        if change["new"]:
            self._fire_stop()

    @staticmethod
    def column(
        label: str,
        text: str = "",
        *,
        answer: str | None = None,
        chip: bool = False,
        answerless: bool = False,
        status: str = "running",
        stats: str = "",
        note: str = "",
        row: int = 0,
        col: int = 0,
        row_label: str = "",
        boxes: list[dict[str, Any]] | None = None,
        group: int | None = None,
        correct: bool | None = None,
        score: float | None = None,
        compared: str | None = None,
        verdict: str = "",
        expected: str | None = None,
        prompt: str = "",
        settings: str = "",
        tokens: list[list[Any]] | None = None,
        tokens_total: int | None = None,
        diverge: dict[str, Any] | None = None,
        confidence: float | None = None,
        confidence_text: str = "",
        vs: int | None = None,
        previous: bool = False,
        cached: bool = False,
        rating: str | None = None,
        judge: dict[str, Any] | None = None,
        media: list[dict[str, Any]] | None = None,
        choices: dict[str, Any] | None = None,
        badges: list[dict[str, str]] | None = None,
        **kind_cells: Any,
    ) -> dict[str, Any]:
        """A column dict with its text bounded to :data:`WIDGET_TEXT_LIMIT` characters and its
        token data to :data:`MAX_CELL_TOKENS` tokens (``tokens_total``: how many there were);
        each field bounded or made plain for the browser (see the ``_*_cell`` helpers).

        ``kind_cells`` are the registered axis kinds' cell data by their keys (``probe=``,
        ``structured=``; :mod:`lmwidgets.core.axis_kinds`), each bounded by its kind;
        ``badges`` their generic marks (:func:`~lmwidgets.core.axis_kinds.badges`)."""
        shown, tokens, note = _bounded(text, tokens, tokens_total, note)
        return {
            "label": shorten(label, LABEL_LIMIT),
            "text": shown,
            "answer": None if answer is None else shorten(answer, SHORT_LIMIT),
            "chip": bool(chip and answer is not None),
            # A column asking a question of its own (a probe): no answer chip, not even "—".
            "answerless": answerless,
            "status": status,
            "stats": stats,
            "note": note,
            "row": row,
            "col": col,
            "row_label": shorten(row_label, SHORT_LIMIT),
            # A dataset item's own media (its row's first cell only): small previews.
            "row_media": [dict(item) for item in (media or [])[:MAX_ROW_MEDIA]],
            "boxes": _boxes_cell(boxes),
            "group": group,
            "correct": correct,
            "score": None if score is None else float(score),
            "compared": None if compared is None else shorten(compared, SHORT_LIMIT),
            "verdict": shorten(verdict, SHORT_LIMIT),
            "expected": None if expected is None else shorten(expected, SHORT_LIMIT),
            "prompt": truncate(clean(prompt), WIDGET_TEXT_LIMIT)[0],
            "settings": shorten(settings, SHORT_LIMIT),
            "tokens": tokens,
            "diverge": diverge,
            "confidence": None if confidence is None else round(float(confidence), 4),
            "confidence_text": shorten(confidence_text, LABEL_LIMIT),
            "vs": vs,
            "previous": previous,
            "cached": bool(cached),
            "rating": rating if rating in ("up", "down") else None,
            "judge": _judge_cell(judge),
            "choices": _choices_cell(choices),
            "badges": _badges_cell(badges),
            **_kind_cells(kind_cells),
        }


def _bounded(
    text: str, tokens: list[list[Any]] | None, tokens_total: int | None, note: str
) -> tuple[str, list[list[Any]], str]:
    """A cell's text bounded to :data:`WIDGET_TEXT_LIMIT` characters and its token data to
    :data:`MAX_CELL_TOKENS` tokens (``tokens_total``: how many there were), and its ``note``
    (shortened) saying what was cut and where the rest is."""
    shown, cut = truncate(clean(text), WIDGET_TEXT_LIMIT)
    note = shorten(note, SHORT_LIMIT)
    if cut:
        note = (
            note + " " if note else ""
        ) + f"{cut:,} more characters not shown (see Result.text)."
    tokens = list(tokens or [])
    total = max(len(tokens), tokens_total or 0)
    if total > MAX_CELL_TOKENS:
        tokens = tokens[:MAX_CELL_TOKENS]
        note = (note + " " if note else "") + (
            f"Token view: the first {MAX_CELL_TOKENS:,} of {total:,} tokens "
            "(see Result.tokens_detail)."
        )
    return shown, tokens, note


def _boxes_cell(boxes: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The boxes drawn on a cell's images: at most :data:`MAX_BOXES`, labels shortened,
    coordinates as numbers."""
    return [
        {
            "label": shorten(box["label"], LABEL_LIMIT),
            **{k: float(box[k]) for k in ("x1", "y1", "x2", "y2")},
            "image": int(box.get("image", 0)),
        }
        for box in (boxes or [])[:MAX_BOXES]
    ]


def _judge_cell(judge: dict[str, Any] | None) -> dict[str, Any] | None:
    """A judge's verdict for its cell (:func:`lmwidgets.prompting.judging.shown_verdict`),
    bounded: the chip and tooltip short, the reasoning to the cell's text limit."""
    from lmwidgets.prompting.judging import shown_verdict

    shown_judge = shown_verdict(judge)
    if shown_judge is None:
        return None
    return {
        "chip": shorten(clean(shown_judge["chip"]), LABEL_LIMIT),
        "tone": shown_judge["tone"],
        "title": shorten(clean(shown_judge["title"]), SHORT_LIMIT),
        "reasoning": truncate(clean(shown_judge["reasoning"]), WIDGET_TEXT_LIMIT)[0],
    }


def _choices_cell(choices: dict[str, Any] | None) -> dict[str, Any] | None:
    """Given choices' bars (:func:`lmwidgets.run.choices.choice_bars`), their texts bounded."""
    if not isinstance(choices, dict):
        return None
    return {**choices, "texts": [shorten(clean(t), SHORT_LIMIT) for t in choices["texts"]]}


def _badges_cell(badges: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """Axis kinds' generic badges, bounded (text and state short, title a line)."""
    return [
        {
            "kind": shorten(str(badge.get("kind", "")), LABEL_LIMIT),
            "text": shorten(clean(str(badge.get("text", ""))), LABEL_LIMIT),
            "title": shorten(clean(str(badge.get("title", ""))), SHORT_LIMIT),
            "state": shorten(str(badge.get("state", "")), LABEL_LIMIT),
        }
        for badge in (badges or [])[:MAX_BADGES]
    ]


def _kind_cells(given: dict[str, Any]) -> dict[str, Any]:
    """Every registered axis kind's cell data under its key (None where the cell has none),
    bounded by the kind; a key no kind has is a mistake."""
    from lmwidgets.core.axis_kinds import all_kinds

    hooks = {kind.key: kind.hook("cell") for kind in all_kinds()}
    cells = {key: cell for key, cell in hooks.items() if cell is not None}
    unknown = sorted(set(given) - set(cells))
    if unknown:
        raise TypeError(f"PromptView.column() got unexpected keyword(s): {', '.join(unknown)}")
    return {key: cell(given.get(key)) for key, cell in cells.items()}
