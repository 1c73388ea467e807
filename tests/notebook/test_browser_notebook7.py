"""Jupyter Notebook 7 in headless Chromium: the live widget renders and streams there too."""

from __future__ import annotations

import pytest
from lab_server import chromium_page, notebook_json, require_chromium, run_all_cells
from notebook7_server import jupyter_notebook, open_notebook7, require_notebook7

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_prompt_renders_in_notebook7(tmp_path):
    require_chromium()
    require_notebook7()
    (tmp_path / "nb7.ipynb").write_text(
        notebook_json(
            [
                "%load_ext lmwidgets",
                "%lm load --engine scripted --as echo",
                "%%prompt --out r\nHello from Notebook 7",
                "print('status:', r.status, '| text:', r[0].text)",
            ]
        )
    )
    with jupyter_notebook(tmp_path) as (base, token), chromium_page() as page:
        open_notebook7(page, base, token, "nb7.ipynb")
        assert page.locator("#jp-NotebookPanel, .jp-NotebookPanel").count() > 0
        assert "/notebooks/" in page.url  # Notebook 7's own page, not JupyterLab
        run_all_cells(page)
        page.wait_for_function(
            "() => document.querySelector('.lmw-live .lmw-text')"
            "?.textContent.includes('You said: Hello from Notebook 7')",
            timeout=120_000,
        )
        output = page.locator(".jp-OutputArea-output", has_text="status:")
        output.wait_for(timeout=60_000)
        assert "status: done | text: You said: Hello from Notebook 7" in output.first.text_content()
        assert page.locator(".lmw-live .lmw-status").first.text_content() == "done"
        errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']").count()
        assert errors == 0
        page.screenshot(path=str(tmp_path / "notebook7.png"))
        assert page.dialogs == []
