"""The live comparison view: columns that stream tokens side by side, with a Stop button."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

from lmwidgets.errors import LmWidgetsError
from lmwidgets.sharing.safe_text import (
    LABEL_LIMIT,
    SHORT_LIMIT,
    WIDGET_TEXT_LIMIT,
    clean,
    shorten,
    truncate,
)

_STATIC = Path(__file__).resolve().parents[2] / "static"
#: At most this many boxes are drawn per column (all are in Result.boxes).
MAX_BOXES = 100


def _asset(name: str) -> Path | str:
    path = _STATIC / name
    if not path.is_file():
        raise LmWidgetsError(
            f"The widget bundle {path} is missing: the JavaScript was not built. Run `make setup` "
            "(or `npm --prefix js ci && npm --prefix js run build`)."
        )
    return path


class PromptView(anywidget.AnyWidget):
    """Columns of streamed text (one per variant) with stats and one Stop button for all.

    The Python side owns the content (``columns``, ``status``); the browser only renders it as
    text (never HTML) and sets ``stop_requested`` when the user clicks Stop.
    """

    _esm = _asset("prompt.js")
    _css = _asset("prompt.css")

    title = traitlets.Unicode(
        "", help="Heading shown above the columns (the prompt's first line)."
    ).tag(sync=True)
    columns = traitlets.List(
        traitlets.Dict(),
        help=(
            "One dict per column: label, text, answer, status (running|eos|length|stopped|error), "
            "stats (a one-line summary), note (e.g. what was cut)."
        ),
    ).tag(sync=True)
    status = traitlets.Unicode("running", help="Run state: running, done, stopped or error.").tag(
        sync=True
    )
    message = traitlets.Unicode("", help="An error or notice shown under the columns.").tag(
        sync=True
    )
    layout = traitlets.Unicode(
        "columns", help="'columns' (one column per variant) or 'grid' (dataset: rows are items)."
    ).tag(sync=True)
    labels = traitlets.List(
        traitlets.Unicode(), help="Grid layout: the column headers (variant labels), in order."
    ).tag(sync=True)
    scores = traitlets.Dict(
        {}, help="Grid layout: accuracy per variant label (0..1), shown under the headers."
    ).tag(sync=True)
    progress = traitlets.Dict(
        {}, help="Dataset progress: {'done': n, 'total': m}; empty when not a dataset run."
    ).tag(sync=True)
    stop_requested = traitlets.Bool(
        False, help="Set by the Stop button; generation ends within a token."
    ).tag(sync=True)
    images = traitlets.List(
        traitlets.Dict(),
        help=(
            "The prompt's images, shown as thumbnails above the columns: name, src (a small "
            "JPEG data URL, never the full image), width and height of the original, region."
        ),
    ).tag(sync=True)
    can_rerun = traitlets.Bool(
        False, help="Whether the user may draw a region on a thumbnail and re-run with it."
    ).tag(sync=True)
    region_request = traitlets.Dict(
        {},
        help=(
            "Set by the browser to re-run with a drawn region: {'image': index, 'box': [x1, y1, "
            "x2, y2] in pixels of the original image, 'mode': 'box' or 'crop'}."
        ),
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_stop: list = []
        self._on_region: list = []
        self._stop_fired = False
        self._watch_stop_while_busy()

    def _watch_stop_while_busy(self) -> None:
        """See a Stop click even while the cell that generates keeps the kernel busy.

        ipykernel 7 routes each incoming comm message on its shell-channel thread, asking the
        comm where to send it (``_reply_subshell_for``). Peeking there lets the Stop request
        set the (thread-safe) stop signal at once; the message itself is delivered as usual.
        On kernels without that hook, :mod:`lmwidgets.notebook.ui_events` processes the click instead.
        """
        comm = getattr(self, "comm", None)
        if comm is None:
            return
        original = getattr(comm, "_reply_subshell_for", None)

        def route(data, default):
            try:
                state = data.get("state") if isinstance(data, dict) else None
                if isinstance(state, dict) and state.get("stop_requested") is True:
                    self._fire_stop()
            except Exception:  # never break message routing
                pass
            return original(data, default) if original is not None else default

        comm._reply_subshell_for = route

    def _fire_stop(self) -> None:
        if self._stop_fired:
            return
        self._stop_fired = True
        for callback in list(self._on_stop):
            callback()

    def __repr__(self) -> str:
        return (
            f"lmwidgets live view ({len(self.columns)} column(s), {self.status}); "
            "the results follow as a static copy"
        )

    def on_stop(self, callback) -> None:
        """Call ``callback()`` when the user clicks Stop."""
        self._on_stop.append(callback)

    def on_region(self, callback) -> None:
        """Call ``callback(request)`` when the user draws a region and clicks Re-run."""
        self._on_region.append(callback)
        self.can_rerun = True

    def reset_stop(self) -> None:
        """Arm the Stop button again for a new run in this view."""
        self._stop_fired = False
        self._on_stop.clear()
        self.stop_requested = False

    @traitlets.observe("region_request")
    def _region_changed(self, change: dict) -> None:
        request = change["new"]
        if not request:
            return
        for callback in list(self._on_region):
            callback(dict(request))

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
        status: str = "running",
        stats: str = "",
        note: str = "",
        row: int = 0,
        col: int = 0,
        row_label: str = "",
        boxes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A column dict with its text bounded to :data:`WIDGET_TEXT_LIMIT` characters."""
        shown, cut = truncate(clean(text), WIDGET_TEXT_LIMIT)
        note = shorten(note, SHORT_LIMIT)
        if cut:
            note = (
                note + " " if note else ""
            ) + f"{cut:,} more characters not shown (see Result.text)."
        return {
            "label": shorten(label, LABEL_LIMIT),
            "text": shown,
            "answer": None if answer is None else shorten(answer, SHORT_LIMIT),
            "status": status,
            "stats": stats,
            "note": note,
            "row": row,
            "col": col,
            "row_label": shorten(row_label, SHORT_LIMIT),
            "boxes": [
                {
                    "label": shorten(box["label"], LABEL_LIMIT),
                    **{k: float(box[k]) for k in ("x1", "y1", "x2", "y2")},
                    "image": int(box.get("image", 0)),
                }
                for box in (boxes or [])[:MAX_BOXES]
            ],
        }
