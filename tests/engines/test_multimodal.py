"""Multimodal prompts end to end on tiny LLaVA models: loading, images, batching, strategies,
adapters, regions, boxes, records, thumbnails, static output, and the bad inputs."""

import io

import numpy as np
import pytest
from conftest import SCRIPTED_ANSWER
from PIL import Image

import lmwidgets
from lmwidgets.errors import ImageError, StrategyError


def _image(seed=0, width=64, height=48):
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def _run(text="What is in the picture?", **kwargs):
    kwargs.setdefault("max_new_tokens", 6)
    kwargs.setdefault("display", False)
    return lmwidgets.prompt(text, **kwargs)


def test_vision_models_are_recognised_beside_text_models(vlm, tiny):
    assert vlm.kind == "vision" and vlm.processor is not None
    assert "vision-language" in vlm.summary()
    assert tiny.kind == "text" and tiny.processor is None
    assert lmwidgets.REGISTRY.names() == ["vlm", "tiny"]
    assert vlm.record()["modality"] == "image+text"
    assert vlm.context_length == 1024  # from the text config of the composite model


def test_the_image_changes_the_answer_and_batching_changes_nothing(vlm):
    both = _run(images=[_image(1)], compare="zero-shot,no-image", model="vlm")
    with_image, without = both["zero-shot"], both["no-image"]
    assert with_image.record["generation"]["batch_size"] == 16  # one batch: image + no image
    alone = _run(images=[_image(1)], model="vlm")
    assert alone.text == with_image.text  # batched with a text-only row: same greedy tokens
    assert _run(model="vlm").text == without.text
    other = _run(images=[_image(2)], model="vlm")
    assert {with_image.text, without.text, other.text} != {with_image.text}
    assert without.images == [] and with_image.images[0]["width"] == 64


