"""Token probabilities in the static copy: each generated token shaded by how sure the model was.

The static copy has no script, so the token view is plain markup: a ``<span>`` per token whose
background is the theme's warning colour mixed with transparency (more colour, less probable),
and whose ``title`` says the probability and the top alternatives (the only hover text that
needs no script). A legend above the table says what the shades mean.

Everything from ``Result.tokens_detail`` is untrusted (a token can be ``<script>``, a record can
be edited): token and alternative texts are escaped (quotes too, for the ``title``); ids are never
shown; probabilities are only used as numbers this module formats itself, so a ``logprob`` that is
a string, NaN or infinite is *unknown* and its token is left unshaded. Output is bounded: at most
:data:`MAX_SHADED_TOKENS` spans per cell and :data:`MAX_ALTERNATIVES` alternatives per title.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmwidgets.core.answers import SHORT_ANSWER_CHARS, is_part
from lmwidgets.core.safe_text import clean, escape_html
from lmwidgets.sharing.static_style import BORDER, FG, FG_MUTED, WARN

if TYPE_CHECKING:
    from lmwidgets.core.results import Result

#: A cell shades at most this many tokens (the rest of its text is plain, with a note): each span
#: costs ~150 bytes of style and title, and saved notebooks should stay small.
MAX_SHADED_TOKENS = 1_000
#: A token's title names at most this many alternatives, each cut to :data:`ALTERNATIVE_CHARS`.
MAX_ALTERNATIVES = 5
ALTERNATIVE_CHARS = 24

#: (lowest probability of the bucket, percent of the warning colour in its background).
#: The strongest mix keeps the theme's text at >= 4.5 contrast in JupyterLab Light and Dark
#: (checked in a browser by tests/sharing/test_static_tokens.py).
BUCKETS = ((0.9, 0), (0.7, 12), (0.5, 20), (0.3, 28), (0.1, 36), (0.0, 44))
#: Bidirectional controls: a token holding one (U+202E) is isolated so that it cannot reverse
#: the tokens after it (the rest of the column would read backwards).
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ISOLATE = "unicode-bidi:isolate"


@dataclass(frozen=True)
class Token:
    """One generated token as the static copy needs it (``p`` None: unknown, left unshaded)."""

    text: str
    p: float | None
    alternatives: tuple[tuple[str, float], ...] = ()
    #: A structured-answer constraint allowed only this token (its title says so).
    forced: bool = False


def probability(logprob: object) -> float | None:
    """``exp(logprob)`` in [0, 1] for a real, finite number; None for anything else.

    Records can be edited and engines can misbehave: a string (``"0.5;color:red"``), a bool,
    NaN or an infinity must never reach a style, so only numbers this function makes do."""
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float)):
        return None
    value = float(logprob)
    if not math.isfinite(value):
        return None
    return min(1.0, max(0.0, math.exp(min(value, 0.0))))


def _alternatives(entry: dict[str, Any], text: str) -> tuple[tuple[str, float], ...]:
    """The top alternatives other than the chosen token, most probable first (known p only)."""
    top = entry.get("top")
    if not isinstance(top, list):
        return ()
    found: dict[str, float] = {}
    for item in top[: 4 * MAX_ALTERNATIVES]:  # bounded work on an oversized list
        if not isinstance(item, dict):
            continue
        alt_text, p = clean(item.get("text", "")), probability(item.get("logprob"))
        if p is not None and alt_text != text and p > found.get(alt_text, -1.0):
            found[alt_text] = p
    ranked = sorted(found.items(), key=lambda pair: -pair[1])
    return tuple(ranked[:MAX_ALTERNATIVES])


def read_token(entry: object) -> Token | None:
    """A ``tokens_detail`` entry as a :class:`Token`; None when it is not a token at all."""
    if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
        return None
    text = clean(entry["text"])
    forced = entry.get("forced") is True
    return Token(text, probability(entry.get("logprob")), _alternatives(entry, text), forced)


def visible(text: str, limit: int = ALTERNATIVE_CHARS) -> str:
    """``text`` for a tooltip: control, format and bidi characters (NUL, U+202E, newlines) as
    ``\\n`` / ``\\u202e`` escapes, so a token cannot reorder or hide the title; cut to ``limit``."""
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    shown = "".join(
        named.get(c, f"\\u{ord(c):04x}")
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
        else c
        for c in text[: limit + 1]
    )
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def format_p(p: float) -> str:
    """``0.42``; ``<0.01`` rather than a misleading ``0.00``."""
    return "<0.01" if p < 0.005 else f"{p:.2f}"


def title_text(token: Token) -> str:
    """``p=0.42 · alternatives: “a” 0.31, “b” 0.12`` (``p=0.42 · forced by the constraint`` for a
    token the constraint forced); plain text, the caller escapes it."""
    head = "p unknown" if token.p is None else f"p={format_p(token.p)}"
    if token.forced:
        head += " · forced by the constraint"
    if not token.alternatives:
        return head
    alts = ", ".join(f"“{visible(text)}” {format_p(p)}" for text, p in token.alternatives)
    return f"{head} · alternatives: {alts}"


def shade_percent(p: float) -> int:
    """How much of the warning colour a token of probability ``p`` gets (0: none)."""
    return next(percent for lowest, percent in BUCKETS if p >= lowest)


def shade_style(percent: int) -> str:
    """The inline background of a bucket: the theme's warning colour, mostly transparent, so
    the cell's text colour (the theme's, inherited: no bytes spent per token) reads on it in
    light and dark themes."""
    if not percent:
        return ""
    return f"background:color-mix(in srgb,{WARN} {percent}%,transparent)"


def token_span(token: Token) -> str:
    """One token: escaped text in a span with its shade and its title (quote-safe); a token of
    unknown probability is plain text, and one that covers no text (stripped) is left out."""
    isolate = bool(BIDI.search(token.text))
    if not token.text or (token.p is None and not isolate):
        return escape_html(token.text)
    percent = 0 if token.p is None else shade_percent(token.p)
    rules = [rule for rule in (shade_style(percent), ISOLATE if isolate else "") if rule]
    style = f' style="{";".join(rules)}"' if rules else ""
    title = escape_html(title_text(token))
    return f'<span class="lmw-token" title="{title}"{style}>{escape_html(token.text)}</span>'


def _match(text: str, pos: int, token: Token) -> int | None:
    """Where ``token`` ends in ``text`` from ``pos`` (None: it does not continue the text).

    ``Result.text`` may have lost leading whitespace, so at the start a whitespace-only token
    matches nothing (0 characters) and a token's leading whitespace may be missing."""
    if text.startswith(token.text, pos):
        return pos + len(token.text)
    if pos == 0:
        stripped = token.text.lstrip()
        if not stripped or text.startswith(stripped):
            return len(stripped)
    return None


