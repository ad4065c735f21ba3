"""The mock over real sockets, dev and production servers: httpx, faults, hostile input."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mockserver import create_app
from mockserver.devserver import DevRequestHandler as RedactingRequestHandler
from mockserver.server import redact
from pivotkit.contract import load_contract
from tests.helpers import (
    BASIC,
    FULL,
    KEY_HEADER,
    address,
    connection,
    example_params,
    key_headers,
    path_of,
    serve_process,
    thread_server,
)

CONTENT = path_of("getContent", id=7488)
ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "admin-token-for-tests"


@pytest.fixture(scope="module", params=["dev", "production"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The mock on a free loopback port, bundled fixtures: the development server (threaded
    werkzeug, in a thread) and the production one (``pivotkit serve --production``, granian);
    its base URL."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "dev":
        app = create_app(
            {"PIVOT_STATE": str(folder / "state.sqlite"), "PIVOT_ADMIN_TOKEN": ADMIN_TOKEN}
        )
        with thread_server(app, handler=RedactingRequestHandler) as url:
            yield url
    else:
        production = ("--production", "--workers", "1", "--admin-token", ADMIN_TOKEN)
        with serve_process(folder, *production) as (url, _, _):
            yield url


def test_httpx_gzip_and_identity(server: str) -> None:
    """httpx gets gzip by default (decoded for it) and identity when it asks for it."""
    with httpx.Client(base_url=server, headers=key_headers(FULL)) as c:
        zipped = c.get(CONTENT)
        assert zipped.status_code == 200
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.json()["data"]["title"] == "Blade Runner"
        plain = c.get(CONTENT, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert int(plain.headers["content-length"]) == len(plain.content)
        assert plain.json() == zipped.json()
        refused = c.get(CONTENT, headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers


def test_raw_gzip_length_is_the_compressed_size(server: str) -> None:
    """On the wire, content-length counts the gzip bytes, which decompress to the JSON."""
    conn = connection(server)
    try:
        conn.request(
            "GET",
            CONTENT,
            headers={**key_headers(FULL), "Accept-Encoding": "gzip"},
        )
        response = conn.getresponse()
        raw = response.read()
        assert response.getheader("content-encoding") == "gzip"
        assert int(response.getheader("content-length") or -1) == len(raw)
        assert json.loads(gzip.decompress(raw))["data"]["id"] == 7488
    finally:
        conn.close()


def test_both_key_transports_over_a_socket(server: str) -> None:
    """Header and query key both work; the missing key gets the gateway's 401."""
    with httpx.Client(base_url=server) as c:
        assert c.get(CONTENT, headers=key_headers(FULL)).status_code == 200
        assert c.get(CONTENT, params={"subscription-key": BASIC}).status_code == 200
        missing = c.get(CONTENT)
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/json"


@pytest.mark.parametrize("spec", ["drop", "truncate"])
def test_connection_faults(server: str, spec: str) -> None:
    """drop closes without an answer; truncate closes in the middle of the body."""
    with httpx.Client(base_url=server) as c, pytest.raises(httpx.TransportError):
        c.get(
            CONTENT,
            headers={
                **key_headers(FULL),
                "x-pivot-fault": spec,
                "Accept-Encoding": "identity",
            },
        )
    with httpx.Client(base_url=server) as c:  # the server is still fine
        assert c.get(CONTENT, headers=key_headers(FULL)).status_code == 200


def test_random_latency_fault_still_answers(server: str) -> None:
    """latency=a..b delays but answers normally."""
    with httpx.Client(base_url=server) as c:
        response = c.get(
            CONTENT,
            headers={**key_headers(FULL), "x-pivot-fault": "latency=1..5ms"},
        )
        assert response.status_code == 200 and response.json()["data"]["id"] == 7488


def test_keys_in_query_strings_are_redacted_from_request_logs() -> None:
    """The development server's request log masks subscription-key values."""
    line = redact(f"GET {CONTENT}?lang=fr&subscription-key={FULL}&x=1 HTTP/1.1")
    assert FULL not in line and "subscription-key=***&x=1" in line


# -- hostile input: one table, over a raw socket ------------------------------------------------


