"""What the view and the saved notebook say (issue 21), in JupyterLab and Notebook 7 (headless
Chromium): a free-form answer is not repeated in a chip, a verdict says how it matched, each
cell says how it ended once, confidence only for a short answer, accuracy marks coloured by
their value, the run's speed said once, the tokens toggle acting on its own view only; and a
saved notebook reopened without its kernel shows the static copies alone (no "Error displaying
widget"), in JupyterLab, in Notebook 7 and in nbconvert's HTML.

One JupyterLab server, one notebook session and one page are shared by the checks, in order (the
runs use the scripted engine). Screenshots go to /tmp/lmw_words/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lab_server import (
    CONTRAST_JS,
    chromium_page,
    jupyter_lab,
    lab_settings,
    notebook_json,
    open_notebook,
    require_chromium,
    run_all_cells,
    set_theme,
    shutdown_kernels,
)
from notebook7_server import jupyter_notebook, open_notebook7, require_notebook7

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_words")
STORY = "Once upon a time a small cat sat on a warm mat and dreamed of the moon all night long."

SETUP = f"""%load_ext lmwidgets
import lmwidgets
def reply(prompt, adapter):
    if "capital" in prompt:
        return "The capital of France is Paris."
    if "3+3" in prompt:
        return "Adding them up. The answer is 7."
    if "story" in prompt:
        return {STORY!r}
    if "Count" in prompt:
        return " ".join(str(i) for i in range(60))
    return "Let me think. The answer is 4."
lmwidgets.load_model(engine="scripted", name="script", replies=reply,
                     adapters={{"pirate": lambda s: s.replace("4", "5")}})
data = [{{"input": "The capital of France?", "expected": "Paris"}},
        {{"input": "2+2", "expected": "4"}}, {{"input": "3+3", "expected": "6"}}]
one = [{{"input": "2+2", "expected": "4"}}]"""

CELLS = [
    SETUP,
    "%%prompt --compare zero-shot,cot --out f\nWhat is the capital of France? Hi {nme}.",
    "%%prompt --dataset data --compare zero-shot,cot --out d\n{input}",
    "%%prompt --dataset one --adapters base,pirate --out z\nCompute {input}.",
    "%%prompt --max-new-tokens 5 --out t\nCount to sixty.",
    "%%prompt --logprobs 5 --out p\nWhat is 2+2?",
    "%%prompt --logprobs 5 --out s\nTell a story.",
    "print('ALL DONE', len(f[0].tokens_detail))",
    "%%prompt --out later\nAgain: what is 2+2?",
    "runs = globals().get('runs', 0) + 1\n"
    "print('LATER', runs, len(later[0].tokens_detail), later[0].record['generation'].get('logprobs'))",
]
#: The cells that make a live view, and so a static copy.
VIEWS = 7


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("words")
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab_settings(root, "@jupyterlab/notebook-extension/tracker", {"windowingMode": "none"})
    (root / "words.ipynb").write_text(notebook_json(CELLS))
    with jupyter_lab(root) as (base, token), chromium_page() as page:
        open_notebook(page, base, token, "words.ipynb")
        run_all_cells(page)
        page.locator(".jp-OutputArea-output", has_text="LATER").wait_for(timeout=120_000)
        page.wait_for_function(
            f"document.querySelectorAll('.lmw-live').length === {VIEWS}", timeout=30_000
        )
        page.wait_for_timeout(500)
        page.lmw = {"root": root, "base": base, "token": token}
        yield page


def widget(page, title: str):
    return page.locator(".lmw-live").filter(has=page.locator(".lmw-title", has_text=title)).first


def shoot(page, title: str, name: str) -> None:
    view = widget(page, title)
    view.scroll_into_view_if_needed()
    view.screenshot(path=str(SHOTS / name))


def visible_texts(locator) -> list[str]:
    return [el.text_content() for el in locator.all() if el.is_visible()]


def rgb(color: str) -> tuple[int, ...]:
    """A computed colour (``rgb(...)`` or ``color(srgb ...)``, as color-mix() gives) as RGB."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", color.split("(", 1)[1])][:3]
    return tuple(round(n * 255) if color.startswith("color(") else round(n) for n in numbers)


