"""The API key of a served model never reaches records, outputs, the static copy, error messages
or logs on the newer served paths: a served judge, given choices scored by prompt
log-probabilities, and audio sent as ``input_audio`` parts.

The server here is a small OpenAI-compatible HTTP server on loopback (the real vLLM server of
``tests/vllm_server.py`` never echoes a key, so it cannot show a leak): it lists its model and
tokenizes for the key it was given, but refuses completions (a key without that scope) and,
as some servers do, quotes the key it received in its refusal, once near the start and once
straddling the 400 characters lmwidgets keeps of a server's message.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import lmwidgets
from lmwidgets.errors import ServerError
from lmwidgets.run.records import RECORD_MIME

KEY_ENV = "LMW_SECRETS_TEST_KEY"
MODEL = "echo-model"


class KeyQuotingServer(BaseHTTPRequestHandler):
    """``/version`` (so the engine takes it for vLLM: choices allowed, prompts tokenized) and
    ``/v1/models`` and ``/tokenize``/``/detokenize`` for the right key; completions refused with
    HTTP 401, the key quoted back."""

    key = ""

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self) -> None:
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        first = f"Incorrect API key provided: {given}. "
        padding = "." * (365 - len(first))  # the second quote starts at 370, across the cut
        message = f"{first}{padding} key={given} has no completions scope"
        self._send(401, {"error": {"message": message, "type": "invalid_request_error"}})

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.key}"

    def do_GET(self):
        if not self._authorized():
            return self._refuse()
        if self.path == "/version":
            return self._send(200, {"version": "0.0-test"})
        if self.path == "/v1/models":
            return self._send(200, {"data": [{"id": MODEL, "max_model_len": 4096}]})
        return self._send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self._authorized() or self.path not in ("/tokenize", "/detokenize"):
            return self._refuse()
        if self.path == "/tokenize":
            text = str(body.get("prompt") or "")  # chat messages (audio too): a short prompt
            return self._send(200, {"tokens": list(range(1, 9 + len(text) // 4))})
        return self._send(200, {"prompt": f"{len(body.get('tokens', []))} tokens"})


@pytest.fixture
def key(monkeypatch):
    value = "sk-lmw-" + secrets.token_hex(20)
    monkeypatch.setenv(KEY_ENV, value)
    return value


@pytest.fixture
def server(key):
    handler = type("Handler", (KeyQuotingServer,), {"key": key})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


@pytest.fixture
def served(server, registry):
    return lmwidgets.connect(server, name="served", api_key_env=KEY_ENV)


@pytest.fixture
def logs(caplog):
    """Every log record of every logger (httpx and httpcore too), from DEBUG up."""
    caplog.set_level(logging.DEBUG)
    return caplog


def _assert_secret(key: str, *texts: str) -> None:
    """Neither the key nor any 8 characters of it in a row appear in ``texts``."""
    pieces = {key[i : i + 8] for i in range(len(key) - 7)}
    for text in texts:
        leaked = [p for p in pieces if p in text]
        assert not leaked, f"the API key leaked ({leaked[:3]}) into: {text[:300]!r}"


def _shown(comparison) -> list[str]:
    """Everything a saved notebook keeps of a comparison: its records, the static copy in
    every format, its notes and its JSON."""
    bundle = comparison.mimebundle()
    return [
        json.dumps(bundle[RECORD_MIME]),
        bundle["text/html"],
        bundle["text/markdown"],
        bundle["text/plain"],
        comparison.to_json(),
        "\n".join(comparison.notes),
        repr(comparison),
    ]


def test_the_key_is_quoted_back_and_blanked_in_every_refusal(served, key, logs):
    """The bare client: a refused POST names the server and the refusal, not the key (the
    copy that straddles the 400-character cut too)."""
    with pytest.raises(ServerError, match=r"refused POST /v1/completions \(HTTP 401\)") as caught:
        served._client.post("/v1/completions", {"model": MODEL, "prompt": [1]})
    message = str(caught.value)
    assert "Incorrect API key provided: ***" in message
    _assert_secret(key, message, repr(caught.value), logs.text)
    _assert_secret(key, served.summary(), repr(served), json.dumps(served.record()))


def test_a_served_judge_refused_leaves_columns_unjudged_without_the_key(served, key, logs):
    lmwidgets.load_model(engine="scripted", name="writer", replies={"*": "Paris."})
    comparison = lmwidgets.prompt(
        "Capital of France?", model="writer", judge="served", judge_tokens=16, display=False
    )
    (result,) = comparison.results
    assert result.text == "Paris." and result.judge_score is None
    note = result.record["judge"]["note"]
    assert "HTTP 401" in note and "***" in note, note
    assert any("HTTP 401" in n for n in comparison.notes)
    _assert_secret(key, *_shown(comparison), logs.text)


def test_served_choices_refused_without_the_key(served, key, logs):
    with pytest.raises(lmwidgets.LmWidgetsError, match="HTTP 401") as caught:
        lmwidgets.prompt(
            "Capital of France?", model="served", choices=["Paris", "Lyon"], display=False
        )
    texts = [str(caught.value), repr(caught.value), logs.text]
    partial = getattr(caught.value, "partial", None)
    if partial is not None:
        texts += _shown(partial)
    _assert_secret(key, *texts)


def test_served_audio_refused_without_the_key(served, key, logs):
    tone = (np.sin(np.linspace(0, 400, 16000)).astype("float32"), 16000)
    with pytest.raises(lmwidgets.LmWidgetsError, match="HTTP 401") as caught:
        lmwidgets.prompt(
            "What do you hear? {audio}",
            model="served",
            media={"audio": [tone]},
            max_new_tokens=4,
            display=False,
        )
    texts = [str(caught.value), repr(caught.value), logs.text]
    partial = getattr(caught.value, "partial", None)
    if partial is not None:
        texts += _shown(partial)
    _assert_secret(key, *texts)


def test_the_magics_show_no_key(server, key, shell, capsys, logs):
    """``%lm connect --api-key-env``, a ``%%prompt --judge`` on it, ``--choices`` and
    ``--audio`` on it: the cells' output, their short errors and what they bind."""
    shell.run_line_magic("lm", f"connect {server} --as lmw_served --api-key-env {KEY_ENV}")
    shell.run_line_magic("lm", "models")
    lmwidgets.load_model(engine="scripted", name="lmw_writer", replies={"*": "Paris."})
    shell.user_ns["lmw_opts"] = ["Paris", "Lyon"]
    shell.user_ns["lmw_tone"] = (np.zeros(8000, dtype="float32"), 16000)
    judged = shell.run_cell(
        "%%prompt -m lmw_writer --judge lmw_served --judge-tokens 8 --out lmw_j\nCapital?"
    )
    assert judged.success
    failed = [
        shell.run_cell("%%prompt -m lmw_served --choices lmw_opts --out lmw_c\nCapital?"),
        shell.run_cell("%%prompt -m lmw_served --audio lmw_tone -n 4 --out lmw_a\n{audio}?"),
    ]
    assert all(isinstance(r.error_in_exec, ServerError) for r in failed)
    shown = capsys.readouterr()
    kept = [shell.user_ns[name] for name in ("lmw_j", "lmw_c", "lmw_a") if name in shell.user_ns]
    texts = [shown.out, shown.err, logs.text, *[str(r.error_in_exec) for r in failed]]
    for comparison in kept:
        texts += _shown(comparison)
    _assert_secret(key, *texts)
    assert "HTTP 401" in shown.out + shown.err


def test_a_password_in_the_url_reaches_no_message_or_log(server, registry, logs):
    """``http://user:pw@host`` goes to the server as basic auth (as before), but requests use
    the URL without it, so httpx's request log has no password, and the ``Basic`` token a
    server quotes back is blanked like a key."""
    import base64

    password = "pw-" + secrets.token_hex(12)
    token = base64.b64encode(f"lmw:{password}".encode()).decode()
    handler = type(
        "Handler", (KeyQuotingServer,), {"key": "", "_authorized": lambda self: True}
    )  # answers every GET: connecting works
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        engine = lmwidgets.connect(f"http://lmw:{password}@127.0.0.1:{port}/v1", name="basic")
        with pytest.raises(ServerError, match=r"Incorrect API key provided: Basic \*\*\*"):
            engine._client.post("/v1/completions", {"model": MODEL, "prompt": [1]})
        message = str(engine._client.fail("POST /x", "boom"))
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()
    assert "HTTP Request: GET http://127.0.0.1" in logs.text  # httpx did log the requests
    for secret in (password, token):
        _assert_secret(secret, logs.text, message, engine.summary(), repr(engine))
        _assert_secret(secret, json.dumps(engine.record()))
