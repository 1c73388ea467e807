"""Small shared checks: whole-number arguments, throttling, out-of-memory detection.

Each was written several times before; one copy keeps the messages and the rules alike.
"""

from __future__ import annotations

import math
import time
from typing import Any

from lmwidgets.errors import InvalidArgumentError

#: The largest integer torch's generators and tensors accept (a signed 64-bit value).
MAX_INT64 = 2**63 - 1


def shown(value: Any, limit: int = 60) -> str:
    """``value`` for an error message: (the start of) its repr, or its type when even that
    fails (a user's object with a broken ``__repr__``)."""
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def whole_number(
    value: Any, name: str, *, minimum: int = 0, maximum: int | None = MAX_INT64
) -> int:
    """``value`` as an int in ``[minimum, maximum]``, or :class:`InvalidArgumentError` naming
    ``name`` (``--max-new-tokens``, ``samples``...). Booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be a whole number, not {shown(value)}.")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise InvalidArgumentError(f"{name} must be at most {maximum:,}, not {value:,}.")
    return value


def optional_whole_number(value: Any, name: str, *, minimum: int = 0) -> int | None:
    """Like :func:`whole_number`, but None passes through (an unset option)."""
    return None if value is None else whole_number(value, name, minimum=minimum)


def finite_number(value: Any) -> bool:
    """Whether ``value`` is a real, finite int or float (not a bool, not NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Throttle:
    """Lets an action through at most once per ``interval`` seconds (``force`` always passes).

    Streaming text, progress bars and UI polling all update far more often than a person can
    see; each asks its throttle before doing the work.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = -math.inf

    def ready(self, force: bool = False) -> bool:
        """True (and the clock restarts) when the action may run now."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return False
        self._last = now
        return True


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error (torch's CUDA error, or the CPU allocator's)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )
