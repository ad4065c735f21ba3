"""Request bodies of the mock's own pages (portal, admin): bounded in size, count and time.

The API never reads a request body, so a slow body cannot hold an API request. The portal's
and admin's POSTs do. Under granian the app is called once the head is complete and
``wsgi.input.read()`` blocks its thread until the bytes arrive, so a client trickling a body
would hold a Python thread for as long as it likes. :class:`UploadGuard` bounds that:

- a body over :attr:`UploadGuard.max_body` bytes is refused (413) before a byte is read;
- at most :attr:`UploadGuard.per_worker` bodies are being received at once per worker, and
  :attr:`UploadGuard.per_client` per client address; the next ones get 503 at once;
- the body is read in the request thread, one byte at a time, with a deadline
  (:attr:`UploadGuard.deadline` seconds for the whole body): 408 once it passes. Under
  granian ``read(n)`` waits for ``n`` bytes and cannot be interrupted, so the deadline is
  checked between every byte that arrives (a client that sends nothing more holds its slot
  until it disconnects: the per-worker and per-client caps are what bound that); under the
  development server the socket's own deadline ends the read. The bodies of these pages are
  small forms, so reading them byte by byte costs little (64 KiB at most).

The body, once read, is handed to Flask from memory.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _answer(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    body = (message + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
    )
    return [body]


class Slots:
    """At most ``total`` holders at once, ``per_client`` of them per client address."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._lock = threading.Lock()
        self._busy = 0
        self._by_client: dict[str, int] = {}

    def enter(self, client: str) -> bool:
        """Take a slot for ``client``; False (and nothing taken) when none is free."""
        with self._lock:
            mine = self._by_client.get(client, 0)
            if self._busy >= self.total or mine >= self.per_client:
                return False
            self._busy += 1
            self._by_client[client] = mine + 1
            return True

    def leave(self, client: str) -> None:
        """Give back a slot :meth:`enter` gave ``client``."""
        with self._lock:
            self._busy -= 1
            left = self._by_client.get(client, 1) - 1
            if left > 0:
                self._by_client[client] = left
            else:
                self._by_client.pop(client, None)


class UploadGuard:
    """Bounds the request bodies a WSGI app receives (see the module docstring)."""

    max_body = 64 * 1024
    per_worker = 8
    per_client = 4
    deadline = 10.0

    def __init__(
        self,
        app: WSGIApp,
        *,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.clock = clock
        if deadline is not None:
            self.deadline = deadline
        self._slots = Slots(self.per_worker, self.per_client)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        length = str(environ.get("CONTENT_LENGTH") or "").strip()
        chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
        if method not in _METHODS_WITH_BODY or (not chunked and length in ("", "0")):
            return self.app(environ, start_response)
        if not chunked and not (length.isascii() and length.isdigit() and len(length) <= 12):
            return _answer(start_response, "400 Bad Request", "Content-Length is not a number")
        size = None if chunked else int(length)
        if size is not None and size > self.max_body:
            return _answer(
                start_response,
                "413 Content Too Large",
                f"request bodies here are at most {self.max_body} bytes",
            )
        client = str(environ.get("REMOTE_ADDR") or "-")
        if not self._slots.enter(client):
            return _answer(
                start_response, "503 Service Unavailable", "too many uploads in progress; retry"
            )
        try:
            body = self._read(environ["wsgi.input"], size)
        finally:
            self._slots.leave(client)
        if isinstance(body, str):
            status = (
                "408 Request Timeout"
                if body == "timeout"
                else "413 Content Too Large"
                if body == "large"
                else "400 Bad Request"
            )
            return _answer(start_response, status, f"request body refused: {body}")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _read(self, stream: Any, size: int | None) -> bytes | str:
        """The whole body, or why not: ``timeout``, ``large`` (chunked, over the cap) or
        ``incomplete`` (the client went away)."""
        limit = self.max_body + 1 if size is None else size
        end = self.clock() + self.deadline
        parts: list[bytes] = []
        got = 0
        while got < limit:
            if self.clock() > end:
                return "timeout"
            try:
                chunk = stream.read(1)
            except OSError:  # the development server's socket deadline
                return "timeout"
            if not chunk:
                break
            parts.append(chunk)
            got += 1
        if size is None and got > self.max_body:
            return "large"
        if size is not None and got != size:
            return "incomplete"
        return b"".join(parts)
