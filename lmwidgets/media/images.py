"""Images for multimodal prompts: reading them from anywhere a notebook keeps them.

An image may be a file path, an ``http(s)`` URL, or a notebook value: a PIL image, a numpy array
(HxW, HxWx3 or HxWx4; uint8, or float in [0, 1]), a matplotlib Figure, or raw encoded bytes.
Every image becomes an RGB PIL image plus what identifies it (the sha256 of its pixels, and of
the file bytes when there were any). Thumbnails are sized down for the notebook; the full image
never reaches the browser. ``--region`` marks part of an image (a drawn box, or a crop).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, cast

from lmwidgets.errors import ImageError
from lmwidgets.media.base import (
    URL,
    MediaInput,
    MediaKind,
    check_location,
    download,
    hf_cell,
    numbered,
    read_file,
    register_kind,
    resolve,
    url_name,
)

#: Longest side of a thumbnail in the widget and the static output, in pixels.
THUMBNAIL_SIDE = 320
#: Longest side of a dataset row's thumbnail (kept once per row in the saved grid).
ROW_THUMBNAIL_SIDE = 96
#: Largest download accepted for an image URL.
MAX_DOWNLOAD_BYTES = 50_000_000
#: How a region is shown to the model: ``box`` draws it on the image, ``crop`` cuts it out.
REGION_MODES = ("box", "crop")


@dataclass(frozen=True)
class Region:
    """A rectangle in pixels of the original image (``x2``/``y2`` exclusive) and the image's index."""

    x1: int
    y1: int
    x2: int
    y2: int
    image: int = 0

    def as_list(self) -> list[int]:
        """``[x1, y1, x2, y2]``."""
        return [self.x1, self.y1, self.x2, self.y2]


