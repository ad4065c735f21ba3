"""A drifting upstream for drift tests: fixture bodies served on a loopback port, with a
plantable mutation, the provider's gzip, and (when given a key) the gateway's 401."""

from __future__ import annotations

import copy
import gzip
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server

from pivotkit.fixtures import Exchange, FixtureSet

from .helpers import CONVENTIONS, KEY_HEADER, QuietHandler

CONTENT = "/v1/api/v1/contents/7488"
GATEWAY_404 = {"statusCode": 404, "message": "Resource not found"}

Mutation = Callable[[str, int, dict[str, str], Any], tuple[int, dict[str, str], Any]]
Change = Callable[[int, dict[str, str], Any], tuple[int, dict[str, str], Any]]


class DriftingUpstream:
    """A Flask app in a thread serving fixture bodies, with a plantable mutation."""

    def __init__(self, root: Path, *, key: str | None = None) -> None:
        self.key = key
        self.fixtures = FixtureSet.load(root)
        self._index: dict[tuple[str, str], Exchange] = {}
        for ex in self.fixtures:  # every status: a recorded 400 is the upstream's answer too
            self._index.setdefault((ex.request.path, self.fixtures.lang_of(ex)), ex)
        self.mutate: Mutation | None = None
        self.encode: Callable[[Any], bytes] = _compact
        self.compresslevel = 9
        self.seen_keys: list[str | None] = []
        self.calls = 0
        app = Flask("drifting-upstream")
        app.add_url_rule("/<path:path>", "serve", self._serve)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def _serve(self, path: str) -> Response:
        self.calls += 1
        sent = request.headers.get(KEY_HEADER)
        self.seen_keys.append(sent)
        if self.key is not None and sent != self.key:
            body = CONVENTIONS.messages.body(401, CONVENTIONS.messages.invalid_key)
            return Response(json.dumps(body), status=401, content_type="application/json")
        full = "/" + path
        lang = request.args.get("lang", "fr")
        ex = self._index.get((full, lang)) or self._index.get((full, "fr"))
        if ex is None:
            status, headers, body = 404, {}, copy.deepcopy(GATEWAY_404)
        else:
            status = ex.response.status
            headers = {k.lower(): v for k, v in ex.response.headers.items()}
            body = copy.deepcopy(ex.response.body)
        if self.mutate is not None:
            status, headers, body = self.mutate(full, status, headers, body)
        data = self.encode(body)
        encoding = headers.pop("content-encoding", None)
        headers.pop("content-length", None)
        content_type = headers.pop("content-type", "application/json; charset=utf-8")
        headers.pop("date", None)
        if encoding == "gzip" and "gzip" in request.headers.get("Accept-Encoding", ""):
            data = gzip.compress(data, compresslevel=self.compresslevel)
            headers["Content-Encoding"] = "gzip"
        return Response(data, status=status, headers=headers, content_type=content_type)


def _compact(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def on(path: str, change: Change) -> Mutation:
    """A mutation applying ``change`` (status, headers, body) to the answers of ``path``."""

    def mutate(
        full: str, status: int, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        return change(status, headers, body) if full == path else (status, headers, body)

    return mutate


def data_of(path: str, change: Callable[[Any], None]) -> Mutation:
    """A mutation applying ``change`` in place to the ``data`` of the answers of ``path``."""

    def inner(status: int, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        change(body["data"])
        return status, headers, body

    return on(path, inner)
