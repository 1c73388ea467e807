"""A Jupyter Notebook 7 server for real-browser tests (the JupyterLab one is in lab_server.py)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_notebook7() -> None:
    """Skip unless Jupyter Notebook 7 is installed (``pip install lmwidgets[lab]`` has it)."""
    notebook = pytest.importorskip("notebook", reason="Jupyter Notebook is not installed")
    major = int(str(getattr(notebook, "__version__", "0")).split(".")[0])
    if major < 7:
        pytest.skip(f"Jupyter Notebook {notebook.__version__} is installed; these tests need 7")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quiet_settings(root: Path) -> None:
    """No news or update checks (the server has no network)."""
    settings = (
        root / ".jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    )
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def _wait_until_up(process: subprocess.Popen, base: str, token: str, log: Path) -> None:
    """Wait for the server's REST API (at most two minutes); fail with its log's end."""
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-3000:]) from None
            time.sleep(0.5)


@contextlib.contextmanager
def jupyter_notebook(root: Path) -> Iterator[tuple[str, str]]:
    """Run Jupyter Notebook 7 on 127.0.0.1 serving ``root``; yields (base_url, token). The
    server is stopped (terminated, then killed) when the block ends."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(root / ".jupyter-runtime"),
    }
    _quiet_settings(root)
    log_path = root / "notebook7.log"
    log = open(log_path, "w")  # noqa: SIM115  (closed in finally)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "notebook",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}",
            "--allow-root",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base, token, log_path)
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()


def wait_for_idle_kernel(base: str, token: str, timeout: float = 90) -> None:
    """Wait until the server has a kernel and every kernel is idle.

    Listing kernels while one is starting can fail with HTTP 500 (jupyter_server reads the new
    kernel's ``last_activity`` before it is set: seen in CI); that is "not yet", not an error."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            kernels = json.loads(
                urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10).read()
            )
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise
            kernels, last_error = [], error
        if kernels and all(k.get("execution_state") == "idle" for k in kernels):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no idle kernel after {timeout:.0f} s (last error: {last_error})")


def open_notebook7(page, base: str, token: str, name: str) -> None:
    """Open a notebook in Notebook 7's single-document view and wait until its kernel is idle."""
    page.goto(f"{base}/notebooks/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    wait_for_idle_kernel(base, token)
    page.wait_for_timeout(1000)
