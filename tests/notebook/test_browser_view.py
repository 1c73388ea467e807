"""The live view in JupyterLab (headless Chromium) as a place to judge outputs: a strategies x
adapters matrix with headers, words that wrap whole, a dataset grid with verdicts and a filter,
the truncation badge, Expand and Copy, and readable colours in JupyterLab Dark.

One JupyterLab server, one notebook session and one page are shared by every check (the runs use
the scripted engine: no weights, milliseconds). Screenshots go to /tmp/lmw_shots/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab_server import (
    chromium_page,
    done_output,
    jupyter_lab,
    lab_settings,
    notebook_json,
    open_notebook,
    require_chromium,
    run_all_cells,
    set_theme,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

SETUP = """%load_ext lmwidgets
import lmwidgets
from lmwidgets.notebook.live import widget_of
LONG = ("This manageable comparison shows remarkable understanding of considerable "
        "international collaboration between extraordinary organisations. ") * 3
LINES = "\\n".join(f"line {i}: counting steadily upward" for i in range(60))
def reply(prompt, adapter):
    if "Count" in prompt:
        return LINES + "\\nThe answer is 60."
    if "3+3" in prompt:
        return "Adding them up. The answer is 7."
    if "5+5" in prompt:
        return "Easy. The answer is 10."
    return LONG + "The answer is 4."
lmwidgets.load_model(engine="scripted", name="script", replies=reply,
                     adapters={"pirate": lambda s: "Arr! " + s.replace("4", "5")})