@dataclass
class ImageInput(MediaInput):
    """One image of a prompt: the pixels the model sees and what identifies them."""

    kind: ClassVar[str] = "image"

    image: Any  # PIL.Image.Image, RGB
    name: str
    source: str  # file | url | variable | value
    sha256: str
    bytes_sha256: str | None = None
    region: Region | None = None
    region_mode: str = "box"
    location: str | None = None  # the path or URL as given (files and URLs)
    _thumbnail: str | None = field(default=None, repr=False)
    _row_thumbnail: str | None = field(default=None, repr=False)
    _size: tuple[int, int] = field(default=(0, 0), repr=False)

    @property
    def width(self) -> int:
        """Width of the original image in pixels."""
        image = self.image
        return image.width if image is not None else self._size[0]

    @property
    def height(self) -> int:
        """Height of the original image in pixels."""
        image = self.image
        return image.height if image is not None else self._size[1]

    @property
    def released(self) -> bool:
        """Whether the pixels were dropped (:meth:`release`)."""
        return self.image is None

    def release(self) -> None:
        """Keep the size and the thumbnails, drop the pixels (a dataset item after its batch)."""
        if self.image is not None:
            self.thumbnail()
            self.item_preview()
            self._size = (self.image.width, self.image.height)
            self.image = None

    def restore(self, entry: Mapping[str, Any]) -> ImageInput:
        """The image with the region its record names marked again."""
        region = entry.get("region")
        if not region:
            return self
        return self.with_region(Region(*region), str(entry.get("region_mode", "box")))

    def box_frame(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(offset, size) of what the model saw in pixels of the original (a crop is moved)."""
        if self.region is not None and self.region_mode == "crop":
            r = self.region
            return (r.x1, r.y1), (r.x2 - r.x1, r.y2 - r.y1)
        return (0, 0), (self.width, self.height)

    def model_image(self):
        """The image the model receives: the original, or with the region marked."""
        if self.region is None:
            return self.image
        return mark_region(self.image, self.region, self.region_mode)

    def with_region(self, region: Region | None, mode: str = "box") -> ImageInput:
        """A copy with ``region`` marked (checked to lie inside the image)."""
        if region is not None:
            check_region(region, self.width, self.height)
        return replace(self, region=region, region_mode=mode)

    def thumbnail(self) -> str:
        """A ``data:image/jpeg;base64,...`` URL of the image sized down to
        :data:`THUMBNAIL_SIDE` pixels (computed once)."""
        image = self.image  # read once: a batch may release it meanwhile (another thread)
        if self._thumbnail is None and image is not None:
            self._thumbnail = thumbnail_data_url(image)
        return self._thumbnail or ""

    def record(self) -> dict[str, Any]:
        """What a run record says about the image: enough to tell exactly which image it was."""
        info = self.identity(width=self.width, height=self.height)
        if self.region is not None:
            info["region"] = self.region.as_list()
            info["region_mode"] = self.region_mode
        return info

    def widget_data(self) -> dict[str, Any]:
        """What the widget needs to show it: the thumbnail and the original size."""
        return {
            "kind": self.kind,
            "name": self.name,
            "src": self.thumbnail(),
            "width": self.width,
            "height": self.height,
            "region": self.region.as_list() if self.region else None,
            "caption": f"{self.width}×{self.height}",
        }

    def item_preview(self) -> dict[str, Any]:
        """A dataset row's preview: a thumbnail of at most :data:`ROW_THUMBNAIL_SIDE` pixels."""
        image = self.image  # read once: a batch may release it meanwhile (another thread)
        if self._row_thumbnail is None and image is not None:
            self._row_thumbnail = thumbnail_data_url(image, ROW_THUMBNAIL_SIDE, quality=75)
        return {**self.widget_data(), "src": self._row_thumbnail or ""}


def pixel_sha256(image) -> str:
    """sha256 of an RGB image's size and pixels: the same image gives the same hash wherever it
    came from (file, array, figure)."""
    digest = hashlib.sha256(f"{image.width}x{image.height}:RGB:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def _decode(data: bytes, name: str):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            return _rgb(opened)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ImageError(
            f"Cannot read {name} as an image ({reason}). Give a PNG, JPEG, GIF, WebP or BMP file."
        ) from None


def _rgb(image):
    """An RGB copy; transparent images are put on white (what a viewer shows)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _from_array(array: Any, name: str):
    import numpy as np
    from PIL import Image

    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(
            f"{name} has shape {array.shape}; an image array must be HxW (grey), HxWx3 (RGB) "
            "or HxWx4 (RGBA)."
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{name} is empty (shape {array.shape}).")
    if array.dtype == np.uint8:
        data = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ImageError(
                f"{name} is a float array with values outside [0, 1]; scale it to [0, 1] or "
                "convert it to uint8 (0-255)."
            )
        data = (array * 255).round().astype(np.uint8)
    elif array.dtype == np.bool_:
        data = array.astype(np.uint8) * 255
    else:
        raise ImageError(
            f"{name} has dtype {array.dtype}; image arrays must be uint8 (0-255) or float in "
            "[0, 1]."
        )
    return _rgb(Image.fromarray(np.ascontiguousarray(data)))  # L, RGB or RGBA by shape


def _from_figure(figure: Any, name: str):
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png")
    except Exception as exc:  # a closed or broken figure
        raise ImageError(f"Cannot render the matplotlib figure {name}: {exc}") from None
    return _decode(buffer.getvalue(), name)


def _download(url: str) -> bytes:
    return download(
        url, MAX_DOWNLOAD_BYTES, ImageError, "the image", "save the image and give its path"
    )


def _from_path(path: Path, name: str) -> ImageInput:
    data = read_file(path, name, ImageError, "image")
    image = _decode(data, repr(str(path)))
    return ImageInput(
        image,
        name=path.name,
        source="file",
        sha256=pixel_sha256(image),
        bytes_sha256=hashlib.sha256(data).hexdigest(),
        location=str(path),
    )


def load_image(value: Any, name: str | None = None) -> ImageInput:
    """Read one image from a path, URL, PIL image, array, matplotlib Figure or bytes."""
    if isinstance(value, ImageInput):
        return value
    value = hf_cell(value)  # a Hugging Face dataset's cell
    label = name or "the image"
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and URL.match(text):
            data = _download(text)
            image = _decode(data, text)
            return ImageInput(
                image,
                name=url_name(text),
                source="url",
                sha256=pixel_sha256(image),
                bytes_sha256=hashlib.sha256(data).hexdigest(),
                location=text,
            )
        return _from_path(Path(os.path.expanduser(text)), name or text)
    module = type(value).__module__ or ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        image = _decode(data, label)
        digest = hashlib.sha256(data).hexdigest()
        return ImageInput(image, label, "variable", pixel_sha256(image), digest)
    if module.startswith("PIL.") and hasattr(value, "convert"):
        try:
            value.load()
            image = _rgb(value)
        except OSError as exc:
            raise ImageError(f"Cannot read the PIL image {label}: {exc}") from None
    elif module.startswith("matplotlib.") and hasattr(value, "savefig"):
        image = _from_figure(value, label)
    elif hasattr(value, "__array_interface__") or module.startswith("numpy"):
        image = _from_array(value, label)
    else:
        raise ImageError(
            f"{label} is a {type(value).__name__}; an image must be a file path, an http(s) URL, "
            "a PIL image, a numpy array (HxW or HxWx3/4), a matplotlib Figure or raw image bytes."
        )
    return ImageInput(image, label, "variable", pixel_sha256(image))


def resolve_image(
    spec: Any, namespace: Mapping[str, Any] | None = None, name: str | None = None
) -> ImageInput:
    """``--image SPEC``: a notebook variable's value when ``SPEC`` names one, else a path or URL,
    else an image value (called ``name``)."""
    return cast(ImageInput, resolve(IMAGE, spec, namespace, name or ""))


def thumbnail_data_url(image, side: int = THUMBNAIL_SIDE, quality: int = 85) -> str:
    """A JPEG data URL of ``image`` fitted into ``side`` x ``side`` pixels."""
    small = image.copy()
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def parse_region(text: str) -> Region:
    """``"x1,y1,x2,y2"`` (or ``"N:x1,y1,x2,y2"`` for the N-th image, from 1) as a :class:`Region`."""
    image, raw = numbered(text, "--region", "image", ImageError)
    parts = [p.strip() for p in raw.replace(" ", ",").split(",") if p.strip()]
    try:
        numbers = [round(float(p)) for p in parts]
    except (ValueError, OverflowError):  # not a number, or nan / inf
        numbers = []
    if len(numbers) != 4 or len(parts) != 4:
        raise ImageError(
            f"--region {text!r}: give four pixel coordinates x1,y1,x2,y2 (left, top, right, "
            "bottom), e.g. --region 10,20,200,180."
        )
    return Region(*numbers, image=image)


def check_region(region: Region, width: int, height: int) -> None:
    """Raise :class:`ImageError` unless ``region`` is a non-empty rectangle inside the image."""
    x1, y1, x2, y2 = region.as_list()
    if not (x1 < x2 and y1 < y2):
        raise ImageError(
            f"--region {x1},{y1},{x2},{y2} is empty: x1 must be left of x2 and y1 above y2."
        )
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise ImageError(
            f"--region {x1},{y1},{x2},{y2} lies outside the image ({width}x{height} pixels): "
            f"keep 0 <= x1 < x2 <= {width} and 0 <= y1 < y2 <= {height}."
        )


def mark_region(image, region: Region, mode: str = "box"):
    """The image the model sees for a region: ``box`` draws a red rectangle on a copy (the model
    keeps the context), ``crop`` cuts the region out (the model sees only it)."""
    from PIL import ImageDraw

    if mode not in REGION_MODES:
        raise ImageError(f"--region-mode must be one of {', '.join(REGION_MODES)}, not {mode!r}.")
    check_region(region, image.width, image.height)
    if mode == "crop":
        return image.crop(tuple(region.as_list()))
    marked = image.copy()
    width = max(2, round(max(image.width, image.height) / 150))
    ImageDraw.Draw(marked).rectangle(
        (region.x1, region.y1, region.x2 - 1, region.y2 - 1), outline=(255, 0, 0), width=width
    )
    return marked


def apply_region(media: list[Any], region: Region | None, mode: str) -> list[Any]:
    """The prompt's media with ``region`` marked on the image it names (its index among the
    images, checked against its size); other kinds pass through."""
    if mode not in REGION_MODES:
        raise ImageError(f"--region-mode must be one of {', '.join(REGION_MODES)}, not {mode!r}.")
    if region is None:
        return list(media)
    places = [i for i, item in enumerate(media) if item.kind == "image"]
    if not places:
        raise ImageError("--region needs an image: add --image X (the region is in its pixels).")
    if region.image >= len(places):
        raise ImageError(
            f"--region names image {region.image + 1}, but the prompt has {len(places)} image(s)."
        )
    marked = list(media)
    place = places[region.image]
    marked[place] = media[place].with_region(region, mode)
    return marked


def check_value(value: Any, label: str) -> None:
    """A cheap check of a dataset's image before anything runs: a kind of value
    :func:`load_image` reads, and for a path, an existing file (decoded only when its batch
    runs)."""
    if isinstance(value, ImageInput):
        return
    value = hf_cell(value)
    if check_location(value, label, ImageError, "image"):
        return
    module = type(value).__module__ or ""
    readable = (
        isinstance(value, (bytes, bytearray, memoryview))
        or (module.startswith("PIL.") and hasattr(value, "convert"))
        or (module.startswith("matplotlib.") and hasattr(value, "savefig"))
        or hasattr(value, "__array_interface__")
        or module.startswith("numpy")
    )
    if not readable:
        raise ImageError(
            f"{label} is a {type(value).__name__}; an image must be a file path, an http(s) "
            "URL, a PIL image, a numpy array, a matplotlib Figure or raw image bytes."
        )


def _image_line(preview: Mapping[str, Any]) -> str:
    """``'cat.png (64×48), region 1,2,3,4'``."""
    line = f"{preview.get('name', 'image')} ({preview.get('width')}×{preview.get('height')})"
    if preview.get("region"):
        line += f", region {','.join(str(v) for v in preview['region'])}"
    return line


def _static_html(preview: Mapping[str, Any]) -> str:
    from lmwidgets.media.image_preview import figure_html

    return figure_html(preview)


IMAGE = register_kind(
    MediaKind(
        name="image",
        load=load_image,
        option="--image",
        short="-i",
        help=(
            "An image for a vision-language model (repeat for several): a notebook variable "
            "(PIL image, numpy array, matplotlib Figure, bytes), a file path or an http(s) URL. "
            "{img} in the prompt places each image; otherwise they go before the text."
        ),
        placeholder="{img}",
        error=ImageError,
        hint=(
            "Load one, e.g. `%lm load HuggingFaceTB/SmolVLM-256M-Instruct --as vlm`, and pass "
            "`--model vlm`."
        ),
        check=check_value,
        static_html=_static_html,
        line=_image_line,
        marks=("region", "region_mode"),
    )
)
