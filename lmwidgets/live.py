"""The live view of a run: the streaming widget plus its static copy for kernel-less viewers.

Each run shows two outputs: the :class:`~lmwidgets.widgets.PromptView` widget, and right after it
a static output (escaped HTML, markdown, text and the run records) that is filled in when the run
ends. JupyterLab hides the static copy while the live widget is rendered (CSS in the widget); a
notebook opened without a kernel, nbconvert and GitHub show the static copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .records import RECORD_MIME, bundle_payload
from .safe_text import escape_html

if TYPE_CHECKING:
    from .results import Comparison
    from .runner import Variant, _Stream


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


class LiveView:
    """Shows a run live in a notebook and leaves a static copy behind."""

    def __init__(self, variants: list[Variant], title: str, *, show: bool = True) -> None:
        from .widgets import PromptView

        self.show = show
        self.title = title
        self.widget = PromptView(
            title=title, columns=[PromptView.column(v.label) for v in variants], status="running"
        )
        self.static_handle = None

    def start(self, stream: _Stream, stop, notes: list[str]) -> None:
        """Display the widget and the static placeholder; wire the Stop button."""
        self.widget.on_stop(lambda: stop.set("stopped by user"))
        if notes:
            self.widget.message = "\n".join(notes)
        if self.show:
            from IPython.display import display

            display(self.widget)
            self.static_handle = display(placeholder_bundle(self.title), raw=True, display_id=True)

    def update_running(self, stream: _Stream) -> None:
        """Push the current text of every column (called throttled while generating)."""
        from .widgets import PromptView

        columns = []
        for index, variant in enumerate(stream.variants):
            outputs = stream.outputs[index]
            tokens = sum(len(o.token_ids) for o in outputs)
            running = not outputs or any(not o.finished for o in outputs)
            status = "running" if running else outputs[-1].finish_reason
            columns.append(
                PromptView.column(
                    variant.label, stream.live_text(index), status=status, stats=f"{tokens} tokens"
                )
            )
        self.widget.columns = columns

    def finish(self, comparison: Comparison, message: str = "") -> None:
        """Show the final texts, answers and stats; fill in the static copy."""
        from .widgets import PromptView

        columns = []
        for result in comparison.results:
            note = "" if result.complete else f"incomplete: {result.finish_reason}"
            columns.append(
                PromptView.column(
                    result.variant,
                    result.text,
                    answer=result.answer,
                    status=result.finish_reason,
                    stats=result.stats(),
                    note=note,
                )
            )
        self.widget.columns = columns
        self.widget.message = "\n".join([message, *comparison.notes]).strip()
        self.widget.status = comparison.status
        if self.static_handle is not None:
            self.static_handle.update(comparison.mimebundle(), raw=True)
