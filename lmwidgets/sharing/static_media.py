"""Media in the static copy: each item's preview as its kind draws it (the media registry), and
the answer's boxes over the images they refer to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lmwidgets.core.safe_text import escape_html
from lmwidgets.media.base import generic_html, get_kind, kind_of
from lmwidgets.media.image_preview import BOX_COLOR, REGION_COLOR
from lmwidgets.media.image_preview import boxes_html as _boxes_on
from lmwidgets.sharing.static_style import SMALL

if TYPE_CHECKING:
    from lmwidgets.core.results import Result

__all__ = [
    "BOX_COLOR",
    "REGION_COLOR",
    "box_lines",
    "boxes_html",
    "gallery_html",
    "media_line",
    "row_media_html",
]


def preview_html(preview: Mapping[str, Any]) -> str:
    """One item's static preview, drawn by its kind (the generic one for unknown kinds)."""
    kind = get_kind(kind_of(preview))
    return kind.html(preview) if kind is not None else generic_html(preview)


def media_line(preview: Mapping[str, Any]) -> str:
    """``'Image: cat.png (64×48), region 1,2,3,4'``: one line of text about an item."""
    name = kind_of(preview)
    kind = get_kind(name)
    text = kind.describe(preview) if kind is not None else str(preview.get("name", name))
    return f"{name.capitalize()}: {text}"


def gallery_html(media: Sequence[Mapping[str, Any]]) -> str:
    """The prompt's media, each as its kind previews it."""
    figures = "".join(preview_html(item) for item in media)
    return f"<div>{figures}</div>" if figures else ""


def row_media_html(media: Sequence[Mapping[str, Any]]) -> str:
    """A dataset item's own media in its row header (small previews, as each kind draws them)."""
    if not media:
        return ""
    shown = "".join(preview_html({**item, "max_height": 96}) for item in media)
    return f'<div class="lmw-rowmedia" style="margin-bottom:4px">{shown}</div>'


def box_lines(result: Result) -> list[str]:
    """``'cat: (10, 20) – (50, 60)'`` for each box of ``result`` (``image 2`` when it refers to
    another than the first image)."""
    return [
        f"{box.label or 'box'}{f' (image {box.image + 1})' if box.image else ''}: "
        f"({box.x1:.0f}, {box.y1:.0f}) – ({box.x2:.0f}, {box.y2:.0f})"
        for box in result.boxes
    ]


def boxes_html(result: Result, images: Sequence[Mapping[str, Any]]) -> str:
    """The boxes of ``result`` drawn on the images, and listed."""
    if not result.boxes:
        return ""
    drawn = _boxes_on(result.boxes, images)
    listing = escape_html(" · ".join(box_lines(result)))
    return f'<div style="margin-bottom:4px">{drawn}<div style="{SMALL}">{listing}</div></div>'