def _request(
    target: bytes, method: bytes = b"GET", extra: bytes = b"", key: bytes | None = FULL.encode()
) -> bytes:
    head = method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if key is not None:
        head += KEY_HEADER.encode() + b": " + key + b"\r\n"
    if method in (b"POST", b"PUT", b"PATCH"):
        head += b"Content-Length: 0\r\n"
    return head + extra + b"\r\n"


C = path_of("getContent", id="").encode()  # the path up to the id
_HOSTILE: list[tuple[str, bytes, set[int] | None]] = [
    ("dotdot", _request(C + b"../../../../etc/passwd"), {404}),
    (
        "dotdot-fixture",
        _request(C + b"../../../fixtures/getContent/7488.json"),
        {404},
    ),
    ("pct-2e2e", _request(C + b"%2e%2e"), {400}),
    ("pct-2e2e-2f", _request(C + b"%2e%2e%2f%2e%2e%2fpyproject.toml"), {404}),
    ("pct-2f", _request(C + b"7488%2f..%2f..%2fschemas%2fopenapi.yaml"), {404}),
    ("pct-2F-upper", _request(C + b"..%2F..%2F..%2Fetc%2Fpasswd"), {404}),
    ("backslash", _request(C + b"..\\..\\pyproject.toml"), {400}),
    ("pct-5c", _request(C + b"..%5c..%5cpyproject.toml"), {400}),
    ("nul-path", _request(C + b"7488%00"), {400}),
    ("nul-path-ext", _request(C + b"7488%00.json"), {400}),
    ("nul-query", _request(C + b"7488?lang=%00"), {200}),
    ("id-10000-digits", _request(C + b"9" * 10_000), {400}),
    ("id-10000-letters", _request(C + b"a" * 10_000), {400}),
    ("id-negative", _request(C + b"-7488"), {400}),
    ("id-zero", _request(C + b"0"), {400}),
    ("id-int32-overflow", _request(C + b"2147483648"), {400}),
    ("id-int64-overflow", _request(C + b"9223372036854775808"), {400}),
    ("id-huge", _request(C + b"9" * 40), {400}),
    ("id-plus", _request(C + b"+7488"), {400}),
    ("id-spaces", _request(C + b"%207488%20"), {400}),
    ("id-unicode-digits", _request(C + "٧٤٨٨".encode()), {400}),
    ("non-utf8-pct", _request(C + b"%ff%fe"), {400}),
    ("non-utf8-raw", _request(C + b"\xff\xfe"), {400}),
    ("non-utf8-query", _request(C + b"7488?lang=%ff%fe"), {200}),
    ("non-utf8-key", _request(C + b"7488", key=b"\xff\xfe" * 16), {401}),
    ("non-utf8-query-key", _request(C + b"7488?subscription-key=%ff", key=None), {401}),
    ("key-10000", _request(C + b"7488", key=b"a" * 10_000), {401}),
    ("long-query", _request(C + b"7488?lang=" + b"a" * 20_000), {200}),
    (
        "many-params",
        _request(C + b"7488?" + b"&".join(b"p%d=1" % i for i in range(5000))),
        {200},
    ),
    ("huge-request-line", _request(C + b"7488?x=" + b"a" * 70_000), {414}),
    (
        "huge-header",
        _request(C + b"7488", extra=b"X-Big: " + b"a" * 70_000 + b"\r\n"),
        {431},
    ),
    (
        "many-headers",
        _request(C + b"7488", extra=b"".join(b"X-H%d: 1\r\n" % i for i in range(150))),
        {431},
    ),
    (
        "fault-header-garbage",
        _request(C + b"7488", extra=b"x-pivot-fault: \xff\r\n"),
        {400},
    ),
    (
        "accept-encoding-garbage",
        _request(C + b"7488", extra=b"Accept-Encoding: gzip;q=;;,,q=2\r\n"),
        {200},
    ),
    ("unknown-method", _request(C + b"7488", method=b"BREW"), {404}),
    ("double-slash", _request(b"/" + CONTENT.encode()), {200, 404}),
    ("trailing-dot", _request(C + b"7488."), {400}),
    ("admin-dotdot", _request(b"/__pivot/.." + CONTENT.encode()), {200, 404}),
    ("admin-traversal", _request(b"/__pivot/%2e%2e/%2e%2e/pyproject.toml"), {404}),
]
# Limits of the HTTP server itself (http.server answers 414/431; granian has its own limits).
_SERVER_LIMITS = {"huge-request-line", "huge-header", "many-headers", "fault-header-garbage"}
_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"TRACE")


