"""The static copy in a browser (headless Chromium, no JupyterLab): a matrix's corner and row
labels keep their words whole where JupyterLab and nbconvert size boxes with
``box-sizing: border-box`` ("temperature \\ trial" broke into "temperatu" / "re")."""

from __future__ import annotations

import pytest
from lab_server import chromium_page, require_chromium

import lmwidgets

pytestmark = pytest.mark.browser

#: Which words of 5+ letters in a header's text are drawn over two lines.
SPLIT_HEADER_WORDS = """() => [...document.querySelectorAll('th')].map((th) => {
  const node = th.firstChild;
  if (!node || node.nodeType !== 3) return null;
  const s = node.textContent, split = [], re = /[A-Za-z]{5,}/g;
  let m;
  while ((m = re.exec(s))) {
    const r = document.createRange();
    r.setStart(node, m.index);
    r.setEnd(node, m.index + m[0].length);
    if (new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size > 1) split.push(m[0]);
  }
  return [s, split];
}).filter(Boolean)"""


def test_matrix_corner_and_row_labels_keep_their_words_whole(registry, tmp_path):
    require_chromium()
    lmwidgets.load_model(engine="scripted", name="s", replies={"*": "An apple."})
    options = {"temperatures": "0,0.7", "trials": 3, "seed": 1, "display": False}
    runs = [
        lmwidgets.prompt("Name one fruit.", columns="trial", **options),
        lmwidgets.prompt(
            "Name one fruit.", systems={"none": None, "brief": "Be brief."}, **options
        ),
    ]
    page_html = tmp_path / "static.html"
    page_html.write_text(
        "<html><head><style>*{box-sizing:border-box}</style></head>"
        "<body style='width:1000px'>" + "".join(r.to_html() for r in runs) + "</body></html>"
    )
    with chromium_page(viewport={"width": 1040, "height": 800}) as page:
        page.goto(page_html.as_uri())
        headers = page.evaluate(SPLIT_HEADER_WORDS)
    assert any("temperature" in text for text, _ in headers), headers
    assert all(split == [] for _, split in headers), headers
