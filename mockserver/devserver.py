"""The development server (``pivotkit serve --dev``): werkzeug, threaded, auto-reloading, bounded.

werkzeug's threaded server gives every connection a thread, for as long as the client keeps
it. Here a connection gets :attr:`DevRequestHandler.head_timeout` seconds to send a whole
request head (idle keep-alive included) and :attr:`DevRequestHandler.body_timeout` seconds
for the body, as deadlines, not per read; :class:`BoundedServer` holds at most
:attr:`BoundedServer.max_connections` connections, :attr:`BoundedServer.per_client` per
client address, and answers the next ones 503 at once. Keys are masked in every line it logs.
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from mockserver.logs import key_names
from mockserver.uploads import Slots
from pivotkit.redact import mask_keys

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 33\r\nConnection: close\r\n\r\ntoo many connections; retry soon\n"
)


class _DeadlineReader(io.RawIOBase):
    """Reads a socket until the handler's deadline, then raises TimeoutError."""

    def __init__(self, sock: socket.socket, handler: DevRequestHandler) -> None:
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client took too long to send its request")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class DevRequestHandler(WSGIRequestHandler):
    """werkzeug's handler with deadlines on the request, keys masked in its log lines, and
    no ``Server`` or second ``Date`` header (the mock writes the provider's own ``date``)."""

    head_timeout = 10.0
    body_timeout = 10.0
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        self.deadline = time.monotonic() + self.head_timeout
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.head_timeout  # the head (or the idle wait)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.deadline = time.monotonic() + self.body_timeout  # the body, from here
        return parsed

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)

    def log(self, type: str, message: str, *args: Any) -> None:
        text = message % args if args else message
        if type == "error" and "timed out" in text:
            return  # a client held back too long: closed, nothing worth a line
        super().log(type, "%s", mask_keys(text, key_names()))


class BoundedServer(ThreadedWSGIServer):
    """A threaded WSGI server that holds a bounded number of connections (503 beyond)."""

    max_connections = 256
    per_client = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = Slots(self.max_connections, self.per_client)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.enter(_client(client_address)):
            with contextlib.suppress(OSError):
                request.settimeout(0.5)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.leave(_client(client_address))


def _client(address: Any) -> str:
    return str(address[0]) if address else "-"
