"""Your own variations in JupyterLab (headless Chromium): three axes as a matrix with grouped row
headers, the columns menu laying the finished run out again, an earlier run beside a new one
(--vs: marked previous, the new column opened as a word diff), and a re-run answered from the
response cache (marked cached); light and dark. Screenshots go to /tmp/lmw_shots/."""

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
    "%load_ext lmwidgets\nimport lmwidgets\n"
    "lmwidgets.load_model(engine='scripted', name='script')\n"
    "personas = {'none': None, 'pirate': 'Talk like a pirate.'}",
    "%%prompt --systems personas --temperatures 0,0.5 --seed 1 --out three\n"
    "Name a colour.\n--- polite\nPlease name one colour you like.",
    "%%prompt --out v1\nWrite a slogan for a bakery.",
    "%%prompt --vs v1 --out v2\nWrite a slogan for a bakery that sells only bread.",
    "%%prompt --out v3\nWrite a slogan for a bakery.",
    "print('ALL DONE', three.status, v2.status, v3[0].cached)",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("variations")
    with lab_with_notebook(root, "variations.ipynb", CELLS, views=4) as page:
        yield page


def view(page, index: int):
    return page.locator(".lmw-live").nth(index)


def test_all_runs_finished_and_the_rerun_was_cached(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE done done True" in line


def test_three_axes_have_grouped_row_headers(lab):
    matrix = view(lab, 0)
    assert matrix.locator(".lmw-colhead .lmw-label").all_text_contents() == ["T=0", "T=0.5"]
    rows = matrix.locator(".lmw-rowhead .lmw-rowlabel")
    assert rows.count() == 4
    parts = [row.locator(".lmw-rowpart").all_text_contents() for row in rows.all()]
    assert parts == [["A", "none"], ["A", "pirate"], ["polite", "none"], ["polite", "pirate"]]
    muted = [row.locator(".lmw-repeat").all_text_contents() for row in rows.all()]
    assert muted == [[], ["A"], [], ["polite"]]  # a value the row above shares is muted
    menu = matrix.locator("select.lmw-columns")
    assert menu.is_visible()
    assert menu.locator("option").all_text_contents() == ["prompt", "system", "temperature"]
    assert menu.input_value() == "temperature"
    matrix.scroll_into_view_if_needed()
    matrix.screenshot(path=str(SHOTS / "variations-matrix-light.png"))


def test_the_columns_menu_lays_the_run_out_again(lab):
    matrix = view(lab, 0)
    before = sorted(matrix.locator(".lmw-text").all_text_contents())
    matrix.locator("select.lmw-columns").select_option("system")
    lab.wait_for_function(
        """(root) => [...root.querySelectorAll('.lmw-colhead .lmw-label')]
             .map((e) => e.textContent).join('|') === 'none|pirate'""",
        arg=matrix.element_handle(),
        timeout=20_000,
    )
    parts = [
        r.locator(".lmw-rowpart").all_text_contents() for r in matrix.locator(".lmw-rowhead").all()
    ]
    assert parts[1] == ["A", "T=0.5"]
    assert sorted(matrix.locator(".lmw-text").all_text_contents()) == before  # nothing re-ran
    matrix.screenshot(path=str(SHOTS / "variations-swapped-light.png"))


def test_vs_shows_the_earlier_run_marked_and_opens_a_word_diff(lab):
    compared = view(lab, 2)
    labels = compared.locator(".lmw-colhead .lmw-label, .lmw-col .lmw-label").all_text_contents()
    assert any("previous" in label for label in labels)
    previous = compared.locator(".lmw-col.lmw-previous")
    assert previous.count() == 1
    assert "bakery." in previous.locator(".lmw-text").text_content()
    fresh = compared.locator(".lmw-col:not(.lmw-previous)").first
    assert fresh.locator("ins").count() >= 1  # the diff with the earlier column is shown
    assert "diff with" in fresh.locator(".lmw-cellinfo").text_content()
    assert "answer changed" in fresh.text_content()
    compared.scroll_into_view_if_needed()
    compared.screenshot(path=str(SHOTS / "variations-vs-light.png"))


def test_a_cached_column_is_marked(lab):
    rerun = view(lab, 3)
    assert rerun.locator(".lmw-cached").text_content() == "cached"
    assert view(lab, 1).locator(".lmw-cached").text_content() == ""


def test_dark_theme(lab):
    set_theme(lab, "JupyterLab Dark")
    for index, name in ((0, "matrix"), (2, "vs")):
        target = view(lab, index)
        target.scroll_into_view_if_needed()
        target.screenshot(path=str(SHOTS / f"variations-{name}-dark.png"))
    repeat = view(lab, 0).locator(".lmw-repeat").first
    colour = repeat.evaluate("(e) => getComputedStyle(e).color")
    background = lab.evaluate("getComputedStyle(document.body).backgroundColor")
    assert colour != background
    set_theme(lab, "JupyterLab Light")
