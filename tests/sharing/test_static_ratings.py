"""The static copy shows your ratings: a thumbs chip on each rated cell, the preferences in a
line under the caption, in HTML (escaped), markdown and plain text."""

from __future__ import annotations

import pytest

import lmwidgets
from lmwidgets.run.history import HISTORY


@pytest.fixture
def model(registry):
    HISTORY.clear()
    lmwidgets.load_model(engine="scripted", name="s", replies={"*": "Paris."})
    yield
    HISTORY.clear()


def test_static_copy_shows_thumbs_and_preferences(model):
    r = lmwidgets.prompt("Capital?", display=False, compare="zero-shot,cot")
    assert "lmw-rating" not in r.to_html() and "Preferred" not in r.to_text()
    r.rate("cot", "up")
    r.rate("zero-shot", "down")
    r.prefer("cot", "zero-shot")
    html = r.to_html()
    assert html.count('class="lmw-rating"') == 2
    assert "▲ liked" in html and "▼ disliked" in html
    assert "var(--jp-success-color0" in html and "var(--jp-ui-inverse-font-color0" in html
    assert "Preferred: cot over zero-shot" in html
    text, markdown = r.to_text(), r.to_markdown()
    for out in (text, markdown.replace("\\-", "-")):  # markdown escapes the hyphen
        assert "Rating: ▲ liked" in out and "Rating: ▼ disliked" in out
        assert "Preferred: cot over zero-shot" in out
    r.prefer("zero-shot", "cot", tie=True)
    assert "zero-shot = cot (tie)" in r.to_text()


def test_labels_in_the_preference_line_are_escaped(registry):
    lmwidgets.load_model(engine="scripted", name="<b>m</b>", replies={"*": "x"})
    lmwidgets.load_model(engine="scripted", name="n", replies={"*": "y"})
    r = lmwidgets.prompt("Hi", display=False, models="<b>m</b>,n")
    r.prefer("<b>m</b>", "n")
    html = r.to_html()
    assert "<b>m</b> over" not in html and "&lt;b&gt;m&lt;/b&gt; over n" in html