def test_records_say_exactly_which_image(vlm, tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(_image(3)).save(path)
    result = _run(images=[str(path)], model="vlm")[0]
    (image,) = result.record["prompt"]["media"]
    assert image["name"] == "scene.png" and image["source"] == "file"
    assert (image["width"], image["height"]) == (64, 48)
    assert image["sha256"] == lmwidgets.media.images.load_image(_image(3)).sha256
    assert image["bytes_sha256"] and len(image["bytes_sha256"]) == 64
    parts = result.record["prompt"]["messages"][-1]["content"]
    assert parts[0] == {"type": "image"} and parts[1]["type"] == "text"
    assert "<image>" in result.prompt  # the rendered chat template


def test_placeholders_place_images_and_must_match(vlm):
    result = _run("Compare {img} with {img}, please.", images=[_image(4), _image(5)], model="vlm")
    parts = result[0].record["prompt"]["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image", "text", "image", "text"]
    assert parts[0]["text"] == "Compare "
    assert result[0].record["prompt"]["template"] == "Compare {img} with {img}, please."
    # A notebook variable called img does not replace the placeholder.
    same = _run(
        "Compare {img} with {img}, please.",
        images=[_image(4), _image(5)],
        model="vlm",
        variables={"img": "TEXT"},
    )
    assert same[0].text == result[0].text
    with pytest.raises(ImageError, match="2 \\{img\\} placeholder"):
        _run("Compare {img} with {img}.", images=[_image(4)], model="vlm")


def test_strategies_and_few_shot_keep_the_image_in_the_question(vlm):
    examples = [("2+2?", "4")]
    result = _run(
        images=[_image(6)], compare="few-shot,cot", examples=examples, model="vlm", max_new_tokens=3
    )
    few = result["few-shot"].record["prompt"]["messages"]
    assert few[0]["content"] == [{"type": "text", "text": "2+2?"}]  # the example: no image
    for column in result:
        messages = column.record["prompt"]["messages"]
        assert {"type": "image"} in messages[-1]["content"]
    assert "step by step" in result["cot"].prompt


def test_adapters_on_a_multimodal_model(vlm, vlm_dir, tmp_path):
    from tiny_models import build_lora

    lmwidgets.load_adapter(build_lora(vlm_dir, tmp_path / "style", seed=3), name="style")
    both = _run(images=[_image(7)], adapters="base,style", model="vlm")
    assert both["base"].text != both["style"].text
    assert both["style"].record["adapter"]["name"] == "style"
    assert _run(images=[_image(7)], adapter="style", model="vlm").text == both["style"].text


def test_bad_inputs_raise_before_generating_and_keep_everything(vlm, tiny, tmp_path):
    earlier = _run(images=[_image(8)], model="vlm")
    cases = [
        (dict(images=[_image(8)], model="tiny"), "text-only model"),
        (dict(images=[str(tmp_path / "missing.png")], model="vlm"), "No image file"),
        (dict(images=[b"garbage"], model="vlm"), "Cannot read"),
        (dict(images=[{"a": 1}], model="vlm"), "an image must be"),
        (dict(images=[_image(0)] * 4, model="vlm"), "at most 3 image"),
        (dict(images=[_image(8)], region="0,0,65,10", model="vlm"), "outside the image"),
        (dict(compare="zero-shot,no-image", model="vlm"), "give images"),
    ]
    for kwargs, match in cases:
        with pytest.raises((ImageError, StrategyError), match=match):
            _run(**kwargs)
    assert lmwidgets.REGISTRY.names() == ["vlm", "tiny"]
    assert _run(images=[_image(8)], model="vlm").text == earlier.text


def test_single_image_models_refuse_a_second_image(registry, vlm_dir):
    lmwidgets.load_model(str(vlm_dir), name="llava")  # LLaVA-1.5 was trained on one image
    with pytest.raises(ImageError, match="at most 1 image"):
        _run(images=[_image(0), _image(1)])
    with pytest.raises(lmwidgets.InvalidArgumentError, match="--max-images"):
        lmwidgets.load_model(str(vlm_dir), name="x", max_images=0)


def test_region_box_and_crop_reach_the_model_and_the_record(vlm):
    plain = _run(images=[_image(9)], model="vlm")[0]
    boxed = _run(images=[_image(9)], region="5,5,40,30", model="vlm")[0]
    cropped = _run(images=[_image(9)], region="5,5,40,30", region_mode="crop", model="vlm")[0]
    assert boxed.record["prompt"]["media"][0]["region"] == [5, 5, 40, 30]
    assert cropped.record["prompt"]["media"][0]["region_mode"] == "crop"
    assert len({plain.text, boxed.text, cropped.text}) > 1


def test_scripted_boxes_become_result_boxes_and_are_drawn(registry, scripted_vlm_dir):
    lmwidgets.load_model(str(scripted_vlm_dir), name="grounding")
    comparison = _run(images=[_image(10, 64, 48)], max_new_tokens=8)
    result = comparison[0]
    assert result.text == "".join(SCRIPTED_ANSWER)
    (box,) = result.boxes
    assert (box.label, box.x1, box.y1, box.x2, box.y2) == ("cat", 8, 6, 40, 30)
    assert result.record["output"]["boxes"][0]["label"] == "cat"
    html = comparison.to_html()
    assert html.count("data:image/jpeg;base64,") == 2  # the gallery and the column's boxes
    assert "cat: (8, 6) – (40, 30)" in html and "left:12.50%" in html
    assert "Box: cat" in comparison.to_text() and "Image: image 1 (64×48)" in comparison.to_text()
    # Cropped: the model's pixels are moved back into the original image.
    crop = _run(images=[_image(10, 64, 48)], region="10,10,60,40", region_mode="crop")
    (moved,) = crop[0].boxes
    assert (moved.x1, moved.y1, moved.x2, moved.y2) == (18, 16, 50, 40)


def test_widget_thumbnails_and_region_rerun(shell, scripted_vlm_dir):
    from ipywidgets.widgets.widget import _instances as widgets

    from lmwidgets.notebook.widgets import PromptView

    shell.user_ns["lmw_photo"] = _image(11, 640, 480)
    shell.run_line_magic("lm", f"load {scripted_vlm_dir} --as lmw_vlm")
    before = set(widgets)
    result = shell.run_cell("%%prompt --image lmw_photo -n 8 --out lmw_out\nWhere is the cat?")
    assert result.error_in_exec is None
    (view,) = [w for key, w in widgets.items() if key not in before and isinstance(w, PromptView)]
    (image,) = view.images
    assert image["name"] == "lmw_photo" and (image["width"], image["height"]) == (640, 480)
    assert image["src"].startswith("data:image/jpeg;base64,") and len(image["src"]) < 100_000
    assert view.can_rerun and view.columns[0]["boxes"][0]["label"] == "cat"
    first = shell.user_ns["lmw_out"]
    # The user draws a region on the thumbnail and clicks Re-run: same view, new comparison.
    view.region_request = {"image": 0, "box": [100, 50, 300, 250], "mode": "crop", "nonce": 1}
    rerun = shell.user_ns["lmw_out"]
    assert rerun is not first and view.status == "done"
    assert rerun[0].record["prompt"]["media"][0]["region"] == [100, 50, 300, 250]
    assert view.images[0]["region"] == [100, 50, 300, 250]
    assert rerun[0].boxes[0].x1 == 108  # boxes of the crop, in original pixels
    # A region outside the image: a message in the widget, the results stay.
    view.region_request = {"image": 0, "box": [0, 0, 9000, 10], "mode": "box", "nonce": 2}
    assert "outside the image" in view.message and shell.user_ns["lmw_out"] is rerun


def test_magic_image_flags_and_errors(shell, vlm_dir, tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(_image(12)).save(path)
    buffer = io.BytesIO()
    Image.fromarray(_image(13)).save(buffer, format="PNG")
    shell.user_ns["lmw_bytes"] = buffer.getvalue()
    shell.run_line_magic("lm", f"load {vlm_dir} --as lmw_v --max-images 2")
    ok = shell.run_cell(
        f"%%prompt -i {path} -i lmw_bytes -n 3 --compare zero-shot,no-image --out lmw_r\n"
        "Look at {img} and {img}"
    )
    assert ok.error_in_exec is None
    names = [i["name"] for i in shell.user_ns["lmw_r"][0].record["prompt"]["media"]]
    assert names == ["p.png", "lmw_bytes"]
    bad = shell.run_cell("%%prompt -i nowhere.png\nhi")
    assert isinstance(bad.error_in_exec, ImageError)
    bad = shell.run_cell("%%prompt -i lmw_bytes --region 1,2,3\nhi")
    assert isinstance(bad.error_in_exec, ImageError)
    assert shell.run_cell("%%prompt -n 2 --out lmw_after\nstill fine").error_in_exec is None


def test_rerun_finds_the_images_again_and_checks_them(vlm, tmp_path):
    path = tmp_path / "shot.png"
    Image.fromarray(_image(14)).save(path)
    photo = _image(15)
    saved = _run(
        "Compare {img} and {img}",
        images=[str(path), "photo"],
        variables={"photo": photo},
        region="2:1,1,20,20",
        compare="zero-shot,no-image",
        model="vlm",
    )
    report = lmwidgets.rerun(saved, namespace={"photo": photo})
    assert report.matched and len(report.rows) == 2
    rerun_images = report.comparisons[0][0].record["prompt"]["media"]
    assert rerun_images[1]["region"] == [1, 1, 20, 20]
    with pytest.raises(lmwidgets.RecordError, match="not in the notebook"):
        lmwidgets.rerun(saved)
    with pytest.raises(lmwidgets.RecordError, match="differs from the recorded one"):
        lmwidgets.rerun(saved, namespace={"photo": _image(16)})
    assert lmwidgets.rerun(saved, images={"photo": photo}).matched


def test_hostile_file_names_and_labels_stay_text(registry, scripted_vlm_dir, tmp_path):
    from hostile import HOSTILE

    lmwidgets.load_model(str(scripted_vlm_dir), name="grounding")
    path = tmp_path / '<img src=x onerror="alert(1)">.png'
    Image.fromarray(_image(17)).save(path)
    comparison = _run(HOSTILE[0], images=[str(path)], compare="zero-shot,self-consistency",
                      samples=2, max_new_tokens=8)  # fmt: skip
    assert comparison[0].images[0]["name"] == path.name
    html = comparison.to_html()
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert "<script>" not in html and "<script>" not in comparison.to_markdown()
    assert len(comparison["self-consistency"].extras["samples"]) == 2
