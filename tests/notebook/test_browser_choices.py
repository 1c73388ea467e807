"""Given choices in JupyterLab (headless Chromium): one bar per choice in every cell, the
likeliest marked, the expected choice outlined, readable in light and dark. Screenshots go to
/tmp/lmw_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_server import CONTRAST_JS, done_output, lab_with_notebook, set_theme

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

CELLS = [
    "%load_ext lmwidgets\nimport lmwidgets\n"
    "lmwidgets.load_model(engine='scripted', name='s', replies={'France': 'Paris', 'hot': 'cold',"
    " 'legs': 'eight'})\n"
    "lmwidgets.load_model(engine='scripted', name='t', replies={'France': 'Lyon', '*': 'warm'})\n"
    "capitals = ['Paris', 'Lyon', 'Marseille', '<b>not bold</b>']\n"
    "quiz = [\n"
    "  {'input': 'Capital of France?', 'choices': ['Lyon', 'Paris', 'Nice'], 'expected': 'Paris'},\n"
    "  {'input': 'Opposite of hot?', 'choices': ['warm', 'cold'], 'expected': 1},\n"
    "  {'input': 'How many legs has a spider?', 'choices': ['six', 'eight', 'ten'], 'expected': 1},\n"
    "]",
    "%%prompt --choices capitals --models s,t --out one\nWhat is the capital of France?",
    "%%prompt --dataset quiz --models s,t --out grid\n{input}",
    "print('ALL DONE', one.status, grid.status, grid.scores)",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("choices")
    with lab_with_notebook(root, "choices.ipynb", CELLS, views=2) as page:
        yield page


def view(page, index: int):
    return page.locator(".lmw-live").nth(index)


def test_every_cell_shows_its_choices_as_bars(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE done done" in line
    one = view(lab, 0)
    cells = one.locator(".lmw-col")
    assert cells.count() == 2
    first = cells.nth(0)
    texts = first.locator(".lmw-choicetext").all_text_contents()
    assert texts == ["Paris", "Lyon", "Marseille", "<b>not bold</b>"]  # shown as text
    assert first.locator(".lmw-choicetext b").count() == 0
    picked = first.locator('.lmw-choice[data-pick="acc"] .lmw-choicetext').all_text_contents()
    assert picked == ["Paris"]
    other = cells.nth(1).locator('.lmw-choice[data-pick="acc"] .lmw-choicetext')
    assert other.all_text_contents() == ["Lyon"]
    widths = first.locator(".lmw-choicefill").evaluate_all(
        "(els) => els.map((e) => e.getBoundingClientRect().width)"
    )
    assert widths[0] == max(widths) and widths[0] > 0
    one.scroll_into_view_if_needed()
    one.screenshot(path=str(SHOTS / "choices-one-light.png"))


def test_the_dataset_grid_marks_expected_and_verdicts(lab):
    grid = view(lab, 1)
    assert grid.locator(".lmw-choices").count() == 6
    expected = grid.locator('.lmw-choice[data-expected="1"] .lmw-choicetext')
    assert expected.all_text_contents() == ["Paris", "Paris", "cold", "cold", "eight", "eight"]
    verdicts = grid.locator(".lmw-verdict").all_text_contents()
    assert any("✓" in v for v in verdicts) and any("✗" in v for v in verdicts)
    grid.scroll_into_view_if_needed()
    grid.screenshot(path=str(SHOTS / "choices-grid-light.png"))


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_choices_read_in_both_themes(lab, theme):
    set_theme(lab, theme)
    for index, name in ((0, "one"), (1, "grid")):
        target = view(lab, index)
        for selector in (".lmw-choicetext", ".lmw-choicep"):
            found = target.locator(selector).first.evaluate(CONTRAST_JS)
            assert found["ratio"] >= 4.5, (theme, selector, found)
        if theme.endswith("Dark"):
            target.scroll_into_view_if_needed()
            target.screenshot(path=str(SHOTS / f"choices-{name}-dark.png"))
    set_theme(lab, "JupyterLab Light")
