"""Box parsing for each format on handwritten answers, and conversion to original pixels."""

import pytest

from lmwidgets.media.boxes import Frame, parse_boxes

FRAME = Frame(width=640, height=480)


def _coords(box):
    return (box.x1, box.y1, box.x2, box.y2)


def test_qwen_json_in_a_fence_pixels_of_the_processed_image():
    text = (
        "Here are the objects:\n```json\n[\n"
        '  {"bbox_2d": [56, 28, 280, 224], "label": "cat"},\n'
        '  {"bbox_2d": [0, 0, 28, 28], "label": "sun"}\n]\n```'
    )
    # Qwen2.5-VL resized the 640x480 image to 560x420: its pixels scale back by 8/7.
    frame = Frame(640, 480, processed=(560, 420), model_type="qwen2_5_vl")
    cat, sun = parse_boxes(text, frame)
    assert cat.label == "cat" and cat.format == "qwen"
    assert _coords(cat) == pytest.approx((64, 32, 320, 256), abs=0.1)
    assert _coords(sun) == pytest.approx((0, 0, 32, 32), abs=0.1)


def test_qwen3_json_is_normalized_to_1000():
    text = '[{"bbox_2d": [500, 500, 1000, 1000], "label": "dog"}]'
    (box,) = parse_boxes(text, Frame(640, 480, model_type="qwen3_vl"))
    assert _coords(box) == (320, 240, 640, 480)


def test_unknown_model_json_is_original_pixels_and_clamped():
    (box,) = parse_boxes('{"bbox_2d": [600, 400, 700, 500], "label": "x"}', FRAME)
    assert _coords(box) == (600, 400, 640, 480)


def test_box_tags_with_refs_are_normalized_to_1000():
    text = "<ref>the cat</ref><box>(100,200),(500,750)</box> and <box>(0,0),(1000,1000)</box>"
    cat, whole = parse_boxes(text, FRAME)
    assert cat.label == "the cat" and cat.format == "box"
    assert _coords(cat) == (64, 96, 320, 360)
    assert whole.label == "" and _coords(whole) == (0, 0, 640, 480)


def test_paligemma_loc_tokens():
    text = "<loc0256><loc0512><loc0768><loc1023> cat ; <loc0000><loc0000><loc0512><loc0512> dog"
    cat, dog = parse_boxes(text, Frame(1024, 512))
    # y1, x1, y2, x2 in 1024 bins
    assert cat.label == "cat" and _coords(cat) == (512, 128, 1023, 384)
    assert dog.label == "dog" and _coords(dog) == (0, 0, 512, 256)


def test_plain_lists_with_labels_pixels_and_normalized():
    text = "cat: [10, 20, 110, 220]\n- dog [0.5, 0.5, 1.0, 1.0]\n[1, 2, 3]"
    cat, dog = parse_boxes(text, FRAME)
    assert cat.label == "cat" and _coords(cat) == (10, 20, 110, 220)
    assert dog.label == "dog" and _coords(dog) == (320, 240, 640, 480)


def test_swapped_corners_degenerate_and_broken_entries():
    text = (
        '[{"bbox_2d": [50, 60, 10, 20], "label": "swapped"}, {"bbox_2d": [5, 5, 5, 9]}, '
        '{"bbox_2d": "nonsense"}, {"bbox_2d": [1, 2]}]'
    )
    (box,) = parse_boxes(text, FRAME)
    assert box.label == "swapped" and _coords(box) == (10, 20, 50, 60)


def test_crop_offsets_move_boxes_back_into_the_original():
    frame = Frame(width=100, height=50, offset=(200, 300))  # the model saw a 100x50 crop
    (box,) = parse_boxes("thing: [10, 10, 20, 20]", frame)
    assert _coords(box) == (210, 310, 220, 320)


def test_no_boxes_and_an_explicit_convention():
    assert parse_boxes("No objects here, only [brackets] and 1,2,3,4.", FRAME) == []
    assert parse_boxes("", FRAME) == []
    (box,) = parse_boxes("a [100, 100, 200, 200]", FRAME, convention="norm1000")
    assert _coords(box) == (64, 48, 128, 96)
    with pytest.raises(ValueError, match="convention"):
        parse_boxes("x", FRAME, convention="inches")


def test_hostile_labels_are_kept_as_plain_text():
    text = '[{"bbox_2d": [1, 1, 9, 9], "label": "<img src=x onerror=alert(1)>"}]'
    (box,) = parse_boxes(text, FRAME)
    assert box.label == "<img src=x onerror=alert(1)>"  # escaped wherever it is shown


def test_boxes_may_name_any_image_of_the_prompt():
    first, second = Frame(width=640, height=480), Frame(width=100, height=50, offset=(10, 20))
    text = (
        "cat: [10, 10, 20, 20]\nimage 2: dog [1, 2, 3, 4]\n"
        '[{"bbox_2d": [5, 5, 9, 9], "label": "bird", "image": 2}]\n'
        "Image 7: ghost [1, 1, 5, 5]"  # no 7th image: the first
    )
    boxes = parse_boxes(text, first, frames=[first, second])
    found = {box.label: (box.image, _coords(box)) for box in boxes}
    assert found["cat"] == (0, (10, 10, 20, 20))
    assert found["dog"] == (1, (11, 22, 13, 24))  # in the second image's own pixels (a crop)
    assert found["bird"] == (1, (15, 25, 19, 29))
    assert found["ghost"][0] == 0
    assert all(box.as_dict()["image"] == found[box.label][0] for box in boxes)
