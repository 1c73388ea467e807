"""A registered axis kind's generic badge in JupyterLab (headless Chromium): the toy ``case`` kind
(tests/prompting/test_toy_axis_kind.py), registered in the kernel with a badge whose text and
tooltip carry an HTML payload, shows that payload as text on its column in the live view and
the static copy, and nothing in it runs or becomes an element. The badge is drawn by the view's
generic code (js/src/cells.js, fillBadges): the kind has no JS of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_server import done_output, lab_with_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOY = Path(__file__).resolve().parents[1] / "prompting"
PAYLOAD = '<img src=x onerror="window.__lmw_pwned=1">'

CELLS = [
    "%load_ext lmwidgets\nimport sys, lmwidgets\n"
    f"sys.path.insert(0, {str(TOY)!r})\n"
    "import test_toy_axis_kind as toy\n"
    "from lmwidgets.core.axis_kinds import register_kind\n"
    f"PAYLOAD = {PAYLOAD!r}\n"
    "def badge(result):\n"
    "    shown = toy.badge(result)\n"
    "    if shown is None:\n"
    "        return None\n"
    "    return {**shown, 'text': shown['text'] + ' ' + PAYLOAD,\n"
    "            'title': shown['title'] + ' ' + PAYLOAD}\n"
    "register_kind(toy.make_case_kind(badge))\n"
    "lmwidgets.load_model(engine='scripted', name='shouty',\n"
    "    replies={'WHAT IS IT': 'LOUD.', '*': 'Normal.'})",
    "%%prompt --case upper --columns case --out cased\nWhat is it?",
    "print('ALL DONE', [r.text for r in cased], cased[1].record.get('case'))",
]

SAFE = (
    "() => window.__lmw_pwned === undefined && !document.querySelector('img[src=x]') "
    "&& !document.querySelector('.lmw-axis-badge *')"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("axis_badge")
    with lab_with_notebook(root, "axis_badge.ipynb", CELLS, views=1) as page:
        yield page


def test_the_run_used_the_kind(lab):
    line = done_output(lab).first.text_content()
    assert "ALL DONE ['Normal.', 'LOUD.'] upper" in line


def test_the_badge_shows_on_its_column_as_text(lab):
    live = lab.locator(".lmw-live").first
    badges = live.locator(".lmw-axis-badge")
    assert badges.count() == 1  # the column as written has none
    badge = badges.first
    assert badge.is_visible()
    assert badge.text_content() == f"UPPER {PAYLOAD}"
    assert badge.get_attribute("title") == f"the question was upper-cased {PAYLOAD}"
    assert badge.get_attribute("data-kind") == "case"
    assert badge.get_attribute("data-state") == "upper"
    # On the upper-cased column, the one that answered LOUD.
    column = live.locator(".lmw-col", has=lab.locator(".lmw-axis-badge"))
    assert column.count() == 1 and "LOUD." in column.locator(".lmw-text").text_content()
    assert live.locator(".lmw-axis-badges").count() == 2  # every cell has the (empty) slot


def test_the_static_copy_has_the_same_badge_as_text(lab):
    static = lab.locator(".lmw-static").first.locator(".lmw-axis-badge")
    assert static.count() == 1
    assert static.first.text_content() == f"UPPER {PAYLOAD}"


def test_nothing_in_the_badge_runs_or_becomes_an_element(lab):
    lab.wait_for_timeout(500)
    assert lab.evaluate(SAFE), "the badge's payload ran or made an element"
    assert lab.dialogs == []
