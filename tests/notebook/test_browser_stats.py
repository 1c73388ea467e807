"""Statistics and agreement in JupyterLab (headless Chromium), issue 20: a 5-item capitals grid
(two columns: one answers in sentences, one in words) and a 40-item grid whose paired test has a
p-value. The header shows each column's accuracy with its 95% interval and the paired line;
answers both judged right agree (France is not "disagreeing"); "differs" marks both answers of a
1-1 split, never the second column by position; every verdict and agreement mark reaches 3:1 in
JupyterLab Light and Dark. Screenshots go to /tmp/lmw_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from contrast import assert_contrast
from lab_server import lab_with_notebook, set_theme
from statsmodels.stats.proportion import proportion_confint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

SETUP = """%load_ext lmwidgets
import re
import lmwidgets
capitals = [{"input": c, "expected": e} for c, e in [
    ("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
    ("Peru", "Lima")]]
lmwidgets.load_model(engine="scripted", name="sentences", replies={
    "France": "The capital of France is Paris.", "Italy": "The capital of Italy is Rome.",
    "Spain": "The capital of Spain is Barcelona.", "Japan": "Kyoto",
    "Peru": "The capital of Peru is Lima."})
lmwidgets.load_model(engine="scripted", name="words", replies={
    "France": "Paris", "Italy": "Milan", "Spain": "Madrid", "Japan": "Osaka", "Peru": "Lima"})
items = [{"input": f"question {i:02d}", "expected": "yes"} for i in range(40)]
def replier(right):
    def reply(prompt, adapter):
        n = int(re.search(r"question (\\d+)", prompt).group(1))
        return "The answer is yes." if n in right else "no"
    return reply
lmwidgets.load_model(engine="scripted", name="A", replies=replier(set(range(20))))
lmwidgets.load_model(engine="scripted", name="B", replies=replier(set(range(6, 36))))"""

CELLS = [
    SETUP,
    "%%prompt --models sentences,words --dataset capitals --out caps\nCapital of {input}?",
    "%%prompt --models A,B --dataset items --out ab\nAnswer {input}.",
    "print('ALL DONE', caps.status, ab.status)",
]

VERDICTS = [
    ".lmw-verdict[data-correct='true'] .lmw-mark",
    ".lmw-verdict[data-correct='false'] .lmw-mark",
    ".lmw-verdict",
    ".lmw-colhead .lmw-score",
    ".lmw-progresstext",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("stats")
    # a busy machine can take minutes to start the kernel and run both grids
    with lab_with_notebook(root, "stats.ipynb", CELLS, views=2, done_ms=360_000) as page:
        yield page


def view(page, index: int):
    return page.locator(".lmw-live").nth(index)


def _interval(right: int, n: int) -> str:
    low, high = proportion_confint(right, n, alpha=0.05, method="wilson")
    return f"accuracy {right / n:.0%} ({low * 100:.0f}–{high:.0%})"


def test_the_header_shows_intervals_and_the_paired_line(lab):
    caps, ab = view(lab, 0), view(lab, 1)
    assert caps.locator(".lmw-colhead .lmw-score").all_text_contents() == [
        _interval(3, 5),
        _interval(3, 5),
    ]
    assert ab.locator(".lmw-colhead .lmw-score").all_text_contents() == [
        _interval(20, 40),
        _interval(30, 40),
    ]
    summary = ab.locator(".lmw-summary").text_content()
    assert "B is right where A is wrong on 16 of 40 items, the reverse on 6; p = " in summary
    assert "(exact McNemar)" in summary
    few = caps.locator(".lmw-summary").text_content()
    assert "too few items for a p-value (5 paired, at least 10)" in few


def test_the_progress_bar_says_its_count(lab):
    ab = view(lab, 1)
    text = ab.locator(".lmw-progresstext")
    assert text.is_visible()
    done, total = text.text_content().removesuffix(" batches").split(" of ")
    assert done == total and int(total) >= 2  # 40 items x 2 models in batches, all done
    bar = ab.locator("progress.lmw-progress")
    assert bar.evaluate("(e) => [e.value, e.max]") == [int(total), int(total)]
    assert bar.bounding_box()["height"] >= 6


def test_both_right_answers_agree_and_a_split_marks_both(lab):
    caps = view(lab, 0)

    def marks(row: int) -> list[str | None]:
        cells = caps.locator(f".lmw-col[data-row='{row}']")
        return [cells.nth(c).get_attribute("data-agree") for c in range(2)]

    heads = caps.locator(".lmw-rowsummary").all_text_contents()
    assert heads[0] == "both columns agree on Paris", heads
    assert marks(0) == ["all", "all"] and marks(4) == ["all", "all"]
    # Italy (sentences right) and Spain (words right): both columns differ, whichever is right.
    assert marks(1) == ["minor", "minor"] and marks(2) == ["minor", "minor"]
    caps.locator(".lmw-filter").select_option("disagree")
    shown = [caps.locator(".lmw-rowhead").nth(r).is_visible() for r in range(len(heads))]
    assert shown == [False, True, True, True, False]
    caps.locator(".lmw-filter").select_option("all")


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_every_mark_reaches_3_to_1(lab, theme):
    set_theme(lab, theme)
    try:
        found = assert_contrast(lab, VERDICTS)
        found += assert_contrast(lab, [".lmw-colhead .lmw-score"], pseudo="::before")
        found += assert_contrast(
            lab, [".lmw-col[data-agree='minor'] .lmw-celltop"], pseudo="::after"
        )
        found += assert_contrast(
            lab,
            [".lmw-col[data-group='0']", ".lmw-col[data-group='1']"],
            prop="border-left-color",
        )
        cross = [f for f in found if f["text"] == "✗"]
        assert cross and all(f["ratio"] >= 3 for f in cross)
        name = "light" if "Light" in theme else "dark"
        for index, label in ((0, "capitals"), (1, "paired")):
            target = view(lab, index)
            target.scroll_into_view_if_needed()
            target.screenshot(path=str(SHOTS / f"stats-{label}-{name}.png"))
    finally:
        set_theme(lab, "JupyterLab Light")
