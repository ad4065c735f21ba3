"""A fake upstream for tests: an http.server on a free loopback port, serving scripted replies."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.helpers import CONVENTIONS, KEY_HEADER

#: The headers the provider sends with every JSON answer (API.md, section 2), minus the date.
PROVIDER_HEADERS = dict(CONVENTIONS.provider_headers)


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``body`` is JSON-encoded unless ``raw`` bytes are given. ``mode``: ``ok`` (send it),
    ``truncate`` (cut the gzip stream in half, content-length matching the cut), ``reset``
    (send half the body, then reset the connection), ``hang`` (answer nothing until the
    server stops: a client timeout), ``drip`` (the body one byte every ``drip`` seconds),
    ``repeat`` (send the payload again and again until ``length`` bytes, the declared
    content-length, are sent or the client goes away).
    """

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = True
    mode: str = "ok"
    drip: float = 0.2
    length: int | None = None


@dataclass(frozen=True)
class Seen:
    """One request the fake upstream received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


def echo(text: str, key: str) -> str:
    """``text`` with the key the client sent put where it asks: ``{key}`` as is, and
    ``{key_b64}``, ``{key_b64url}``, ``{key_hex}``, ``{key_HEX}``, ``{key_pct}``,
    ``{key_upper}`` encoded."""
    raw = key.encode()
    forms = {
        "{key_b64}": base64.b64encode(raw).decode(),
        "{key_b64url}": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "{key_hex}": raw.hex(),
        "{key_HEX}": raw.hex().upper(),
        "{key_pct}": "".join(f"%{b:02X}" for b in raw),
        "{key_upper}": key.upper(),
        "{key}": key,
    }
    for placeholder, value in forms.items():
        text = text.replace(placeholder, value)
    return text


def envelope(data: Any) -> dict[str, Any]:
    """The provider's envelope around ``data``."""
    return {"version": "v1", "statusCode": 200, "data": data}


class FakeUpstream:
    """Routes map a path to replies, served in order (the last one repeats).

    ``{key}`` in a JSON body, a raw body or a header value is replaced by the key the client
    sent, to test that recording scrubs an echoed key.
    """

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL (http://127.0.0.1:PORT)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def route(self, path: str, *replies: Reply) -> None:
        """Answer ``path`` with these replies, in order."""
        with self._lock:
            self.routes[path] = list(replies)

    def _next(self, path: str) -> Reply | None:
        with self._lock:
            replies = self.routes.get(path)
            if not replies:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def start(self) -> FakeUpstream:
        """Listen on a free port in a daemon thread."""
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with upstream._lock:
                    upstream.seen.append(Seen(parts.path, dict(parse_qsl(parts.query)), headers))
                reply = upstream._next(parts.path)
                if reply is None:
                    reply = Reply(404, {"statusCode": 404, "message": "Resource not found"})
                upstream._answer(self, reply, headers.get(KEY_HEADER.lower(), ""))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply, key: str) -> None:
        if reply.mode == "hang":
            self._stopping.wait(30)
            handler.close_connection = True
            return
        if reply.raw is not None:
            payload = echo(reply.raw.decode("latin-1"), key).encode("latin-1")
        else:
            payload = echo(json.dumps(reply.body), key).encode("utf-8")
        headers = {
            **PROVIDER_HEADERS,
            "request-context": f"appId=cid-v1:{uuid.uuid4()}",
            **reply.headers,
        }
        if reply.gzip:
            payload = gzip.compress(payload, mtime=0)
            headers["content-encoding"] = "gzip"
        if reply.mode == "truncate":
            payload = payload[: len(payload) // 2]
        full_length = len(payload) if reply.length is None else reply.length
        if reply.mode == "reset":
            payload = payload[: len(payload) // 2]
        handler.send_response(reply.status)
        for name, value in headers.items():
            handler.send_header(name, echo(value, key))
        handler.send_header("content-length", str(full_length))
        handler.end_headers()
        try:
            self._send(handler, reply, payload, full_length)
        except OSError:  # the client went away (what a capped or timed-out client does)
            handler.close_connection = True
            return
        if reply.mode == "reset":
            handler.close_connection = True
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()

    def _send(
        self, handler: BaseHTTPRequestHandler, reply: Reply, payload: bytes, length: int
    ) -> None:
        if reply.mode == "drip":
            for i in range(len(payload)):
                if self._stopping.wait(reply.drip):
                    return
                handler.wfile.write(payload[i : i + 1])
                handler.wfile.flush()
            return
        if reply.mode == "repeat":
            sent = 0
            while sent < length and not self._stopping.is_set():
                piece = payload[: length - sent]
                handler.wfile.write(piece)
                sent += len(piece)
            handler.wfile.flush()
            return
        handler.wfile.write(payload)
        handler.wfile.flush()

    def stop(self) -> None:
        """Release hanging handlers, stop serving, close the socket, join the thread."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


@contextmanager
def fake_upstream() -> Iterator[FakeUpstream]:
    """A started FakeUpstream, stopped on exit."""
    upstream = FakeUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()
