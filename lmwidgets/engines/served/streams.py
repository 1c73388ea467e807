"""One streamed request per row, run concurrently; chunks applied on the calling thread."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lmwidgets.engines.base import RowOutput, StepCallback, StopSignal, TokenLogprob
from lmwidgets.engines.served.client import Client
from lmwidgets.errors import ServerError

#: The log-probability written for a token a server gives none for (vLLM's floor too).
IMPOSSIBLE = -9999.0

_FINISH = {"stop": "eos", "length": "length", "abort": "stopped"}


class Streams:
    """Runs one streamed request per row on worker threads; the calling thread applies their
    chunks in order, calls ``on_step`` and watches the stop signal (the UI stays on it)."""

    def __init__(
        self,
        client: Client,
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
                    tokens = (choice.get("logprobs") or {}).get("content")
                    if tokens:
                        self.events.put((index, "tokens", chunk_tokens(tokens, delta or "")))
                    elif delta:
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
        if kind == "tokens" and not output.finished:
            output.pieces.extend(token.text or "" for token in value)
            output.logprobs.extend(value)
            output.first_token_seconds = output.first_token_seconds or now
            output.seconds = now
        elif kind == "text" and not output.finished:
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


def chunk_tokens(entries: list[dict[str, Any]], delta: str) -> list[TokenLogprob]:
    """A streamed chunk's tokens (OpenAI ``logprobs.content``) as :class:`TokenLogprob`, their
    texts made to concatenate to the chunk's text ``delta``.

    Servers name a token that holds part of a multi-byte character by its lossy decoding
    (``"\ufffd"``, with the bytes of that); the text streamed is right. So each token keeps its
    own text while that is what the text goes on with, a broken one gets ``""``, and the last
    token of the chunk gets the rest (the character its bytes completed).
    """
    tokens = []
    rest = delta
    for position, entry in enumerate(entries):
        text = str(entry.get("token") or "")
        if position == len(entries) - 1:
            text = rest
        elif "\ufffd" in text or not rest.startswith(text):
            text = ""
        rest = rest[len(text) :]
        top = tuple(
            (None, str(alt.get("token") or ""), _logprob(alt))
            for alt in entry.get("top_logprobs") or []
        )
        tokens.append(TokenLogprob(None, text, _logprob(entry), top))
    return tokens


def _logprob(entry: dict[str, Any]) -> float:
    """An entry's log-probability (vLLM writes -9999 for an impossible token; so do we when a
    server leaves it out, so that the number stays finite for JSON)."""
    value = entry.get("logprob")
    return float(value) if isinstance(value, (int, float)) else IMPOSSIBLE
