"""JupyterLab in headless Chromium: a multimodal comparison shows the thumbnail and the boxes the
model found, the user draws a region with the mouse and re-runs, and the export shows it all."""

import subprocess
import sys

import pytest
from conftest import SCRIPTED_ANSWER
from lab_server import (
    chromium_page,
    jupyter_lab,
    notebook_json,
    open_notebook,
    require_chromium,
    run_all_cells,
    wait_for_status,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_thumbnail_boxes_and_region_rerun_in_jupyterlab(tmp_path, scripted_vlm_dir):
    require_chromium()
    (tmp_path / "vision.ipynb").write_text(
        notebook_json(
            [
                f"%load_ext lmwidgets\n%lm load {scripted_vlm_dir} --as grounding\n"
                "import numpy as np\n"
                "photo = np.zeros((240, 320, 3), dtype=np.uint8); photo[40:160, 60:220] = (200, 60, 60)",
                "%%prompt --image photo --compare zero-shot,no-image -n 8 --out seen\n"
                "Find the cat <script>window.__lmw_pwned=1</script>",
                "print('boxes:', [(b.label, b.x1, b.y1, b.x2, b.y2) for b in seen[0].boxes])",
            ]
        )
    )
    with jupyter_lab(tmp_path) as (base, token), chromium_page() as page:
        open_notebook(page, base, token, "vision.ipynb")
        run_all_cells(page)
        wait_for_status(page, "done", timeout=120_000)
        live = page.locator(".lmw-live").first
        assert live.locator(".lmw-label").all_text_contents() == ["zero-shot", "no-image"]
        thumb = live.locator(".lmw-gallery .lmw-thumb img").first
        thumb.wait_for()
        assert thumb.evaluate("img => img.complete && img.naturalWidth") == 320
        assert "photo · 320×240" in live.locator(".lmw-gallery").text_content()
        # Both columns answer with a box; each is drawn over a thumbnail in its column.
        assert live.locator(".lmw-col").first.locator(".lmw-box").count() == 1
        assert live.locator(".lmw-box .lmw-boxlabel").first.text_content() == "cat"
        assert "".join(SCRIPTED_ANSWER) in live.locator(".lmw-text").first.text_content()
        output = page.locator(".jp-OutputArea-output", has_text="boxes:")
        output.wait_for(timeout=60_000)
        assert "('cat', 8.0, 6.0, 40.0, 30.0)" in output.first.text_content()

        # Draw a region with the mouse on the gallery thumbnail, then re-run with it.
        box = live.locator(".lmw-gallery .lmw-thumb").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
        page.mouse.up()
        flag = live.locator(".lmw-regionflag")
        flag.wait_for()
        coords = [int(v) for v in flag.text_content().split()[-1].split(",")]
        assert coords[0] == pytest.approx(80, abs=4) and coords[2] == pytest.approx(160, abs=4)
        live.locator(".lmw-regionmode").select_option("crop")
        live.locator(".lmw-rerun").click()
        live.locator(".lmw-gallery .lmw-region").wait_for(timeout=60_000)
        wait_for_status(page, "done", timeout=60_000)
        # The re-run saw the crop: the box moved by the region's corner.
        labels = live.locator(".lmw-boxlist").first.text_content()
        assert f"cat: ({8 + coords[0]}, {6 + coords[1]})" in labels
        page.locator(".jp-Notebook").click()
        page.keyboard.press("Control+s")
        page.wait_for_timeout(1500)
        assert page.evaluate("() => window.__lmw_pwned === undefined")
        page.screenshot(path=str(tmp_path / "vision.png"))
        assert page.dialogs == []

    # The saved notebook's static copy (nbconvert HTML) shows the thumbnail and the boxes.
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "vision.ipynb"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    exported = (tmp_path / "vision.html").read_text()
    assert "data:image/jpeg;base64," in exported
    # The static copy was updated by the re-run (it was started from the widget, not a cell).
    assert f"region {','.join(map(str, coords))}" in exported
    assert f"cat: ({8 + coords[0]}, {6 + coords[1]})" in exported
    assert "<script>window.__lmw_pwned=1</script>" not in exported
