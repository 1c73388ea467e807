"""What a run's progress bar says beside it: how many batches are done, and the time left at the
pace so far (the live view's bar and the judge's)."""

from __future__ import annotations


def batch_progress(done: int, total: int, seconds: float, unit: str = "batch") -> str:
    """``'3 of 10 batches · about 40 s left'``: what a run's progress bar says beside it. The
    time left is the pace so far (none before the first batch ends, nor once all have)."""
    plural = unit if total == 1 else ("batches" if unit == "batch" else f"{unit}s")
    text = f"{done} of {total} {plural}"
    if 0 < done < total and seconds > 0:
        text += f" · about {_duration(seconds / done * (total - done))} left"
    return text


def _duration(seconds: float) -> str:
    """``'40 s'``, ``'3 min'``, ``'1 h 20 min'`` (rounded up to what a reader cares about)."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"
