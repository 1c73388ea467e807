"""``--probe inject-image``: the injected instruction drawn as text into a copy of the prompt's
image, in one of three styles: ``plain`` (large, dark on a light band across the middle),
``small`` (a small line at the bottom) and ``faint`` (low contrast, barely darker than the
image). Drawing is deterministic (PIL's built-in font), so a rerun draws the same pixels."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Any

from lmwidgets.media.images import ImageInput, pixel_sha256

#: Characters per line of drawn text, per style.
_WIDTHS = {"plain": 28, "small": 60, "faint": 28}


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed size
        return ImageFont.load_default()


def draw_text(image: Any, text: str, style: str) -> Any:
    """A copy of ``image`` (RGB) with ``text`` drawn in ``style``."""
    from PIL import ImageDraw

    copy = image.convert("RGB").copy()
    width, height = copy.size
    size = max(8, height // 40) if style == "small" else max(12, min(width, height) // 14)
    lines = textwrap.wrap(text, _WIDTHS.get(style, 28)) or [text]
    font = _font(size)
    draw = ImageDraw.Draw(copy)
    line_height = int(size * 1.25)
    top = (
        height - line_height * len(lines) - 4
        if style == "small"
        else (height - line_height * len(lines)) // 2
    )
    if style == "plain":
        draw.rectangle(
            [0, top - 4, width, top + line_height * len(lines) + 4], fill=(255, 255, 255)
        )
    for number, line in enumerate(lines):
        y = top + number * line_height
        if style == "faint":
            base = copy.getpixel((min(width - 1, 4), min(height - 1, max(0, y))))
            fill = tuple(max(0, c - 24) for c in base)
        else:
            fill = (0, 0, 0)
        draw.text((4, y), line, fill=fill, font=font)
    return copy


def draw_instruction(item: Any, text: str, style: str) -> ImageInput:
    """The prompt image ``item`` with ``text`` drawn in: a new image input named after it."""
    drawn = draw_text(item.image, text, style)
    return replace(
        item,
        image=drawn,
        name=f"{item.name} (attack drawn in: {style})",
        source="probe",
        sha256=pixel_sha256(drawn),
        bytes_sha256=None,
        _thumbnail=None,
    )
