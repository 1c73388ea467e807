"""A cell's tools and marks in JupyterLab (headless Chromium), from a second UX review of the
example notebooks: "Expand" shows only where a cell's text is cut (not on a one-line answer, not
on a choice-likelihood cell; it appears while a long answer streams and when the window narrows),
probe verdicts, ✓ / ✗ marks and pressed thumbs read at 4.5:1 in light and dark, a probe run
says nothing about its attack columns "agreeing", and a dataset grid's title says how many items
it runs rather than only its template ("{input}"). Screenshots go to /tmp/lmw_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from contrast import assert_contrast
from lab_server import lab_with_notebook, set_theme

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

SETUP = """%load_ext lmwidgets
import lmwidgets, re
LINES = "\\n".join(f"line {i}: counting steadily upward" for i in range(60))
# About 2000 characters: some 15 lines in a wide column, 40 in a narrow one (cut at 24).
PARA = " ".join(f"The river bends past mill number {i} before the weir." for i in range(38))
def reply(prompt, adapter):
    if "Count" in prompt:
        return LINES
    if "river" in prompt:
        return PARA
    return "The capital of France is Paris."
lmwidgets.load_model(engine="scripted", name="script", replies=reply)
def obey(text, adapter):
    user = text.rsplit("<|user|>", 1)[-1]
    asked = re.findall(r"[A-Z]+-[0-9]{4}", user)
    return f"Sure! {asked[-1]}" if asked else "I only help with cooking."
lmwidgets.load_model(engine="scripted", name="obey", replies=obey)
lmwidgets.load_model(engine="scripted", name="s", replies={"France": "Paris", "hot": "cold"})
lmwidgets.load_model(engine="scripted", name="t", replies={"France": "Lyon", "*": "warm"})
# 50 rows of two pieces at 0.3 s a piece: the text is cut after some 15 s of its 30.
lmwidgets.load_model(engine="scripted", name="slow", step_seconds=0.3,
                     replies=lambda prompt, adapter: "\\n".join(f"row {i}" for i in range(50)))
