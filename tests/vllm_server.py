"""A real vLLM server for the served-model tests: the CPU build in ``.venv-vllm``, serving the
embedded default model (the kernel's de-quantized cache, a standard checkpoint) on loopback.

One server per test session, started on first use (about 75 s on two cores) and stopped at the
end, whatever happens. It runs with an API key (``--api-key``), runtime LoRA loading and LoRA
support, so the tests see what a real deployment does. ``make test`` sets
``LMWIDGETS_REQUIRE_VLLM=1``: a missing virtualenv then fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"
SERVED_NAME = "SmolLM2-135M-Instruct"
#: The environment variable the tests pass to ``--api-key-env`` (the key is made per session).
KEY_ENV = "LMWIDGETS_TEST_API_KEY"
READY_SECONDS = 400


def require_vllm() -> Path:
    """The vLLM interpreter; a failure (not a skip) when ``LMWIDGETS_REQUIRE_VLLM=1``."""
    if VLLM_PYTHON.exists():
        return VLLM_PYTHON
    message = f"{VLLM_PYTHON} is missing: run `make vllm` (make test does)."
    if os.environ.get("LMWIDGETS_REQUIRE_VLLM") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def vllm_server(model_dir: Path, log_path: Path, key: str):
    """Start vLLM on a free loopback port; yield its URL; stop it (and its workers) at the end."""
    python = require_vllm()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        "--dtype",
        "float32",
        "--enable-lora",
        "--max-lora-rank",
        "16",
        "--api-key",
        key,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _healthy(url):
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"vLLM exited with {process.returncode} before it was ready:\n{tail}")
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM was not ready in {READY_SECONDS} s (log: {log_path})")
            time.sleep(1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(timeout=10)


def make_key() -> str:
    """A fresh API key for one session (recognisable, so a leak is easy to search for)."""
    return "lmw-secret-" + secrets.token_hex(16)
