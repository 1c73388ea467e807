"""Audio clips in JupyterLab (headless Chromium), on a tiny random Qwen2-Audio: each clip shows as
a waveform picture with its name and duration; the play button fetches the audio from the kernel
(a custom message, never synced state) and turns into an audio player; light and dark.
Screenshots go to /tmp/lmw_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_server import done_output, lab_with_notebook, set_theme

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

CELLS = [
    "%load_ext lmwidgets\nimport os, tempfile\nimport numpy as np\n"
    "from lmwidgets.engines.transformers.demo_models import build_tiny_qwen2_audio\n"
    "ALM = str(build_tiny_qwen2_audio(os.path.join(tempfile.mkdtemp(), 'alm')))\n"
    "t = np.arange(32000) / 16000\n"
    "beep = 0.5 * np.sin(2 * np.pi * 440 * t) * np.linspace(1, 0, t.size)\n"
    "hiss = (np.random.default_rng(0).normal(0, 0.2, 16000), 16000)",
    "%lm load {ALM} --as alm",
    "%%prompt --audio beep --sample-rate 16000 --audio hiss --clip 2:0.25,0.75 "
    "--compare zero-shot,no-audio -n 8 --out heard\nCompare {audio} with {audio}.",
    "sounds = [{'input': 'Steady?', 'audio': (beep, 16000)}, {'input': 'Steady?', 'audio': hiss}]",
    "%%prompt --dataset sounds --compare zero-shot,no-audio -n 4 --out graded\n{input}",
    "print('ALL DONE', heard.status, graded.status)",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("audio")
    with lab_with_notebook(root, "audio.ipynb", CELLS, views=2) as page:
        yield page


def test_clips_show_as_waveforms_with_name_and_duration(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE done done" in line
    view = lab.locator(".lmw-live").first
    clips = view.locator(".lmw-audio")
    assert clips.count() == 2
    captions = [text.split(" ▶")[0] for text in clips.locator("figcaption").all_text_contents()]
    assert captions[0].startswith("beep · 0:02.0")
    assert captions[1].startswith("hiss · 0:00.5 (0.25–0.75 s)")
    src = clips.first.locator("img").get_attribute("src") or ""
    assert src.startswith("data:image/png;base64,") and len(src) < 2_000
    assert view.locator("audio").count() == 0  # no audio in the page until play is pressed
    view.screenshot(path=str(SHOTS / "audio-light.png"))


def test_play_fetches_the_clip_from_the_kernel(lab):
    view = lab.locator(".lmw-live").first
    view.locator(".lmw-audio .lmw-play").first.click()
    player = view.locator("audio.lmw-player")
    player.wait_for(state="attached", timeout=30_000)
    assert (player.get_attribute("src") or "").startswith("data:audio/wav;base64,UklGR")
    assert view.locator(".lmw-audio .lmw-play").count() == 1  # the other clip still waits
    view.screenshot(path=str(SHOTS / "audio-playing-light.png"))


def test_dataset_rows_show_their_own_small_waveform(lab):
    grid = lab.locator(".lmw-live").nth(1)
    grid.screenshot(path=str(SHOTS / "audio-dataset-light.png"))
    rows = grid.locator(".lmw-rowmedia .lmw-audio")
    assert rows.count() == 2
    box = rows.first.locator("img").bounding_box()
    assert box is not None and box["width"] <= 100 and box["height"] <= 24
    assert grid.locator(".lmw-rowmedia .lmw-play").count() == 0  # rows have no play control
    grid.screenshot(path=str(SHOTS / "audio-dataset-light.png"))


def test_dark_theme(lab):
    set_theme(lab, "JupyterLab Dark")
    try:
        lab.wait_for_timeout(800)
        lab.locator(".lmw-live").first.screenshot(path=str(SHOTS / "audio-dark.png"))
        lab.locator(".lmw-live").nth(1).screenshot(path=str(SHOTS / "audio-dataset-dark.png"))
    finally:
        set_theme(lab, "JupyterLab Light")
