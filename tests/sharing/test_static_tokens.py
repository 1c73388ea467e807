"""Token probabilities in the static copy (issue 15): shading, titles, legend, bounds, answer
confidence, hostile token texts/ids/log-probabilities, contrast in JupyterLab themes."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest
from hostile import HOSTILE_LOGPROBS, HOSTILE_TOKENS
from hypothesis import given, settings
from hypothesis import strategies as st

from lmwidgets.core.answers import SHORT_ANSWER_CHARS
from lmwidgets.core.results import Comparison, Result
from lmwidgets.notebook.token_cells import _confidence
from lmwidgets.sharing.static_tokens import (
    MAX_ALTERNATIVES,
    MAX_SHADED_TOKENS,
    Token,
    confidence_text,
    probability,
    title_text,
)

#: The only style a token span may have: our bucket's mix and the theme's text colour.
SHADE = r"background:color-mix\(in srgb,var\(--jp-warn-color1,#f57c00\) \d{1,2}%,transparent\)"
#: ... or, for a token holding a bidi control, that and/or ``unicode-bidi:isolate``.
TOKEN_STYLE = re.compile(rf"{SHADE}|{SHADE};unicode-bidi:isolate|unicode-bidi:isolate")
TITLE = re.compile(
    r"(p=(<0\.01|[01]\.\d\d)|p unknown)( · forced by the constraint)?( · alternatives: .*)?"
)
ALLOWED_TAGS = {
    *("div", "table", "thead", "tbody", "tr", "th", "td", "pre", "b", "i", "code", "br"),
    *("span", "details", "summary"),
}


class _Tree(HTMLParser):
    """Tags, attributes per tag, text, and each token span's attributes and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.spans = [], [], [], []
        self._in_token = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if ("class", "lmw-token") in attrs:
            self.spans.append({"attrs": dict(attrs), "text": ""})
            self._in_token = 1

    def handle_endtag(self, tag):
        if tag == "span":
            self._in_token = 0

    def handle_data(self, data):
        self.text.append(data)
        if self._in_token:
            self.spans[-1]["text"] += data


def parse(markup: str) -> _Tree:
    tree = _Tree()
    tree.feed(markup)
    return tree


_UNSET = object()


def detail(text, p=0.5, id=1, top=(), logprob=_UNSET):
    """One ``tokens_detail`` entry (``logprob`` given: used as is, else log(p))."""
    return {
        "text": text,
        "id": id,
        "logprob": math.log(p) if logprob is _UNSET else logprob,
        "top": [{"text": t, "id": i, "logprob": math.log(q)} for t, i, q in top],
    }


def result(text, details=(), answer="4", **kwargs):
    return Result(
        variant=kwargs.pop("variant", "col"),
        text=text,
        prompt="Q",
        tokens=len(details),
        seconds=0.5,
        record={},
        answer=answer,
        tokens_detail=list(details),
        **kwargs,
    )


def staircase() -> list[dict]:
    """One token per probability bucket, with alternatives."""
    probabilities = (0.95, 0.8, 0.6, 0.4, 0.2, 0.05)
    return [
        detail(f"t{p} ", p, id=i, top=[(f"t{p} ", i, p), ("alt", 9, (1 - p) / 2)])
        for i, p in enumerate(probabilities)
    ]


def staircase_text() -> str:
    return "".join(d["text"] for d in staircase())


# Shading, titles, legend ----------------------------------------------------------------------


