"""Served models: any server speaking the OpenAI chat-completions API (vLLM first).

``%lm connect URL`` (``lmwidgets.connect``) makes an :class:`ServedEngine`: a model that runs on
a server (vLLM, SGLang, llama.cpp's server, ``transformers serve``, hosted APIs), for models
larger than the kernel's machine. Every row of a batch is one streamed request; rows run
concurrently (bounded), so the server batches them. Stop closes the open streams (the server
aborts those requests) and keeps the text so far.

The API key is read from an environment variable at connect time and kept in memory only: it is
never written into a record, an output, an error message, a summary or a log.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lmwidgets.engines.base import (
    BatchOutcome,
    Capabilities,
    GenerationSettings,
    Message,
    PromptRow,
    Rendered,
    RowOutput,
    StepCallback,
    StopSignal,
    close_outputs,
)
from lmwidgets.errors import AdapterError, InvalidArgumentError, MediaError, ServerError
from lmwidgets.media.base import MediaInput, check_accepted

#: Requests in flight at once per batch (the server batches them; more only queue there).
DEFAULT_CONCURRENCY = 16
#: Seconds to wait for a server to accept a connection, and between streamed chunks.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0

_FINISH = {"stop": "eos", "length": "length", "abort": "stopped"}


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment: what records and messages may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def api_root(url: str) -> str:
    """The server's root URL (``http://host:port``) from what a user types (``.../v1`` too)."""
    text = str(url).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"{public_url(text) or text!r} is not a server URL: give http(s)://HOST:PORT, e.g. "
            "`%lm connect http://127.0.0.1:8000`."
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def read_api_key(variable: str | None) -> str | None:
    """The API key from environment variable ``variable`` (None: no key)."""
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key:
        raise InvalidArgumentError(
            f"The environment variable {variable} is not set or empty. Set it to the server's "
            "API key before connecting (the key itself is never written into the notebook)."
        )
    return key


class _Client:
    """A small JSON-over-HTTP client that turns every failure into a clear :class:`ServerError`
    (and never lets the API key into a message)."""

    def __init__(self, root: str, api_key: str | None, timeout: float) -> None:
        import httpx

        self.root = root
        self.shown = public_url(root)
        self._key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            trust_env=False,  # a proxy from the environment must not see local traffic or keys
        )

    def redact(self, text: str) -> str:
        """``text`` with the API key (if any) blanked out."""
        return text.replace(self._key, "***") if self._key else text

    def fail(self, what: str, exc: BaseException | str) -> ServerError:
        import httpx

        if isinstance(exc, httpx.ConnectError):
            cause = "cannot connect (is the server running, and is the URL right?)"
        elif isinstance(exc, httpx.TimeoutException):
            cause = "timed out waiting for the server"
        elif isinstance(exc, httpx.RemoteProtocolError):
            cause = "the connection was lost mid-answer"
        else:
            cause = str(exc) or type(exc).__name__
        return ServerError(self.redact(f"{self.shown}: {what} failed: {cause}"))

    def refused(self, what: str, response: Any) -> ServerError:
        """The server answered an error status: its own message, shortened."""
        try:
            body = response.json()
            message = body.get("message") or body.get("error") or body.get("detail") or body
            if isinstance(message, dict):
                message = message.get("message") or json.dumps(message)
        except ValueError:
            message = response.text
        text = " ".join(str(message).split())[:400]
        return ServerError(
            self.redact(f"{self.shown} refused {what} (HTTP {response.status_code}): {text}")
        )

    def get(self, path: str, *, optional: bool = False) -> Any:
        import httpx

        try:
            response = self.http.get(self.root + path)
        except httpx.HTTPError as exc:
            raise self.fail(f"GET {path}", exc) from None
        if response.status_code >= 400:
            if optional:
                return None
            raise self.refused(f"GET {path}", response)
        try:
            return response.json()
        except ValueError:
            if optional:
                return None
            raise self.fail(f"GET {path}", "the answer is not JSON") from None

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        import httpx

        try:
            response = self.http.post(self.root + path, json=payload)
        except httpx.HTTPError as exc:
            raise self.fail(f"POST {path}", exc) from None
        if response.status_code >= 400:
            raise self.refused(f"POST {path}", response)
        try:
            return response.json()
        except ValueError:
            return response.text

    def stream_chat(self, payload: dict[str, Any], cancel: threading.Event) -> Iterator[dict]:
        """The chunks of a streamed chat completion; closing early aborts the request."""
        import httpx

        try:
            with self.http.stream("POST", self.root + "/v1/chat/completions", json=payload) as r:
                if r.status_code >= 400:
                    r.read()
                    raise self.refused("the request", r)
                for line in r.iter_lines():
                    if cancel.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    yield json.loads(data)
        except httpx.HTTPError as exc:
            raise self.fail("streaming an answer", exc) from None
        except ValueError:
            raise self.fail("streaming an answer", "a chunk is not JSON") from None

    def close(self) -> None:
        self.http.close()