def run_cell(page, index: int) -> None:
    """Run one cell (select it, Shift+Enter)."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")


def test_a_free_form_answer_is_said_once(lab):
    view = widget(lab, "capital of France? Hi")
    assert visible_texts(view.locator(".lmw-answer")) == []  # the text is the answer
    assert view.locator(".lmw-text").all_text_contents() == ["The capital of France is Paris."] * 2
    shoot(lab, "capital of France? Hi", "free-form-light.png")
    # "4" is a part of "Let me think. The answer is 4.": its chip stays.
    assert visible_texts(widget(lab, "What is 2+2?").locator(".lmw-answer code")) == ["4"]


def test_verdicts_say_how_they_matched_and_no_answer_appears_three_times(lab):
    view = widget(lab, "{input}")
    verdicts = [
        view.locator(f".lmw-col[data-row='{r}'][data-col='0'] .lmw-verdict").text_content()
        for r in range(3)
    ]
    assert verdicts == ["✓ contains Paris", "✓ equals 4", "✗ got 7 · expected 6"]
    assert visible_texts(view.locator(".lmw-answer")) == []  # the verdict replaces the chip
    cell = view.locator(".lmw-col[data-row='2'][data-col='0']")
    assert cell.inner_text().count("7") == 2  # in the verdict and the text, not a third time
    shoot(lab, "{input}", "grid-light.png")


def test_accuracy_marks_are_coloured_by_their_value(lab):
    view = widget(lab, "Compute {input}.")
    texts = view.locator(".lmw-score").all_text_contents()
    # each accuracy with its 95% interval (core/stats.py): "accuracy 100% (21–100%)"
    assert [t.split(" (")[0] for t in texts] == ["accuracy 100%", "accuracy 0%"], texts
    assert all(re.fullmatch(r"accuracy \d+% \(\d+–\d+%\)", t) for t in texts), texts
    marks = view.locator(".lmw-score").evaluate_all(
        "(scores) => scores.map((s) => getComputedStyle(s, '::before').color)"
    )
    theme = view.evaluate(
        """(root) => {
          const probe = (name) => {
            const el = document.createElement('span');
            el.style.color = `var(${name})`;
            root.append(el);
            const color = getComputedStyle(el).color;
            el.remove();
            return color;
          };
          return [probe('--lmw-ok'), probe('--lmw-bad')];
        }"""
    )
    # 100%: the success colour; 0%: the error colour (each pulled towards the text colour to
    # read at 3:1 in both themes); between: a mix of both.
    ok, bad = (rgb(t) for t in theme)

    def distance(a, b):
        return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))

    def nearer(colour, a, b):
        return distance(colour, a) < distance(colour, b)

    full, none = (rgb(m) for m in marks)
    assert nearer(full, ok, bad) and nearer(none, bad, ok), (marks, theme)
    mixed = widget(lab, "{input}").locator(".lmw-score").first
    assert mixed.text_content().startswith("accuracy 67% (")
    between = rgb(mixed.evaluate("(s) => getComputedStyle(s, '::before').color"))
    assert between not in [full, none]


def test_each_cell_says_how_it_ended_once_and_the_run_speed_once(lab):
    view = widget(lab, "Count to sixty.")
    cell = view.locator(".lmw-col").first
    assert cell.inner_text().count("truncated") == 1  # its badge
    assert view.locator(".lmw-status").text_content() == "truncated (max tokens)"
    for title in ("capital of France? Hi", "Count to sixty."):
        view = widget(lab, title)
        speed = view.locator(".lmw-runstats").text_content()
        assert " tokens in " in speed and speed.endswith(" tok/s"), speed
        assert view.inner_text().count("tok/s") == 1  # the cells say tokens and time only
        assert "tokens · " in view.locator(".lmw-stats").first.text_content()


def test_confidence_only_for_a_short_answer(lab):
    assert visible_texts(widget(lab, "What is 2+2?").locator(".lmw-conf"))[0].startswith("p")
    story = widget(lab, "Tell a story.")
    assert story.locator(".lmw-tokentoggle").is_visible()
    assert visible_texts(story.locator(".lmw-conf")) == []  # a story's p means nothing


def test_the_tokens_toggle_acts_on_its_own_view_only(lab):
    view = widget(lab, "capital of France? Hi")
    view.locator(".lmw-tokentoggle").click()
    note = view.locator(".lmw-tokennote")
    assert note.text_content().startswith("No token probabilities in this run.")
    get = view.locator(".lmw-gettokens")
    assert get.is_visible()
    shoot(lab, "capital of France? Hi", "tokens-ask-light.png")
    # A later plain cell run after the click asks for nothing and opens unshaded.
    run_cell(lab, 8)
    run_cell(lab, 9)
    output = lab.locator(".jp-OutputArea-output", has_text="LATER 2").first
    output.wait_for(timeout=60_000)
    assert output.text_content().strip() == "LATER 2 0 None"
    later = widget(lab, "Again: what is 2+2?")
    assert later.locator(".lmw-tokentoggle").get_attribute("aria-pressed") == "false"
    assert later.locator(".lmw-tok[data-i]").count() == 0
    # "get them": this comparison again, in this view, with its tokens.
    get.click()
    lab.wait_for_function(
        "(v) => v.querySelectorAll('.lmw-tok[data-i]').length > 10 &&"
        " v.querySelector('.lmw-status').textContent === 'done'",
        arg=view.element_handle(),
        timeout=60_000,
    )
    assert view.locator(".lmw-text").first.inner_text() == "The capital of France is Paris."
    assert not get.is_visible()
    shoot(lab, "capital of France? Hi", "tokens-got-light.png")


def test_dark_theme_is_readable(lab):
    set_theme(lab, "JupyterLab Dark")
    try:
        grid = widget(lab, "{input}")
        for locator in (grid.locator(".lmw-verdict").first, grid.locator(".lmw-score").first):
            found = locator.evaluate(CONTRAST_JS)
            assert found["background"] < 0.2 and found["ratio"] >= 4.5, found
        speed = widget(lab, "Count to sixty.").locator(".lmw-runstats").evaluate(CONTRAST_JS)
        assert speed["ratio"] >= 4.5, speed
        shoot(lab, "{input}", "grid-dark.png")
        shoot(lab, "Compute {input}.", "accuracy-dark.png")
        shoot(lab, "capital of France? Hi", "tokens-got-dark.png")
        later = widget(lab, "Again: what is 2+2?")
        later.locator(".lmw-tokentoggle").click()
        for part in (".lmw-tokennote", ".lmw-gettokens"):
            found = later.locator(part).evaluate(CONTRAST_JS)
            assert found["ratio"] >= 4.5, (part, found)
        shoot(lab, "Again: what is 2+2?", "tokens-ask-dark.png")
    finally:
        set_theme(lab, "JupyterLab Light")
    assert lab.dialogs == []


@pytest.fixture(scope="module")
def saved(lab) -> Path:
    """The notebook as JupyterLab saved it (after the checks above, in file order)."""
    lab.keyboard.press("Control+s")
    lab.wait_for_timeout(1500)
    return lab.lmw["root"] / "words.ipynb"


def _assert_static_alone(page, where: str) -> None:
    page.wait_for_selector(".lmw-static", timeout=90_000)
    page.wait_for_timeout(3000)  # the widget manager gives up on the missing models
    assert page.locator(".lmw-live").count() == 0
    errors = [e for e in page.get_by_text("Error displaying widget").all() if e.is_visible()]
    assert errors == [], where
    statics = [s for s in page.locator(".lmw-static").all() if s.is_visible()]
    assert len(statics) == VIEWS, where
    first = statics[0].inner_text()
    assert first.startswith("lmwidgets · 2 columns, done")
    assert "{nme} is not defined in the notebook: left as written." in first
    assert statics[1].inner_text().startswith("lmwidgets · 3 items × 2 columns, done")
    page.screenshot(path=str(SHOTS / f"reopened-{where}.png"), full_page=True)


def test_a_saved_notebook_reopened_without_its_kernel_shows_the_static_copies_alone(lab, saved):
    notebook = json.loads(saved.read_text())
    plain = [
        "".join(o["data"]["text/plain"])
        for c in notebook["cells"]
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(plain) == VIEWS and all("running" not in p for p in plain)
    assert plain[1] == (
        "lmwidgets live view of 3 items × 2 columns; the finished run follows as a static copy"
    )
    assert shutdown_kernels(lab.lmw["base"], lab.lmw["token"]) == 1
    lab.reload()
    _assert_static_alone(lab, "jupyterlab")


def test_notebook7_shows_the_static_copies_alone_too(lab, saved):
    require_notebook7()
    root = saved.parent
    with jupyter_notebook(root) as (base, token):  # the same page, now in Notebook 7
        open_notebook7(lab, base, token, "words.ipynb")
        assert "/notebooks/" in lab.url
        _assert_static_alone(lab, "notebook7")


def test_nbconvert_html_shows_the_static_copies_alone(lab, saved):
    root = saved.parent
    html = root / "words.html"
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html"]
    subprocess.run(
        [*command, str(root / "words.ipynb"), "--output", str(html)],
        check=True,
        capture_output=True,
    )
    page = lab  # the same page, now on the exported file
    page.goto(html.as_uri())
    page.wait_for_timeout(1000)
    shown = [el for el in page.get_by_text("lmwidgets live view").all() if el.is_visible()]
    assert shown == []  # the widget's text/plain: the static copy says it all
    statics = [s for s in page.locator(".lmw-static").all() if s.is_visible()]
    assert len(statics) == VIEWS
    assert statics[0].inner_text().startswith("lmwidgets · 2 columns, done")
    page.screenshot(path=str(SHOTS / "nbconvert.png"), full_page=True)
