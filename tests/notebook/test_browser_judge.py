"""A model as judge in JupyterLab (headless Chromium): a judged dataset grid, its verdict chips
(text and tone), the judge's reasoning on demand, and the static copy; light and dark, with the
chip's text readable (>= 4.5:1) on its background. Screenshots go to /tmp/lmw_shots/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lab_server import done_output, lab_with_notebook, set_theme

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/lmw_shots")

CELLS = [
    "%load_ext lmwidgets\nimport lmwidgets\n"
    "def judge(text, adapter):\n"
    "    if '[Answer A]' in text:\n"
    "        a = text.split('[Answer A]')[1].split('[Answer B]')[0]\n"
    "        return 'A names the capital.\\n[[A]]' if 'Paris' in a else 'B does.\\n[[B]]'\n"
    "    answer = text.split('[Answer]')[-1]\n"
    "    if 'Paris' in answer or 'Madrid' in answer:\n"
    "        return 'It names the capital <b>plainly</b>.\\nScore: 5'\n"
    "    if 'Lyon' in answer:\n"
    "        return 'Lyon is not the capital.\\nScore: 1'\n"
    "    return 'Hard to say.'\n"
    "lmwidgets.load_model(engine='scripted', name='good', replies={'France': 'Paris.', "
    "'Spain': 'Madrid.', '*': 'Rome?'})\n"
    "lmwidgets.load_model(engine='scripted', name='bad', replies={'*': 'Lyon.', 'Italy': 'Hmm'})\n"
    "lmwidgets.load_model(engine='scripted', name='judge', replies=judge)\n"
    "items = [{'input': 'France', 'expected': 'Paris'}, {'input': 'Spain', 'expected': 'Madrid'},"
    " {'input': 'Italy', 'expected': 'Rome'}]",
    "%%prompt --models good,bad --dataset items --judge judge --score judge --out judged\n"
    "What is the capital of {input}?",
    "%%prompt --models bad,good --judge judge --judge-pairwise --out paired\n"
    "What is the capital of France?",
    "print('ALL DONE', judged.status, judged.scores, [r.judge_outcome for r in paired])",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("judge")
    with lab_with_notebook(root, "judge.ipynb", CELLS, views=2) as page:
        yield page


def _rgb(colour: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", colour)[:3])


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(_rgb(a)), _luminance(_rgb(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_run_finished_with_the_judges_scores(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE done {'good': 1.0, 'bad': 0.0} [None, 'better']" in line


def test_each_cell_shows_its_verdict_and_the_reasoning_on_demand(lab):
    live = lab.locator(".lmw-live").first
    chips = live.locator(".lmw-judge:visible")
    assert chips.all_text_contents() == [
        "judge 5/5", "judge 1/5", "judge 5/5", "judge 1/5", "not judged", "not judged",
    ]  # fmt: skip
    tones = [chips.nth(i).get_attribute("data-tone") for i in range(6)]
    assert tones == ["good", "bad", "good", "bad", "none", "none"]
    assert "rubric quality" in chips.first.get_attribute("title")
    # the scripted judge cannot enforce the verdict format: its tooltip says the reply was free
    assert "rubric quality (1-5) · free text (the scripted engine" in chips.first.get_attribute(
        "title"
    )
    assert "no score from 1 to 5" in chips.nth(4).get_attribute("title")
    why = live.locator(".lmw-judgewhy:visible").first
    text = why.locator(".lmw-judgetext")
    assert not text.is_visible()  # folded until asked for
    why.locator("summary").click()
    assert text.text_content() == "It names the capital <b>plainly</b>."  # as text, not HTML
    assert live.locator(".lmw-judgetext b").count() == 0
    assert "Judge judge (quality): good mean 5.0/5 over 2; bad mean 1.0/5 over 2" in (
        live.text_content()
    )
    static = lab.locator(".lmw-static").first.text_content()
    assert "judge 5/5" in static and "not judged" in static
    live.scroll_into_view_if_needed()
    live.screenshot(path=str(SHOTS / "judge-light.png"))
    _readable(chips)


def _readable(chips) -> None:
    for i in range(chips.count()):
        chip = chips.nth(i)
        colour = chip.evaluate("(e) => getComputedStyle(e).color")
        background = chip.evaluate("(e) => getComputedStyle(e).backgroundColor")
        assert _contrast(colour, background) >= 4.5, (i, colour, background)


def test_pairwise_says_better_than_the_first_column(lab):
    live = lab.locator(".lmw-live").nth(1)
    chips = live.locator(".lmw-judge:visible")
    assert chips.all_text_contents() == ["pairwise baseline", "better than bad"]
    assert [chips.nth(i).get_attribute("data-tone") for i in range(2)] == ["base", "good"]
    live.scroll_into_view_if_needed()
    live.screenshot(path=str(SHOTS / "judge-pairwise-light.png"))


def test_dark_theme(lab):
    set_theme(lab, "JupyterLab Dark")
    live = lab.locator(".lmw-live").first
    live.scroll_into_view_if_needed()
    live.screenshot(path=str(SHOTS / "judge-dark.png"))
    _readable(live.locator(".lmw-judge:visible"))
    pairwise = lab.locator(".lmw-live").nth(1)
    pairwise.scroll_into_view_if_needed()
    pairwise.screenshot(path=str(SHOTS / "judge-pairwise-dark.png"))
    _readable(pairwise.locator(".lmw-judge:visible"))
    set_theme(lab, "JupyterLab Light")
