"""An image's static preview: its thumbnail (our own data URLs only) with the region and the
answer's boxes drawn over it, in escaped HTML that needs no script (the static copy)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lmwidgets.core.safe_text import escape_html, shorten

_DATA_URL = re.compile(r"^data:image/(jpeg|png);base64,[A-Za-z0-9+/=]+$")
#: Overlay colours are drawn on the image itself (not on the theme), with white label text.
REGION_COLOR = "#e00"
BOX_COLOR = "#b45309"
_BORDER = "var(--jp-border-color2,#ddd)"
_SMALL = "color:var(--jp-ui-font-color2,#666);font-size:11px"


def _pct(value: float, total: float) -> str:
    return f"{100 * min(max(float(value), 0.0), total) / (total or 1):.2f}%"


def overlay(
    image: Mapping[str, Any],
    box: Sequence[float],
    color: str,
    label: str = "",
    dashed: bool = False,
) -> str:
    """A rectangle over a thumbnail, placed in percent of the original image's size."""
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


def thumbnail(image: Mapping[str, Any], overlays: str = "", max_height: int = 320) -> str:
    """A thumbnail (our own data URL only) with overlays positioned over it."""
    src = image.get("src", "")
    if not isinstance(src, str) or not _DATA_URL.match(src):
        return ""
    return (
        f'<div style="position:relative;display:inline-block;line-height:0;border:1px solid {_BORDER}">'
        f'<img src="{escape_html(src)}" alt="{escape_html(shorten(image.get("name", ""), 80))}" '
        f'style="display:block;max-width:100%;max-height:{max_height}px">{overlays}</div>'
    )


def figure_html(image: Mapping[str, Any], max_height: int = 320) -> str:
    """The image with its name, size and region (dashed) as a captioned figure (``max_height``
    in the preview bounds it, e.g. in a dataset row)."""
    max_height = int(image.get("max_height", max_height))
    region = image.get("region")
    overlays = overlay(image, region, REGION_COLOR, dashed=True) if region else ""
    caption = f"{image.get('name', 'image')} · {image.get('width')}×{image.get('height')}"
    if region:
        caption += f" · region {','.join(str(v) for v in region)}"
    return (
        '<figure style="margin:0 8px 6px 0;display:inline-block;vertical-align:top">'
        f"{thumbnail(image, overlays, max_height)}"
        f'<figcaption style="{_SMALL}">{escape_html(caption)}</figcaption>'
        "</figure>"
    )


def boxes_html(boxes: Sequence[Any], images: Sequence[Mapping[str, Any]]) -> str:
    """``boxes`` drawn on the images they refer to (their ``image`` index)."""
    parts = []
    for index, image in enumerate(images):
        mine = [b for b in boxes if b.image == index]
        if mine:
            marks = "".join(
                overlay(image, [b.x1, b.y1, b.x2, b.y2], BOX_COLOR, b.label) for b in mine
            )
            parts.append(thumbnail(image, marks, max_height=200))
    return "".join(parts)
