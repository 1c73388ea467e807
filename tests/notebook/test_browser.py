"""JupyterLab in headless Chromium: the answer streams into the widget, and Stop works."""

import pytest
from lab_server import (
    chromium_page,
    jupyter_lab,
    live_texts,
    notebook_json,
    open_notebook,
    open_second_view,
    require_chromium,
    run_all_cells,
    wait_for_columns,
    wait_for_status,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_prompt_streams_and_stop_keeps_partial_text(tmp_path):
    require_chromium()
    (tmp_path / "stream.ipynb").write_text(
        notebook_json(
            [
                "%load_ext lmwidgets",
                "%lm load",
                "%%prompt --out r --max-new-tokens 1500\nCount from 1 to 500, separated by commas.",
                "print('finish:', r[0].finish_reason, '| tokens:', r[0].tokens, '| status:', r.status)",
            ]
        )
    )
    with jupyter_lab(tmp_path) as (base, token), chromium_page() as page:
        open_notebook(page, base, token, "stream.ipynb")
        run_all_cells(page)
        text = page.locator(".lmw-live .lmw-text").first
        wait_for_columns(page, 1, min_chars=20)
        first = len(text.text_content())
        # The text grows while generating (streaming); on a loaded machine a token can take
        # seconds, so wait for growth rather than a fixed time.
        page.wait_for_function(
            "(n) => document.querySelector('.lmw-live .lmw-text').textContent.length > n",
            arg=first,
            timeout=60_000,
        )
        second = len(text.text_content())
        assert page.locator(".lmw-live .lmw-status").first.text_content() == "running"
        # While the live widget shows, its static copy in the next output is hidden.
        assert not page.locator(".lmw-static").first.is_visible()
        # A second view opened mid-run shows the text streamed so far, and keeps up.
        open_second_view(page)
        page.wait_for_timeout(1000)
        views = live_texts(page)
        assert views[0] == views[1] and len(views[1][0]) >= second, views
        page.locator(".lmw-live .lmw-stop").first.click()
        wait_for_status(page, "stopped")
        page.wait_for_function(
            "[...document.querySelectorAll('.lmw-live .lmw-status')]"
            ".every(s => s.textContent === 'stopped')"
        )
        views = live_texts(page)
        assert views[0] == views[1], "both views end with the same text"
        kept = text.text_content()
        assert len(kept) >= second
        assert "1" in kept
        output = page.locator(".jp-OutputArea-output", has_text="finish:")
        output.wait_for(timeout=60_000)
        line = output.first.text_content()
        assert "finish: stopped" in line and "status: stopped" in line
        tokens = int(line.split("tokens:")[1].split("|")[0])
        assert 0 < tokens < 1500
        assert page.locator(".lmw-live .lmw-stop").first.is_disabled()
        page.screenshot(path=str(tmp_path / "stopped.png"))
        assert page.dialogs == []


def test_three_column_comparison_streams_into_every_column_and_stops(tmp_path):
    require_chromium()
    (tmp_path / "compare.ipynb").write_text(
        notebook_json(
            [
                "%load_ext lmwidgets\n%lm load\ncounting = [('Count from 1 to 4.', '1, 2, 3, 4')]",
                "%%prompt --compare zero-shot,few-shot,cot --examples counting --max-new-tokens 1500 --out cmp\n"
                "Count from 1 to 500.",
                "print('reasons:', [r.finish_reason for r in cmp], '| status:', cmp.status)",
            ]
        )
    )
    with jupyter_lab(tmp_path) as (base, token), chromium_page() as page:
        open_notebook(page, base, token, "compare.ipynb")
        run_all_cells(page)
        wait_for_columns(page, 3, timeout=180_000)
        labels = page.locator(".lmw-live .lmw-label").all_text_contents()
        assert labels == ["zero-shot", "few-shot", "cot"]
        lengths = [len(t) for t in page.locator(".lmw-live .lmw-text").all_text_contents()]
        # The columns keep streaming (waiting for growth: a token can take seconds under load).
        page.wait_for_function(
            "(n) => [...document.querySelectorAll('.lmw-live .lmw-text')]"
            ".reduce((sum, t) => sum + t.textContent.length, 0) > n",
            arg=sum(lengths),
            timeout=60_000,
        )
        page.locator(".lmw-live .lmw-stop").first.click()
        wait_for_status(page, "stopped")
        statuses = [
            c.get_attribute("data-status") for c in page.locator(".lmw-live .lmw-col").all()
        ]
        cells = page.locator(".lmw-live .lmw-col").all()
        assert "stopped" in statuses and set(statuses) <= {"stopped", "eos"}, statuses
        for status, cell in zip(statuses, cells, strict=True):
            # How a cell ended is said once: its badge (not again in its note).
            said = cell.inner_text().count("stopped")
            assert said == (status == "stopped"), (status, cell.inner_text())
            if status == "stopped":
                assert cell.locator(".lmw-badge").text_content() == "stopped"
        output = page.locator(".jp-OutputArea-output", has_text="reasons:")
        output.wait_for(timeout=60_000)
        assert "status: stopped" in output.first.text_content()
        page.screenshot(path=str(tmp_path / "compare.png"))
        assert page.dialogs == []


def test_adapters_comparison_streams_in_jupyterlab(tmp_path):
    require_chromium()
    (tmp_path / "adapters.ipynb").write_text(
        notebook_json(
            [
                "%load_ext lmwidgets\n%lm load\nimport lmwidgets\n"
                "pairs = [('Count to 3.', 'Arr, 1, 2, 3, matey!'), ('Count to 2.', 'Arr, 1, 2, matey!')]\n"
                "lmwidgets.train_lora(pairs, 'a1', steps=2, layers=[29])\n"
                "lmwidgets.train_lora(pairs, 'a2', steps=4, layers=[28, 29], seed=1)",
                "%lm adapter load a1 --as one\n%lm adapter load a2 --as two",
                "%%prompt --adapters base,one,two --max-new-tokens 1500 --out ad\nCount from 1 to 500.",
                "print('adapters:', [r.adapter for r in ad], '| status:', ad.status)",
            ]
        )
    )
    with jupyter_lab(tmp_path) as (base, token), chromium_page() as page:
        open_notebook(page, base, token, "adapters.ipynb")
        run_all_cells(page)
        wait_for_columns(page, 3, timeout=240_000)
        assert page.locator(".lmw-live .lmw-label").all_text_contents() == ["base", "one", "two"]
        assert page.locator(".lmw-live .lmw-status").first.text_content() == "running"
        page.locator(".lmw-live .lmw-stop").first.click()
        wait_for_status(page, "stopped")
        output = page.locator(".jp-OutputArea-output", has_text="adapters:")
        output.wait_for(timeout=60_000)
        assert "[None, 'one', 'two'] | status: stopped" in output.first.text_content()
        page.screenshot(path=str(tmp_path / "adapters.png"))
        assert page.dialogs == []