def test_tokens_are_shaded_by_probability_with_a_title_and_a_legend():
    html = Comparison([result(staircase_text(), staircase())]).to_html()
    tree = parse(html)
    assert [span["text"] for span in tree.spans] == [d["text"] for d in staircase()]
    styles = [span["attrs"].get("style") for span in tree.spans]
    assert styles[0] is None  # p >= 0.9: no shade, but a title
    percents = [int(re.search(r"(\d+)%", s).group(1)) for s in styles[1:]]
    assert percents == sorted(percents) and len(set(percents)) == 5 and max(percents) <= 45
    assert all(TOKEN_STYLE.fullmatch(s) for s in styles[1:])
    assert tree.spans[1]["attrs"]["title"] == "p=0.80 · alternatives: “alt” 0.10"
    assert tree.spans[0]["attrs"]["title"] == "p=0.95 · alternatives: “alt” 0.03"
    legend = html.split('class="lmw-legend"')[1].split("</div>")[0]
    assert "token probability" in legend and "≥0.9" in legend and "&lt;0.1" in legend
    assert html.index("lmw-legend") < html.index("<table")


def test_text_without_token_detail_renders_as_before():
    plain = Comparison([result("The answer is 4.")]).to_html()
    assert "lmw-token" not in plain and "lmw-legend" not in plain
    assert "The answer is 4.</pre>" in plain
    mixed = Comparison(
        [result("a b", [detail("a", 0.5), detail(" b", 0.5)]), result("The answer is 4.")]
    ).to_html()
    assert mixed.count("lmw-legend") == 1 and "The answer is 4.</pre>" in mixed


def test_title_names_at_most_five_alternatives_short_and_visible():
    top = [(f"alt{i}" + "x" * 40, i, 0.01 * (10 - i)) for i in range(9)] + [("\n\u202e", 99, 0.2)]
    token = Token("a", 0.3, ())
    html = Comparison([result("a", [detail("a", 0.3, top=top)])]).to_html()
    title = parse(html).spans[0]["attrs"]["title"]
    assert title.startswith("p=0.30 · alternatives: “\\n\\u202e” 0.20, “alt0")
    assert title.count("“") == MAX_ALTERNATIVES and len(title) < 200
    assert "\u202e" not in title and "\n" not in title
    assert title_text(token) == "p=0.30"
    assert title_text(Token("a", 0.001)) == "p=<0.01"


def test_the_chosen_token_is_not_its_own_alternative_and_unknown_alternatives_drop():
    top = [("a", 1, 0.7), ("b", 2, 0.2)]
    entry = detail("a", 0.7, top=top)
    entry["top"].append({"text": "c", "id": 3, "logprob": "nan"})
    html = Comparison([result("a", [entry])]).to_html()
    assert parse(html).spans[0]["attrs"]["title"] == "p=0.70 · alternatives: “b” 0.20"


def test_tokens_follow_the_text_when_it_lost_leading_space_or_a_stop_string():
    details = [detail("\n", 0.5), detail(" The", 0.5), detail(" end", 0.5), detail("###", 0.5)]
    html = Comparison([result("The end", details)]).to_html()
    tree = parse(html)
    assert [s["text"] for s in tree.spans] == ["The", " end"]
    assert "no longer match" not in html  # the text ended: nothing more to shade


def test_tokens_that_do_not_match_the_text_stop_shading_with_a_note():
    details = [detail("The", 0.5), detail(" cat", 0.5), detail(" sat", 0.5)]
    html = Comparison([result("The dog sat", details)]).to_html()
    tree = parse(html)
    assert [s["text"] for s in tree.spans] == ["The"]
    assert "The dog sat" in "".join(tree.text)
    assert "no longer match the text" in html


def test_shading_is_bounded_per_cell():
    count = MAX_SHADED_TOKENS + 500
    details = [detail("ab ", 0.5, id=i) for i in range(count)]
    html = Comparison([result("ab " * count, details)]).to_html()
    assert html.count('class="lmw-token"') == MAX_SHADED_TOKENS
    assert f"stops after {MAX_SHADED_TOKENS:,} tokens" in html
    assert "ab " * count in "".join(parse(html).text)  # the rest is still there, plain


# Answer confidence ----------------------------------------------------------------------------