def _every_method_on_every_path() -> list[tuple[str, bytes, set[int] | None]]:
    cases: list[tuple[str, bytes, set[int] | None]] = []
    for op in load_contract().operations.values():
        path = op.expand(**example_params(op)).encode()
        for method in _METHODS:
            expected = {200} if method.decode() == op.method else {404}
            cases.append((f"{method.decode()}-{op.operation_id}", _request(path, method), expected))
    for path in (
        b"/__pivot/health",
        b"/__pivot/usage",
        b"/__pivot/reload",
        b"/",
        b"/__pivot/accounts/full/keys/primary",
    ):
        for method in _METHODS:
            cases.append((f"{method.decode()}-{path.decode()}", _request(path, method), None))
    return cases


def _exchange(url: str, data: bytes) -> tuple[int | None, bytes]:
    """Send raw bytes, read until the server closes; (status or None, whole response)."""
    with socket.create_connection(address(url), timeout=15) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    if not raw.startswith(b"HTTP/1."):
        return None, raw
    return int(raw.split(b" ", 2)[1]), raw


_LEAKS = (
    b"root:",
    b"[project]",
    b"openapi:",
    b'"request"',
    b"demo_keys",
    b"password_hash",
    b"Traceback",
)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [pytest.param(n, d, e, id=n) for n, d, e in _HOSTILE + _every_method_on_every_path()],
)
def test_hostile_input_never_gets_a_5xx_or_a_file(
    request: pytest.FixtureRequest, server: str, name: str, data: bytes, expected: set[int] | None
) -> None:
    """Traversal, NUL, non-UTF-8, huge ids/queries/headers, every method on every path."""
    if name in _SERVER_LIMITS and "production" in request.node.callspec.id:
        expected = None  # granian's own limits differ from http.server's; still never a 5xx
    status, raw = _exchange(server, data)
    assert status is not None, raw[:200]
    assert status < 500, raw[:300]
    if expected is not None:
        assert status in expected, raw[:300]
    for leak in _LEAKS:
        assert leak not in raw
    assert (ROOT / "pyproject.toml").read_bytes()[:40] not in raw


_NOT_ASCII = "status must be one of|is not a duration|empty, or not ASCII"
_BAD_FAULTS: list[tuple[bytes, str]] = [
    (b"status=429,retry-after=" + b"9" * 5000, "at most 200 characters"),
    (b"status=429,retry-after=" + b"9" * 150, "retry-after must be a positive number"),
    (b"status=\xb2", _NOT_ASCII),
    (b"status=\xd9\xa5\xd9\xa0\xd9\xa0", _NOT_ASCII),  # Arabic-Indic 500
    (b"status=500.0", "status must be one of"),
    (b"status=429,retry-after=-1", "retry-after must be a positive number"),
    (b"status=429,retry-after=1e9", "retry-after must be a positive number"),
    (b"latency=\xb2ms", _NOT_ASCII),
    (b" ", "empty, or not ASCII"),
    (b"latency=1e400ms", "is not a duration"),
    (b"latency=5..1ms", "low..high in order"),
    (b"p=1e309", "p must be a probability"),
    (b"p=nan", "p must be a probability"),
    (b"drop,truncate", "choose one of"),
    (b"explode", "unknown fault"),
]


@pytest.mark.parametrize(
    ("spec", "reason"), _BAD_FAULTS, ids=[s[:24].decode("latin-1") for s, _ in _BAD_FAULTS]
)
def test_bad_fault_specs_get_400_with_the_reason(server: int, spec: bytes, reason: str) -> None:
    """Every malformed x-pivot-fault (huge numbers, non-ASCII digits, exponents, NaN, two
    outcomes) gets the gateway's 400 naming what is wrong, on both servers; never a 5xx."""
    status, raw = _exchange(
        server, _request(C + b"7488", extra=b"x-pivot-fault: " + spec + b"\r\n")
    )
    assert status == 400, raw[:300]
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert re.search(reason, body["message"]) and body["statusCode"] == 400
