"""Datasets whose items carry their own media: a question per image (VQA style), read lazily.

Scripted engines that take images (or the toy ``shape`` kind of tests/media/test_toy_kind.py)
answer from the prompt text, so the tests can say what each item's column must show.
"""

from __future__ import annotations

import numpy as np
import pytest

import lmwidgets
from lmwidgets.errors import DatasetError, ImageError
from lmwidgets.media.images import ImageInput
from lmwidgets.sharing.static_render import render_html


def _png(path, colour, size=(32, 24)):
    from PIL import Image

    Image.new("RGB", size, colour).save(path)
    return str(path)


@pytest.fixture
def seer(registry):
    return lmwidgets.load_model(
        engine="scripted",
        name="seer",
        media=("image",),
        replies={"red.png": "red", "*": "blue"},
    )


@pytest.fixture
def colours(tmp_path):
    return [
        {"input": f"Colour of {c}.png?", "image": _png(tmp_path / f"{c}.png", c), "expected": c}
        for c in ("red", "green", "blue")
    ]


def test_each_item_gets_its_own_image_and_is_scored(seer, colours):
    cmp = lmwidgets.prompt(
        "{input}", dataset=colours, compare="zero-shot,no-image", display=False, batch_size=2
    )
    shown = [(r.input, r.strategy, r.text) for r in cmp]
    assert shown[:2] == [
        ("Colour of red.png?", "zero-shot", "red"),
        (shown[1][0], "no-image", "red"),
    ]
    media = [r.record["prompt"]["media"] for r in cmp if r.strategy == "zero-shot"]
    assert [m[0]["name"] for m in media] == ["red.png", "green.png", "blue.png"]
    assert len({m[0]["sha256"] for m in media}) == 3
    assert all(r.record["prompt"]["media"] == [] for r in cmp if r.strategy == "no-image")
    assert "[image]" in cmp[0].prompt and "[image]" not in cmp[1].prompt
    assert cmp.scores == {"zero-shot": pytest.approx(2 / 3), "no-image": pytest.approx(2 / 3)}
    # The record's input is the item without its image (JSON), the row shows a small thumbnail.
    assert cmp[0].record["input"] == {"input": "Colour of red.png?", "expected": "red"}
    (thumb,) = cmp[0].item_media
    assert thumb["kind"] == "image" and thumb["src"].startswith("data:image/jpeg;base64,")
    assert len(thumb["src"]) < 8_000 and cmp.media == []  # no prompt-wide gallery
    html = render_html(cmp)
    assert html.count('class="lmw-rowmedia"') == 3 and thumb["src"] in html
    assert lmwidgets.rerun(cmp).matched


def test_items_are_decoded_batch_by_batch_and_released(seer, tmp_path):
    from lmwidgets.media import images

    loaded: list[ImageInput] = []
    live: list[int] = []
    original = images.IMAGE.load

    def counting(value, name=None):
        item = original(value, name=name)
        loaded.append(item)
        return item

    def reply(prompt, adapter):
        live.append(sum(not item.released for item in loaded))
        return "ok"

    seer.replies = reply
    data = [{"input": f"q{i}", "image": _png(tmp_path / f"{i}.png", (i, i, i))} for i in range(10)]
    object.__setattr__(images.IMAGE, "load", counting)
    try:
        cmp = lmwidgets.prompt("{input}", dataset=data, display=False, batch_size=4)
    finally:
        object.__setattr__(images.IMAGE, "load", original)
    assert [r.text for r in cmp] == ["ok"] * 10
    assert len(loaded) == 10 and max(live) <= 4  # one batch's images at a time
    assert all(item.released and item.width == 32 for item in loaded)
    assert cmp[9].item_media[0]["width"] == 32  # previews outlive the pixels


def test_bad_items_are_refused_before_anything_runs_naming_the_item(seer, colours, tmp_path):
    cases = [
        ([*colours, {"input": "no image", "expected": "x"}], DatasetError, r"\[3\].*no image in"),
        ([*colours, {"input": "x", "image": None}], DatasetError, r"item 3 has no image"),
        ([{"input": "x", "image": {"a": 1}}], ImageError, r"dataset\[0\]\['image'\] is a dict"),
        ([{"input": "x", "image": str(tmp_path / "gone.png")}], ImageError, "no image file"),
    ]
    for data, error, match in cases:
        with pytest.raises(error, match=match):
            lmwidgets.prompt("{input}", dataset=data, display=False)
    assert seer.calls == []
    text_only = lmwidgets.load_model(engine="scripted", name="text-only")
    with pytest.raises(ImageError, match="text-only model"):
        lmwidgets.prompt("{input}", dataset=colours, model="text-only", display=False)
    assert text_only.calls == []
    with pytest.raises(DatasetError, match="needs a dataset"):
        lmwidgets.prompt("x", media_column="photo", display=False)


