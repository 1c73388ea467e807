"""Static output: escaping (property-based and a hostile corpus), bounds, formats, records."""

import json
from html.parser import HTMLParser

from hostile import HOSTILE
from hypothesis import given
from hypothesis import strategies as st

import lmwidgets
from lmwidgets.core.results import Comparison, Result
from lmwidgets.core.safe_text import (
    STATIC_PROMPT_LIMIT,
    STATIC_TEXT_LIMIT,
    code_fence,
    escape_html,
)
from lmwidgets.run.records import RECORD_MIME, records

ALLOWED_TAGS = {
    *("div", "table", "thead", "tbody", "tr", "th", "td", "pre", "b", "i", "code", "br"),
    *("span", "details", "summary"),
}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def _parse(markup):
    collector = _Collector()
    collector.feed(markup)
    return collector


def _result(text, label="col", answer=None, **kwargs):
    return Result(
        variant=label,
        text=text,
        prompt=text,
        tokens=1,
        seconds=0.1,
        record={"t": text},
        answer=answer,
        **kwargs,
    )


@given(st.text())
def test_escaping_never_yields_markup(text):
    escaped = escape_html(text)
    assert "<" not in escaped and ">" not in escaped and '"' not in escaped and "'" not in escaped
    parsed = _parse(f"<div>{escaped}</div>")
    assert parsed.tags == ["div"] and parsed.attrs == []


@given(st.text(), st.data())
def test_escaping_is_stable_on_streamed_chunks(text, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    assert escape_html(text[:cut]) + escape_html(text[cut:]) == escape_html(text)


@given(st.text())
def test_code_fence_is_never_closed_early(text):
    fenced = code_fence(text)
    fence = fenced.split("text\n", 1)[0]
    body = fenced[len(fence) + len("text\n") : -len(fence) - 1]
    assert body == text and fence * 1 not in text


def test_hostile_corpus_shows_as_text_in_html():
    results = [_result(text, label=text, answer=text, input=text) for text in HOSTILE]
    comparison = Comparison(results, title=HOSTILE[0], notes=[HOSTILE[1]])
    markup = comparison.to_html()
    parsed = _parse(markup)
    assert set(parsed.tags) <= ALLOWED_TAGS
    assert {name for name, _ in parsed.attrs} <= {"class", "style"}
    assert all("javascript" not in (value or "") for _, value in parsed.attrs)
    shown = "".join(parsed.text)
    for text in HOSTILE[:-1]:
        assert text in shown  # visible, as text


def test_hostile_corpus_in_markdown_is_fenced_or_escaped():
    comparison = Comparison([_result(text, label=text) for text in HOSTILE])
    markdown = comparison.to_markdown()
    outside_fences = []
    inside = False
    fence = None
    for line in markdown.splitlines():
        if not inside and line.startswith("```"):
            inside, fence = True, line.split("text")[0]
            continue
        if inside and line == fence:
            inside = False
            continue
        if not inside:
            outside_fences.append(line)
    assert "<" not in "\n".join(outside_fences)


def test_long_text_is_cut_with_a_note():
    comparison = Comparison([_result("x" * (STATIC_TEXT_LIMIT + 500))])
    markup = comparison.to_html()
    assert "500 more characters cut" in markup
    assert f"{STATIC_TEXT_LIMIT + 500 - STATIC_PROMPT_LIMIT:,} more characters cut" in markup
    assert markup.count("x") < STATIC_TEXT_LIMIT + STATIC_PROMPT_LIMIT + 100  # text and prompt
    assert "500 more characters cut" in comparison.to_markdown()
    assert "500 more characters cut" in comparison.to_text()


def test_mimebundle_is_json_serializable():
    comparison = Comparison([_result(HOSTILE[-1])])
    bundle = comparison.mimebundle()
    json.dumps(bundle)
    assert bundle[RECORD_MIME]["records"] == [{"t": HOSTILE[-1]}]
    assert set(comparison._repr_mimebundle_()) == {"text/plain", "text/markdown", "text/html"}


def test_records_read_back_from_a_notebook(tmp_path):
    payload = Comparison([_result("a"), _result("b", label="c2")]).mimebundle()[RECORD_MIME]
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": "x"},
            {
                "cell_type": "code",
                "outputs": [{"output_type": "display_data", "data": {RECORD_MIME: payload}}],
            },
            {"cell_type": "code", "outputs": [{"output_type": "stream", "text": "x"}]},
        ]
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook))
    assert records(path) == [{"t": "a"}, {"t": "b"}]
    assert records(notebook) == records(path)


def test_records_errors(tmp_path):
    import pytest

    with pytest.raises(lmwidgets.RecordError, match="No notebook"):
        records(tmp_path / "missing.ipynb")
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(lmwidgets.RecordError, match="Cannot read"):
        records(bad)


def test_exports(tiny):
    comparison = lmwidgets.prompt("Hi <b>", max_new_tokens=3, display=False)
    frame = comparison.to_pandas()
    assert list(frame["variant"]) == ["tiny"] and frame["tokens"][0] == 3
    data = json.loads(comparison.to_json())
    assert data["results"][0]["record"]["model"]["name"] == "tiny"
    assert "Hi &lt;b&gt;" in comparison.to_html()


def test_labels_answers_and_notes_are_bounded_too():
    from lmwidgets.core.safe_text import LABEL_LIMIT, SHORT_LIMIT
    from lmwidgets.notebook.widgets import PromptView

    huge = "<b>" + "\u0436" * 100_000
    comparison = Comparison([_result("t", label=huge, answer=huge, input=huge)], notes=[huge])
    for rendering in (comparison.to_html(), comparison.to_markdown(), comparison.to_text()):
        assert (
            rendering.count("\u0436") <= 3 * SHORT_LIMIT + LABEL_LIMIT
        )  # answer, input, note, label
    column = PromptView.column(huge, huge, answer=huge, note=huge, row_label=huge)
    assert len(column["label"]) == LABEL_LIMIT and len(column["answer"]) == SHORT_LIMIT
    assert len(column["row_label"]) == SHORT_LIMIT
    assert column["note"].endswith("more characters not shown (see Result.text).")
    assert len(column["note"]) < SHORT_LIMIT + 100
