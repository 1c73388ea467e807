"""The live view's token view in JupyterLab (headless Chromium): the tokens toggle shades each
token by probability with a legend, hovering or focusing a token shows its alternatives, a
hostile token stays text, columns mark where their tokens diverge, the word diff highlights
what differs, answer confidence sits beside the answer, shaded tokens read in JupyterLab Dark,
and clicking an alternative forks a column.

One JupyterLab server, one notebook session and one page are shared by every check (the runs use
the scripted engine, which gives deterministic token probabilities). Screenshots go to
/tmp/lmw_tokens/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab_server import (
    CONTRAST_JS,
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

import lmwidgets

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_tokens")
HOSTILE = "<script>window.lmwPwned=1</script>"

SETUP = f"""%load_ext lmwidgets
import lmwidgets
def reply(prompt, adapter):
    if "3+3" in prompt:
        return "Six, I think."
    return "Let me think it through. The answer is 4. {HOSTILE} Done."
lmwidgets.load_model(engine="scripted", name="script", replies=reply,
                     adapters={{"pirate": lambda s: "Arr! " + s.replace("4", "5")}})"""

CELLS = [
    SETUP,
    "%%prompt --adapters base,pirate --logprobs 5 --out m\nWhat is 2+2?",
    "%%prompt --out plain\nWhat is 3+3?",
    "print('ALL DONE', m.status, plain.status, len(m[0].tokens_detail))",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("tokens")
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab_settings(root, "@jupyterlab/notebook-extension/tracker", {"windowingMode": "none"})
    (root / "tokens.ipynb").write_text(notebook_json(CELLS))
    with jupyter_lab(root) as (base, token), chromium_page() as page:
        open_notebook(page, base, token, "tokens.ipynb")
        run_all_cells(page)
        done_output(page).wait_for(timeout=120_000)
        page.wait_for_function(
            "document.querySelectorAll('.lmw-live').length === 2", timeout=30_000
        )
        page.wait_for_timeout(500)
        yield page


def widget(page, title: str):
    return page.locator(".lmw-live").filter(has=page.locator(".lmw-title", has_text=title)).first


def shoot(page, title: str, name: str) -> None:
    view = widget(page, title)
    view.scroll_into_view_if_needed()
    view.screenshot(path=str(SHOTS / name))


def plain_text(text) -> str:
    """A cell's text in the token view without the divergence marker."""
    return text.evaluate(
        "(t) => [...t.childNodes].filter((n) => !n.classList?.contains('lmw-diverge'))"
        ".map((n) => n.textContent).join('')"
    )


def tokens_on(page, title: str = "What is 2+2?"):
    view = widget(page, title)
    toggle = view.locator(".lmw-tokentoggle")
    if toggle.get_attribute("aria-pressed") != "true":
        toggle.click()
    return view