def test_an_item_that_cannot_be_decoded_marks_its_cells_and_the_run_goes_on(
    seer, colours, tmp_path
):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    data = [*colours[:1], {"input": "broken one", "image": str(broken)}, *colours[1:]]
    cmp = lmwidgets.prompt("{input}", dataset=data, display=False, batch_size=2)
    assert [r.finish_reason for r in cmp] == ["eos", "error", "eos", "eos"]
    assert "Cannot read" in cmp[1].error and cmp[1].extras["media_error"] == cmp[1].error
    assert any("broken one" in note and "other items ran" in note for note in cmp.notes)
    assert cmp[2].text == "blue" and cmp.status == "done"


def test_media_column_arrays_and_boxes_on_any_image(registry, tmp_path):
    lmwidgets.load_model(
        engine="scripted",
        name="boxer",
        media=("image",),
        replies={"*": "cat [1, 2, 10, 12] image 2: dog [3, 3, 6, 6]"},
    )
    shared = _png(tmp_path / "shared.png", "white", (40, 30))
    data = [
        {"input": "Find them", "photo": np.zeros((20, 20, 3), dtype=np.uint8)},
        {"input": "Find them too", "photo": np.full((20, 20, 3), 200, dtype=np.uint8)},
    ]
    cmp = lmwidgets.prompt(
        "{input}", dataset=data, images=[shared], media_column="photo:image", display=False
    )
    for result in cmp:
        cat, dog = result.boxes
        assert (cat.image, cat.label, dog.image, dog.label) == (0, "cat", 1, "dog")
        assert result.record["output"]["boxes"][1]["image"] == 1
        names = [m["name"] for m in result.record["prompt"]["media"]]
        assert names[0] == "shared.png" and names[1].startswith("item ")
    assert [m["name"] for m in cmp.media] == ["shared.png"]
    html = render_html(cmp)
    assert "dog (image 2)" in html


def test_media_column_names_a_kind(seer, colours):
    data = [{"input": c["input"], "picture": c["image"]} for c in colours]
    with pytest.raises(DatasetError, match="media kind"):
        lmwidgets.prompt("{input}", dataset=data, media_column="picture:smell", display=False)
    cmp = lmwidgets.prompt("{input}", dataset=data, media_column="picture", display=False)
    assert [r.text for r in cmp] == ["red", "blue", "blue"]


def test_a_media_column_whose_name_holds_a_colon(seer, colours):
    data = [{"input": c["input"], "scan:front": c["image"]} for c in colours]
    for spec in ("scan:front", "scan:front:image"):
        cmp = lmwidgets.prompt("{input}", dataset=data, media_column=spec, display=False)
        assert [r.text for r in cmp] == ["red", "blue", "blue"]
    with pytest.raises(DatasetError, match="no column 'scan'"):
        lmwidgets.prompt("{input}", dataset=data, media_column="scan:image", display=False)


def test_the_magic_takes_a_dataset_of_images(shell, seer, colours, capsys):
    from ipywidgets.widgets.widget import _instances as widgets

    from lmwidgets.notebook.widgets import PromptView

    shell.user_ns["lmw_vqa"] = colours
    before = set(widgets)
    cell = "%%prompt --dataset lmw_vqa --compare zero-shot,no-image --out lmw_vqa_out\n{input}"
    assert shell.run_cell(cell).success
    out = shell.user_ns["lmw_vqa_out"]
    assert [r.text for r in out] == ["red", "red", "blue", "blue", "blue", "blue"]
    assert out[0].record["prompt"]["media"][0]["dataset"]["variable"] == "lmw_vqa"
    capsys.readouterr()
    assert shell.run_cell("%lm rerun lmw_vqa_out").success
    assert "6 of 6 texts match" in capsys.readouterr().out
    (view,) = [w for key, w in widgets.items() if key not in before and isinstance(w, PromptView)]
    assert view.media == []  # no prompt-wide images: each row shows its own
    firsts = [c for c in view.columns if c["col"] == 0]
    assert [c["row_media"][0]["name"] for c in firsts] == ["red.png", "green.png", "blue.png"]
    assert all(c["row_media"] == [] for c in view.columns if c["col"] == 1)
    help_text = shell.run_cell("%prompt --help")
    assert help_text.success and "--media-column" in capsys.readouterr().out