data = [{"input": "2+2", "expected": "4"}, {"input": "3+3", "expected": "6"},
        {"input": "5+5", "expected": "10"}]"""

CELLS = [
    SETUP,
    "%%prompt --compare zero-shot,cot --adapters base,pirate --out m\n"
    "What is 2+2? Say hi to {nme}.",
    "%%prompt --strategy cot --adapters base,pirate --dataset data --out d\nCompute {input}.",
    "%%prompt --max-new-tokens 400 --out c\nCount to sixty.",
    "%%prompt --max-new-tokens 5 --out t\nCount to sixty, briefly.",
    "widget_of(d).min_column_width = 600\nprint('ALL DONE', m.status, d.status, t[0].finish_reason)",
]

CONTRAST = """(el) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (node) => {
    const layers = [];
    for (let e = node; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let base = [255, 255, 255];
    for (const c of layers.reverse()) base = base.map((v, i) => v * (1 - c[3]) + c[i] * c[3]);
    return base;
  };
  const lum = (rgb) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const bg = background(el);
  const c = parse(getComputedStyle(el).color);
  const fg = [0, 1, 2].map((i) => c[i] * c[3] + bg[i] * (1 - c[3]));
  const [a, b] = [lum(fg), lum(bg)];
  return { ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), background: lum(bg) };
}"""

SPLIT_WORDS = """(text) => {
  const node = text.firstChild;
  const s = node.textContent;
  const split = [];
  const re = /[A-Za-z]{6,}/g;
  let m;
  while ((m = re.exec(s))) {
    const r = document.createRange();
    r.setStart(node, m.index);
    r.setEnd(node, m.index + m[0].length);
    const tops = new Set([...r.getClientRects()].map((x) => Math.round(x.top)));
    if (tops.size > 1) split.push(m[0]);
  }
  const style = getComputedStyle(text);
  const lines = Math.round(text.scrollHeight / parseFloat(style.lineHeight));
  return { split, lines, wordBreak: style.wordBreak, width: text.clientWidth };
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("view")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Every cell stays in the page (no windowing), so every widget can be measured.
    lab_settings(root, "@jupyterlab/notebook-extension/tracker", {"windowingMode": "none"})
    (root / "view.ipynb").write_text(notebook_json(CELLS))
    with jupyter_lab(root) as (base, token), chromium_page(clipboard=True) as page:
        open_notebook(page, base, token, "view.ipynb")
        run_all_cells(page)
        done_output(page).wait_for(timeout=120_000)
        page.wait_for_function(
            "document.querySelectorAll('.lmw-live').length === 4", timeout=30_000
        )
        page.wait_for_timeout(500)
        yield page


def widget(page, title: str):
    return page.locator(".lmw-live").filter(has=page.locator(".lmw-title", has_text=title)).first


def shoot(page, title: str, name: str) -> None:
    view = widget(page, title)
    view.scroll_into_view_if_needed()
    view.screenshot(path=str(SHOTS / name))


def test_all_runs_finished(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE done done length" in line


def test_matrix_has_row_and_column_headers_and_places_each_cell(lab):
    view = widget(lab, "What is 2+2?")
    assert view.locator(".lmw-colhead .lmw-label").all_text_contents() == ["base", "pirate"]
    assert view.locator(".lmw-rowhead .lmw-rowlabel").all_text_contents() == ["zero-shot", "cot"]
    assert view.locator(".lmw-corner").text_content() == "strategy \\ adapter"
    places = view.evaluate(
        """(root) => {
          const box = (el) => el.getBoundingClientRect();
          const heads = [...root.querySelectorAll('.lmw-colhead')].map(box);
          const rows = [...root.querySelectorAll('.lmw-rowhead')].map(box);
          return [...root.querySelectorAll('.lmw-col')].map((c) => {
            const b = box(c);
            return { row: +c.dataset.row, col: +c.dataset.col, text: c.querySelector('.lmw-text').textContent,
                     alignedCol: Math.abs(b.left - heads[+c.dataset.col].left) < 2,
                     alignedRow: Math.abs(b.top - rows[+c.dataset.row].top) < 2 };
          });
        }"""
    )
    assert sorted((p["row"], p["col"]) for p in places) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for place in places:
        assert place["alignedCol"] and place["alignedRow"], place
        assert place["text"].startswith("Arr!") == (place["col"] == 1), place
    # The answers: cot base says 4, cot pirate 5; they disagree and the summary says so.
    summary = view.locator(".lmw-summary").text_content()
    assert "agree" in summary
    cot_pirate = view.locator(".lmw-col[data-row='1'][data-col='1']")
    assert cot_pirate.locator(".lmw-answer code").text_content() == "5"
    assert (
        view.locator(".lmw-col[data-row='1'][data-col='0'] .lmw-answer code").text_content() == "4"
    )
    groups = {
        view.locator(f".lmw-col[data-row='1'][data-col='{c}']").get_attribute("data-group")
        for c in (0, 1)
    }
    assert len(groups) == 2 and None not in groups
    # What ran: the exact prompt and the settings, collapsed until opened.
    details = cot_pirate.locator("details.lmw-prompt")
    assert details.get_attribute("open") is None
    details.locator("summary").click()
    assert "2+2" in cot_pirate.locator(".lmw-prompttext").text_content()
    settings = cot_pirate.locator(".lmw-settings").text_content()
    assert "temperature 0" in settings and "adapter pirate" in settings and "max tokens" in settings
    details.locator("summary").click()
    # The undefined {nme} is noted; a finished run has no Stop button.
    assert (
        "{nme} is not defined in the notebook: left as written"
        in view.locator(".lmw-message").text_content()
    )
    assert not view.locator(".lmw-stop").is_visible()
    shoot(lab, "What is 2+2?", "matrix-light.png")


def test_words_wrap_whole_in_every_column(lab):
    view = widget(lab, "What is 2+2?")
    for text in view.locator(".lmw-text").all():
        found = text.evaluate(SPLIT_WORDS)
        assert found["wordBreak"] != "break-all", found
        assert found["lines"] > 1, found  # the sentence does wrap...
        assert found["split"] == [], found  # ...but never inside a word


def test_dataset_grid_verdicts_and_filters(lab):
    view = widget(lab, "Compute")
    heads = view.locator(".lmw-colhead").all_text_contents()
    assert len(heads) == 2 and all("accuracy" in h for h in heads), heads
    rows = view.locator(".lmw-rowlabel").all_text_contents()
    assert rows == ["2+2", "3+3", "5+5"]
    assert view.locator(".lmw-foot").first.text_content().startswith("3 items")
    # Compact cells: no per-cell stats line (it is in the footer and the tooltip).
    assert not view.locator(".lmw-col .lmw-stats").first.is_visible()
    wrong = view.locator(".lmw-col[data-correct='false']")
    assert wrong.count() == 3  # 2+2 pirate (5), 3+3 both (7)
    verdict = view.locator(".lmw-col[data-row='1'][data-col='0'] .lmw-verdict").text_content()
    assert "✗" in verdict and "7" in verdict and "6" in verdict
    right = view.locator(".lmw-col[data-row='0'][data-col='0'] .lmw-verdict").text_content()
    assert "✓" in right and "4" in right

    def visible() -> list[tuple[str, str]]:
        return [
            (c.get_attribute("data-row"), c.get_attribute("data-col"))
            for c in view.locator(".lmw-col").all()
            if c.is_visible()
        ]

    view.locator(".lmw-filter").select_option("wrong")
    assert sorted(visible()) == [("0", "1"), ("1", "0"), ("1", "1")]
    assert not view.locator(".lmw-rowhead").nth(2).is_visible()
    view.locator(".lmw-filter").select_option("disagree")
    assert sorted(visible()) == [("0", "0"), ("0", "1")]
    view.locator(".lmw-filter").select_option("all")
    assert len(visible()) == 6


def test_wide_grid_scrolls_sideways_with_sticky_headers(lab):
    # The notebook set widget_of(d).min_column_width = 600: wider than the output area.
    view = widget(lab, "Compute")
    scroll = view.locator(".lmw-scroll")
    sizes = scroll.evaluate("(s) => [s.scrollWidth, s.clientWidth]")
    assert sizes[0] > sizes[1] + 100, sizes
    width = view.locator(".lmw-col").first.evaluate("(c) => c.getBoundingClientRect().width")
    assert width >= 599
    before = view.locator(".lmw-rowhead").first.bounding_box()
    scroll.evaluate("(s) => { s.scrollLeft = 400; }")
    lab.wait_for_timeout(200)
    after = view.locator(".lmw-rowhead").first.bounding_box()
    assert abs(after["x"] - before["x"]) < 2  # the row headers stay in place
    shoot(lab, "Compute", "grid-light-scrolled.png")
    scroll.evaluate("(s) => { s.scrollLeft = 0; }")


def test_truncated_answer_is_marked_not_done(lab):
    view = widget(lab, "Count to sixty, briefly.")
    assert view.locator(".lmw-badge").first.text_content() == "truncated (max tokens)"
    assert view.locator(".lmw-status").text_content() == "truncated (max tokens)"
    assert not view.locator(".lmw-stop").is_visible()


def test_expand_and_copy(lab):
    view = widget(lab, "Count to sixty.")
    text = view.locator(".lmw-text").first
    assert text.evaluate("(t) => t.scrollTop") == 0  # a finished answer shows its start
    short = text.evaluate("(t) => t.clientHeight")
    view.locator(".lmw-expand").first.click()
    tall = text.evaluate("(t) => t.clientHeight")
    assert tall > short + 200, (short, tall)
    assert view.locator(".lmw-expand").first.text_content() == "Collapse"
    view.locator(".lmw-expand").first.click()
    assert text.evaluate("(t) => t.clientHeight") == short
    view.locator(".lmw-copy").first.click()
    lab.wait_for_function(
        "(el) => el.dataset.copied === '1'", arg=view.locator(".lmw-col").first.element_handle()
    )
    assert view.locator(".lmw-copy").first.text_content() == "copied"
    copied = lab.evaluate("navigator.clipboard.readText()")
    assert copied == text.text_content() and copied.startswith("line 0:")


def test_dark_theme_is_readable(lab):
    shoot(lab, "Compute", "grid-light.png")
    set_theme(lab, "JupyterLab Dark")
    try:
        matrix = widget(lab, "What is 2+2?")
        answer = matrix.locator(".lmw-answer code").first.evaluate(CONTRAST)
        assert answer["background"] < 0.2, answer  # the theme applies: a dark chip
        assert answer["ratio"] >= 4.5, answer
        status = matrix.locator(".lmw-status").evaluate(CONTRAST)
        assert status["ratio"] >= 3, status
        text = matrix.locator(".lmw-text").first.evaluate(CONTRAST)
        assert text["ratio"] >= 4.5, text
        grid = widget(lab, "Compute")
        for selector in (".lmw-verdict", ".lmw-colhead .lmw-label", ".lmw-rowlabel"):
            found = grid.locator(selector).first.evaluate(CONTRAST)
            assert found["ratio"] >= 4.5, (selector, found)
        badge = widget(lab, "Count to sixty, briefly.").locator(".lmw-badge").first
        assert badge.evaluate(CONTRAST)["ratio"] >= 4.5
        shoot(lab, "What is 2+2?", "matrix-dark.png")
        shoot(lab, "Compute", "grid-dark.png")
    finally:
        set_theme(lab, "JupyterLab Light")
    assert json.dumps(lab.dialogs) == "[]"
