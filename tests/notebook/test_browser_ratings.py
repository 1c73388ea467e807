"""Your own ratings in JupyterLab (headless Chromium): thumbs by click and by key on a focused
cell, blind pairwise mode (labels hidden, A / B / tie by button and key, then revealed), the kernel
receiving all of it (a cell run afterwards reads the ratings and the leaderboard), the static copy
following, and every rating mark's contrast in JupyterLab Light and Dark (>= 3:1). Screenshots go
to /tmp/lmw_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_server import CONTRAST_JS, lab_with_notebook, set_theme

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

CELLS = [
    "%load_ext lmwidgets\nimport lmwidgets\n"
    "for name, reply in (('s', 'Red is warm.'), ('t', 'Blue, like the sea.'), ('u', 'Green.')):\n"
    "    lmwidgets.load_model(engine='scripted', name=name, replies={'*': reply})",
    "%%prompt --models s,t --out pair\nName a colour.",
    "%%prompt --models s,t,u --out three\nName a colour you like.",
    "board = lmwidgets.leaderboard(samples=20)\n"
    "print('BOARD', [r.rating for r in pair], "
    "sorted((p.winner or 'tie', p.blind) for p in three.preferences), "
    "list(board.to_pandas()['variant']) if len(board) else [])\nboard",
    "items = [{'input': 'Name a warm colour.'}, {'input': 'Name a cold colour.'}]\n"
    "lmwidgets.prompt('{input}', models='s,t', dataset=items)",
    "print('ALL DONE')",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("ratings")
    with lab_with_notebook(root, "ratings.ipynb", CELLS, views=3) as page:
        page.notebook_file = root / "ratings.ipynb"
        yield page


def view(page, index: int):
    return page.locator(".lmw-live").nth(index)


def pressed(cell, which: str) -> str | None:
    return cell.locator(f".lmw-thumb.lmw-{which}").get_attribute("aria-pressed")


def wait_info(page, panel, ending: str) -> None:
    page.wait_for_function(
        "([el, ending]) => el.textContent.endsWith(ending)",
        arg=[panel.locator(".lmw-blindinfo").element_handle(), ending],
        timeout=20_000,
    )


def wait_pressed(page, root, index: int, which: str, value: str = "true") -> None:
    page.wait_for_function(
        """([root, index, which, value]) => root.querySelectorAll('.lmw-col')[index]
             ?.querySelector(`.lmw-thumb.lmw-${which}`)?.getAttribute('aria-pressed') === value""",
        arg=[root.element_handle(), index, which, value],
        timeout=20_000,
    )


def test_thumbs_by_click_and_by_key_reach_the_kernel(lab):
    pair = view(lab, 0)
    cells = pair.locator(".lmw-col")
    assert cells.count() == 2 and pressed(cells.nth(0), "up") == "false"
    notebook_cells = lab.locator(".jp-Notebook .jp-Cell").count()
    cells.nth(0).locator(".lmw-thumb.lmw-up").click()
    wait_pressed(lab, pair, 0, "up")  # the kernel recorded it and sent the cell back
    cells.nth(1).locator(".lmw-text").click()  # focus the cell (not a button)
    cells.nth(1).focus()
    lab.keyboard.press("d")
    wait_pressed(lab, pair, 1, "down")
    lab.keyboard.press("d")  # a second d: JupyterLab's "d d" must not delete a notebook cell
    wait_pressed(lab, pair, 1, "down", "false")  # the same thumb again clears it
    lab.keyboard.press("-")
    wait_pressed(lab, pair, 1, "down")
    assert lab.locator(".jp-Notebook .jp-Cell").count() == notebook_cells
    # The static copy (for viewers without a kernel) was written again with the ratings.
    copy = lab.locator(".jp-OutputArea-child .lmw-static").first
    lab.wait_for_function(
        "(el) => el.querySelectorAll('.lmw-rating').length === 2", arg=copy.element_handle()
    )
    assert "▲ liked" in copy.text_content() and "▼ disliked" in copy.text_content()
    pair.scroll_into_view_if_needed()
    pair.screenshot(path=str(SHOTS / "ratings-thumbs-light.png"))


def test_blind_pairwise_hides_labels_and_records_the_answers(lab):
    three = view(lab, 1)
    three.locator(".lmw-blindtoggle").click()
    panel = three.locator(".lmw-blind")
    panel.wait_for(state="visible", timeout=20_000)
    assert not three.locator(".lmw-body").is_visible()
    wait_info(lab, panel, "pair 1 of 3")
    assert panel.locator(".lmw-blindlabel").all_text_contents() == ["", ""]
    texts = panel.locator(".lmw-blindtext").all_text_contents()
    assert all(texts) and texts[0] != texts[1]
    three.scroll_into_view_if_needed()
    three.screenshot(path=str(SHOTS / "ratings-blind-light.png"))
    panel.locator(".lmw-choice-a").click()
    wait_info(lab, panel, "pair 2 of 3")
    panel.focus()
    lab.keyboard.press("r")  # reveal: this answer is not blind
    labels = panel.locator(".lmw-blindlabel").all_text_contents()
    assert all(label.startswith("= ") for label in labels)
    three.screenshot(path=str(SHOTS / "ratings-blind-revealed-light.png"))
    lab.keyboard.press("b")
    wait_info(lab, panel, "pair 3 of 3")
    assert panel.locator(".lmw-blindlabel").all_text_contents() == ["", ""]  # hidden again
    lab.keyboard.press("t")
    panel.locator(".lmw-blinddone").wait_for(state="visible", timeout=20_000)
    assert "All 3 pairs judged" in panel.locator(".lmw-blinddone").text_content()
    panel.locator(".lmw-leaveblind").click()
    three.locator(".lmw-body").wait_for(state="visible", timeout=20_000)


def test_a_dataset_grid_is_rated_per_item_and_blind_pairs_name_the_item(lab):
    grid = view(lab, 2)
    cells = grid.locator(".lmw-col")
    assert cells.count() == 4
    cells.nth(3).locator(".lmw-thumb.lmw-up").click()
    wait_pressed(lab, grid, 3, "up")
    assert [pressed(c, "up") for c in cells.all()] == ["false", "false", "false", "true"]
    grid.scroll_into_view_if_needed()
    grid.screenshot(path=str(SHOTS / "ratings-grid-light.png"))
    grid.locator(".lmw-blindtoggle").click()
    panel = grid.locator(".lmw-blind")
    panel.wait_for(state="visible", timeout=20_000)
    wait_info(lab, panel, "pair 1 of 2")
    assert panel.locator(".lmw-blinditem").text_content() in (
        "Name a warm colour.",
        "Name a cold colour.",
    )
    grid.screenshot(path=str(SHOTS / "ratings-grid-blind-light.png"))
    panel.locator(".lmw-leaveblind").click()


def test_the_kernel_has_every_rating_and_ranks_them(lab):
    board_cell = lab.locator(".jp-Notebook .jp-Cell").nth(3)
    board_cell.locator(".jp-InputArea-editor").click()
    lab.keyboard.press("Shift+Enter")
    output = board_cell.locator(".jp-OutputArea-output", has_text="BOARD ['up', 'down']")
    output.wait_for(timeout=60_000)
    line = output.text_content()
    # Two blind answers and one given with the labels shown; a tie has no winner.
    assert "('tie', True)" in line and line.count("True)") == 2 and line.count("False)") == 1
    table = board_cell.locator(".lmw-leaderboard table")
    table.wait_for(timeout=20_000)
    assert table.locator("tbody tr").count() == 3
    board_cell.screenshot(path=str(SHOTS / "ratings-leaderboard-light.png"))


def test_a_saved_notebook_keeps_them_for_after_a_restart(lab):
    import json
    import time

    from lmwidgets.run.history import saved_runs
    from lmwidgets.run.leaderboard import leaderboard

    lab.locator(".jp-Notebook").first.click()
    lab.keyboard.press("Control+s")
    path = lab.notebook_file
    deadline = time.monotonic() + 30
    while '"preferences"' not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    runs = saved_runs(path)  # what a restarted kernel finds again
    pair, three, grid = (entry.comparison for entry in runs)
    assert [r.rating for r in pair] == ["up", "down"]
    assert [r.rating for r in grid] == [None, None, None, "up"]
    assert len(three.preferences) == 3 and sum(p.blind for p in three.preferences) == 2
    entries = [e for r in three for e in r.record.get("preferences", [])]
    assert all(isinstance(e["seed"], int) and len(e["shown"]) == 2 for e in entries)
    assert len(leaderboard(notebook=path, samples=10)) == 3  # s, t and u
    json.loads(path.read_text())  # still a notebook


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_rating_marks_read_at_3_to_1_in_both_themes(lab, theme):
    set_theme(lab, theme)
    try:
        pair = view(lab, 0)
        marks = {
            "thumb up": pair.locator('.lmw-thumb.lmw-up[aria-pressed="true"]').first,
            "thumb down": pair.locator('.lmw-thumb.lmw-down[aria-pressed="true"]').first,
            "thumb off": pair.locator('.lmw-thumb[aria-pressed="false"]').first,
        }
        static = lab.locator(".jp-OutputArea-child .lmw-static").first
        marks["static liked"] = static.locator('.lmw-rating[data-rating="up"]')
        marks["static disliked"] = static.locator('.lmw-rating[data-rating="down"]')
        dark = theme.endswith("Dark")
        for name, mark in marks.items():
            found = mark.evaluate(CONTRAST_JS)
            assert found["ratio"] >= 3, (theme, name, found)
            if name.startswith("thumb"):
                assert (found["background"] < 0.2) == dark, (theme, name, found)
        edge = pair.locator('.lmw-thumb.lmw-up[aria-pressed="true"]').first.evaluate(
            "(e) => getComputedStyle(e).borderTopWidth"
        )
        assert edge == "2px"  # pressed is also told by its box, not by colour alone
        suffix = "dark" if dark else "light"
        pair.scroll_into_view_if_needed()
        pair.screenshot(path=str(SHOTS / f"ratings-thumbs-{suffix}.png"))
        three = view(lab, 1)
        three.locator(".lmw-blindtoggle").click()
        wait_info(lab, three.locator(".lmw-blind"), "blind pairwise")
        three.screenshot(path=str(SHOTS / f"ratings-blind-done-{suffix}.png"))
        three.locator(".lmw-leaveblind").click()
    finally:
        set_theme(lab, "JupyterLab Light")