class _ServedAdapter:
    """A LoRA adapter the server serves by name."""

    def __init__(self, name: str, model: str, path: str | None = None) -> None:
        self.name = name
        self.model = model
        self.path = path
        self.rank: int | str = "?"
        self.target_modules: list[str] = []
        self.scale = 1.0
        self.parameters = 0
        self.bytes = 0

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "served": True, "path": self.path}

    def summary(self) -> str:
        where = f" · from {self.path}" if self.path else " · served"
        return f"{self.name} · on {self.model}{where}"


class ServedEngine:
    """A model on an OpenAI-compatible server (see the module docstring)."""

    engine = "openai"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        model: str | None = None,
        api_key_env: str | None = None,
        timeout: float = READ_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.name = name
        self.root = api_root(url)
        self.url = public_url(self.root)
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self._client = _Client(self.root, read_api_key(api_key_env), timeout)
        self.default_adapter: str | None = None
        self.adapters: dict[str, Any] = {}
        self.server, self.server_version = self._identify()
        listing = self._models()
        self.model_id, self.max_model_len = self._pick(listing, model)
        for entry in listing:
            parent = entry.get("parent")
            if parent == self.model_id and entry.get("id") != self.model_id:
                self.adapters[entry["id"]] = _ServedAdapter(entry["id"], name, entry.get("root"))
        self.calls = 0

    # -- connecting -------------------------------------------------------------------------

    def _identify(self) -> tuple[str, str | None]:
        """(server kind, version): vLLM answers ``/version``; others are just "openai"."""
        version = self._client.get("/version", optional=True)
        if isinstance(version, dict) and version.get("version"):
            return "vllm", str(version["version"])
        return "openai-compatible", None

    def _models(self) -> list[dict[str, Any]]:
        listing = self._client.get("/v1/models")
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise ServerError(f"{self.url}/v1/models did not list models; is it an OpenAI API?")
        return [entry for entry in data if isinstance(entry, dict) and entry.get("id")]

    def _pick(self, listing: list[dict[str, Any]], wanted: str | None) -> tuple[str, int | None]:
        """The served model (and its context length): ``wanted``, or the server's only one."""
        bases = [e for e in listing if not e.get("parent") or e.get("parent") == e.get("id")]
        ids = [str(e["id"]) for e in bases]
        if wanted is None:
            if len(ids) != 1:
                raise InvalidArgumentError(
                    f"{self.url} serves {len(ids)} models ({', '.join(ids) or 'none'}): pick one "
                    "with --model ID."
                )
            wanted = ids[0]
        entry = next((e for e in listing if e["id"] == wanted), None)
        if entry is None:
            raise InvalidArgumentError(
                f"{self.url} does not serve {wanted!r} (it serves: {', '.join(ids) or 'none'})."
            )
        length = entry.get("max_model_len")
        return wanted, int(length) if isinstance(length, int) else None

    # -- what it is -------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            media=frozenset({"image"}),  # the server says no (clearly) if its model cannot
            max_media=None,
            adapters=True,
            token_logprobs=True,
            chat=True,
            context_length=self.max_model_len,
        )

    def box_convention(self) -> str:
        return self.model_id.lower().replace("-", "_")

    def record(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "name": self.name,
            "source": self.url,
            "kind": "served",
            "server": self.server,
            "server_version": self.server_version,
            "model_id": self.model_id,
            "max_model_len": self.max_model_len,
            "weights_sha256": None,
            "device": "server",
            "dtype": None,
        }

    def identity(self) -> tuple[Any, ...]:
        return (self.engine, self.url, self.model_id)

    def summary(self) -> str:
        server = f"{self.server} {self.server_version}" if self.server_version else self.server
        context = f" · context {self.max_model_len:,}" if self.max_model_len else ""
        adapters = f" · {len(self.adapters)} adapter(s)" if self.adapters else ""
        return f"{self.name} · {self.model_id} on {server} at {self.url}{context}{adapters}"

    def __repr__(self) -> str:  # no key, no headers
        return f"ServedEngine(name={self.name!r}, url={self.url!r}, model={self.model_id!r})"

    # -- prompts ----------------------------------------------------------------------------

    def check_media(self, media: Sequence[MediaInput]) -> None:
        check_accepted(self.name, self.model_id, self.capabilities.media, None, media)

    def render(self, messages: list[Message], media: Sequence[MediaInput] = ()) -> Rendered:
        wire = _wire_messages(messages, media)
        count, text = self._count(wire)
        return Rendered(text, count, payload=wire)

    def _count(self, wire: list[dict[str, Any]]) -> tuple[int, str]:
        """(prompt tokens, prompt text): vLLM renders and counts exactly (``/tokenize``,
        ``/detokenize``); elsewhere the text is the messages and the count an estimate."""
        plain = "\n\n".join(f"{m['role']}: {_text_of(m['content'])}" for m in wire)
        if self.server != "vllm":
            return max(1, len(plain) // 4), plain
        answer = self._client.post(
            "/tokenize", {"model": self.model_id, "messages": wire, "add_generation_prompt": True}
        )
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            return max(1, len(plain) // 4), plain
        text = self._client.post("/detokenize", {"model": self.model_id, "tokens": tokens})
        prompt = text.get("prompt") if isinstance(text, dict) else None
        return len(tokens), prompt if isinstance(prompt, str) else plain

    def text_of(self, output: RowOutput, *, streaming: bool = False) -> str:
        return "".join(output.pieces)

    # -- generation -------------------------------------------------------------------------

    def _payload(
        self, row: PromptRow, settings: GenerationSettings, seed: int | None, ignore_eos: bool
    ) -> dict[str, Any]:
        temperature = settings.temperature if row.temperature is None else row.temperature
        top_p = settings.top_p if row.top_p is None else row.top_p
        payload: dict[str, Any] = {
            "model": row.adapter or self.model_id,
            "messages": row.prompt.payload,
            "max_tokens": settings.max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stream": True,
        }
        if temperature > 0 and seed is not None:
            payload["seed"] = seed
        if ignore_eos:
            payload.update(ignore_eos=True, min_tokens=settings.max_new_tokens)
        return payload

    def generate(
        self,
        rows: Sequence[PromptRow],
        settings: GenerationSettings,
        *,
        stop: StopSignal,
        on_step: StepCallback | None = None,
        ignore_eos: bool = False,
        prefix_reuse: bool = True,
    ) -> BatchOutcome:
        self.calls += 1
        started = time.perf_counter()
        sampling = any(
            (settings.temperature if r.temperature is None else r.temperature) > 0 for r in rows
        )
        seed = settings.seed
        if seed is None and sampling:
            seed = random.randrange(2**31)
        outputs = [RowOutput() for _ in rows]
        # Each sampled row gets its own seed (seed + row), so samples of one batch differ and a
        # re-run with the recorded seed repeats them.
        payloads = [
            self._payload(row, settings, None if seed is None else seed + i, ignore_eos)
            for i, row in enumerate(rows)
        ]
        error = _Streams(self._client, payloads, outputs, started, self.concurrency).run(
            stop, on_step
        )
        elapsed = time.perf_counter() - started
        close_outputs(outputs, error, stop.is_set(), elapsed)
        return BatchOutcome(outputs=outputs, seconds=elapsed, seed=seed, error=error)

    # -- adapters ---------------------------------------------------------------------------

    def attach_adapter(
        self,
        path: Any,
        *,
        name: str | None = None,
        scale: float = 1.0,
        allow_pickle: bool = False,
    ) -> Any:
        """Register a LoRA adapter on the server at runtime (vLLM's ``/v1/load_lora_adapter``).

        ``path`` is a directory *on the server's machine*. The server must run with
        ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` and ``--enable-lora``.
        """
        if scale != 1.0:
            raise AdapterError("A served adapter runs at scale 1; the server sets no other.")
        folder = os.fspath(path)
        adapter = name or os.path.basename(os.path.normpath(folder))
        if not adapter or adapter in self.adapters:
            raise AdapterError(
                f"An adapter called {adapter!r} is already served for {self.name}; pick another "
                "name with --as."
            )
        try:
            self._client.post("/v1/load_lora_adapter", {"lora_name": adapter, "lora_path": folder})
        except ServerError as exc:
            raise AdapterError(_adapter_hint(str(exc))) from None
        self.adapters[adapter] = _ServedAdapter(adapter, self.name, folder)
        return self.adapters[adapter]

    def detach_adapter(self, name: str) -> Any:
        """Unload a served adapter (vLLM's ``/v1/unload_lora_adapter``)."""
        from lmwidgets.engines.base import resolve_adapter

        resolved = resolve_adapter(self, name)
        if resolved is None:
            raise AdapterError("The base model is not an adapter; give an adapter's name.")
        try:
            self._client.post("/v1/unload_lora_adapter", {"lora_name": resolved})
        except ServerError as exc:
            raise AdapterError(_adapter_hint(str(exc))) from None
        if self.default_adapter == resolved:
            self.default_adapter = None
        return self.adapters.pop(resolved)

    def unload(self) -> None:
        """Close the connection (the server and its model keep running)."""
        self._client.close()


class _Streams:
    """Runs one streamed request per row on worker threads; the calling thread applies their
    chunks in order, calls ``on_step`` and watches the stop signal (the UI stays on it)."""

    def __init__(
        self,
        client: _Client,
        payloads: list[dict[str, Any]],
        outputs: list[RowOutput],
        started: float,
        concurrency: int,
    ) -> None:
        self.client = client
        self.payloads = payloads
        self.outputs = outputs
        self.started = started
        self.concurrency = max(1, min(concurrency, len(payloads)))
        self.events: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        self.cancel = threading.Event()

    def _work(self, index: int) -> None:
        try:
            if self.cancel.is_set():
                return
            for chunk in self.client.stream_chat(self.payloads[index], self.cancel):
                for choice in chunk.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        self.events.put((index, "text", delta))
                    if choice.get("finish_reason"):
                        self.events.put((index, "finish", choice["finish_reason"]))
        except ServerError as exc:
            self.events.put((index, "error", exc))
        except Exception as exc:  # a bug must not hang the kernel: report it on the row
            self.events.put((index, "error", ServerError(self.client.redact(repr(exc)))))
        finally:
            self.events.put((index, "done", None))

    def _apply(self, index: int, kind: str, value: Any) -> BaseException | None:
        output = self.outputs[index]
        now = time.perf_counter() - self.started
        if kind == "text" and not output.finished:
            output.pieces.append(value)
            output.first_token_seconds = output.first_token_seconds or now
            output.seconds = now
        elif kind == "finish":
            output.finish_reason = _FINISH.get(value, "eos")
            output.seconds = output.seconds or now
        elif kind == "error":
            output.finish_reason = "error"
            return value
        return None

    def _drain(self) -> list[tuple[int, str, Any]]:
        """Every event waiting now (after waiting a little for the first)."""
        events = []
        try:
            events.append(self.events.get(timeout=0.05))
            while True:
                events.append(self.events.get_nowait())
        except queue.Empty:
            pass
        return events

    def run(self, stop: StopSignal, on_step: StepCallback | None) -> BaseException | None:
        error: BaseException | None = None
        pending = len(self.payloads)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="lmwidgets-served")
        try:
            for index in range(len(self.payloads)):
                pool.submit(self._work, index)
            while pending:
                changed = False
                for index, kind, value in self._drain():
                    if kind == "done":
                        pending -= 1
                        continue
                    failure = self._apply(index, kind, value)
                    error = error or failure
                    changed = True
                if stop.is_set():
                    self.cancel.set()
                if changed and on_step is not None:
                    on_step(self.outputs)
        except KeyboardInterrupt as exc:
            self.cancel.set()
            error = exc
        finally:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return error


def _adapter_hint(message: str) -> str:
    if (
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING" in message
        or "HTTP 404" in message
        or "HTTP 405" in (message)
    ):
        return (
            f"{message} — the server does not allow loading adapters at runtime: start vLLM "
            "with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora (or pass --lora-modules "
            "NAME=PATH when starting it)."
        )
    return message


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(
            p.get("text", "") if p.get("type") == "text" else f"[{p.get('type')}]" for p in content
        )
    return str(content)


def _wire_messages(messages: list[Message], media: Sequence[MediaInput]) -> list[dict[str, Any]]:
    """Messages as the chat-completions API takes them: image parts become ``image_url`` parts
    (PNG data URLs of the image the model should see), in order."""
    images = iter(media)
    wire = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") == "image":
                    item = next(images, None)
                    if item is None:
                        raise MediaError("The prompt has more image places than images.")
                    parts.append({"type": "image_url", "image_url": {"url": _data_url(item)}})
                else:
                    parts.append({"type": "text", "text": part.get("text", "")})
            content = parts
        wire.append({"role": message["role"], "content": content})
    return wire


def _data_url(item: Any) -> str:
    import base64
    import io

    buffer = io.BytesIO()
    item.model_image().save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def load(
    source: Any,
    *,
    name: str | None,
    registry: Any,
    progress: Any = None,
    model: str | None = None,
    api_key_env: str | None = None,
    timeout: float = READ_TIMEOUT,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ServedEngine:
    """The ``openai`` engine's loader: ``source`` is the server's URL."""
    if not source:
        raise InvalidArgumentError(
            "Give the server's URL, e.g. `%lm connect http://127.0.0.1:8000`."
        )
    root = api_root(str(source))
    for loaded in registry:
        same = loaded.engine == "openai" and loaded.root == root
        if same and model in (None, loaded.model_id) and name in (None, loaded.name):
            return loaded  # type: ignore[no-any-return]
    if name is not None:
        registry.check_free(name)
    if progress is not None:
        progress(0.3, f"Connecting to {public_url(root)}")
    engine = ServedEngine(
        name or "served",
        root,
        model=model,
        api_key_env=api_key_env,
        timeout=timeout,
        concurrency=concurrency,
    )
    if name is None:
        engine.name = registry.unique_name(_suggested_name(engine.model_id))
        for adapter in engine.adapters.values():
            adapter.model = engine.name
    if progress is not None:
        progress(1.0, "Ready")
    return engine


def _suggested_name(model_id: str) -> str:
    import re

    tail = model_id.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", tail).strip("-").lower() or "served"
