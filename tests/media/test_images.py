"""Reading images from every kind of input, thumbnails, regions, and the bad inputs."""

import http.server
import io
import threading

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from lmwidgets.errors import ImageError
from lmwidgets.media.images import (
    THUMBNAIL_SIDE,
    Region,
    apply_region,
    load_image,
    mark_region,
    parse_region,
    resolve_image,
)


def _pattern(width=64, height=48):
    """An RGB test image whose pixels differ everywhere (so hashes tell images apart)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 4 % 256, ys * 5 % 256, (xs + ys) % 256], axis=2).astype(np.uint8)


def _png_bytes(array, **info):
    buffer = io.BytesIO()
    meta = PngImagePlugin.PngInfo()
    for key, value in info.items():
        meta.add_text(key, value)
    Image.fromarray(array).save(buffer, format="PNG", pnginfo=meta)
    return buffer.getvalue()


def test_every_input_kind_gives_the_same_pixels(tmp_path):
    array = _pattern()
    path = tmp_path / "photo.png"
    path.write_bytes(_png_bytes(array))
    from_array = load_image(array, "arr")
    from_float = load_image(array.astype(np.float32) / 255.0, "f")
    from_pil = load_image(Image.fromarray(array), "pil")
    from_file = load_image(str(path))
    from_pathlike = load_image(path)
    from_bytes = load_image(path.read_bytes(), "raw")
    assert {
        img.sha256
        for img in (from_array, from_float, from_pil, from_file, from_pathlike, from_bytes)
    } == {from_array.sha256}
    assert (from_file.width, from_file.height) == (64, 48)
    assert from_file.source == "file" and from_file.name == "photo.png"
    assert from_file.bytes_sha256 is not None and from_array.bytes_sha256 is None
    assert from_bytes.bytes_sha256 == from_file.bytes_sha256


def test_grey_rgba_and_figure_inputs():
    grey = load_image(np.full((10, 12), 200, dtype=np.uint8))
    assert grey.image.mode == "RGB" and grey.image.getpixel((0, 0)) == (200, 200, 200)
    rgba = np.zeros((5, 5, 4), dtype=np.uint8)  # fully transparent: shown on white
    assert load_image(rgba).image.getpixel((2, 2)) == (255, 255, 255)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(2, 1), dpi=50)
    axis.plot([0, 1], [0, 1])
    image = load_image(figure, "fig")
    plt.close(figure)
    assert (image.width, image.height) == (100, 50) and image.source == "variable"


def test_url_images_are_downloaded(tmp_path):
    data = _png_bytes(_pattern(20, 10))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/cat.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        image = load_image(f"{base}/cat.png")
        assert image.source == "url" and (image.width, image.height) == (20, 10)
        with pytest.raises(ImageError, match="Cannot download"):
            load_image(f"{base}/missing.png")
    finally:
        server.shutdown()
        thread.join()


def test_variables_win_over_paths(tmp_path):
    namespace = {"photo": _pattern(8, 8)}
    assert resolve_image("photo", namespace).name == "photo"
    with pytest.raises(ImageError, match=r"No image file 'nothere\.png'"):
        resolve_image("nothere.png", namespace)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"not an image at all", "Cannot read"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "shape"),
        (np.full((4, 4), 2.0), r"outside \[0, 1\]"),
        (np.full((4, 4), np.nan), r"outside \[0, 1\]"),
        (np.zeros((4, 4), dtype=np.int64), "dtype"),
        (np.zeros((0, 4, 3), dtype=np.uint8), "empty"),
        ({"not": "an image"}, "a dict; an image must be"),
        (42, "an image must be"),
    ],
)
def test_bad_values_raise_clear_errors(value, match):
    with pytest.raises(ImageError, match=match):
        load_image(value, "x")


def test_bad_files(tmp_path):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(_png_bytes(_pattern())[:60])  # a cut-off PNG
    with pytest.raises(ImageError, match="Cannot read"):
        load_image(str(corrupt))
    with pytest.raises(ImageError, match="directory"):
        load_image(str(tmp_path))
    svg = tmp_path / "x.svg"
    svg.write_text("<svg onload=alert(1)></svg>")
    with pytest.raises(ImageError, match="Cannot read"):
        load_image(str(svg))


def test_thumbnail_is_small_and_never_the_original():
    big = load_image(np.random.default_rng(0).integers(0, 255, (900, 1600, 3), dtype=np.uint8))
    src = big.thumbnail()
    assert src.startswith("data:image/jpeg;base64,")
    import base64

    thumb = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert max(thumb.size) == THUMBNAIL_SIDE and thumb.size[0] > thumb.size[1]
    assert len(src) < 200_000  # the original is 4.3 MB of pixels


def test_text_inside_an_image_is_not_carried(tmp_path):
    payload = "<script>window.__lmw_pwned=1</script>"
    path = tmp_path / "meta.png"
    path.write_bytes(_png_bytes(_pattern(), Comment=payload))
    image = load_image(str(path))
    assert payload not in str(image.record()) and payload not in str(image.widget_data())


def test_region_parsing_and_checks():
    assert parse_region("10,20,30,40") == Region(10, 20, 30, 40)
    assert parse_region("2: 1, 2, 3, 4") == Region(1, 2, 3, 4, image=1)
    for bad in ("1,2,3", "a,b,c,d", "0:1,2,3,4", "1,2,3,4,5", "INF", "1,2,inf,4", "nan,1,2,3"):
        with pytest.raises(ImageError, match="--region"):
            parse_region(bad)
    image = load_image(_pattern(64, 48))
    with pytest.raises(ImageError, match="outside the image"):
        image.with_region(Region(0, 0, 65, 10))
    with pytest.raises(ImageError, match="empty"):
        image.with_region(Region(30, 10, 20, 40))
    with pytest.raises(ImageError, match="names image 2"):
        apply_region([image], Region(0, 0, 5, 5, image=1), "box")
    with pytest.raises(ImageError, match="needs an image"):
        apply_region([], Region(0, 0, 5, 5), "box")
    with pytest.raises(ImageError, match="region-mode"):
        apply_region([image], Region(0, 0, 5, 5), "blur")


def test_region_marking_box_and_crop():
    image = load_image(np.zeros((48, 64, 3), dtype=np.uint8))
    boxed = mark_region(image.image, Region(10, 10, 30, 20), "box")
    assert boxed.size == (64, 48)
    assert boxed.getpixel((10, 15)) == (255, 0, 0)  # the outline
    assert boxed.getpixel((20, 15)) == (0, 0, 0)  # the inside is untouched
    assert image.image.getpixel((10, 15)) == (0, 0, 0)  # the original is untouched
    cropped = image.with_region(Region(10, 10, 30, 20), "crop")
    assert cropped.model_image().size == (20, 10)
    assert cropped.record()["region"] == [10, 10, 30, 20]
    assert cropped.record()["region_mode"] == "crop"
