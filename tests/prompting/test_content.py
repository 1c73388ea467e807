"""Content lists: each media kind's items go where its placeholders are, or before the text."""

import pytest

from lmwidgets.errors import ImageError, MediaError
from lmwidgets.prompting.content import (
    check_placeholders,
    content_parts,
    protect_placeholders,
    restore_placeholders,
    sentinel,
)


def test_images_before_the_text_or_at_their_placeholders():
    assert content_parts("Hi", 2) == [
        {"type": "image"},
        {"type": "image"},
        {"type": "text", "text": "Hi"},
    ]
    placed = protect_placeholders("A {img} and B {img}.")
    assert content_parts(placed, ["image", "image"]) == [
        {"type": "text", "text": "A "},
        {"type": "image"},
        {"type": "text", "text": " and B "},
        {"type": "image"},
        {"type": "text", "text": "."},
    ]
    assert content_parts(placed, []) == [{"type": "text", "text": "A  and B ."}]
    assert restore_placeholders(placed) == "A {img} and B {img}."


def test_a_placeholder_is_safe_from_name_interpolation_and_counts_its_kind_only():
    assert sentinel("image") in protect_placeholders(
        "{img}"
    ) and "{img}" not in protect_placeholders("{img}")
    with pytest.raises(ImageError, match=r"2 \{img\} placeholder\(s\) but 1 image"):
        check_placeholders(protect_placeholders("{img} {img}"), ["image"])
    check_placeholders(protect_placeholders("{img}"), ["image", "other"])  # other kinds: first
    with pytest.raises(MediaError, match="one per placeholder"):
        check_placeholders(protect_placeholders("{img}"), 3)


def test_kinds_without_placeholders_go_first_in_their_order():
    from lmwidgets.media.base import KINDS, MediaKind, register_kind

    register_kind(MediaKind("tone", load=lambda value, name=None: value))
    try:
        placed = protect_placeholders("Hear {tone}, see this.")
        parts = content_parts(placed, ["image", "tone"])
        assert parts == [
            {"type": "image"},
            {"type": "text", "text": "Hear "},
            {"type": "tone"},
            {"type": "text", "text": ", see this."},
        ]
    finally:
        del KINDS["tone"]
