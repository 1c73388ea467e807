"""What every run shares, generated (:mod:`lmwidgets.run.runner`) or scored
(:mod:`lmwidgets.run.choices`): how its rows are cut into batches, how the live view is told
it started, and how it ends (its status, ``finalize``, the view's finish, and what ended it
raised with the partial comparison, so that nothing already run is lost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from lmwidgets.core.results import Comparison
from lmwidgets.engines.base import StopSignal
from lmwidgets.errors import GenerationError, GenerationInterrupted, OutOfMemoryError

Row = TypeVar("Row")

OOM_MESSAGE = (
    "Out of memory during generation: the text so far is kept. Try fewer columns, "
    "a smaller --max-new-tokens, or unload other models (`%lm unload NAME`)."
)


def split_batches(groups: Iterable[Sequence[Row]], batch_size: int) -> list[list[Row]]:
    """Each group's rows (rows that may run together: the same model...), ``batch_size`` at a
    time, group after group."""
    return [
        list(rows[start : start + batch_size])
        for rows in groups
        for start in range(0, len(rows), batch_size)
    ]


def open_view(view: Any, stream: Any, stop: StopSignal, notes: list[str], total: int) -> None:
    """Show the run starting in ``view`` (None: no view): its columns, the Stop button wired
    to ``stop``, the ``notes``, and none of its ``total`` batches done."""
    if view is not None:
        view.start(stream, stop, notes)
        view.progress(0, total)


def run_status(error: BaseException | None, stop: StopSignal) -> str:
    """How a run ended: ``done``, ``stopped`` (the Stop button or a kernel interrupt) or
    ``error``."""
    if error is not None:
        return "stopped" if isinstance(error, KeyboardInterrupt) else "error"
    return "stopped" if stop.is_set() else "done"


def conclude(
    comparison: Comparison,
    error: BaseException | None,
    message: str | None,
    view: Any,
    finalize: Callable[[Comparison], None] | None,
) -> Comparison:
    """End a run: ``finalize`` its comparison (records, judging...), show it in ``view``, then
    raise what ended the run (:func:`raise_with_partial`) or return the comparison."""
    if finalize is not None:
        finalize(comparison)
    if view is not None:
        view.finish(comparison, message or "")
    raise_with_partial(error, comparison, message)
    return comparison


def raise_with_partial(
    error: BaseException | None, comparison: Comparison, message: str | None
) -> None:
    """Raise a run's ``error`` (if any) as the lmwidgets error it means, carrying the partial
    ``comparison`` so that nothing generated is lost: Stop/interrupt, a generation error (a
    server that broke off keeps its own message), out of memory, any other failure."""
    if error is None:
        return
    if isinstance(error, KeyboardInterrupt):
        raise GenerationInterrupted(partial=comparison) from error
    if isinstance(error, GenerationError):
        error.partial = comparison
        raise error
    if _out_of_memory(error):
        raise OutOfMemoryError(OOM_MESSAGE, partial=comparison) from error
    raise GenerationError(message or "", partial=comparison) from error


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is running out of memory (host or device), not another failure."""
    return isinstance(error, MemoryError) or (
        type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower()
    )


def error_message(error: BaseException | None) -> str | None:
    """What a failed run says in the view and on its failed columns."""
    if error is None or isinstance(error, KeyboardInterrupt):
        return None
    if isinstance(error, GenerationError):
        return str(error) + " Finished columns and the text so far are kept."
    if _out_of_memory(error):
        return OOM_MESSAGE
    return (
        f"Generation failed: {type(error).__name__}: {str(error)[:300]}. Finished columns and "
        "the text so far are kept."
    )