def test_a_rerun_finds_in_memory_items_in_their_dataset(seer):
    data = [
        {"input": f"Shade {v}?", "image": np.full((8, 8, 3), v, dtype=np.uint8)} for v in (0, 99)
    ]
    cmp = lmwidgets.prompt("{input}", dataset=data, dataset_name="shades", display=False)
    entry = cmp[1].record["prompt"]["media"][0]
    assert entry["dataset"] == {"variable": "shades", "index": 1, "column": "image"}
    assert lmwidgets.rerun(cmp, namespace={"shades": data}).matched
    with pytest.raises(lmwidgets.RecordError, match="not in the notebook any more"):
        lmwidgets.rerun(cmp)
    changed = [data[0], {**data[1], "image": np.zeros((8, 8, 3), dtype=np.uint8)}]
    with pytest.raises(lmwidgets.RecordError, match="differs from the recorded one"):
        lmwidgets.rerun(cmp, namespace={"shades": changed})
    with pytest.raises(DatasetError, match=r"shades\[1\]\['image'\]: item 1 has no image"):
        lmwidgets.prompt("{input}", dataset=[data[0], {"input": "x"}], dataset_name="shades")


def test_items_asking_the_same_question_stay_rows_reloaded_and_rerun(shell, seer, colours, capsys):
    """VQA style: one question of three images is three rows live, reloaded and re-run."""
    from ipywidgets.widgets.widget import _instances as widgets

    from lmwidgets.core.results import Comparison
    from lmwidgets.notebook.widgets import PromptView
    from lmwidgets.sharing.static_matrix import layout

    def new_view(before):
        (view,) = [w for k, w in widgets.items() if k not in before and isinstance(w, PromptView)]
        return view

    shell.user_ns["lmw_same"] = [{**item, "input": "Which colour?"} for item in colours]
    before = set(widgets)
    cell = "%%prompt --dataset lmw_same --compare zero-shot,no-image --out lmw_same_out\n{input}"
    assert shell.run_cell(cell).success
    out = shell.user_ns["lmw_same_out"]
    assert [r.item_index for r in out] == [0, 0, 1, 1, 2, 2]
    assert [r.record["item_index"] for r in out] == [0, 0, 1, 1, 2, 2]
    live = new_view(before)
    assert sorted((c["row"], c["col"]) for c in live.columns) == [
        (r, c) for r in range(3) for c in range(2)
    ]
    assert [len(row.cells) for row in layout(out).rows] == [2, 2, 2]
    assert list(out.to_pandas().groupby("item").size()) == [2, 2, 2]
    assert "item" not in lmwidgets.prompt("{input}", dataset=colours, display=False).to_pandas()
    reloaded = Comparison.from_records(out.records)
    assert [r.item_index for r in reloaded] == [0, 0, 1, 1, 2, 2]
    grid = layout(reloaded)
    assert [row.header for row in grid.rows] == ["Which colour?"] * 3
    assert [[cell.item_index for cell in row.cells] for row in grid.rows] == [
        [0, 0],
        [1, 1],
        [2, 2],
    ]
    assert reloaded.to_html().count("Which colour?") >= 3
    # Records written before items were numbered still make three rows.
    older = [{k: v for k, v in r.items() if k != "item_index"} for r in out.records]
    assert len(layout(Comparison.from_records(older)).rows) == 3
    bad = [{**out.records[0], "item_index": -1}]
    with pytest.raises(lmwidgets.RecordError, match="item_index must be a whole number >= 0"):
        lmwidgets.rerun(bad)
    capsys.readouterr()
    before = set(widgets)
    assert shell.run_cell("%lm rerun lmw_same_out --show").success
    assert "6 of 6 texts match" in capsys.readouterr().out
    rerun_view = new_view(before)
    assert rerun_view.media == []  # no prompt-wide gallery: each row shows its own image
    firsts = [c["row_media"][0]["name"] for c in rerun_view.columns if c["col"] == 0]
    assert firsts == ["red.png", "green.png", "blue.png"]
    assert sorted((c["row"], c["col"]) for c in rerun_view.columns) == [
        (r, c) for r in range(3) for c in range(2)
    ]
    report = lmwidgets.rerun(out, namespace=shell.user_ns)
    again = report.comparisons[0]
    assert [r.item_index for r in again] == [0, 0, 1, 1, 2, 2]
    assert [len(row.cells) for row in layout(again).rows] == [2, 2, 2]
    names = [r.record["prompt"]["media"][0]["name"] for r in again if r.strategy == "zero-shot"]
    assert names == ["red.png", "green.png", "blue.png"]


