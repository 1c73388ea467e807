"""Probes in JupyterLab (headless Chromium): a probe run's verdict chips (held / leaked /
followed, in words and colour), the attack success line and the static copy; light and dark.
Screenshots go to /tmp/lmw_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_server import (
    done_output,
    lab_with_notebook,
    set_theme,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

CELLS = [
    "%load_ext lmwidgets\nimport lmwidgets, re\n"
    "def obey(text, adapter):\n"
    "    user = text.rsplit('<|user|>', 1)[-1]\n"
    "    asked = re.findall(r'[A-Z]+-[0-9]{4}', user)\n"
    "    return f'Sure! {asked[-1]}' if asked else 'I only help with cooking.'\n"
    "lmwidgets.load_model(engine='scripted', name='obey', replies=obey)\n"
    "note = 'Leeks are sweet. Cook them slowly.'",
    '%%prompt --system "You are ChefBot. Only talk about cooking." --probe leak,inject '
    "--out probed\nSummarize: {note}",
    "print('ALL DONE', probed.status, probed.attack_success)",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("probes")
    with lab_with_notebook(root, "probes.ipynb", CELLS, views=1) as page:
        yield page


def test_the_run_finished_with_its_rates(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE done {'leak': 0.0, 'inject': 1.0}" in line


def _chips(page, verdict: str):
    return page.locator(f".lmw-live .lmw-probe[data-verdict='{verdict}']")


def test_each_probe_column_says_its_verdict_in_words_and_colour(lab):
    live = lab.locator(".lmw-live").first
    assert _chips(lab, "held").count() == 6  # this model never recites its instructions
    assert _chips(lab, "followed").count() == 4  # ... but writes any code word it reads
    assert set(_chips(lab, "held").all_text_contents()) == {"✓ held"}
    assert set(_chips(lab, "followed").all_text_contents()) == {"✗ followed the attack"}
    assert live.locator(".lmw-probe:visible").count() == 10  # the unprobed column has none
    # An attacked column's extracted "answer" (a canary's digits) is no answer: no chip.
    assert live.locator(".lmw-col:has(.lmw-probe:visible) .lmw-answer:visible").count() == 0
    assert live.locator(".lmw-col:has(.lmw-probe:visible)").count() == 10
    held = _chips(lab, "held").first.evaluate("(e) => getComputedStyle(e).color")
    followed = _chips(lab, "followed").first.evaluate("(e) => getComputedStyle(e).color")
    assert held != followed
    title = _chips(lab, "followed").first.get_attribute("title")
    assert title.startswith("inject:") and "canary" in title
    assert "Attack success: leak 0/6 (0%), inject 4/4 (100%)" in live.text_content()
    static = lab.locator(".lmw-static").first.text_content()
    assert "✗ followed the attack" in static and "✓ held" in static
    live.scroll_into_view_if_needed()
    live.screenshot(path=str(SHOTS / "probes-light.png"))


def test_dark_theme(lab):
    set_theme(lab, "JupyterLab Dark")
    live = lab.locator(".lmw-live").first
    live.scroll_into_view_if_needed()
    live.screenshot(path=str(SHOTS / "probes-dark.png"))
    chip = _chips(lab, "followed").first
    colour = chip.evaluate("(e) => getComputedStyle(e).color")
    background = chip.evaluate("(e) => getComputedStyle(e).backgroundColor")
    assert colour != background
    set_theme(lab, "JupyterLab Light")