def test_runs_finished_with_token_data(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE done done" in line
    assert int(line.split()[-1]) > 10


def test_toggle_shades_tokens_and_shows_the_legend(lab):
    view = widget(lab, "What is 2+2?")
    assert view.locator(".lmw-tok[data-i]").count() == 0  # off by default
    assert not view.locator(".lmw-legend").is_visible()
    tokens_on(lab)
    lab.wait_for_function(
        "(v) => v.querySelectorAll('.lmw-tok[data-i]').length > 20", arg=view.element_handle()
    )
    assert view.locator(".lmw-tokentoggle").get_attribute("aria-pressed") == "true"
    legend = view.locator(".lmw-legend")
    assert legend.is_visible()
    assert legend.locator(".lmw-swatch").all_text_contents() == [
        "p ≥ 0.9",
        "≥ 0.7",
        "≥ 0.5",
        "≥ 0.3",
        "≥ 0.1",
        "p < 0.1",
    ]
    first = view.locator(".lmw-text").first
    spans = first.locator(".lmw-tok[data-i]")
    # The first token is in the Tab order; the arrow keys reach the others.
    assert spans.first.get_attribute("tabindex") == "0"
    assert set(spans.evaluate_all("(s) => s.slice(1).map((e) => e.tabIndex)")) == {-1}
    buckets = set(spans.evaluate_all("(s) => s.map((e) => e.dataset.b)"))
    assert len(buckets) >= 3, buckets  # the scripted probabilities span several shades
    shaded = view.locator(".lmw-tok[data-i][data-b='2']").first
    background = shaded.evaluate("(e) => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background
    # The spans are the column's whole text, token by token (the marker left out).
    text = plain_text(first)
    assert text == "".join(spans.all_text_contents())
    assert text.startswith("Let me think it through.") and text.endswith("Done.")
    shoot(lab, "What is 2+2?", "tokens-light.png")


def test_a_hostile_token_is_text(lab):
    view = tokens_on(lab)
    hostile = view.locator(".lmw-tok[data-i]", has_text="lmwPwned").first
    assert hostile.text_content().strip() == HOSTILE
    assert view.locator("script").count() == 0
    assert lab.evaluate("window.lmwPwned") is None


def test_columns_mark_where_their_tokens_diverge(lab):
    view = tokens_on(lab)
    marks = view.locator(".lmw-diverge")
    assert marks.count() == 2
    assert marks.all_text_contents() == [
        "▸ diverges here from pirate",
        "▸ diverges here from base",
    ]
    # The base column departs at its first token ("Let" vs "Arr!").
    base = view.locator(".lmw-text").first
    following = base.locator(".lmw-diverge + .lmw-tok").first.text_content()
    assert following == "Let"
    info = view.locator(".lmw-cellinfo").first.text_content()
    assert info == "diverges from pirate at token 1"


def test_hover_shows_the_probability_and_alternatives(lab):
    view = tokens_on(lab)
    token = view.locator(".lmw-text").first.locator(".lmw-tok[data-i]").nth(2)
    token.hover()
    popover = view.locator(".lmw-popover")
    popover.wait_for(state="visible", timeout=5_000)
    assert token.get_attribute("aria-describedby") == popover.get_attribute("id")
    assert popover.locator(".lmw-popp").text_content().startswith("p = 0.")
    rows = popover.locator(".lmw-altrow")
    assert rows.count() == 5
    assert popover.locator(".lmw-alt[data-chosen='1']").count() == 1  # the token itself
    probabilities = [float(p) for p in popover.locator(".lmw-altp").all_text_contents()]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    shown = token.text_content().replace(" ", "␣")
    assert popover.locator(".lmw-poptoken").text_content() == shown
    view.locator(".lmw-text").first.screenshot(path=str(SHOTS / "popover-cell.png"))
    lab.screenshot(path=str(SHOTS / "popover-page.png"))
    # It sits right under (or over) the token.
    box, at = popover.bounding_box(), token.bounding_box()
    assert abs(box["x"] - at["x"]) < 40, (box, at)
    assert (
        abs(box["y"] - (at["y"] + at["height"])) < 12
        or abs(box["y"] + box["height"] - at["y"]) < 12
    )
    lab.mouse.move(5, 5)
    popover.wait_for(state="hidden", timeout=5_000)


def test_keyboard_focus_shows_the_alternatives_too(lab):
    view = tokens_on(lab)
    first = view.locator(".lmw-text").nth(1).locator(".lmw-tok[data-i]").first
    first.focus()
    for _ in range(3):
        lab.keyboard.press("ArrowRight")
    token = view.locator(".lmw-text").nth(1).locator(".lmw-tok[data-i]").nth(3)
    assert token.evaluate("(t) => t === document.activeElement")
    popover = view.locator(".lmw-popover")
    popover.wait_for(state="visible", timeout=5_000)
    assert token.get_attribute("aria-describedby") == popover.get_attribute("id")
    assert popover.locator(".lmw-altrow").count() == 5
    lab.keyboard.press("ArrowRight")  # the next token: its own alternatives
    following = view.locator(".lmw-text").nth(1).locator(".lmw-tok[data-i]").nth(4)
    assert following.evaluate("(t) => t === document.activeElement")
    assert following.get_attribute("aria-describedby") == popover.get_attribute("id")
    assert token.get_attribute("aria-describedby") is None
    lab.keyboard.press("ArrowDown")  # into the alternatives
    assert lab.evaluate("document.activeElement.classList.contains('lmw-alt')")
    lab.keyboard.press("Escape")
    popover.wait_for(state="hidden", timeout=5_000)
    assert following.evaluate("(t) => t === document.activeElement")


def test_answer_confidence_is_beside_the_answer(lab):
    view = widget(lab, "What is 2+2?")
    chips = view.locator(".lmw-conf").all_text_contents()
    assert len(chips) == 2 and all(c.startswith("p=0.") for c in chips), chips
    assert "probability of the answer" in view.locator(".lmw-conf").first.get_attribute("title")


def test_no_token_data_offers_to_get_them_for_this_view(lab):
    view = tokens_on(lab, "What is 3+3?")
    note = view.locator(".lmw-tokennote").text_content()
    assert note.startswith("No token probabilities in this run. Get them: re-run its column")
    assert view.locator(".lmw-gettokens").is_visible()
    assert view.locator(".lmw-tok[data-i]").count() == 0
    assert not view.locator(".lmw-legend").is_visible()
    assert view.locator(".lmw-text").first.text_content() == "Six, I think."


def test_diff_mode_highlights_insertions_and_deletions(lab):
    view = widget(lab, "What is 2+2?")
    select = view.locator(".lmw-diffwith").nth(1)  # the pirate column, diffed with base
    select.select_option(label="base")
    text = view.locator(".lmw-text").nth(1)
    inserted = text.locator("ins.lmw-ins").all_text_contents()
    deleted = text.locator("del.lmw-del").all_text_contents()
    assert "Arr! " in inserted and "5" in inserted and "4" in deleted, (inserted, deleted)
    assert text.get_attribute("data-mode") == "diff"
    assert "diff with base: +2 / −1 words" in view.locator(".lmw-cellinfo").nth(1).text_content()
    colour = text.locator("ins.lmw-ins").first.evaluate(
        "(e) => getComputedStyle(e).backgroundColor"
    )
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
    shoot(lab, "What is 2+2?", "diff-light.png")
    select.select_option(value="")
    assert text.get_attribute("data-mode") == "tokens"


def test_dark_theme_shaded_tokens_are_readable(lab):
    set_theme(lab, "JupyterLab Dark")
    try:
        view = tokens_on(lab)
        for b in ("0", "1", "2", "3", "4"):
            found = view.locator(f".lmw-tok[data-b='{b}']")
            if found.count() == 0:
                continue
            contrast = found.first.evaluate(CONTRAST_JS)
            assert contrast["ratio"] >= 4.5, (b, contrast)
            assert contrast["background"] < 0.2, (b, contrast)  # the dark theme applies
        for selector in (".lmw-diverge", ".lmw-conf", ".lmw-legend .lmw-swatch[data-b='0']"):
            contrast = view.locator(selector).first.evaluate(CONTRAST_JS)
            assert contrast["ratio"] >= 4.5, (selector, contrast)
        shoot(lab, "What is 2+2?", "tokens-dark.png")
        view.locator(".lmw-text").first.locator(".lmw-tok[data-i]").nth(5).hover()
        view.locator(".lmw-popover").wait_for(state="visible", timeout=5_000)
        popover = view.locator(".lmw-popover .lmw-alttext").first.evaluate(CONTRAST_JS)
        assert popover["ratio"] >= 4.5, popover
        lab.screenshot(path=str(SHOTS / "popover-dark-page.png"))
        lab.mouse.move(5, 5)
    finally:
        set_theme(lab, "JupyterLab Light")


@pytest.mark.skipif(
    not hasattr(lmwidgets, "fork"), reason="the fork API (lmwidgets.fork) has not landed yet"
)
def test_clicking_an_alternative_forks_a_column(lab):
    view = tokens_on(lab)
    base = view.locator(".lmw-text").first
    tokens = base.locator(".lmw-tok[data-i]")
    prefix = "".join(tokens.nth(i).text_content() for i in range(3))
    tokens.nth(3).hover()
    popover = view.locator(".lmw-popover")
    popover.wait_for(state="visible", timeout=5_000)
    choice = popover.locator("button.lmw-alt").first
    forced = choice.locator(".lmw-alttext").text_content().replace("␣", " ")
    choice.click()
    lab.wait_for_function(
        "(v) => v.querySelectorAll('.lmw-text').length === 3",
        arg=view.element_handle(),
        timeout=60_000,
    )
    lab.wait_for_function(
        "(v) => v.querySelector('.lmw-status').textContent === 'done'",
        arg=view.element_handle(),
        timeout=60_000,
    )
    texts = [plain_text(t) for t in view.locator(".lmw-text").all()]
    forks = [t for t in texts if t.startswith(prefix + forced)]
    assert len(forks) == 1, (prefix, forced, texts)
    assert view.locator(".lmw-diverge").count() >= 3  # the fork parts from its origin
    assert "forking…" not in view.locator(".lmw-message").text_content()
    shoot(lab, "What is 2+2?", "fork-light.png")
    assert json.dumps(lab.dialogs) == "[]"
