"""The static copy as a place to judge outputs: matrix layout, answers and agreement, dataset
verdicts, truncation, prompts and settings, themes (contrast in JupyterLab Dark), hostile text."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hostile import HOSTILE

import lmwidgets
from lmwidgets.core.results import Comparison, Result
from lmwidgets.prompting.scoring import resolve_scorer, score_comparison
from lmwidgets.sharing.static_matrix import layout, status_line

THEMES = Path(sys.prefix) / "share/jupyter/lab/themes/@jupyterlab"


def result(
    variant="col",
    text="The answer is 4.",
    answer="4",
    strategy="zero-shot",
    model="m",
    adapter=None,
    **kwargs,
):
    record = kwargs.pop(
        "record",
        {
            "model": {"name": model},
            "adapter": None if adapter is None else {"name": adapter},
            "generation": {"temperature": 0.7, "top_p": 1.0, "seed": 7, "max_new_tokens": 64},
        },
    )
    return Result(
        variant=variant,
        text=text,
        prompt=kwargs.pop("prompt", f"Q for {variant}"),
        tokens=kwargs.pop("tokens", 5),
        seconds=0.5,
        record=record,
        answer=answer,
        strategy=strategy,
        model=model,
        adapter=adapter,
        **kwargs,
    )


def matrix_2x2(status="done") -> Comparison:
    """strategies (zero-shot, cot) x adapters (base, math); the cot/math cell disagrees."""
    cells = [
        ("zero-shot", None, "4", "4"),
        ("zero-shot", "math", "Four, that is 4.0.", "4.0"),
        ("cot", None, "2 + 2 = 4. The answer is 4.", "4"),
        ("cot", "math", "Let me count: 2, 3, 5. The answer is 5.", "5"),
    ]
    return Comparison(
        [
            result(
                f"{s} · {a or 'base'}",
                text=text,
                answer=answer,
                strategy=s,
                adapter=a,
                finish_reason="length" if answer == "5" else "eos",
            )
            for s, a, text, answer in cells
        ],
        title="What is 2 + 2?",
        status=status,
    )


def dataset_grid() -> Comparison:
    items = [("2 + 2", "4"), ("capital of France", "Paris"), ("3 * 3", "9")]
    replies = {
        "zero-shot": ["4", "Lyon", "9"],
        "cot": ["2 + 2 = 4. The answer is 4.", "The answer is Paris.", "3 * 3 = 6. Answer: 6"],
    }
    answers = {"zero-shot": ["4", "Lyon", "9"], "cot": ["4", "Paris", "6"]}
    results = []
    for index, (question, expected) in enumerate(items):
        for strategy in ("zero-shot", "cot"):
            answer = answers[strategy][index]
            results.append(
                result(
                    strategy,
                    text=replies[strategy][index],
                    answer=answer,
                    strategy=strategy,
                    input=question,
                    expected=expected,
                )
            )
    comparison = Comparison(results)
    score_comparison(comparison, resolve_scorer("exact"))  # verdicts as a run says them
    assert comparison.scores == {"zero-shot": 2 / 3, "cot": 2 / 3}
    return comparison


class _Tree(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def parse(markup):
    tree = _Tree()
    tree.feed(markup)
    return tree


# Layout ------------------------------------------------------------------------------------


def test_two_axes_make_a_matrix_with_row_and_column_headers():
    comparison = matrix_2x2()
    grid = layout(comparison)
    assert grid.kind == "matrix" and grid.columns == ["base", "math"]
    assert [row.header for row in grid.rows] == ["zero-shot", "cot"]
    assert [[c.answer for c in row.cells] for row in grid.rows] == [["4", "4.0"], ["4", "5"]]
    html = comparison.to_html()
    assert html.count("<tr>") == 3  # header + 2 strategies
    assert re.search(
        r"<th [^>]*>strategy \\ adapter</th><th [^>]*>base</th><th [^>]*>math</th>", html
    )
    assert re.search(r"<tr><th [^>]*>cot</th><td", html)  # the strategy heads its row
    assert "overflow-x:auto" in html and "min-width:16em" in html


def test_models_by_strategies_name_the_models():
    results = [
        result(f"{m} · {s}", strategy=s, model=m) for s in ("zero-shot", "cot") for m in "abc"
    ]
    comparison = Comparison(results)
    grid = layout(comparison)
    assert grid.kind == "matrix" and grid.columns == ["a", "b", "c"]
    assert status_line(comparison, grid) == "2 × 3 matrix (strategies × models), done"


def test_one_axis_stays_one_row_of_columns():
    comparison = Comparison([result(s, strategy=s) for s in ("zero-shot", "cot", "sc")])
    grid = layout(comparison)
    assert grid.kind == "columns" and len(grid.rows) == 1 and len(grid.columns) == 3
    assert comparison.to_html().count("<tr>") == 2
    assert status_line(comparison, grid) == "3 columns, done"
    assert Comparison([result()]).to_text().startswith("lmwidgets · 1 column, done")


def test_a_scripted_run_of_strategies_by_models_is_a_matrix(registry):
    lmwidgets.load_model(engine="scripted", name="alpha", replies={"*": "Sum. The answer is 4."})
    lmwidgets.load_model(engine="scripted", name="beta", replies={"*": "The answer is 5."})
    comparison = lmwidgets.prompt(
        "What is 2+2?", compare="zero-shot,cot", models="alpha,beta", display=False
    )
    grid = layout(comparison)
    assert grid.kind == "matrix" and grid.columns == ["alpha", "beta"]
    assert [row.header for row in grid.rows] == ["zero-shot", "cot"]
    html = comparison.to_html()
    assert "2 × 2 matrix (strategies × models), done" in html
    assert "<details" in html and "What is 2+2?" in html  # the exact prompt
    assert "max tokens 256" in html and "model alpha" in html


def test_dataset_rows_are_items_with_expected_values_and_verdicts():
    comparison = dataset_grid()
    grid = layout(comparison)
    assert grid.kind == "dataset" and grid.columns == ["zero-shot", "cot"]
    assert [row.expected for row in grid.rows] == ["4", "Paris", "9"]
    html = comparison.to_html()
    assert html.count("<tr>") == 4
    assert "3 items × 2 columns, done, accuracy zero-shot 67%, cot 67%" in html
    assert html.count("Accuracy 67% (2/3)") == 2  # in each column's header
    assert html.count("✓ ") == 4 and html.count("✗ ") == 2
    assert html.count("border-left:3px solid var(--jp-error-color1,#c62828)") == 2  # cell edges
    assert "var(--jp-success-color0,#1a7f37)" in html and "var(--jp-error-color1,#c62828)" in html
    shown = "".join(parse(html).text)
    # A verdict says how it judged; a miss says what was expected. No answer chip repeats
    # the answer beside its verdict.
    assert "✓ equals 4" in shown and "✗ got 6 · expected 9" in shown
    assert "✗ no match · expected Paris" in shown  # "Lyon" is the whole text: said once
    assert html.count('class="lmw-answer"') == 3  # the expected value, once per row
    text = comparison.to_text()
    assert (
        "Verdict: ✗ no match · expected Paris" in text and "Verdict: ✗ got 6 · expected 9" in text
    )
    assert "Verdict: ✓ equals 4" in comparison.to_markdown()
    assert "agree" not in html  # no agreement line for datasets


def test_dataset_with_repeated_inputs_keeps_every_row():
    results = [
        result(v, input="same", expected="4", correct=True) for _ in range(2) for v in ("a", "b")
    ]
    grid = layout(Comparison(results))
    assert len(grid.rows) == 2 and all(None not in row.cells for row in grid.rows)


def test_partial_scores_and_compared_text():
    partial = result(
        "v", answer="The answer is 4 apples", input="q", expected="4", correct=True, score=0.75
    )
    partial.compared, partial.verdict = "4", "myscore: 0.75"
    html = Comparison([partial]).to_html()
    assert "✓ myscore: 0.75" in html and "score 0.75" not in html  # the score is said once
    partial.verdict = "contains 4"
    assert "Verdict: ✓ contains 4 (score 0.75)" in Comparison([partial]).to_text()


# Answers and agreement ---------------------------------------------------------------------


def test_every_column_shows_its_answer_and_the_agreement():
    comparison = matrix_2x2()
    html = comparison.to_html()
    assert html.count('class="lmw-answer"') == 4
    assert "Agreement:</b> 3 of 4 columns agree on 4" in html
    groups = re.findall(r'class="lmw-group"[^>]*>([A-Z–])</b>', html)
    assert groups == ["A", "A", "A", "B"]  # "4.0" agrees with "4"; "5" stands out
    assert "Agreement: 3 of 4 columns agree on 4" in comparison.to_text()
    assert "Answer: 5 (group B)" in comparison.to_text()
    missing = Comparison([result("a", answer=None), result("b", answer="x")])
    assert "no answer" in missing.to_html() and "Answer: no answer (group –)" in missing.to_text()


def _columns_on(axis: str, values: list[str], **record) -> Comparison:
    """One prompt, a column per value of ``axis``, every column answering 4."""
    return Comparison(
        [
            result(value, record={"model": {"name": "m"}, "axes": {axis: value}, **record})
            for value in values
        ]
    )


def test_probe_and_pairwise_columns_leave_the_agreement_out():
    # Columns that ask the same question: their agreement is said and marked.
    wordings = _columns_on("prompt", ["A", "B", "C"])
    assert "Agreement: all 3 columns agree on 4" in wordings.to_text()
    assert layout(wordings).grouped
    # Probe columns are different attacks: "all 3 columns agree on 4" would mean nothing.
    probes = _columns_on("probe", ["none", "leak:direct", "leak:repeat"])
    grid = layout(probes)
    assert not grid.grouped and grid.agreement == ""
    assert "Agreement" not in probes.to_html() and "Agreement" not in probes.to_text()
    assert "lmw-group" not in probes.to_html()
    # A pairwise judge compares every column with the first: its verdict is the comparison.
    judged = _columns_on("prompt", ["A", "child"])
    judged[0].record["judge"] = {"mode": "pairwise", "baseline": True, "label": None}
    judged[1].record["judge"] = {
        "mode": "pairwise",
        "label": "tie",
        "outcome": "tie",
        "against": "A",
    }
    assert not layout(judged).grouped and "Agreement" not in judged.to_text()
    assert "tie with A" in judged.to_html()


# Truncation, status, prompt and settings -----------------------------------------------------


def test_truncated_answers_are_marked_in_the_cell_and_the_status_line():
    comparison = matrix_2x2()
    html = comparison.to_html()
    assert html.count("truncated (max tokens)") == 2  # the status line and the cut cell
    assert "2 × 2 matrix (strategies × adapters), 1 of 4 truncated (max tokens)" in html
    assert "⚠ truncated (max tokens)" in comparison.to_text()
    assert r"⚠ truncated \(max tokens\)" in comparison.to_markdown()  # escaped markdown
    stopped = matrix_2x2(status="stopped")
    assert "stopped (partial results), 1 truncated (max tokens)" in stopped.to_text()
    single = Comparison([result(finish_reason="length")])
    assert status_line(single, layout(single)) == "1 column, truncated (max tokens)"
    assert ", done" not in single.to_text().splitlines()[0]


def test_the_first_line_says_what_the_run_was():
    stopped = matrix_2x2(status="stopped")
    first = stopped.to_text().splitlines()[0]
    assert first.startswith("lmwidgets · 2 × 2 matrix (strategies × adapters), stopped")
    assert "running" not in stopped.to_html()
    failed = Comparison([result(finish_reason="error", error="boom")], status="error")
    assert "1 column, failed (partial results)" in failed.to_html() and "boom" in failed.to_html()


def test_the_run_speed_is_said_once_and_cells_say_tokens_and_time():
    comparison = matrix_2x2()
    assert "tok/s" not in comparison.to_html()  # not measured: no speed at all
    comparison.seconds = 2.0
    html, text = comparison.to_html(), comparison.to_text()
    assert (
        "2 × 2 matrix (strategies × adapters), 1 of 4 truncated (max tokens) · 20 tokens in" in html
    )
    assert html.count("tok/s") == 1 and "20 tokens in 2.0 s · 10.0 tok/s" in text
    assert text.count("tok/s") == 1 and "[5 tokens · 0.5 s]" in text
    assert result("one", tokens=1).stats() == "1 token · 0.5 s"


def test_prompt_is_collapsed_and_settings_are_shown():
    comparison = matrix_2x2()
    html = comparison.to_html()
    assert html.count("<details") == 4 and "<details open" not in html
    assert "<summary" in html and "Q for cot · math" in html
    assert "model m · adapter math · temperature 0.7 · seed 7 · max tokens 64" in html
    assert "adapter base" in html and "top p" not in html
    assert "temperature 0.7 · seed 7 · max tokens 64" in comparison.to_text()


def test_records_without_settings_leave_them_out():
    bare = Comparison([Result("v", "t", "p", 1, 0.1, {"generation": "odd", "model": ["x"]})])
    assert "temperature" not in bare.to_text() and "model" not in bare.to_html()
    assert "adapter base" in bare.to_text()


# Themes ------------------------------------------------------------------------------------


LIGHT_ONLY = re.compile(r"(?<![,(])#(?:ddd|666|555|fff|a60|eee)\b")


def test_colours_come_from_theme_variables():
    for comparison in (matrix_2x2(), dataset_grid()):
        html = comparison.to_html()
        styles = re.findall(r'style="([^"]*)"', html)
        for style in styles:
            # A bare colour (not a var() fallback) would not follow the theme.
            assert not LIGHT_ONLY.search(style), style
            if "background:" in style and "background:transparent" not in style:
                assert "color:var(--jp-" in style, style  # a chip sets its text colour too
        assert "word-break:normal;overflow-wrap:anywhere" in html
        assert "break-word" not in html and "break-all" not in html


# Hostile text ------------------------------------------------------------------------------

ALLOWED_TAGS = {
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "pre",
    "b",
    "i",
    "code",
    "br",
    "span",
    "details",
    "summary",
}


def _hostile_comparison(dataset: bool) -> Comparison:
    results = []
    for text in HOSTILE:
        record = {
            "model": {"name": text},
            "adapter": {"name": text},
            "generation": {"temperature": text, "seed": text, "max_new_tokens": text},
        }
        results.append(
            Result(
                variant=text,
                text=text,
                prompt=text,
                tokens=1,
                seconds=0.1,
                record=record,
                answer=text,
                strategy=text,
                model=text,
                adapter=text,
                finish_reason="length",
                error=text,
                input=text if dataset else None,
                expected=text if dataset else None,
                compared=text if dataset else None,
                correct=True if dataset else None,
                # A token and its alternative can be hostile too (issue 15); ids are never shown.
                tokens_detail=[
                    {
                        "text": text,
                        "id": text,
                        "logprob": -1.0,
                        "top": [{"text": HOSTILE[0], "id": text, "logprob": -2.0}],
                    }
                ],
                confidence=0.5,
            )
        )
    scores = {text: 0.5 for text in HOSTILE} if dataset else None
    return Comparison(results, title=HOSTILE[0], notes=list(HOSTILE), scores=scores)


@pytest.mark.parametrize("dataset", [False, True])
def test_hostile_text_in_prompts_answers_expected_and_settings_stays_text(dataset):
    comparison = _hostile_comparison(dataset)
    html = comparison.to_html()
    tree = parse(html)
    assert set(tree.tags) <= ALLOWED_TAGS
    assert {name for name, _ in tree.attrs} <= {"class", "style", "title"}
    for name, value in tree.attrs:
        if name == "title":  # a token's probability and alternatives: text, quotes escaped
            assert re.fullmatch(r"p=0\.37( · alternatives: “<script>window\..*” 0\.14)?", value)
            continue
        assert not {"javascript", "pwned", "<", "onerror"} & {*re.findall(r"[a-z]+|<", value or "")}
        if name == "class":
            assert value and value.startswith("lmw-")
    shown = "".join(tree.text)
    for text in HOSTILE[:-1]:
        assert text in shown
    assert html.count('class="lmw-token"') == len(HOSTILE)
    assert "p=0.50" not in shown  # each answer is its whole text: no chip, no confidence
    assert f"model {HOSTILE[1]}" in shown and f"temperature {HOSTILE[2]}" in shown
    assert f"model {HOSTILE[1]}" in comparison.to_text()
    outside = re.sub(r"(`{3,})text\n.*?\n\1", "", comparison.to_markdown(), flags=re.S)
    assert "<" not in outside and HOSTILE[3] not in outside


def test_a_label_with_quotes_and_semicolons_cannot_style_the_page():
    label = 'x" style="position:fixed;inset:0;background:red'
    comparison = Comparison(
        [result(label, answer=label, strategy=label), result("b", answer="b", strategy="s")]
    )
    html = comparison.to_html()
    tree = parse(html)
    assert all("position:fixed" not in (value or "") for _, value in tree.attrs)
    assert label in "".join(tree.text)


# In a browser: contrast in JupyterLab Dark ---------------------------------------------------


def themed_page(html: str, theme: str) -> str:
    """``html`` in a page with a JupyterLab theme's variables and the output area's own rules
    (``pre`` breaks anywhere, table cells align right, rows are striped)."""
    variables = (THEMES / f"theme-{theme}-extension/index.css").read_text()
    rules = (
        "body{background:var(--jp-layout-color0);color:var(--jp-content-font-color1);"
        "font-family:var(--jp-content-font-family);margin:16px;max-width:900px}"
        ".jp-RenderedHTMLCommon pre{word-break:break-all}"
        ".jp-RenderedHTMLCommon td,.jp-RenderedHTMLCommon th{text-align:right}"
        ".jp-RenderedHTMLCommon tbody tr:nth-child(odd)"
        "{background:var(--jp-rendermime-table-row-background)}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{variables}{rules}</style>"
        f"</head><body><div class='jp-RenderedHTMLCommon'>{html}</div></body></html>"
    )


_CONTRAST_JS = """
(selector) => {
  const rgba = (s) => { const m = s.match(/rgba?\\(([^)]*)\\)/); if (!m) return [0,0,0,0];
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
    return {text: el.textContent.slice(0, 40), ratio: (a + 0.05) / (b + 0.05)}; });
}
"""


def contrasts(page, selector: str) -> list[dict]:
    """The contrast ratio of each element matching ``selector`` against its background."""
    result: list[dict] = page.evaluate(_CONTRAST_JS, selector)
    return result


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("theme", ["dark", "light", "dark-high-contrast"])
def test_answer_chips_and_marks_read_in_jupyterlab_themes(theme, tmp_path):
    from lab_server import chromium_page

    html = matrix_2x2().to_html() + dataset_grid().to_html()
    path = tmp_path / f"static-{theme}.html"
    path.write_text(themed_page(html, theme), encoding="utf-8")
    with chromium_page() as page:
        page.goto(path.as_uri())
        checked = {}
        for selector in (".lmw-answer", ".lmw-verdict", ".lmw-flag", ".lmw-status", "pre"):
            found = contrasts(page, selector)
            assert found, selector
            checked[selector] = min(item["ratio"] for item in found)
        assert all(ratio >= 4.5 for ratio in checked.values()), checked
        word_break = page.evaluate("getComputedStyle(document.querySelector('td pre')).wordBreak")
        assert word_break == "normal"
        assert page.evaluate("getComputedStyle(document.querySelector('td')).textAlign") == "left"
