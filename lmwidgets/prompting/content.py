"""Where media goes in a prompt: content lists and ``{img}`` placeholders.

A model that takes images receives each user turn as a *content list* (``{"type": "image"}`` and
``{"type": "text", "text": ...}`` parts, the shape chat templates and OpenAI-style servers share).
``--image X`` puts the images before the question; ``{img}`` placeholders in the prompt put each
image (in ``--image`` order) where it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmwidgets.engines.base import Message
from lmwidgets.errors import ImageError

#: Marks where an image goes in the prompt text.
PLACEHOLDER = "{img}"
#: What ``{img}`` becomes before ``{name}`` interpolation, so a variable called ``img`` cannot
#: replace it.
SENTINEL = "\x00lmw-image\x00"


def protect_placeholders(text: str) -> str:
    """Replace ``{img}`` with :data:`SENTINEL` (before ``{name}`` interpolation)."""
    return text.replace(PLACEHOLDER, SENTINEL)


def restore_placeholders(text: str) -> str:
    """Turn :data:`SENTINEL` back into ``{img}`` (for titles and records)."""
    return text.replace(SENTINEL, PLACEHOLDER)


def placeholder_count(text: str) -> int:
    """How many images the (protected) prompt text places itself."""
    return text.count(SENTINEL)


def check_placeholders(text: str, n_images: int) -> None:
    """With ``{img}`` placeholders, there must be exactly one image per placeholder."""
    count = placeholder_count(text)
    if count and count != n_images:
        raise ImageError(
            f"The prompt has {count} {{img}} placeholder(s) but {n_images} image(s) were given "
            "with --image: give one image per placeholder (in order), or drop the placeholders "
            "to put the images before the text."
        )


def content_parts(text: str, kinds: Sequence[str] | int) -> list[dict[str, Any]]:
    """The parts of one user turn: media (one part per kind, e.g. ``{"type": "image"}``) at the
    ``{img}`` placeholders, or all media first. An int means that many images."""
    kinds = ["image"] * kinds if isinstance(kinds, int) else list(kinds)
    if not kinds:
        return [{"type": "text", "text": text.replace(SENTINEL, "")}]
    if SENTINEL not in text:
        return [*({"type": kind} for kind in kinds), {"type": "text", "text": text}]
    parts: list[dict[str, Any]] = []
    pieces = text.split(SENTINEL)
    media = iter(kinds)
    for index, piece in enumerate(pieces):
        if piece:
            parts.append({"type": "text", "text": piece})
        if index < len(pieces) - 1:
            parts.append({"type": next(media, "image")})
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