def align(text: str, details: list[Any]) -> tuple[list[Token], int]:
    """(tokens as the pieces of ``text`` they cover, where the covered text ends).

    Tokens are laid over ``text`` from its start; the first one that does not continue it (a
    stop string trimmed, a text cut for the copy, an edited record) ends the shading, and the
    rest of the text is shown plain. At most :data:`MAX_SHADED_TOKENS` tokens are laid."""
    pieces: list[Token] = []
    pos = 0
    for entry in details[:MAX_SHADED_TOKENS]:
        token = read_token(entry)
        end = None if token is None else _match(text, pos, token)
        if token is None or end is None:
            break
        pieces.append(Token(text[pos:end], token.p, token.alternatives, token.forced))
        pos = end
    return pieces, pos


def tokens_html(text: str, details: list[Any]) -> tuple[str, str]:
    """(the inside of the cell's ``<pre>``: token spans then plain text, a note or '').

    The note says why shading stopped early (the token limit, or tokens that do not match).
    Text and tokens are compared cleaned (a lone surrogate is U+FFFD in both, as shown)."""
    text = clean(text)
    pieces, end = align(text, details)
    body = "".join(token_span(token) for token in pieces) + escape_html(text[end:])
    note = ""
    if len(details) > MAX_SHADED_TOKENS and len(pieces) == MAX_SHADED_TOKENS:
        note = f"Token shading stops after {MAX_SHADED_TOKENS:,} tokens; the rest is plain text."
    elif end < len(text) and len(pieces) < min(len(details), MAX_SHADED_TOKENS):
        note = "Token shading stops where the tokens no longer match the text."
    return body, note


def has_tokens(result: Result) -> bool:
    """Whether ``result`` carries token probabilities to shade."""
    details = getattr(result, "tokens_detail", None)
    return isinstance(details, list) and bool(details)


def legend_html() -> str:
    """``token probability: ≥0.9 ≥0.7 … <0.1`` with a swatch of each shade (hover: alternatives)."""
    swatches = []
    for index, (lowest, percent) in enumerate(BUCKETS):
        label = f"<{BUCKETS[index - 1][0]:g}" if lowest == 0.0 else f"≥{lowest:g}"
        background = shade_style(percent) or "background:transparent"
        swatches.append(
            f'<span class="lmw-swatch" style="{background};color:{FG};padding:0 4px;'
            f'margin-right:2px;border:1px solid {BORDER};border-radius:2px;font-family:monospace">'
            f"{escape_html(label)}</span>"
        )
    return (
        f'<div class="lmw-legend" style="color:{FG_MUTED};font-size:11px;margin-bottom:4px">'
        f"token probability: {''.join(swatches)} "
        "· hover a token for its probability and alternatives</div>"
    )


def confidence_text(result: Result) -> str:
    """How an answer's confidence reads beside it, the same live and in the static copy:
    ``'vote 3/5'`` (self-consistency: the winner's votes of its samples), or ``'p=0.82'`` /
    ``'p<0.01'`` (the probability of the answer's tokens) for a short answer only: one that is
    a part of the text (:func:`~lmwidgets.core.answers.is_part`) of at most
    :data:`~lmwidgets.core.answers.SHORT_ANSWER_CHARS` characters. The probability of a longer
    answer is a product of many token probabilities: it shrinks with the length and says
    little to a reader. '' when unknown, not shown, or there is no answer."""
    if result.answer is None:
        return ""
    extras = result.extras if isinstance(result.extras, dict) else {}
    votes, samples = extras.get("votes"), extras.get("samples")
    if isinstance(votes, dict) and isinstance(samples, list) and samples:
        counts = [v for v in votes.values() if isinstance(v, int) and not isinstance(v, bool)]
        return f"vote {max(counts, default=0)}/{len(samples)}"
    p = getattr(result, "confidence", None)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p):
        return ""
    if len(str(result.answer).strip()) > SHORT_ANSWER_CHARS or not is_part(
        result.answer, result.text
    ):
        return ""
    shown = format_p(min(1.0, max(0.0, float(p))))
    return f"p{shown}" if shown.startswith("<") else f"p={shown}"
