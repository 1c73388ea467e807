"""Where media goes in a prompt: content lists and placeholders (``{img}``, one per kind).

A model that takes media receives each user turn as a *content list* (``{"type": "image"}`` and
``{"type": "text", "text": ...}`` parts, the shape chat templates and OpenAI-style servers share;
a part's type is its media kind). ``--image X`` puts the items before the question; a kind's
placeholder (:attr:`~lmwidgets.media.base.MediaKind.marker`: ``{img}`` for images) puts each of
its items (in option order) where it is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from lmwidgets.engines.base import Message
from lmwidgets.media.base import all_kinds, error_of

#: Marks where an image goes in the prompt text.
PLACEHOLDER = "{img}"


def sentinel(kind: str) -> str:
    """What a kind's placeholder becomes before ``{name}`` interpolation, so that a variable
    called ``img`` cannot replace it."""
    return f"\x00lmw-{kind}\x00"


#: The image placeholder's sentinel.
SENTINEL = sentinel("image")


def protect_placeholders(text: str) -> str:
    """Replace every kind's placeholder with its sentinel (before ``{name}`` interpolation)."""
    for kind in all_kinds():
        text = text.replace(kind.marker, sentinel(kind.name))
    return text


def restore_placeholders(text: str) -> str:
    """Turn the sentinels back into placeholders (for titles and records)."""
    for kind in all_kinds():
        text = text.replace(sentinel(kind.name), kind.marker)
    return text


def placeholder_count(text: str, kind: str = "image") -> int:
    """How many ``kind`` items the (protected) prompt text places itself."""
    return text.count(sentinel(kind))


def check_placeholders(text: str, kinds: Sequence[str] | int) -> None:
    """With a kind's placeholders, there must be exactly one of its items per placeholder
    (``kinds``: the prompt's media kinds in order; an int means that many images)."""
    given = Counter(["image"] * kinds if isinstance(kinds, int) else kinds)
    for kind in all_kinds():
        count = placeholder_count(text, kind.name)
        if count and count != given[kind.name]:
            raise error_of(kind.name)(
                f"The prompt has {count} {kind.marker} placeholder(s) but {given[kind.name]} "
                f"{kind.name}(s) were given with {kind.flag}: give one per placeholder (in "
                "order), or drop the placeholders to put them before the text."
            )


def _split(text: str) -> list[tuple[str, str | None]]:
    """``text`` as (piece, kind placed after it or None) pairs."""
    marks = {sentinel(kind.name): kind.name for kind in all_kinds()}
    out: list[tuple[str, str | None]] = []
    rest = text
    while True:
        found = [(rest.find(mark), mark) for mark in marks if mark in rest]
        if not found:
            out.append((rest, None))
            return out
        index, mark = min(found)
        out.append((rest[:index], marks[mark]))
        rest = rest[index + len(mark) :]


def content_parts(text: str, kinds: Sequence[str] | int) -> list[dict[str, Any]]:
    """The parts of one user turn: media (one part per item, ``{"type": kind}``) at their
    kind's placeholders, and the items of kinds without placeholders first. An int means that
    many images."""
    kinds = ["image"] * kinds if isinstance(kinds, int) else list(kinds)
    pieces = _split(text)
    if not kinds:
        return [{"type": "text", "text": "".join(piece for piece, _ in pieces)}]
    placed = {kind for _, kind in pieces if kind is not None}
    parts: list[dict[str, Any]] = [{"type": kind} for kind in kinds if kind not in placed]
    for piece, kind in pieces:
        if piece:
            parts.append({"type": "text", "text": piece})
        if kind is not None:
            parts.append({"type": kind})
    return parts


def with_media(messages: list[Message], kinds: Sequence[str]) -> list[Message]:
    """Every turn as a content list; the media (by kind, in order) go into the last user turn."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    converted = []
    for index, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):
            content = content_parts(content, kinds if index == last_user else [])
        converted.append({**message, "content": content})
    return converted