def test_confidence_is_shown_beside_the_answer_in_every_copy():
    comparison = Comparison(
        [result("The answer is 4.", confidence=0.8234), result("It is 5.", answer="5")]
    )
    html = comparison.to_html()
    assert 'class="lmw-confidence"' in html and ">p=0.82</span>" in html
    assert html.count("lmw-confidence") == 1  # unknown confidence: nothing shown
    assert "Answer: 4 (group A) · p=0.82" in comparison.to_text()
    assert "p=0.82" in comparison.to_markdown()


def test_confidence_is_shown_for_short_answers_only():
    # The product of a sentence's token probabilities says nothing to a reader: an answer that
    # is the whole text, or one longer than SHORT_ANSWER_CHARS, shows no p.
    story = "Once upon a time a cat sat on a mat and ate the moon."
    whole = Comparison([result(story, answer=story.rstrip("."), confidence=0.0001)])
    assert "lmw-confidence" not in whole.to_html() and "p=" not in whole.to_text()
    long_answer = "x" * (SHORT_ANSWER_CHARS + 1)
    long = Comparison([result(f"Answer: {long_answer}", answer=long_answer, confidence=0.42)])
    assert "p=" not in long.to_text()
    short_answer = "y" * SHORT_ANSWER_CHARS
    short = Comparison([result(f"Answer: {short_answer}", answer=short_answer, confidence=0.42)])
    assert "p=0.42" in short.to_text()


def test_a_tiny_confidence_reads_the_same_live_and_static():
    tiny = result("The answer is 4.", confidence=0.001)
    assert confidence_text(tiny) == "p<0.01"
    assert "· p<0.01" in Comparison([tiny]).to_text()
    assert _confidence(tiny) == (0.001, "p<0.01")  # what the live view's cell carries


def test_self_consistency_shows_the_vote():
    extras = {"votes": {"4": 3, "5": 2}, "samples": [{}] * 5, "agreement": 0.6}
    comparison = Comparison([result("4", extras=extras, confidence=0.6)])
    assert ">vote 3/5</span>" in comparison.to_html()
    assert "Answer: 4 · vote 3/5" in comparison.to_text()


def test_confidence_in_a_dataset_cell_and_unusable_values():
    scored = result(
        "The answer is 4.", input="2+2", expected="4", correct=True, confidence=0.5,
        score=1.0, verdict="equals 4",
    )  # fmt: skip
    assert "Verdict: ✓ equals 4 · p=0.50" in Comparison([scored]).to_text()
    for bad in (float("nan"), float("inf"), "0.5;color:red", True):
        html = Comparison([result("The answer is 4.", confidence=bad)]).to_html()
        assert "lmw-confidence" not in html and "color:red" not in html
    assert "lmw-confidence" not in Comparison([result("x", answer=None, confidence=0.9)]).to_html()


def test_a_scripted_run_with_logprobs_shades_every_column(registry):
    import lmwidgets

    lmwidgets.load_model(engine="scripted", replies={"*": "Sum: 2 + 2 = 4. The answer is 4."})
    comparison = lmwidgets.prompt(
        "What is 2 + 2?", compare="zero-shot,self-consistency", samples=3, logprobs=5, display=False
    )
    html = comparison.to_html()
    tree = _check_safe(html)
    cells = html.split("<td")[1:]
    assert len(cells) == 2 and all('class="lmw-token"' in cell for cell in cells)
    assert "no longer match" not in html and html.count("lmw-legend") == 1
    assert "vote 3/3" in html and re.search(r">p=[01]\.\d\d</span>", html)
    shown = "".join(tree.text)
    assert all(r.text in shown for r in comparison.results)
    assert re.search(r"Answer: 4 \(group A\) · p=[01]\.\d\d", comparison.to_text())


# Hostile token texts, alternatives, ids, log-probabilities ----------------------------------


