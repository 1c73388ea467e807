"""HTTP to an OpenAI-compatible server: URLs, the API key, JSON calls and streamed answers.

Every failure becomes a :class:`~lmwidgets.errors.ServerError` that names the server (without
credentials) and the cause, and never the API key.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lmwidgets.errors import InvalidArgumentError, ServerError

#: Seconds to wait for a server to accept a connection.
CONNECT_TIMEOUT = 10.0


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


def _url_credentials(url: str) -> tuple[Any, list[str]]:
    """The basic auth that ``user:password@`` in ``url`` asks for (None without), and the
    secrets it puts on the wire to blank out of messages: the password, as typed and decoded,
    and the ``Basic`` token a server may quote back."""
    import base64
    from urllib.parse import unquote

    import httpx

    parts = urlsplit(url)
    if parts.username is None:
        return None, []
    user, password = unquote(parts.username), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    secrets = [token] + ([password, parts.password or ""] if password else [])
    return httpx.BasicAuth(user, password), [s for s in dict.fromkeys(secrets) if s]


class Client:
    """A small JSON-over-HTTP client that turns every failure into a clear :class:`ServerError`
    (and never lets the API key into a message)."""

    def __init__(self, root: str, api_key: str | None, timeout: float) -> None:
        import httpx

        # Credentials in the URL (``http://user:pw@host``) go as basic auth, as httpx sent them
        # when they were in the URL, but requests use the URL without them: httpx logs every
        # request's URL (INFO), and a password must not reach a log.
        parts = urlsplit(root)
        self.root = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.shown = public_url(root)
        auth, self._secrets = _url_credentials(root)
        if api_key:
            self._secrets.append(api_key)
        self._secrets.sort(key=len, reverse=True)  # a longer secret before one inside it
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            trust_env=False,  # a proxy from the environment must not see local traffic or keys
        )

    def redact(self, text: str) -> str:
        """``text`` with the API key and the URL's password (if any) blanked out."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def fail(self, what: str, exc: BaseException | str) -> ServerError:
        import httpx

        if isinstance(exc, httpx.ConnectError):
            cause = "cannot connect (is the server running, and is the URL right?)"
        elif isinstance(exc, httpx.TimeoutException):
            cause = "timed out waiting for the server"
        elif isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            # A clean close and a reset (ECONNRESET) are the same thing to a user.
            cause = "the connection was lost (did the server stop or restart?)"
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
        # Blanked before it is cut: a key quoted across the cut would keep its first part.
        text = " ".join(self.redact(str(message)).split())[:400]
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
