"""Hostile strings in prompts, examples, datasets and model output execute nothing: live in
JupyterLab, after save and reopen, and in the nbconvert HTML export (headless Chromium)."""

import json
import subprocess
import sys

import pytest
from hostile import HOSTILE
from lab_server import (
    chromium_page,
    jupyter_lab,
    notebook_json,
    open_notebook,
    require_chromium,
    run_all_cells,
    shutdown_kernels,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MARKER = "() => window.__lmw_pwned === undefined && !document.querySelector('img[src=x], iframe[srcdoc], form[action]')"


def _cells(tiny_dir):
    # Everything but the lone surrogate (JSON can't carry it), plus one enormous single line.
    corpus = json.dumps([*HOSTILE[:-1], "<b>" + "x" * 120_000 + "</b>"])
    return [
        f"%load_ext lmwidgets\n%lm load {tiny_dir} --as tiny\nimport json\nH = json.loads({corpus!r})\n"
        "ex = [(h, h) for h in H[:3]]\nds = [{'input': h, 'expected': h} for h in H[:4]]",
        # One demonstration: it goes through the hostile template too (the tiny model reads 512).
        '%%prompt --compare zero-shot,few-shot --examples ex --shots 1 --dataset ds --system "{H[0]}" -n 4 --out r\n'
        '{input} <script>window.__lmw_pwned=1</script><img src=x onerror="window.__lmw_pwned=1">',
        "from lmwidgets.notebook.widgets import PromptView\nfrom lmwidgets.core.results import Comparison, Result\n"
        "fake = [Result(variant=h, text=h, prompt=h, tokens=1, seconds=1.0, record={'t': h}, answer=h) for h in H]\n"
        "display(PromptView(title=H[0], columns=[PromptView.column(h, h, answer=h, note=h) for h in H], status='done', message=H[1]))\n"
        "Comparison(fake, title=H[5], notes=[H[6]])",
        "print('DONE', len(r))",
    ]


def _assert_safe(page):
    assert page.evaluate(MARKER), "a payload ran or created an element"
    assert page.dialogs == []


def test_hostile_strings_stay_text_live_reopened_and_exported(tmp_path, tiny_dir):
    require_chromium()
    (tmp_path / "hostile.ipynb").write_text(notebook_json(_cells(tiny_dir)))
    with jupyter_lab(tmp_path) as (base, token), chromium_page() as page:
        open_notebook(page, base, token, "hostile.ipynb")
        run_all_cells(page)
        page.locator(".jp-OutputArea-output", has_text="DONE 8").wait_for(timeout=180_000)
        # The enormous line is bounded in the widget and in the static copy, with a visible note.
        assert page.get_by_text("more characters not shown").count() >= 1
        assert page.get_by_text("more characters cut here").count() >= 1
        page.wait_for_timeout(500)
        _assert_safe(page)
        live_text = " ".join(page.locator(".lmw-live").all_text_contents())
        assert "<script>window.__lmw_pwned = 1; alert(1)</script>" in live_text
        assert '<img src=x onerror="window.__lmw_pwned=1;alert(1)">' in live_text
        static_text = " ".join(page.locator(".lmw-static").all_text_contents())
        assert (
            "<svg onload=window.__lmw_pwned=1>" in static_text
        )  # the Comparison repr (no live twin)
        # Save, then reopen: the saved outputs render from the file, without the widget models.
        page.keyboard.press("Control+s")
        page.wait_for_timeout(1500)
        assert shutdown_kernels(base, token) == 1
        page.reload()
        page.wait_for_selector(".lmw-static", timeout=90_000)
        page.wait_for_timeout(3000)
        _assert_safe(page)
        assert page.locator(".lmw-live").count() == 0  # no widget models without the old kernel
        assert page.locator(".lmw-static").first.is_visible()
        page.screenshot(path=str(tmp_path / "reopened.png"))
        reopened = " ".join(page.locator(".lmw-static").all_text_contents())
        assert "<script>window.__lmw_pwned=1</script>" in reopened  # the prompt template, as text
        assert "<form action=" in reopened
    saved = json.loads((tmp_path / "hostile.ipynb").read_text())
    assert any(
        o.get("data", {}).get("application/vnd.lmwidgets.run+json")
        for c in saved["cells"]
        for o in c.get("outputs", [])
    )
    html = tmp_path / "hostile.html"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "html",
            str(tmp_path / "hostile.ipynb"),
            "--output",
            str(html),
        ],
        check=True,
        capture_output=True,
    )
    with chromium_page() as page:
        page.goto(html.as_uri())
        page.wait_for_timeout(1500)
        _assert_safe(page)
        text = page.locator("body").text_content()
        assert "<script>window.__lmw_pwned = 1; alert(1)</script>" in text
        assert "javascript:window.__lmw_pwned=1" in text
        assert page.locator(".lmw-static").count() >= 2
