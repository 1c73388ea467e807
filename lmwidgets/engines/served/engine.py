"""The served engine: a model on an OpenAI-compatible server, as an :class:`Engine`."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

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
    TokenLogprob,
    batch_row_seeds,
    close_outputs,
)
from lmwidgets.engines.served.client import Client, api_root, public_url, read_api_key
from lmwidgets.engines.served.streams import Streams
from lmwidgets.errors import (
    AdapterError,
    ConstraintError,
    InvalidArgumentError,
    MediaError,
    ServerError,
)
from lmwidgets.media.base import MediaInput, check_accepted

#: Requests in flight at once per batch (the server batches them; more only queue there).
DEFAULT_CONCURRENCY = 16
#: Seconds to wait between streamed chunks.
READ_TIMEOUT = 300.0


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
        self._client = Client(self.root, read_api_key(api_key_env), timeout)
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
        if entry is None and not listing:  # a server that lists nothing (``transformers serve``
            return wanted, None  # pinned to one model) is taken at its word
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
            media=frozenset({"image", "audio"}),  # the server says no if its model cannot
            max_media=None,
            adapters=True,
            token_logprobs=True,
            chat=True,
            context_length=self.max_model_len,
            choice_scores=self.server == "vllm",  # prompt log-probabilities
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
        try:
            count, text = self._count(wire)
        except ServerError as error:
            raise _media_refusal(error, self.model_id, [item.kind for item in media]) from None
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

    def check_constraint(self, constraint: Any) -> None:
        """Structured answers go to the server as vLLM's structured outputs: another server,
        or chain-of-thought before an answer in your own ``--grammar``, is a
        :class:`ConstraintError`. Chain-of-thought before a JSON, regex or one-of answer goes as
        one Lark grammar (:func:`~lmwidgets.engines.grammar.cot_lark`); vLLM takes a single
        Lark text there, and a user's grammar cannot be nested in it (its ``start`` rule would
        clash with ours; llguidance nests grammars only in its JSON form, which vLLM does not
        accept as ``grammar``)."""
        from lmwidgets.core.constraints import KINDS

        option = KINDS[constraint.kind]
        if self.server != "vllm":
            raise ConstraintError(
                f"{self.name}: the server at {self.url} ({self.server}) does not take vLLM's "
                f"structured outputs, so {option} cannot be enforced there; use --constrain "
                "free to only check the answers, or a vLLM server."
            )
        if constraint.after and constraint.kind == "grammar":
            raise ConstraintError(
                f"{self.name}: chain-of-thought before an answer in your own grammar (--grammar "
                "with cot) is enforced on kernel models only: vLLM takes one Lark grammar, and "
                "yours cannot be nested after the reasoning in it. Write the reasoning into your "
                "grammar, or use zero-shot or --constrain free."
            )

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
        # Each sampled row's request carries its own seed (vLLM seeds every request apart), so
        # a row gives the same text in any batch as alone, and samples of one column differ.
        seed, seeds = batch_row_seeds(rows, settings)
        outputs = [_forced_output(row, settings) for row in rows]
        payloads = [
            request_payload(self.model_id, row, settings, row_seed, ignore_eos)
            for row, row_seed in zip(rows, seeds, strict=True)
        ]
        error = Streams(self._client, payloads, outputs, started, self.concurrency).run(
            stop, on_step
        )
        elapsed = time.perf_counter() - started
        error = self._explain(error, rows, settings, outputs)
        close_outputs(outputs, error, stop.is_set(), elapsed)
        return BatchOutcome(
            outputs=outputs, seconds=elapsed, seed=seed, error=error, row_seeds=seeds
        )

    def _explain(
        self,
        error: BaseException | None,
        rows: Sequence[PromptRow],
        settings: GenerationSettings,
        outputs: list[RowOutput],
    ) -> BaseException | None:
        """A refusal that may come from what this server lacks (log-probabilities, continuing
        a message), said in lmwidgets' terms; and an answer that came without the requested
        log-probabilities, as an error rather than a silently empty token view."""
        forks = any(row.forced_text for row in rows)
        if isinstance(error, ServerError) and "refused" in str(error):
            if any(_has_audio(row.prompt.payload) for row in rows):
                return _media_refusal(error, self.model_id, ["audio"])
            if forks:
                return ServerError(
                    f"{error} — forking at a token needs a vLLM-compatible server (one that "
                    "takes continue_final_message, to continue a forced start of the answer)."
                )
            if settings.logprobs:
                return ServerError(
                    f"{error} — the server may not report token log-probabilities; run "
                    "without --logprobs."
                )
        if error is None and settings.logprobs and _without_logprobs(rows, outputs):
            return ServerError(
                f"{self.url} answered without token log-probabilities although --logprobs "
                f"{settings.logprobs} asked for them: this server does not support them; run "
                "without --logprobs."
            )
        return error

    def score_choices(self, requests: Sequence[Any], *, stop: StopSignal | None = None) -> Any:
        """Each request's choices scored by the server (see :mod:`.choices`)."""
        from lmwidgets.engines.served.choices import score_served

        self.calls += 1
        return score_served(self, requests, stop)

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
        folder = os.path.expanduser(os.fspath(path))
        if os.path.exists(folder):  # a server on this machine resolves paths from its own cwd
            folder = os.path.abspath(folder)
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


