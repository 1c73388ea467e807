"""Media per dataset item and media kinds in JupyterLab (headless Chromium): a VQA-style grid
shows each item's thumbnail in its row (bounded), a kind registered only in the notebook shows
through the generic preview (its picture and caption), and both read well in light and dark.
Screenshots go to /tmp/lmw_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_server import lab_with_notebook, set_theme

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

SETUP = """%load_ext lmwidgets
import base64, hashlib, io
from dataclasses import dataclass
from typing import ClassVar
import numpy as np
from PIL import Image, ImageDraw
import lmwidgets
from lmwidgets.media.base import MediaInput, MediaKind, register_kind

lmwidgets.load_model(engine='scripted', name='seer', media=('image', 'shape'),
                     replies={'item 0': 'red', 'round': 'a circle', '*': 'blue'})
vqa = []
for i, rgb in enumerate([(200, 40, 40), (40, 160, 60), (40, 60, 200)]):
    pixels = np.full((300, 400, 3), 240, dtype=np.uint8)
    pixels[60:240, 100:300] = rgb
    vqa.append({'input': f'What colour is the rectangle? <b>#{i}</b>', 'image': pixels,
                'expected': ['red', 'green', 'blue'][i]})

@dataclass
class Shape(MediaInput):
    kind: ClassVar[str] = 'shape'
    shape: str
    name: str = 'shape'
    source: str = 'value'
    bytes_sha256: str | None = None
    location: str | None = None

    @property
    def sha256(self):
        return hashlib.sha256(self.shape.encode()).hexdigest()

    def record(self):
        return {'kind': 'shape', 'name': self.name, 'source': 'value', 'sha256': self.sha256}

    def widget_data(self):
        picture = Image.new('RGB', (48, 48), 'white')
        ImageDraw.Draw(picture).ellipse((4, 4, 43, 43), outline='black', width=3)
        buffer = io.BytesIO()
        picture.save(buffer, format='PNG')
        src = 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode()
        return {'kind': 'shape', 'name': self.name, 'src': src, 'caption': '<i>round</i>'}

register_kind(MediaKind('shape', lambda value, name=None: Shape(str(value), name=name or str(value))))"""

CELLS = [
    SETUP,
    "%%prompt --dataset vqa --compare zero-shot,no-image -n 8 --out grid\n{input}",
    "%%prompt --shape circle -n 8 --out toy\nIs it round? {shape}",
    "print('ALL DONE', grid.status, toy.status)",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("media")
    with lab_with_notebook(root, "media.ipynb", CELLS, views=2) as page:
        yield page


def view(page, index: int):
    return page.locator(".lmw-live").nth(index)


def test_each_dataset_row_shows_its_own_bounded_thumbnail(lab):
    grid = view(lab, 0)
    thumbs = grid.locator(".lmw-rowmedia .lmw-thumb img")
    thumbs.first.wait_for()
    assert thumbs.count() == 3
    sizes = [img.evaluate("i => [i.complete, i.naturalWidth, i.width]") for img in thumbs.all()]
    assert all(done and natural == 96 and shown <= 96 for done, natural, shown in sizes)
    assert grid.locator(".lmw-gallery").evaluate("g => getComputedStyle(g).display") == "none"
    labels = grid.locator(".lmw-rowlabel").all_text_contents()
    assert labels[0] == "What colour is the rectangle? <b>#0</b>"  # text, never markup
    grid.screenshot(path=str(SHOTS / "media-grid-light.png"))


def test_a_kind_without_a_js_module_shows_its_picture_and_caption(lab):
    toy = view(lab, 1)
    figure = toy.locator(".lmw-gallery .lmw-figure")
    assert figure.get_attribute("data-kind") == "shape"
    assert figure.locator("figcaption").text_content() == "circle · <i>round</i>"
    assert figure.locator("img").evaluate("i => i.complete && i.naturalWidth") == 48
    assert toy.locator(".lmw-text").first.text_content().strip() == "a circle"
    toy.screenshot(path=str(SHOTS / "media-kind-light.png"))


def test_dark_theme(lab):
    set_theme(lab, "JupyterLab Dark")
    for index, name in ((0, "grid"), (1, "kind")):
        target = view(lab, index)
        target.scroll_into_view_if_needed()
        target.screenshot(path=str(SHOTS / f"media-{name}-dark.png"))
    caption = view(lab, 1).locator("figcaption").first
    colour = caption.evaluate("(e) => getComputedStyle(e).color")
    background = lab.evaluate("getComputedStyle(document.body).backgroundColor")
    assert colour != background