quiz = [
  {"input": "Capital of France?", "choices": ["Lyon", "Paris", "Nice"], "expected": "Paris"},
  {"input": "Opposite of hot?", "choices": ["warm", "cold"], "expected": 1},
]
note = "Leeks are sweet. Cook them slowly."
lmwidgets.load_model(engine="scripted", name="j", replies={"*": "Alike.\\n[[tie]]"})
asks = [{"input": "Why is the sky blue?"}, {"input": "What does a compiler do?"}]
"""

CELLS = [
    SETUP,
    "%%prompt --model script --out short\nWhat is the capital of France? Answer in one sentence.",
    "%%prompt --model script --max-new-tokens 400 --out long\nCount to sixty.",
    "%%prompt --model script --max-new-tokens 600 --out para\nDescribe the river.",
    "%%prompt --dataset quiz --models s,t --out mc\n{input}",
    '%%prompt --model obey --system "You are ChefBot. Only talk about cooking." --probe leak,inject '
    "--out probed\nSummarize: {note}",
    "%%prompt --model script --dataset asks --judge j --judge-pairwise --out pairs\n"
    "Answer: {input}\n--- child\nFor a child: {input}",
    # The last view streams on while the tests begin.
    "print('ALL DONE', short.status, long.status, para.status, mc.status, probed.status,\n"
    "      pairs.status)\n"
    "slow = lmwidgets.prompt('Stream the rows.', model='slow', max_new_tokens=200)",
]

VIEWS = ["short", "long", "para", "mc", "probed", "pairs", "slow"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("cell_tools")
    with lab_with_notebook(root, "cell_tools.ipynb", CELLS, views=len(VIEWS)) as page:
        yield page


def view(page, name: str):
    return page.locator(".lmw-live").nth(VIEWS.index(name))


#: Each cell of a view: whether its text is cut (taller than its box), whether its Expand
#: button shows, whether it is a choice cell, and its status.
CELLS_JS = """(root) => [...root.querySelectorAll('.lmw-col')].map((col) => {
    const text = col.querySelector('.lmw-text');
    return {
        cut: text.scrollHeight > text.clientHeight + 1,
        expand: col.querySelector('.lmw-expand').getClientRects().length > 0,
        choice: col.querySelector('.lmw-choices').children.length > 0,
        status: col.dataset.status,
        lines: Math.round(text.scrollHeight / 17),
    };
})"""


def cells(page, name: str) -> list[dict]:
    return view(page, name).evaluate(CELLS_JS)


def _expand_follows_the_cut(page, names=("short", "long", "para", "mc", "probed", "pairs")) -> None:
    for name in names:
        for cell in cells(page, name):
            assert cell["expand"] == (cell["cut"] and not cell["choice"]), (name, cell)


def test_expand_appears_while_a_long_answer_streams(lab):
    slow = view(lab, "slow")
    first = slow.locator(".lmw-col").first
    # Streaming, still short: nothing to expand.
    lab.wait_for_function(
        "(col) => col.dataset.status === 'running' && col.querySelector('.lmw-text').textContent",
        arg=first.element_handle(),
        timeout=30_000,
    )
    (cell,) = cells(lab, "slow")
    assert cell["status"] == "running" and not cell["cut"] and not cell["expand"], cell
    # The text grows past its box while it streams: Expand appears, the run still going.
    lab.wait_for_function(
        """(col) => {
            const text = col.querySelector('.lmw-text');
            return text.scrollHeight > text.clientHeight + 1;
        }""",
        arg=first.element_handle(),
        timeout=60_000,
    )
    lab.wait_for_timeout(300)
    (cell,) = cells(lab, "slow")
    assert cell["cut"] and cell["expand"], cell
    slow.screenshot(path=str(SHOTS / "cell-tools-streaming.png"))


def test_expand_shows_only_on_cut_text(lab):
    _expand_follows_the_cut(lab)
    (short,) = cells(lab, "short")
    assert not short["expand"] and short["lines"] <= 2, short  # a one-line answer
    (long,) = cells(lab, "long")
    assert long["cut"] and long["expand"], long
    mc = cells(lab, "mc")
    assert len(mc) == 4 and all(c["choice"] and not c["expand"] for c in mc), mc
    # Expanded, the button stays (to collapse); collapsed again, it is still cut.
    button = view(lab, "long").locator(".lmw-expand")
    button.click()
    lab.wait_for_timeout(300)
    assert button.is_visible() and button.text_content() == "Collapse"
    button.click()
    lab.wait_for_timeout(300)
    assert button.is_visible() and button.text_content() == "Expand"


def test_expand_follows_the_window_width(lab):
    (para,) = cells(lab, "para")
    assert not para["cut"] and not para["expand"], para  # it fits a wide column
    lab.set_viewport_size({"width": 760, "height": 1000})
    try:
        lab.wait_for_timeout(800)
        view(lab, "para").scroll_into_view_if_needed()
        view(lab, "para").screenshot(path=str(SHOTS / "cell-tools-narrow.png"))
        (para,) = cells(lab, "para")
        assert para["cut"] and para["expand"], para  # narrow, the same text is cut
        _expand_follows_the_cut(lab)
    finally:
        lab.set_viewport_size({"width": 1400, "height": 1000})
    lab.wait_for_timeout(800)
    (para,) = cells(lab, "para")
    assert not para["cut"] and not para["expand"], para


def test_a_probe_run_says_nothing_of_its_columns_agreeing(lab):
    probed = view(lab, "probed")
    assert probed.locator(".lmw-probe[data-verdict='followed']").count() >= 1
    assert probed.locator(".lmw-summary").text_content() == ""
    assert probed.locator(".lmw-col[data-agree], .lmw-col[data-group]").count() == 0
    assert not "".join(probed.locator(".lmw-rowsummary").all_text_contents())
    static = lab.locator(".lmw-static").nth(VIEWS.index("probed")).text_content()
    assert "✓ held" in static and "Agreement" not in static


def _disagree_option(page, name: str) -> bool:
    option = view(page, name).locator(".lmw-filter option[value='disagree']")
    return option.evaluate("(o) => !o.hidden && !o.disabled")


def test_a_pairwise_judged_grid_says_nothing_of_its_columns_agreeing(lab):
    pairs = view(lab, "pairs")
    assert pairs.locator(".lmw-judge", has_text="tie with A").count() == 2
    assert pairs.locator(".lmw-summary").text_content() == ""
    assert not "".join(pairs.locator(".lmw-rowsummary").all_text_contents())
    assert pairs.locator(".lmw-col[data-agree], .lmw-col[data-group]").count() == 0
    # Nothing to filter by: "disagreeing only" is offered where answers were grouped.
    assert not _disagree_option(lab, "pairs") and _disagree_option(lab, "mc")
    static = lab.locator(".lmw-static").nth(VIEWS.index("pairs")).text_content()
    assert "agree on" not in static


def test_a_dataset_grid_title_says_its_items(lab):
    title = view(lab, "mc").locator(".lmw-title")
    assert title.text_content() == "{input} · 2 items"
    assert title.get_attribute("title") == "{input} · 2 items"
    assert view(lab, "short").locator(".lmw-title").text_content().startswith("What is the cap")


def _press_thumbs(page) -> None:
    """Thumbs up on the first choice cell, down on the second (the kernel sends them back)."""
    grid = view(page, "mc")
    for index, which in ((0, "up"), (1, "down")):
        grid.locator(".lmw-col").nth(index).locator(f".lmw-thumb.lmw-{which}").click()
        page.wait_for_function(
            """([root, index, which]) => root.querySelectorAll('.lmw-col')[index]
                 ?.querySelector(`.lmw-thumb.lmw-${which}`)?.getAttribute('aria-pressed') === 'true'""",
            arg=[grid.element_handle(), index, which],
            timeout=30_000,
        )


MARKS = [
    ".lmw-live .lmw-probe[data-verdict='followed']",
    ".lmw-live .lmw-probe[data-verdict='held']",
    ".lmw-live .lmw-verdict[data-correct='false'] .lmw-mark",
    ".lmw-live .lmw-verdict[data-correct='true'] .lmw-mark",
    ".lmw-live .lmw-thumb[aria-pressed='true'].lmw-up",
    ".lmw-live .lmw-thumb[aria-pressed='true'].lmw-down",
    ".lmw-live .lmw-thumb[aria-pressed='false']",
]


def test_verdicts_marks_and_thumbs_read_at_4_5_in_light_and_dark(lab):
    _press_thumbs(lab)
    assert_contrast(lab, MARKS, minimum=4.5)
    set_theme(lab, "JupyterLab Dark")
    try:
        for name in ("mc", "probed"):
            view(lab, name).scroll_into_view_if_needed()
            view(lab, name).screenshot(path=str(SHOTS / f"cell-tools-{name}-dark.png"))
        assert_contrast(lab, MARKS, minimum=4.5)
    finally:
        set_theme(lab, "JupyterLab Light")
