"""A media kind is data: one registration in this module, and a toy kind flows through a prompt,
``%%prompt`` (its own option and placeholder), the records, ``%lm rerun``, the static copy and the
widget, with no code for it anywhere in lmwidgets.

The ``shape`` kind: a named polygon (``circle``, ``triangle``, ``square``) drawn as a small PNG.
A scripted engine that lists ``shape`` among its media accepts it; others refuse it.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import lmwidgets
from lmwidgets.errors import MediaError
from lmwidgets.media.base import KINDS, MediaInput, MediaKind, register_kind

SIDES = {"circle": 0, "triangle": 3, "square": 4}


class ShapeError(MediaError):
    """A shape that does not exist."""


@dataclass
class Shape(MediaInput):
    kind: ClassVar[str] = "shape"
    shape: str
    name: str = "shape"
    source: str = "value"
    bytes_sha256: str | None = None
    location: str | None = None
    loads: ClassVar[int] = 0

    @property
    def sha256(self) -> str:  # type: ignore[override]
        return hashlib.sha256(self.shape.encode()).hexdigest()

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "sides": SIDES[self.shape],
            "location": self.location,  # the value as given: a rerun reads it again
        }

    def widget_data(self) -> dict[str, Any]:
        from PIL import Image, ImageDraw

        picture = Image.new("RGB", (24, 24), "white")
        ImageDraw.Draw(picture).ellipse((2, 2, 21, 21), outline="black")
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        src = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        return {"kind": self.kind, "name": self.name, "src": src, "caption": f"a {self.shape}"}


def load_shape(value: Any, name: str | None = None) -> Shape:
    if isinstance(value, Shape):
        return value
    check_shape(value, name or "the shape")
    Shape.loads += 1
    return Shape(str(value), name=name or str(value), location=str(value))


def check_shape(value: Any, label: str) -> None:
    if value not in SIDES:
        raise ShapeError(f"{label} is {value!r}; a shape is one of {', '.join(SIDES)}.")


@pytest.fixture
def shape_kind():
    kind = register_kind(
        MediaKind(
            name="shape",
            load=load_shape,
            error=ShapeError,
            hint="Load a scripted model with media=('shape',).",
            check=check_shape,
        )
    )
    yield kind
    del KINDS["shape"]


@pytest.fixture
def shapes(registry, shape_kind):
    return lmwidgets.load_model(
        engine="scripted",
        name="shapes",
        media=("shape",),
        replies={"look: [shape]": "It is round.", "*": "No shape."},
    )


def test_a_toy_kind_flows_through_a_prompt_and_its_records(shapes):
    cmp = lmwidgets.prompt(
        "Please look: {shape} What is it?",
        media={"shape": ["circle"]},
        compare="zero-shot,no-shape",
        display=False,
    )
    assert [r.text for r in cmp] == ["It is round.", "No shape."]
    assert "look: [shape] What" in cmp[0].prompt and "[shape]" not in cmp[1].prompt
    (entry,) = cmp[0].record["prompt"]["media"]
    assert entry["kind"] == "shape" and entry["sides"] == 0 and entry["name"] == "circle"
    assert cmp[1].record["prompt"]["media"] == []
    assert cmp[0].record["prompt"]["template"] == "Please look: {shape} What is it?"
    (preview,) = cmp.media
    assert preview["caption"] == "a circle" and preview["src"].startswith("data:image/png")
    assert cmp.images == []  # the image kind's own view of the media
    html = cmp._repr_html_() if hasattr(cmp, "_repr_html_") else ""
    from lmwidgets.sharing.static_render import render_html, render_markdown

    static = render_html(cmp)
    assert preview["src"] in static and "circle · a circle" in static
    assert "Shape: circle \\(a circle\\)" in render_markdown(cmp)
    assert html == "" or "a circle" in html
    report = lmwidgets.rerun(cmp)
    assert report.matched, report.rows


def test_the_toy_kind_has_its_own_option_and_reruns_from_the_magic(shell, shapes, capsys):
    from ipywidgets.widgets.widget import _instances as widgets

    from lmwidgets.notebook.widgets import PromptView

    help_text = shell.run_cell("%prompt --help")
    assert help_text.success and "--shape" in capsys.readouterr().out
    before = set(widgets)
    cell = "%%prompt --shape circle --out lmw_shape\nPlease look: {shape}"
    assert shell.run_cell(cell).success
    out = shell.user_ns["lmw_shape"]
    assert out.text == "It is round." and out[0].record["prompt"]["media"][0]["kind"] == "shape"
    (view,) = [w for key, w in widgets.items() if key not in before and isinstance(w, PromptView)]
    assert [m["kind"] for m in view.media] == ["shape"] and view.images == []
    assert view.media[0]["caption"] == "a circle"
    capsys.readouterr()
    assert shell.run_cell("%lm rerun lmw_shape").success
    assert "1 of 1 texts match" in capsys.readouterr().out
    bad = shell.run_cell("%%prompt --shape hexagon\nPlease look: {shape}")
    assert isinstance(bad.error_in_exec, ShapeError) and "hexagon" in str(bad.error_in_exec)


def test_models_that_do_not_take_the_kind_refuse_it_before_anything_runs(registry, shape_kind):
    engine = lmwidgets.load_model(engine="scripted", name="images-only", media=("image",))
    with pytest.raises(ShapeError, match=r"shape inputs need a model.*media=\('shape',\)"):
        lmwidgets.prompt("Look", media={"shape": ["square"]}, display=False)
    assert engine.calls == []
    with pytest.raises(lmwidgets.StrategyError, match="give shapes with --shape X"):
        lmwidgets.prompt("Look", compare="zero-shot,no-shape", display=False)
    with pytest.raises(lmwidgets.StrategyError, match="known kinds"):
        lmwidgets.prompt("Look", media={"hexagon": ["x"]}, display=False)


def test_placeholders_of_the_kind_must_match_its_items(shapes):
    with pytest.raises(ShapeError, match=r"2 \{shape\} placeholder\(s\) but 1 shape"):
        lmwidgets.prompt("{shape} and {shape}", media={"shape": ["circle"]}, display=False)
    two = lmwidgets.prompt(
        "look: {shape} or {shape}", media={"shape": ["circle", "square"]}, display=False
    )
    assert [m["name"] for m in two[0].record["prompt"]["media"]] == ["circle", "square"]
    assert "look: [shape] or [shape]" in two[0].prompt


def test_a_dataset_column_of_the_toy_kind_gives_each_item_its_own(shapes):
    data = [{"input": "Please look:", "shape": s} for s in ("circle", "square")]
    cmp = lmwidgets.prompt("{input} {shape}", dataset=data, display=False)
    assert [r.text for r in cmp] == ["It is round.", "It is round."]
    assert [r.record["prompt"]["media"][0]["sides"] for r in cmp] == [0, 4]
    assert [r.item_media[0]["caption"] for r in cmp] == ["a circle", "a square"]
    with pytest.raises(ShapeError, match=r"dataset\[1\]\['shape'\] is 'hexagon'"):
        lmwidgets.prompt("{input}", dataset=[*data, {"input": "x", "shape": "hexagon"}][::2])
