"""A second real OpenAI-compatible server: ``transformers serve`` (it ships with transformers).

It lists no models when pinned to one (``--model`` names it) and has no ``/version``: the
served engine must work with such a server as it does with vLLM.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from vllm_server import free_port

import lmwidgets

pytestmark = [pytest.mark.served, pytest.mark.slow]


@pytest.fixture(scope="module")
def transformers_server(tmp_path_factory):
    from lmwidgets.engines.transformers.loading import served_checkpoint

    model = served_checkpoint()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("transformers-serve")
    hub = folder / "hub"  # an empty hub cache: its model listing scans it
    hub.mkdir()
    cli = Path(sys.executable).with_name("transformers")
    command = [str(cli), "serve", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--device", "cpu", "--dtype", "float32"]
    env = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"}
    log = folder / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url, str(model)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_transformers_serve_answers_like_the_kernel(transformers_server, registry):
    url, model = transformers_server
    import httpx

    listed = httpx.get(f"{url}/v1/models", timeout=30).json().get("data", [])
    if not listed:  # transformers <= 5.23: a pinned server lists nothing, so --model is needed
        with pytest.raises(lmwidgets.InvalidArgumentError, match="serves 0 models"):
            lmwidgets.connect(url)
    served = lmwidgets.connect(url, model=model, name="tserve")
    assert served.server == "openai-compatible" and served.server_version is None
    lmwidgets.load_model(name="local")
    cmp = lmwidgets.prompt(
        "What is 7 + 8?",
        models="local,tserve",
        compare="zero-shot,cot",
        max_new_tokens=20,
        display=False,
    )
    assert cmp["local · cot"].text == cmp["tserve · cot"].text
    assert cmp["local · zero-shot"].text == cmp["tserve · zero-shot"].text
    assert cmp["tserve · cot"].answer == "15"
    assert cmp["tserve · cot"].record["model"]["server"] == "openai-compatible"


def test_transformers_serve_cannot_score_choices(transformers_server, registry):
    url, model = transformers_server
    served = lmwidgets.connect(url, model=model, name="tserve")
    with pytest.raises(lmwidgets.errors.ChoicesError, match="server does not return prompt log"):
        lmwidgets.prompt("Capital of France?", choices=["Paris", "Lyon"], display=False)
    assert served.calls == 0
