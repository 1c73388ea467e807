"""Bounding boxes in a grounding model's answer, converted to pixels of the original image.

Formats understood (all may appear in one answer; each span is read once):

``qwen``
    Qwen2.5-VL JSON: ``{"bbox_2d": [x1, y1, x2, y2], "label": "cat"}`` (a list of them, often in
    a ```json fence). Qwen2.5-VL writes pixels of the image *after* its processor resized it;
    Qwen3-VL writes 0-1000 normalized coordinates.
``box``
    ``<ref>cat</ref><box>(x1,y1),(x2,y2)</box>`` (Qwen-VL, NExT-Chat style): 0-1000 normalized.
``loc``
    PaliGemma: four ``<locNNNN>`` tokens (y1, x1, y2, x2 in 1024 bins) followed by the label,
    detections separated by ``;``.
``list``
    A plain ``[x1, y1, x2, y2]`` with a label before it on the same line (``cat: [10, 20, 50,
    60]``): floats in [0, 1] are read as normalized, anything else as pixels of the image.

Boxes refer to the first image of the prompt unless they name another: an ``"image": N`` key
in the JSON, or a label that starts with ``image N`` (``image 2: [10, 20, 50, 60]``), N counted
from 1; each box records its image's index. When the model saw a crop (``--region-mode crop``)
they are moved back into the original image.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace

#: How to read coordinates: ``auto`` picks per format and model (see the module docs).
CONVENTIONS = ("auto", "pixels", "processed", "norm1000", "norm1")

_LOC = re.compile(r"((?:<loc\d{4}>){4})\s*([^<;\n]*)")
_BOX = re.compile(
    r"(?:<ref>(?P<label>[^<]{0,200})</ref>\s*)?<box>\s*\(\s*(?P<x1>-?\d+(?:\.\d+)?)\s*,\s*"
    r"(?P<y1>-?\d+(?:\.\d+)?)\s*\)\s*,?\s*\(\s*(?P<x2>-?\d+(?:\.\d+)?)\s*,\s*"
    r"(?P<y2>-?\d+(?:\.\d+)?)\s*\)\s*</box>"
)
_JSON_OBJECT = re.compile(r"\{[^{}]*\"bbox_2d\"[^{}]*\}")
_NUMBER = r"-?\d+(?:\.\d+)?"
_LIST = re.compile(
    rf"(?P<label>[^\[\]\n]{{0,80}}?)\[\s*(?P<x1>{_NUMBER})\s*,\s*(?P<y1>{_NUMBER})\s*,\s*"
    rf"(?P<x2>{_NUMBER})\s*,\s*(?P<y2>{_NUMBER})\s*\]"
)


@dataclass(frozen=True)
class Box:
    """A labelled box in pixels of the original image (``image`` is the image's index)."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    image: int = 0
    format: str = ""

    def as_dict(self) -> dict:
        """The box as a plain dict (records, the widget)."""
        return asdict(self)


@dataclass(frozen=True)
class Frame:
    """Where the model's coordinates live: the size of the image it saw, the size its processor
    resized it to (if known), and the offset of that image in the original (a crop)."""

    width: int
    height: int
    processed: tuple[int, int] | None = None  # (width, height) after the processor's resize
    offset: tuple[int, int] = (0, 0)
    model_type: str = ""


def _bbox_convention(frame: Frame) -> str:
    model_type = frame.model_type.lower()
    if model_type.startswith("qwen2_5") or model_type.startswith("qwen2_vl"):
        return "processed" if model_type.startswith("qwen2_5") else "norm1000"
    if model_type.startswith("qwen3"):
        return "norm1000"
    return "pixels"


def _scale(values: list[float], convention: str, frame: Frame) -> list[float]:
    x1, y1, x2, y2 = values
    if convention == "norm1000":
        sx, sy = frame.width / 1000, frame.height / 1000
    elif convention == "norm1":
        sx, sy = frame.width, frame.height
    elif convention == "processed" and frame.processed:
        sx, sy = frame.width / frame.processed[0], frame.height / frame.processed[1]
    else:
        sx = sy = 1.0
    return [x1 * sx, y1 * sy, x2 * sx, y2 * sy]


_IMAGE_LABEL = re.compile(r"^\s*(?:in\s+)?image\s*#?\s*(\d{1,3})\s*[:,\-]?\s*", re.IGNORECASE)


def _pick(frames: list[Frame], label: str, named: object = None) -> tuple[int, Frame, str]:
    """The image a box refers to (its index, frame and the label without ``image N``)."""
    number = None
    if isinstance(named, (int, float, str)) and str(named).strip().isdigit():
        number = int(str(named).strip())
    match = _IMAGE_LABEL.match(label or "")
    if match:
        number = number or int(match.group(1))
        label = label[match.end() :]
    index = number - 1 if number and 1 <= number <= len(frames) else 0
    return index, frames[index], label


def _finish(label: str, values: list[float], frame: Frame, fmt: str) -> Box | None:
    x1, y1, x2, y2 = values
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    x1, x2 = (min(max(v, 0.0), frame.width) for v in (x1, x2))
    y1, y2 = (min(max(v, 0.0), frame.height) for v in (y1, y2))
    if x2 - x1 < 1e-6 or y2 - y1 < 1e-6:
        return None
    dx, dy = frame.offset
    clean_label = re.sub(r"\s+", " ", label).strip(" \t:-*•,;\"'`")
    return Box(
        label=clean_label[:120],
        x1=round(x1 + dx, 1),
        y1=round(y1 + dy, 1),
        x2=round(x2 + dx, 1),
        y2=round(y2 + dy, 1),
        format=fmt,
    )


def _loc_boxes(text: str, frames: list[Frame], taken: list[tuple[int, int]]) -> list[Box]:
    boxes = []
    for match in _LOC.finditer(text):
        index, frame, label = _pick(frames, match.group(2))
        y1, x1, y2, x2 = (int(n) for n in re.findall(r"\d{4}", match.group(1)))
        values = [x1 / 1024 * frame.width, y1 / 1024 * frame.height]
        values += [x2 / 1024 * frame.width, y2 / 1024 * frame.height]
        box = _finish(label, values, frame, "loc")
        taken.append(match.span())
        if box:
            boxes.append(replace(box, image=index))
    return boxes


def _box_tags(text: str, frames: list[Frame], convention: str, taken) -> list[Box]:
    boxes = []
    for match in _BOX.finditer(text):
        index, frame, label = _pick(frames, match.group("label") or "")
        values = [float(match.group(k)) for k in ("x1", "y1", "x2", "y2")]
        chosen = "norm1000" if convention == "auto" else convention
        box = _finish(label, _scale(values, chosen, frame), frame, "box")
        taken.append(match.span())
        if box:
            boxes.append(replace(box, image=index))
    return boxes


def _qwen_json(text: str, frames: list[Frame], convention: str, taken) -> list[Box]:
    boxes = []
    for match in _JSON_OBJECT.finditer(text):
        try:
            item = json.loads(match.group(0))
            values = [float(v) for v in item["bbox_2d"]]
        except (ValueError, TypeError, KeyError):
            continue
        if len(values) != 4:
            continue
        index, frame, label = _pick(frames, str(item.get("label", "")), item.get("image"))
        chosen = _bbox_convention(frame) if convention == "auto" else convention
        box = _finish(label, _scale(values, chosen, frame), frame, "qwen")
        taken.append(match.span())
        if box:
            boxes.append(replace(box, image=index))
    return boxes


def _plain_lists(text: str, frames: list[Frame], convention: str, taken) -> list[Box]:
    boxes = []
    for match in _LIST.finditer(text):
        start, end = match.span()
        if any(a < end and start < b for a, b in taken):
            continue
        index, frame, label = _pick(frames, match.group("label"))
        values = [float(match.group(k)) for k in ("x1", "y1", "x2", "y2")]
        chosen = convention
        if convention == "auto":
            chosen = "norm1" if all(0 <= v <= 1 for v in values) else "pixels"
        box = _finish(label, _scale(values, chosen, frame), frame, "list")
        if box:
            boxes.append(replace(box, image=index))
    return boxes


def parse_boxes(
    text: str, frame: Frame, convention: str = "auto", frames: list[Frame] | None = None
) -> list[Box]:
    """Every box in ``text`` in pixels of the original image it refers to, in the order of the
    formats above. ``frames``: every image's frame (a box naming ``image N`` uses the N-th;
    default ``[frame]``).

    ``convention`` overrides how coordinates are read (one of :data:`CONVENTIONS`).
    """
    frames = list(frames or [frame])
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, not {convention!r}")
    if not text:
        return []
    taken: list[tuple[int, int]] = []
    boxes = _loc_boxes(text, frames, taken)
    boxes += _box_tags(text, frames, convention, taken)
    boxes += _qwen_json(text, frames, convention, taken)
    boxes += _plain_lists(text, frames, convention, taken)
    return boxes