def _check_safe(html: str) -> _Tree:
    tree = parse(html)
    assert set(tree.tags) <= ALLOWED_TAGS
    assert {name for name, _ in tree.attrs} <= {"class", "style", "title"}
    for span in tree.spans:
        assert set(span["attrs"]) <= {"class", "style", "title"}
        style = span["attrs"].get("style")
        assert style is None or TOKEN_STYLE.fullmatch(style), style
        assert TITLE.fullmatch(span["attrs"]["title"]), span["attrs"]["title"]
    for name, value in tree.attrs:
        if name == "style":
            assert not {"javascript", "url", "position", "red"} & set(re.findall(r"[a-z]+", value))
    return tree


def hostile_details() -> list[dict]:
    return [
        detail(
            text,
            0.05 + 0.9 * i / len(HOSTILE_TOKENS),
            id=text,
            top=[(HOSTILE_TOKENS[i - 1], text, 0.03)],
        )
        for i, text in enumerate(HOSTILE_TOKENS)
    ]


def test_hostile_token_texts_alternatives_and_ids_stay_text():
    details = hostile_details()
    text = "".join(d["text"] for d in details)
    html = Comparison([result(text, details, answer=HOSTILE_TOKENS[0])]).to_html()
    tree = _check_safe(html)
    assert len(tree.spans) == len(HOSTILE_TOKENS)
    for span, token in zip(tree.spans, HOSTILE_TOKENS, strict=True):
        assert span["text"] == token.replace("\x00", "\ufffd") or span["text"] == token
        title = span["attrs"]["title"]
        assert "alternatives: “" in title
        assert "\u202e" not in title and "\x00" not in title
    assert "onmouseover" not in html and "<script>" not in html


def test_hostile_ids_are_never_shown():
    marker = 'id" onmouseover="alert(1)'
    details = [detail("a", 0.5, id=marker, top=[("b", marker, 0.3)])]
    html = Comparison([result("a", details)]).to_html()
    _check_safe(html)
    assert "onmouseover" not in html


@pytest.mark.parametrize("logprob", HOSTILE_LOGPROBS, ids=repr)
def test_unusable_logprobs_leave_the_token_unshaded(logprob):
    details = [detail("a", logprob=logprob), detail("b", 0.2, top=[("c", 1, 0.5)])]
    details[1]["top"].append({"text": "d", "id": 2, "logprob": logprob})
    html = Comparison([result("ab", details)]).to_html()
    tree = _check_safe(html)
    assert [s["text"] for s in tree.spans] == ["b"]  # "a" is plain text
    assert tree.spans[0]["attrs"]["title"] == "p=0.20 · alternatives: “c” 0.50"
    assert "color:red" not in html and "ab" in "".join(tree.text)
    assert probability(logprob) is None


def test_entries_that_are_not_tokens_end_the_shading():
    for broken in (None, "a", 3, {"text": 3, "logprob": -0.1}, {"logprob": -0.1}):
        html = Comparison([result("ab", [detail("a", 0.5), broken])]).to_html()
        tree = _check_safe(html)
        assert [s["text"] for s in tree.spans] == ["a"] and "ab" in "".join(tree.text)
    odd_top = detail("a", 0.5)
    odd_top["top"] = "<script>"
    assert _check_safe(Comparison([result("a", [odd_top])]).to_html()).spans


def test_hostile_tokens_in_markdown_and_text_stay_fenced():
    details = hostile_details()
    text = "".join(d["text"] for d in details)
    comparison = Comparison([result(text, details, confidence=0.5)])
    outside = re.sub(r"(`{3,})text\n.*?\n\1", "", comparison.to_markdown(), flags=re.S)
    assert "<" not in outside and "p=0.50" in outside
    assert text in comparison.to_text()


LOGPROBS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.text(max_size=8), LOGPROBS, st.text(max_size=8), LOGPROBS), max_size=12)
)
def test_any_tokens_and_logprobs_give_safe_markup(tokens):
    details = [
        {"text": t, "id": alt, "logprob": lp, "top": [{"text": alt, "id": t, "logprob": alt_lp}]}
        for t, lp, alt, alt_lp in tokens
    ]
    text = "".join(t for t, *_ in tokens)
    _check_safe(Comparison([result(text, details)]).to_html())


