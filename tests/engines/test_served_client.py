"""The served engine's URL, key and message handling (no server needed)."""

import pytest

import lmwidgets
from lmwidgets.engines.base import (
    GenerationSettings,
    PromptRow,
    Rendered,
    batch_row_seeds,
    sample_seed,
)
from lmwidgets.engines.served import api_root, public_url, read_api_key
from lmwidgets.engines.served.engine import _wire_messages, request_payload


@pytest.mark.parametrize(
    ("given", "root", "shown"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        (
            "https://user:pw@host.example/api/v1?key=s",
            "https://user:pw@host.example/api",
            "https://host.example/api",
        ),
    ],
)
def test_urls_are_normalised_and_shown_without_credentials(given, root, shown):
    assert api_root(given) == root
    assert public_url(api_root(given)) == shown


@pytest.mark.parametrize("bad", ["", "localhost:8000", "ftp://host", "http://"])
def test_bad_urls_are_clear_errors(bad):
    with pytest.raises(lmwidgets.InvalidArgumentError, match="not a server URL"):
        api_root(bad)


def test_the_key_comes_from_the_named_variable_only(monkeypatch):
    monkeypatch.setenv("LMW_KEY_FOR_TEST", "s3cret")
    assert read_api_key("LMW_KEY_FOR_TEST") == "s3cret"
    assert read_api_key(None) is None
    monkeypatch.setenv("LMW_EMPTY", "")
    with pytest.raises(lmwidgets.InvalidArgumentError, match="LMW_EMPTY is not set") as caught:
        read_api_key("LMW_EMPTY")
    assert "s3cret" not in str(caught.value)


def test_image_parts_become_data_urls_in_order(tmp_path):
    from PIL import Image

    from lmwidgets.media.images import load_image

    red, blue = (tmp_path / "r.png"), (tmp_path / "b.png")
    Image.new("RGB", (4, 4), "red").save(red)
    Image.new("RGB", (4, 4), "blue").save(blue)
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "vs"}, {"type": "image"}],
        },
    ]
    wire = _wire_messages(messages, [load_image(red), load_image(blue)])
    assert wire[0] == {"role": "system", "content": "Be brief."}
    parts = wire[1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text", "image_url"]
    assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in parts[::2])
    assert parts[0] != parts[2]
    with pytest.raises(lmwidgets.MediaError, match="more image places"):
        _wire_messages(messages, [load_image(red)])


def test_each_sampled_request_carries_its_rows_own_seed():
    """What the served engine sends per row (vLLM seeds each request apart): a sampled row's own
    seed, or one derived from the batch's; a greedy row no seed."""
    rendered = Rendered("x", 1, payload=[{"role": "user", "content": "x"}])
    rows = [
        PromptRow(rendered, temperature=0.7, seed=4),
        PromptRow(rendered, temperature=0.7),
        PromptRow(rendered, "style", temperature=0.0, seed=9),
    ]
    settings = GenerationSettings(max_new_tokens=5, seed=11)
    batch, seeds = batch_row_seeds(rows, settings)
    payloads = [
        request_payload("m", r, settings, s, False) for r, s in zip(rows, seeds, strict=True)
    ]
    assert batch == 11
    assert [p.get("seed") for p in payloads] == [4, sample_seed(11, 1), None]
    assert [p["temperature"] for p in payloads] == [0.7, 0.7, 0.0]
    assert [p["model"] for p in payloads] == ["m", "m", "style"]
