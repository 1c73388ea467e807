"""Untrusted text (prompts, model output, names) made safe to show and to store.

Model output is attacker-influenced. Everything lmwidgets shows goes through these helpers:
HTML is escaped (never interpreted), markdown puts text in code fences, and everything is bounded.
"""

from __future__ import annotations

import html
import re

#: Static output keeps at most this many characters of one text (a note says what was cut).
STATIC_TEXT_LIMIT = 20_000
#: Static output keeps at most this many characters of a column's prompt (shown collapsed).
STATIC_PROMPT_LIMIT = 4_000
#: The live widget keeps at most this many characters of one column.
WIDGET_TEXT_LIMIT = 50_000
#: Labels (column names) and short fields (answers, notes) are cut to these lengths.
LABEL_LIMIT = 300
SHORT_LIMIT = 2_000


def shorten(text: object, limit: int) -> str:
    """``text`` cleaned and cut to ``limit`` characters, with an ellipsis when cut."""
    value = clean(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def clean(text: object) -> str:
    """``text`` as a str that is valid UTF-8 (lone surrogates become U+FFFD)."""
    value = text if isinstance(text, str) else str(text)
    return value.encode("utf-8", "replace").decode("utf-8")


def escape_html(text: object) -> str:
    """Escape ``&``, ``<``, ``>``, ``"`` and ``'``: the result never contains a tag or attribute."""
    return html.escape(clean(text), quote=True)


def truncate(text: str, limit: int) -> tuple[str, int]:
    """(at most ``limit`` characters of ``text``, how many were cut)."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def code_fence(text: str) -> str:
    """``text`` in a markdown code fence longer than any backtick run inside it (never HTML)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def markdown_inline(text: str) -> str:
    """Short untrusted text (a label) for inline markdown: HTML-escaped, markdown specials escaped."""
    escaped = escape_html(text).replace("\n", " ")
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", escaped)
