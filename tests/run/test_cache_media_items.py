"""The response cache and datasets whose items carry their own media: their rows are keyed on
the items' bytes (not decoded for the key), answered on a re-run of an unchanged cell, and
generated again for an item whose image changed; items that cannot be told cheaply (a URL)
are never keyed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import lmwidgets
import lmwidgets.media.images as images
from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import GenerationSettings
from lmwidgets.media.base import Deferred
from lmwidgets.media.images import IMAGE
from lmwidgets.run.cache_keys import column_key

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")


def _png(path, colour, size=(32, 24)):
    Image.new("RGB", size, colour).save(path)
    return str(path)


@pytest.fixture
def six(tmp_path):
    return [
        {"input": f"Colour {i}?", "image": _png(tmp_path / f"{c}.png", c)}
        for i, c in enumerate(COLOURS)
    ]


@pytest.fixture
def decodes(monkeypatch):
    """How many images were decoded from bytes (a spy on the decoder, which still runs)."""
    count = {"n": 0}
    decode = images._decode

    def counted(data, name):
        count["n"] += 1
        return decode(data, name)

    monkeypatch.setattr(images, "_decode", counted)
    return count


def ask(**options):
    return lmwidgets.prompt(
        "{input}", model="vlm", max_new_tokens=4, display=False, batch_size=2, **options
    )


def test_a_rerun_of_an_image_dataset_on_the_tiny_llava_is_answered_from_the_cache(
    vlm, six, decodes
):
    first = ask(dataset=six)
    assert [r.cached for r in first] == [False] * 6
    assert decodes["n"] == 6  # once per item, in its batch
    decodes["n"] = 0
    again = ask(dataset=six)
    assert [r.cached for r in again] == [True] * 6
    assert [r.text for r in again] == [r.text for r in first]
    # each item read once, for its row's preview and its record: not again for the key
    assert decodes["n"] == 6
    assert [r.prompt for r in again] == [r.prompt for r in first]
    assert [r.record["prompt"]["tokens"] for r in again] == [
        r.record["prompt"]["tokens"] for r in first
    ]
    assert [r.media for r in again] == [r.media for r in first]
    assert all(r.item_media and r.item_media[0]["src"] for r in again)


def test_a_changed_image_misses_and_the_others_hit(vlm, six):
    ask(dataset=six)
    _png(six[2]["image"], "black")  # the same file, another image
    again = ask(dataset=six)
    assert [r.cached for r in again] == [True, True, False, True, True, True]
    third = ask(dataset=six)
    assert all(r.cached for r in third)  # the changed one was kept on its run


def test_in_memory_items_are_keyed_on_their_content(registry):
    lmwidgets.load_model(engine="scripted", name="seer", media=("image",), replies={"*": "x"})
    rows = [{"input": f"q{i}", "image": np.full((8, 8, 3), i * 40, np.uint8)} for i in range(3)]

    def run():
        return lmwidgets.prompt("{input}", dataset=rows, display=False)

    assert not any(r.cached for r in run())
    assert all(r.cached for r in run())
    rows[1]["image"] = np.full((8, 8, 3), 255, np.uint8)
    assert [r.cached for r in run()] == [True, False, True]


def _variant(engine, value) -> Variant:
    item = Deferred(value=value, media_kind=IMAGE, name="item 0 image")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]}]
    variant = Variant("v", messages, engine, GenerationSettings(max_new_tokens=4), media=[item])
    variant.max_new_tokens = 4
    return variant


def test_items_that_cannot_be_told_cheaply_are_not_keyed(registry, tmp_path):
    engine = lmwidgets.load_model(engine="scripted", name="seer", media=("image",))
    path = _png(tmp_path / "a.png", "red")
    assert column_key(_variant(engine, path)) is not None
    assert column_key(_variant(engine, "https://example.invalid/cat.png")) is None  # no download
    assert column_key(_variant(engine, str(tmp_path / "gone.png"))) is None
    with open(path, "wb") as file:
        file.write(b"not an image")  # bytes it keys on, though they do not decode
    assert column_key(_variant(engine, path)) is not None
    assert column_key(_variant(engine, np.zeros((2, 2, 3, 3)))) is None  # cannot be decoded


def test_the_key_follows_the_bytes_and_the_marks(registry, tmp_path):
    engine = lmwidgets.load_model(engine="scripted", name="seer", media=("image",))
    red, blue = _png(tmp_path / "r.png", "red"), _png(tmp_path / "b.png", "blue")
    same = _png(tmp_path / "r2.png", "red")
    assert column_key(_variant(engine, red)) == column_key(_variant(engine, same))  # name: a label
    assert column_key(_variant(engine, red)) != column_key(_variant(engine, blue))
    with open(red, "rb") as file:
        assert column_key(_variant(engine, file.read())) == column_key(_variant(engine, red))
    marked = _variant(engine, red)
    marked.media[0].marks = {"region": [0, 0, 4, 4], "region_mode": "crop"}
    assert column_key(marked) != column_key(_variant(engine, red))


def test_an_unreadable_item_is_not_cached_and_its_cells_say_why(registry, tmp_path):
    lmwidgets.load_model(engine="scripted", name="seer", media=("image",), replies={"*": "x"})
    good = _png(tmp_path / "good.png", "red")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    rows = [{"input": "a", "image": good}, {"input": "b", "image": str(bad)}]
    for _ in range(2):
        cmp = lmwidgets.prompt("{input}", dataset=rows, display=False)
        assert cmp[1].finish_reason == "error" and not cmp[1].cached
    assert cmp[0].cached
