"""Helpers for real-browser tests: a JupyterLab server and headless Chromium via Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def require_chromium() -> str:
    """The Chromium path; a failure (not a skip) when LMWIDGETS_REQUIRE_BROWSER=1 (make test, CI)."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: install it with `apt-get install chromium` (make test does)."
    if os.environ.get("LMWIDGETS_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def notebook_json(cells: list[str]) -> str:
    """A notebook with one code cell per string."""
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "metadata": {},
                    "execution_count": None,
                    "outputs": [],
                    "source": src,
                }
                for src in cells
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root: Path):
    """Run JupyterLab on 127.0.0.1 serving ``root``; yields (base_url, token)."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(root / ".jupyter-runtime"),
    }
    settings = (
        root / ".jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    )
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    log = open(root / "jupyter.log", "w")  # noqa: SIM115  (closed in finally)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((root / "jupyter.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def lab_settings(root: Path, plugin: str, values: dict) -> None:
    """Write JupyterLab user settings for ``plugin`` (e.g. ``@jupyterlab/notebook-extension/
    tracker``) before :func:`jupyter_lab` starts on ``root``."""
    path = root / ".jupyter-config" / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


@contextlib.contextmanager
def chromium_page(*, clipboard: bool = False, viewport: dict | None = None):
    """A Playwright page in headless Chromium; dialogs are recorded (and dismissed).

    ``clipboard`` grants the page clipboard read and write (to check what a Copy button copied).
    """
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(
                viewport=viewport or {"width": 1400, "height": 1000},
                permissions=["clipboard-read", "clipboard-write"] if clipboard else [],
            )
            page = context.new_page()
            page.dialogs = []

            def on_dialog(dialog):
                page.dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            yield page
        finally:
            browser.close()


def run_all_cells(page) -> None:
    """JupyterLab: Run > Run All Cells."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


#: What the last cell of a browser-test notebook prints once every run in it has finished.
DONE_MARK = "ALL DONE"


def done_output(page):
    """The output of the cell that printed "ALL DONE": the notebooks of the browser tests end
    with a cell printing it (and the values to check), so waiting for it waits for every run, and
    ``done_output(page).first.text_content()`` is the line to assert on."""
    return page.locator(".jp-OutputArea-output", has_text=DONE_MARK)


def open_notebook(page, base: str, token: str, name: str) -> None:
    """Open a notebook and wait until its kernel is idle."""
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-Toolbar-kernelStatus",
        timeout=90_000,
    )
    page.wait_for_timeout(1500)


def shutdown_kernels(base: str, token: str) -> int:
    """Shut down every kernel of the server (so a reopened notebook has no widget models)."""
    request = urllib.request.Request(f"{base}/api/kernels?token={token}")
    kernels = json.loads(urllib.request.urlopen(request, timeout=10).read())
    for kernel in kernels:
        delete = urllib.request.Request(
            f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE"
        )
        urllib.request.urlopen(delete, timeout=30)
    return len(kernels)


def wait_for_columns(page, count: int, min_chars: int = 8, timeout: int = 180_000) -> None:
    """Wait until the live view shows ``count`` columns that each hold some streamed text."""
    page.wait_for_function(
        """([count, minChars]) => {
            const texts = [...document.querySelectorAll('.lmw-live .lmw-text')];
            return texts.length === count && texts.every(t => t.textContent.length > minChars);
        }""",
        arg=[count, min_chars],
        timeout=timeout,
    )


def open_second_view(page) -> None:
    """JupyterLab's "Create New View for Cell Output" on the first live widget: a second view
    of the same widget model, rendered while the kernel may be busy."""
    page.locator(".lmw-live").first.click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Create New View for Cell Output").first.click()
    page.wait_for_function("document.querySelectorAll('.lmw-live').length === 2", timeout=30_000)


def live_texts(page) -> list[list[str]]:
    """The texts of every live view's columns, read in one go (one list per view)."""
    return page.evaluate(
        "[...document.querySelectorAll('.lmw-live')]"
        ".map(v => [...v.querySelectorAll('.lmw-text')].map(t => t.textContent))"
    )


def wait_for_status(page, status: str, timeout: int = 30_000) -> None:
    """Wait until the live view's status badge reads ``status``."""
    page.wait_for_function(
        "(status) => document.querySelector('.lmw-live .lmw-status')?.textContent === status",
        arg=status,
        timeout=timeout,
    )


def set_theme(page, name: str) -> None:
    """Switch JupyterLab's theme (Settings > Theme > ``name``, e.g. "JupyterLab Dark")."""
    import re

    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(name)}$")).first.click()
    page.wait_for_function(
        "(name) => document.body.dataset.jpThemeName === name", arg=name, timeout=30_000
    )
    page.wait_for_timeout(1000)  # the theme's stylesheet applies


#: JavaScript for ``locator.evaluate``: the WCAG contrast ratio of an element's text against
#: the background it is drawn on (translucent backgrounds of its ancestors composited, rgb()
#: and color(srgb ...) as color-mix() computes), and
#: that background's luminance: ``{ratio, background}``.
CONTRAST_JS = """(el) => {
  const parse = (c) => {
    const srgb = c.match(/color\\(srgb ([^)]+)\\)/);  // what color-mix() computes to
    if (srgb) {
      const p = srgb[1].split(/[\\s\\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (node) => {
    const layers = [];
    for (let e = node; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let base = [255, 255, 255];
    for (const c of layers.reverse()) base = base.map((v, i) => v * (1 - c[3]) + c[i] * c[3]);
    return base;
  };
  const lum = (rgb) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const bg = background(el);
  const c = parse(getComputedStyle(el).color);
  const fg = [0, 1, 2].map((i) => c[i] * c[3] + bg[i] * (1 - c[3]));
  const [a, b] = [lum(fg), lum(bg)];
  return { ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), background: lum(bg) };
}"""


@contextlib.contextmanager
def lab_with_notebook(
    root: Path, name: str, cells: list[str], views: int, done_ms: int = 120_000, **page_options
):
    """JupyterLab on ``root`` with notebook ``name`` of ``cells`` (one code cell each) run in
    Chromium: yields the page once a cell printed "ALL DONE" (waiting up to ``done_ms``) and
    ``views`` live views are shown. Every cell stays in the page (no windowing), so every widget
    can be measured."""
    require_chromium()
    lab_settings(root, "@jupyterlab/notebook-extension/tracker", {"windowingMode": "none"})
    (root / name).write_text(notebook_json(cells))
    with jupyter_lab(root) as (base, token), chromium_page(**page_options) as page:
        open_notebook(page, base, token, name)
        run_all_cells(page)
        done_output(page).wait_for(timeout=done_ms)
        page.wait_for_function(
            f"document.querySelectorAll('.lmw-live').length === {views}", timeout=30_000
        )
        page.wait_for_timeout(500)
        yield page
