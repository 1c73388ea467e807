"""The live view of a run: the streaming widget plus its static copy for kernel-less viewers.

Each run shows two outputs: the :class:`~lmwidgets.notebook.widgets.PromptView` widget, and right after it
a static output (escaped HTML, markdown, text and the run records) that is filled in when the run
ends. JupyterLab hides the static copy while the live widget is rendered (CSS in the widget); a
notebook opened without a kernel, nbconvert and GitHub show the static copy.

While generating, :meth:`LiveView.update_running` sends the widget only the columns whose text,
status or stats changed (:meth:`PromptView.stream_columns`: one custom message per push, a
grown text as its new part). The widget's ``columns`` trait gets a full copy at the start and
the end of a run; how views rendered in between (a second view, a reload while the kernel is
alive) still show the latest state is described in :class:`PromptView`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmwidgets.run.records import RECORD_MIME, bundle_payload
from lmwidgets.run.runner import image_data
from lmwidgets.sharing.safe_text import escape_html

if TYPE_CHECKING:
    from lmwidgets.engines.base import StopSignal
    from lmwidgets.notebook.widgets.prompt_view import RegionHandler
    from lmwidgets.run.results import Comparison, Result
    from lmwidgets.run.runner import Variant, _Stream

#: The live grid shows at most this many dataset items (all of them are in the Comparison).
MAX_GRID_ROWS = 100


def placeholder_bundle(title: str) -> dict[str, Any]:
    """The static output shown until the run finishes."""
    return {
        "text/plain": f"lmwidgets: running… {title}",
        "text/html": (
            '<div class="lmw-static" style="color:#666;font-size:12px">'
            f"lmwidgets: running… {escape_html(title)}</div>"
        ),
        RECORD_MIME: bundle_payload([]),
    }


def _tokens(output: Any) -> int:
    count = getattr(output, "n_tokens", None)
    return count if isinstance(count, int) else len(output.token_ids)


class LiveView:
    """Shows a run live in a notebook and leaves a static copy behind.

    The runner calls :meth:`start`, then :meth:`progress` and :meth:`update_running` (throttled)
    while generating, and :meth:`finish`; :meth:`restart` re-runs in the same view (a region
    drawn on a thumbnail, enabled by :meth:`enable_rerun`).
    """

    def __init__(
        self, variants: list[Variant], title: str, *, show: bool = True, grid: bool = False
    ) -> None:
        from lmwidgets.notebook.widgets import PromptView

        self.show = show
        self.title = title
        self.grid = grid
        self.variants = list(variants)
        labels = list(dict.fromkeys(v.label for v in variants))
        rows = list(dict.fromkeys(v.input for v in variants))
        col_of = {label: i for i, label in enumerate(labels)}
        row_of = {item: i for i, item in enumerate(rows)}
        self.positions = [(row_of[v.input], col_of[v.label]) for v in variants]
        self.shown = [i for i, (row, _) in enumerate(self.positions) if row < MAX_GRID_ROWS]
        self.hidden_rows = max(0, len(rows) - MAX_GRID_ROWS)
        self.widget = PromptView(
            title=title,
            layout="grid" if grid else "columns",
            labels=labels,
            columns=self._initial_cells(),
            status="running",
            images=image_data(variants),
        )
        self.static_handle = None
        self.displayed = False

    def _cell(self, index: int, **kwargs: Any) -> dict[str, Any]:
        from lmwidgets.notebook.widgets import PromptView

        variant = self.variants[index]
        row, col = self.positions[index]
        return PromptView.column(
            variant.label, row=row, col=col, row_label=variant.input or "", **kwargs
        )

    def _initial_cells(self) -> list[dict[str, Any]]:
        return [self._cell(i, status="waiting" if self.grid else "running") for i in self.shown]

    def start(self, stream: _Stream, stop: StopSignal, notes: list[str]) -> None:
        """Display the widget and the static placeholder (once); wire the Stop button."""
        self.widget.reset_stop()
        self.widget.on_stop(lambda: stop.set("stopped by user"))
        self.widget.message = "\n".join(self._notes(notes))
        if self.show and not self.displayed:
            from IPython.display import display

            self.displayed = True
            display(self.widget)
            self.static_handle = display(placeholder_bundle(self.title), raw=True, display_id=True)

    def restart(self, variants: list[Variant]) -> None:
        """Run again in the same view (a re-run with a drawn region): same columns, new text."""
        self.variants = list(variants)
        self.widget.status = "running"
        self.widget.progress = {}
        self.widget.images = image_data(variants)
        self.widget.set_columns(self._initial_cells())

    def enable_rerun(self, callback: RegionHandler) -> None:
        """Let the user draw a region on a thumbnail and re-run: ``callback(request)``."""
        self.widget.on_region(callback)

    def _notes(self, notes: list[str]) -> list[str]:
        extra = []
        if self.hidden_rows:
            extra.append(
                f"The live grid shows the first {MAX_GRID_ROWS} items; {self.hidden_rows} more "
                "are in the results (Comparison.to_pandas())."
            )
        return [*notes, *extra]

    def progress(self, done: int, total: int) -> None:
        """Batches done out of ``total`` (a progress bar for runs of several batches)."""
        if total > 1 or self.grid:
            self.widget.progress = {"done": done, "total": total}

    def _running_cell(self, stream: _Stream, index: int) -> dict[str, Any]:
        outputs = stream.outputs[index]
        if not outputs:
            return self._cell(index, status="waiting" if self.grid else "running")
        running = any(o.finish_reason == "running" for o in outputs)
        tokens = sum(_tokens(o) for o in outputs)
        return self._cell(
            index,
            text=stream.live_text(index),
            status="running" if running else outputs[-1].finish_reason,
            stats=f"{tokens} tokens",
        )

    def update_running(self, stream: _Stream) -> None:
        """Send the columns whose text or status changed (the runner calls this throttled)."""
        self.widget.stream_columns([self._running_cell(stream, i) for i in self.shown])

    def _final_cell(self, index: int, result: Result) -> dict[str, Any]:
        notes = []
        if not result.complete:
            notes.append(f"incomplete: {result.finish_reason}")
        if "agreement" in result.extras:
            votes = result.extras.get("votes", {})
            top = max(votes.values(), default=0)
            notes.append(f"{top}/{len(result.extras.get('samples', []))} samples agree")
        if result.correct is not None:
            notes.append("correct" if result.correct else f"expected: {result.expected}")
        return self._cell(
            index,
            text=result.extras.get("display_text", result.text),
            answer=result.answer,
            status=result.finish_reason,
            stats=result.stats(),
            note=" · ".join(notes),
            boxes=[box.as_dict() for box in result.boxes],
        )

    def finish(self, comparison: Comparison, message: str = "") -> None:
        """Show the final texts, answers, stats and scores; fill in the static copy."""
        self.widget.set_columns([self._final_cell(i, comparison.results[i]) for i in self.shown])
        self.widget.scores = dict(comparison.scores)
        self.widget.message = "\n".join([message, *self._notes(comparison.notes)]).strip()
        self.widget.status = comparison.status
        if self.static_handle is not None:
            self.static_handle.update(comparison.mimebundle(), raw=True)
