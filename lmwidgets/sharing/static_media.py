"""Images in the static copy: thumbnails (our own data URLs only) with boxes and regions over them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lmwidgets.core.safe_text import escape_html, shorten
from lmwidgets.sharing.static_style import BORDER, SMALL

if TYPE_CHECKING:
    from lmwidgets.core.results import Result

_DATA_URL = re.compile(r"^data:image/(jpeg|png);base64,[A-Za-z0-9+/=]+$")
#: Overlay colours are drawn on the image itself (not on the theme), with white label text.
REGION_COLOR = "#e00"
BOX_COLOR = "#b45309"


def _pct(value: float, total: float) -> str:
    return f"{100 * min(max(float(value), 0.0), total) / (total or 1):.2f}%"


def _overlay(
    image: dict, box: list[float], color: str, label: str = "", dashed: bool = False
) -> str:
    x1, y1, x2, y2 = box
    width, height = image["width"], image["height"]
    style = (
        f"position:absolute;left:{_pct(x1, width)};top:{_pct(y1, height)};"
        f"width:{_pct(x2 - x1, width)};height:{_pct(y2 - y1, height)};"
        f"border:2px {'dashed' if dashed else 'solid'} {color};box-sizing:border-box"
    )
    tag = (
        f'<span style="position:absolute;left:0;top:0;background:{color};color:#fff;'
        f'font-size:10px;line-height:1.3;padding:0 3px;white-space:nowrap">'
        f"{escape_html(shorten(label, 80))}</span>"
        if label
        else ""
    )
    return f'<div style="{style}">{tag}</div>'


def thumbnail(image: dict, overlays: str = "", max_height: int = 320) -> str:
    """A thumbnail (our own data URL only) with overlays positioned over it."""
    src = image.get("src", "")
    if not isinstance(src, str) or not _DATA_URL.match(src):
        return ""
    return (
        f'<div style="position:relative;display:inline-block;line-height:0;border:1px solid {BORDER}">'
        f'<img src="{escape_html(src)}" alt="{escape_html(shorten(image.get("name", ""), 80))}" '
        f'style="display:block;max-width:100%;max-height:{max_height}px">{overlays}</div>'
    )


def image_line(image: dict) -> str:
    """``'cat.png (64×48), region 1,2,3,4'``."""
    line = f"{image.get('name', 'image')} ({image['width']}×{image['height']})"
    if image.get("region"):
        line += f", region {','.join(str(v) for v in image['region'])}"
    return line


def gallery_html(images: list[dict]) -> str:
    """The prompt's images, each with its name, size and region."""
    figures = []
    for image in images:
        region = image.get("region")
        overlays = _overlay(image, region, REGION_COLOR, dashed=True) if region else ""
        caption = f"{image.get('name', 'image')} · {image['width']}×{image['height']}"
        if region:
            caption += f" · region {','.join(str(v) for v in region)}"
        figures.append(
            '<figure style="margin:0 8px 6px 0;display:inline-block;vertical-align:top">'
            f"{thumbnail(image, overlays)}"
            f'<figcaption style="{SMALL}">{escape_html(caption)}</figcaption>'
            "</figure>"
        )
    return f"<div>{''.join(figures)}</div>" if figures else ""


def box_lines(result: Result) -> list[str]:
    """``'cat: (10, 20) – (50, 60)'`` for each box of ``result``."""
    return [
        f"{box.label or 'box'}: ({box.x1:.0f}, {box.y1:.0f}) – ({box.x2:.0f}, {box.y2:.0f})"
        for box in result.boxes
    ]


def boxes_html(result: Result, images: list[dict]) -> str:
    """The boxes of ``result`` drawn on the images, and listed."""
    if not result.boxes:
        return ""
    parts = []
    for index, image in enumerate(images):
        mine = [b for b in result.boxes if b.image == index]
        if mine:
            overlays = "".join(
                _overlay(image, [b.x1, b.y1, b.x2, b.y2], BOX_COLOR, b.label) for b in mine
            )
            parts.append(thumbnail(image, overlays, max_height=200))
    listing = escape_html(" · ".join(box_lines(result)))
    parts.append(f'<div style="{SMALL}">{listing}</div>')
    return f'<div style="margin-bottom:4px">{"".join(parts)}</div>'