def test_vs_an_earlier_run_pairs_items_that_share_a_question_by_their_number(shell, seer, colours):
    from ipywidgets.widgets.widget import _instances as widgets

    from lmwidgets.core.results import Comparison
    from lmwidgets.notebook.widgets import PromptView
    from lmwidgets.sharing.static_matrix import layout

    same = [{**item, "input": "Which colour?"} for item in colours]
    earlier = lmwidgets.prompt("{input}", dataset=same, display=False)
    seer.replies = {"*": "green"}
    shell.user_ns.update(lmw_same=same, lmw_earlier=earlier)
    before = set(widgets)
    cell = "%%prompt --dataset lmw_same --vs lmw_earlier --out lmw_vs\n{input}"
    assert shell.run_cell(cell).success
    (view,) = [w for k, w in widgets.items() if k not in before and isinstance(w, PromptView)]
    assert sorted((c["row"], c["col"]) for c in view.columns) == [
        (r, c) for r in range(3) for c in range(2)
    ]
    plan = shell.user_ns["lmw_vs"]
    assert [r.item_index for r in plan] == [0, 1, 2, 0, 1, 2]
    assert [len([c for c in row.cells if c]) for row in layout(plan).rows] == [2, 2, 2]
    vs = [r.extras["vs"] for r in plan if "vs" in r.extras]
    assert [v["previous_answer"] for v in vs] == ["blue"] * 3
    older = Comparison.from_records(
        [{k: v for k, v in r.items() if k != "item_index"} for r in earlier.records]
    )
    again = lmwidgets.prompt("{input}", dataset=same, display=False, vs=older)
    assert [len([c for c in row.cells if c]) for row in layout(again).rows] == [2, 2, 2]


def test_a_region_marks_each_items_own_image_and_a_rerun_marks_it_again(seer, colours):
    """``--region`` on a dataset without --image falls on each item's own image; a rerun finds
    the region in the records and keeps it however often the item is read again."""
    from lmwidgets.run.replay import _recorded_media

    cmp = lmwidgets.prompt(
        "{input}", dataset=colours, region="2,2,10,10", region_mode="crop", display=False
    )
    entries = [r.record["prompt"]["media"][0] for r in cmp]
    assert [(e["region"], e["region_mode"]) for e in entries] == [([2, 2, 10, 10], "crop")] * 3
    again = lmwidgets.rerun(cmp).comparisons[0]
    assert [r.record["prompt"]["media"][0]["region"] for r in again] == [[2, 2, 10, 10]] * 3
    (item,) = _recorded_media(cmp[0].record, {}, {})
    item.release()  # as after its batch: the next read (a fork, getting tokens) marks it again
    assert item.resolve().model_image().size == (8, 8)
    assert item.record()["region"] == [2, 2, 10, 10]


def test_a_region_numbers_the_prompts_images_then_the_items(seer, colours, tmp_path):
    shared = _png(tmp_path / "shared.png", "white", (40, 40))

    def regions(region):
        cmp = lmwidgets.prompt(
            "{input}", dataset=colours, images=[shared], region=region, display=False
        )
        return [[m.get("region") for m in r.record["prompt"]["media"]] for r in cmp]

    assert regions("2:1,1,5,5") == [[None, [1, 1, 5, 5]]] * 3
    assert regions("1:1,1,30,30") == [[[1, 1, 30, 30], None]] * 3
    with pytest.raises(ImageError, match=r"names image 3, but the prompt has 1 image\(s\) and"):
        regions("3:1,1,5,5")


def test_a_region_outside_an_items_image_fails_that_item_only(seer, colours, tmp_path):
    small = [*colours, {"input": "Tiny?", "image": _png(tmp_path / "tiny.png", "red", (6, 6))}]
    cmp = lmwidgets.prompt("{input}", dataset=small, region="2,2,10,10", display=False)
    assert [r.finish_reason for r in cmp][-1] == "error"
    assert all(r.finish_reason != "error" for r in list(cmp)[:3])
    assert any("lies outside the image (6x6 pixels)" in note for note in cmp.notes)
    with pytest.raises(ImageError, match="--region-mode must be one of box, crop"):
        lmwidgets.prompt("{input}", dataset=colours, region="2,2,10,10", region_mode="blur")
