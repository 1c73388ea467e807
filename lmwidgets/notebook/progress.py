"""A load progress bar in the notebook that leaves a one-line summary behind.

It is a plain ``text/html`` output updated in place (``update_display``), so a saved notebook
keeps only the summary and needs no widget state to show it.
"""

from __future__ import annotations

from lmwidgets.checks import Throttle
from lmwidgets.sharing.safe_text import escape_html


class LoadProgress:
    """``progress(fraction, message)`` callable that draws a progress bar in the notebook."""

    def __init__(self, label: str, *, show: bool = True, interval: float = 0.15) -> None:
        self.label = label
        self.show = show
        self.interval = interval
        self._handle = None
        self._throttle = Throttle(interval)
        self.messages: list[str] = []

    def _bundle(self, fraction: float, message: str) -> dict[str, str]:
        percent = max(0.0, min(1.0, fraction)) * 100
        return {
            "text/plain": f"Loading {self.label}: {message} ({percent:.0f}%)",
            "text/html": (
                '<div style="font-size:12px;font-family:sans-serif">'
                f"Loading <b>{escape_html(self.label)}</b> · {escape_html(message)}"
                f'<br><progress value="{percent:.0f}" max="100" style="width:320px"></progress>'
                "</div>"
            ),
        }

    def __call__(self, fraction: float, message: str) -> None:
        if not self.messages or self.messages[-1] != message:
            self.messages.append(message)
        if not self.show:
            return
        if not self._throttle.ready(force=self._handle is None or fraction >= 1):
            return
        from IPython.display import display

        bundle = self._bundle(fraction, message)
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

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
        if not self.show:
            return
        if self._handle is None:
            from IPython.display import display

            display(bundle, raw=True)
        else:
            self._handle.update(bundle, raw=True)