def structured_outputs(constraint: Any) -> dict[str, Any]:
    """vLLM's ``structured_outputs`` request field for ``constraint`` (compact JSON, as the
    kernel engine enforces it); with chain-of-thought, one Lark grammar: free reasoning, the
    marker, then the answer."""
    if constraint.after:
        from lmwidgets.engines.grammar import cot_lark

        return {"grammar": cot_lark(constraint)}
    if constraint.kind == "json":
        return {"json": constraint.source, "disable_any_whitespace": True}
    if constraint.kind == "one_of":
        return {"choice": list(constraint.source)}
    return {constraint.kind: constraint.source}


def request_payload(
    model_id: str,
    row: PromptRow,
    settings: GenerationSettings,
    seed: int | None,
    ignore_eos: bool,
) -> dict[str, Any]:
    """The chat-completions request of one row: its messages, model (or adapter), sampling and,
    for a sampled row, its own ``seed``."""
    temperature = settings.temperature if row.temperature is None else row.temperature
    top_p = settings.top_p if row.top_p is None else row.top_p
    payload: dict[str, Any] = {
        "model": row.adapter or model_id,
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
    if settings.logprobs:
        payload.update(logprobs=True, top_logprobs=settings.logprobs)
    if row.constraint is not None:
        payload["structured_outputs"] = structured_outputs(row.constraint)
    if row.forced_text:
        # A fork: the answer continues a final assistant message holding the forced start
        # (vLLM's extension of the chat API; the server streams only what follows it).
        final = {"role": "assistant", "content": row.forced_text}
        payload["messages"] = [*row.prompt.payload, final]
        payload.update(continue_final_message=True, add_generation_prompt=False)
    return payload


def _forced_output(row: PromptRow, settings: GenerationSettings) -> RowOutput:
    """A row's output before the server answers: a fork's forced start is its first piece.

    The server streams only what follows the forced start and cannot stream the
    log-probabilities of prompt tokens, so the forced text is one token whose log-probability
    is unknown (NaN: the token view leaves it unshaded).
    """
    output = RowOutput()
    if row.forced_text:
        output.pieces.append(row.forced_text)
        if settings.logprobs:
            output.logprobs.append(TokenLogprob(None, row.forced_text, float("nan")))
    return output


def _without_logprobs(rows: Sequence[PromptRow], outputs: list[RowOutput]) -> bool:
    """Whether some row streamed text but no token log-probabilities at all."""
    for row, output in zip(rows, outputs, strict=True):
        forced = 1 if row.forced_text else 0
        if len(output.pieces) > forced and len(output.logprobs) <= forced:
            return True
    return False


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


def _has_audio(wire: Any) -> bool:
    """Whether wire messages carry an ``input_audio`` part."""
    return isinstance(wire, list) and any(
        isinstance(message.get("content"), list)
        and any(part.get("type") == "input_audio" for part in message["content"])
        for message in wire
        if isinstance(message, dict)
    )


def _media_refusal(error: ServerError, model_id: str, kinds: Sequence[str]) -> ServerError:
    """A refusal of a prompt with media, said in lmwidgets' terms: the served model may not take
    those kinds (vLLM says "not a multimodal model", or names the modality it lacks)."""
    kinds = sorted(set(kinds))
    if not kinds or "refused" not in str(error):
        return error
    return ServerError(
        f"{error} — {model_id} on this server may not take {' or '.join(kinds)} inputs; serve "
        "a model that does (vLLM takes audio as input_audio parts for audio models such as "
        "Qwen2-Audio), or ask without them."
    )


def _wire_messages(messages: list[Message], media: Sequence[MediaInput]) -> list[dict[str, Any]]:
    """Messages as the chat-completions API takes them: media parts become the server's parts
    (:func:`wire_part`: ``image_url`` for images, ``input_audio`` for audio), each kind's parts
    paired with its items in order."""
    by_kind: dict[str, list[MediaInput]] = {}
    for given in media:
        by_kind.setdefault(given.kind, []).append(given)
    items = {kind: iter(listed) for kind, listed in by_kind.items()}
    wire = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            parts = []
            for part in content:
                kind = str(part.get("type"))
                if kind == "text":
                    parts.append({"type": "text", "text": part.get("text", "")})
                    continue
                item = next(items.get(kind, iter(())), None)
                if item is None:
                    raise MediaError(f"The prompt has more {kind} places than {kind} inputs.")
                parts.append(wire_part(item))
            content = parts
        wire.append({"role": message["role"], "content": content})
    return wire


def wire_part(item: Any) -> dict[str, Any]:
    """One media input as an OpenAI-style content part: an image as an ``image_url`` part (a
    PNG data URL of the image the model should see), an audio clip as an ``input_audio`` part
    (base64 16-bit WAV of what the model should hear, as vLLM's API takes it)."""
    import base64

    if item.kind == "audio":
        data = base64.b64encode(item.wav_bytes()).decode("ascii")
        return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
    if item.kind != "image":
        raise MediaError(f"Served models take images and audio, not {item.kind} inputs.")
    return {"type": "image_url", "image_url": {"url": _data_url(item)}}


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
            return loaded
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
