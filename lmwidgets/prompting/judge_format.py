"""The judge's verdict format, enforced while decoding.

A small judge rarely ends its reply with a verdict the parser can read. When the judge's engine
can enforce a structured answer (a kernel transformers model through llguidance, a vLLM server
through its structured outputs), the judge's reply is held to one short reasoning line, then
the verdict line the prompt asks for: ``Score: N`` (1-5), ``Verdict: PASS``/``FAIL`` or
``[[A]]``/``[[B]]``/``[[tie]]``. Every enforced reply then holds a readable verdict by
construction (it says nothing about the verdict's quality). An engine that cannot enforce it
(the scripted engine, a non-vLLM server), or ``judge_free=True`` (``--judge-free``), leaves the
reply free, read by the robust parser; the record says which (``enforced``, ``free``).

The reasoning line is printable ASCII, at most ``tokens - VERDICT_TOKENS`` characters (and
:data:`MAX_REASONING_CHARS`): every token is at least one byte, so the whole reply fits the
judge's token budget and is never cut off before its verdict.
"""

from __future__ import annotations

from typing import Any

from lmwidgets.core.constraints import Constraint
from lmwidgets.errors import LmWidgetsError

#: The verdict lines, as regular expressions (Rust syntax, what llguidance and vLLM compile).
VERDICTS = {
    "1-5": r"Score: [1-5]",
    "pass/fail": r"Verdict: (PASS|FAIL)",
    "pairwise": r"\[\[(A|B|tie)\]\]",
}
#: Most characters of the enforced reasoning line.
MAX_REASONING_CHARS = 300
#: Tokens kept for the newline and the verdict line (each at most 14 bytes).
VERDICT_TOKENS = 16
#: ``free`` in the record when the user asked for free text.
ASKED_FREE = "asked (--judge-free)"


def verdict_constraint(scale: str, pairwise: bool, tokens: int) -> Constraint:
    """The regex a judge reply follows: an optional reasoning line (printable ASCII, bounded
    so the verdict fits in ``tokens``), then the verdict line of ``scale`` (or pairwise)."""
    verdict = VERDICTS["pairwise" if pairwise else scale]
    chars = min(MAX_REASONING_CHARS, tokens - VERDICT_TOKENS)
    if chars < 1:
        return Constraint("regex", verdict)
    return Constraint("regex", f"([ -~]{{1,{chars}}}\\n)?{verdict}")


def enforcement(engine: Any, constraint: Constraint) -> str | None:
    """Why ``engine`` cannot enforce ``constraint`` (None: it can; compiles it once)."""
    check = getattr(engine, "check_constraint", None)
    if check is None:
        kind = getattr(engine, "engine", type(engine).__name__)
        return f"the {kind} engine of {engine.name} cannot enforce a format while decoding"
    try:
        check(constraint)
    except LmWidgetsError as exc:
        return str(exc)[:200]
    return None


def verdict_part(reply: str, enforced: bool) -> str:
    """The part of a reply the verdict is read from: an enforced reply's last line (its
    reasoning line cannot then outvote it), a free reply whole."""
    if not enforced:
        return reply
    lines = reply.strip().splitlines()
    return lines[-1] if lines else reply