# In a browser: shaded tokens read in JupyterLab themes ------------------------------------------

#: Like test_static_matrix's contrast script, but also reads ``color(srgb r g b / a)``: what
#: Chromium computes for ``color-mix(in srgb, ...)`` backgrounds.
_CONTRAST_JS = """
(selector) => {
  const rgba = (s) => {
    let m = s.match(/color\\(srgb ([^)]*)\\)/);
    if (m) { const p = m[1].split(/[ /]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
    m = s.match(/rgba?\\(([^)]*)\\)/); if (!m) return [0,0,0,0];
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => { const a = top[3];
    return [0,1,2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]); };
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) layers.push(rgba(getComputedStyle(e).backgroundColor));
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  return [...document.querySelectorAll(selector)].map((el) => {
    const bg = background(el); const fg = over(rgba(getComputedStyle(el).color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return {text: el.textContent.slice(0, 40), background: getComputedStyle(el).backgroundColor,
            ratio: (a + 0.05) / (b + 0.05)}; });
}
"""


def token_comparison() -> Comparison:
    """Two columns with a token in every bucket; one answer has a probability, one a vote."""
    details = staircase()
    return Comparison(
        [
            result(staircase_text(), details, variant="zero-shot", confidence=0.42),
            result(
                staircase_text(),
                details,
                variant="self-consistency",
                extras={"votes": {"4": 3}, "samples": [{}] * 5},
            ),
        ],
        title="What is 2 + 2?",
    )


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("theme", ["dark", "light", "dark-high-contrast"])
def test_shaded_tokens_read_in_jupyterlab_themes(theme, tmp_path):
    from lab_server import chromium_page
    from test_static_matrix import themed_page

    comparison = token_comparison()
    path = tmp_path / f"tokens-{theme}.html"
    path.write_text(themed_page(comparison.to_html(), theme), encoding="utf-8")
    with chromium_page() as page:
        page.goto(path.as_uri())
        checked = {}
        for selector in (".lmw-token", ".lmw-swatch", ".lmw-confidence", ".lmw-legend"):
            found = page.evaluate(_CONTRAST_JS, selector)
            assert found, selector
            checked[selector] = min(item["ratio"] for item in found)
        shaded = page.evaluate(_CONTRAST_JS, ".lmw-token[style]")
        assert len({item["background"] for item in shaded}) == 5  # five distinct shades
        assert all(ratio >= 4.5 for ratio in checked.values()), checked
        assert not page.evaluate("typeof window.__lmw_pwned !== 'undefined'")


def test_a_bidi_override_in_a_token_cannot_reverse_the_tokens_after_it():
    details = [detail("\u202eevil", 0.95), detail(" next", 0.5), detail("\u202e", logprob="x")]
    html = Comparison([result("\u202eevil next\u202e", details)]).to_html()
    spans = _check_safe(html).spans
    assert [s["attrs"].get("style", "").endswith("unicode-bidi:isolate") for s in spans] == [
        True,
        False,
        True,
    ]
    assert spans[2]["attrs"]["title"] == "p unknown"


def test_a_token_the_constraint_forced_says_so_in_its_title():
    details = [
        {"text": '{"', "id": 1, "logprob": -1.0, "top": [], "forced": True},
        {"text": 'a"', "id": 2, "logprob": -0.5, "top": [], "forced": "yes"},  # not a bool
    ]
    html = Comparison([result('{"a"', details)]).to_html()
    assert 'title="p=0.37 · forced by the constraint"' in html
    assert 'title="p=0.61"' in html
    assert TITLE.fullmatch(title_text(Token("x", 0.5, (("y", 0.2),), True)))
