"""Try it: build a request from the form, send it to the mock's own API, write code samples."""

from __future__ import annotations

import gzip
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

from flask import Flask

from pivotkit.client import KEY_ENV
from pivotkit.conventions import Conventions
from pivotkit.operations import Operation

KEY_PLACEHOLDER = f"${KEY_ENV}"
MAX_BODY_CHARS = 200_000
_FORBIDDEN = set("/?#\\")
_HTTPX_SHORTCUTS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class TryRequest:
    """What the form asks for: the concrete path and the query parameters kept."""

    operation: Operation
    path: str
    query: tuple[tuple[str, str], ...]

    @property
    def target(self) -> str:
        """Path and query string, as sent."""
        return self.path + ("?" + urlencode(self.query) if self.query else "")


@dataclass(frozen=True)
class TryResult:
    """The API's answer as the portal shows it."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: str
    truncated: bool = False
    is_json: bool = False
    data: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class FormProblem:
    """One field the form cannot send: the parameter and the message key."""

    name: str
    message: str


def build_request(
    operation: Operation, form: Mapping[str, str], always_optional: str = ""
) -> tuple[TryRequest | None, list[FormProblem]]:
    """The request the form describes, or the problems that stop it being sent.

    Form fields are named ``param-<name>``. A required parameter must be present and non-empty
    (``always_optional`` never is: the lang parameter, optional on every operation); an
    optional one is left out when empty (a removed field is disabled in the browser, so it is
    not sent at all). Path values are percent-encoded and may not contain
    ``/``, ``?``, ``#`` or ``\\``, so a value can never leave the operation's path.
    """
    problems: list[FormProblem] = []
    values: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    for param in operation.parameters:
        raw = form.get(f"param-{param.name}", "").strip()
        if param.location == "path":
            if not raw:
                problems.append(FormProblem(param.name, "missing_param"))
            elif _FORBIDDEN & set(raw) or _FORBIDDEN & set(unquote(raw)):
                problems.append(FormProblem(param.name, "bad_param"))
            else:
                values[param.name] = quote(raw, safe="")
        elif param.location == "query":
            if param.required and not raw and param.name != always_optional:
                problems.append(FormProblem(param.name, "missing_param"))
            elif raw:
                query.append((param.name, raw))
    if problems:
        return None, problems
    return TryRequest(operation, operation.expand(**values), tuple(query)), []


def send(app: Flask, req: TryRequest, key: str, conventions: Conventions) -> TryResult:
    """Send the request through the app itself (no socket), the key in its header only."""
    client = app.test_client()
    response = client.open(
        req.path,
        method=req.operation.method,
        query_string=list(req.query),
        headers={
            **conventions.request_headers,
            conventions.key_header: key,
            "Accept": "application/json",
        },
    )
    raw = response.get_data()
    if response.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", errors="replace")
    data: Any = None
    is_json = False
    try:
        data = json.loads(text)
        text = json.dumps(data, indent=2, ensure_ascii=False)
        is_json = True
    except ValueError:
        pass
    truncated = len(text) > MAX_BODY_CHARS
    headers = tuple((name.lower(), value) for name, value in response.headers.items())
    reason = response.status.partition(" ")[2]
    return TryResult(
        response.status_code, reason, headers, text[:MAX_BODY_CHARS], truncated, is_json, data
    )


def curl_sample(base_url: str, req: TryRequest, conventions: Conventions) -> str:
    """A curl command for the request, reading the key from ``$PIVOT_API_KEY``."""
    url = base_url.rstrip("/") + req.target
    method = "" if req.operation.method == "GET" else f"-X {req.operation.method} "
    headers = [*(f"{k}: {v}" for k, v in conventions.request_headers.items())]
    lines = [f"curl {method}--compressed"]
    lines += [f"  -H {shlex.quote(h)}" for h in headers]
    lines += [f'  -H "{conventions.key_header}: {KEY_PLACEHOLDER}"', f"  {shlex.quote(url)}"]
    return " \\\n".join(lines)


def httpx_sample(base_url: str, req: TryRequest, conventions: Conventions) -> str:
    """A Python httpx snippet for the request, reading the key from ``PIVOT_API_KEY``."""
    url = base_url.rstrip("/") + req.path
    method = req.operation.method
    call = (
        f"httpx.{method.lower()}("
        if method in _HTTPX_SHORTCUTS
        else f"httpx.request(\n    {json.dumps(method)},"
    )
    lines = ["import os", "", "import httpx", "", f"response = {call}", f"    {json.dumps(url)},"]
    if req.query:
        lines.append(f"    params={json.dumps(dict(req.query))},")
    lines += [
        "    headers={",
        f'        {json.dumps(conventions.key_header)}: os.environ["{KEY_ENV}"],',
        *(
            f"        {json.dumps(k)}: {json.dumps(v)},"
            for k, v in conventions.request_headers.items()
        ),
        "    },",
        ")",
        "print(response.status_code)",
        "print(response.json())",
    ]
    return "\n".join(lines)
