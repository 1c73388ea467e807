"""A load progress bar in the notebook that leaves a one-line summary behind.

It is a plain ``text/html`` output updated in place (``update_display``), so a saved notebook
keeps only the summary and needs no widget state to show it.

Loading reports ``progress(fraction, message)`` where ``message`` names the current step. A step
that has only just started (its first report) cannot say how long it will take, so until it
reports further progress of its own the bar is indeterminate: an HTML ``<progress>`` without a
value, which the browser animates while the kernel is busy reading a tokenizer or a GGUF file.
A step with a progress bar of its own (de-quantizing, loading weights) fills the bar as it goes.
"""

from __future__ import annotations

from lmwidgets.checks import Throttle
from lmwidgets.core.safe_text import escape_html


def load_bundle(label: str, fraction: float, message: str, moving: bool) -> dict[str, str]:
    """The progress output: the step's name, the share done, and a bar that is determinate only
    while the step reports its own progress (``moving``)."""
    percent = f"{max(0.0, min(1.0, fraction)) * 100:.0f}"
    step = message if moving else f"{message}…"
    value = f' value="{percent}"' if moving else ""  # no value: an animated, indeterminate bar
    return {
        "text/plain": f"Loading {label}: {step} ({percent}% done)",
        "text/html": (
            '<div style="font-size:12px;font-family:sans-serif">'
            f"Loading <b>{escape_html(label)}</b> · {escape_html(step)}"
            f' <span style="opacity:0.6">({percent}% done)</span>'
            f'<br><progress{value} max="100" style="width:320px"></progress>'
            "</div>"
        ),
    }


class LoadProgress:
    """``progress(fraction, message)`` callable that draws a progress bar in the notebook."""

    def __init__(self, label: str, *, show: bool = True, interval: float = 0.15) -> None:
        self.label = label
        self.show = show
        self.interval = interval
        self._handle = None
        self._throttle = Throttle(interval)
        #: Every step's name, in the order they started.
        self.messages: list[str] = []
        #: The bundles shown (after throttling), the last one on screen.
        self.shown: list[dict[str, str]] = []
        self._step_start = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        new_step = not self.messages or self.messages[-1] != message
        if new_step:
            self.messages.append(message)
            self._step_start = fraction
        moving = not new_step and fraction > self._step_start
        # A new step is always shown at once, so the bar never names a step that is over.
        if not self._throttle.ready(force=new_step or fraction >= 1):
            return
        self._show(load_bundle(self.label, fraction, message, moving))

    def done(self, summary: str) -> None:
        """Replace the bar by the model's one-line summary."""
        self._final({"text/plain": summary, "text/html": f"<code>{escape_html(summary)}</code>"})

    def failed(self, message: str) -> None:
        """Replace the bar by a failure line (the error itself is raised separately)."""
        self._final(
            {
                "text/plain": f"Loading {self.label} failed.",
                "text/html": f"Loading <b>{escape_html(self.label)}</b> failed.",
            }
        )

    def _final(self, bundle: dict[str, str]) -> None:
        self._show(bundle)

    def _show(self, bundle: dict[str, str]) -> None:
        """Show ``bundle`` in place of the bar (the first one creates the output)."""
        if not self.show:
            return
        self.shown.append(bundle)
        from IPython.display import display

        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
