"""Several real server processes sharing one SQLite state: keys, usage, keep-alive, workers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from pivotkit.client import demo_key
from tests.helpers import (
    CONVENTIONS,
    FULL,
    KEY_HEADER,
    clean_env,
    connection,
    key_headers,
    path_of,
    serve_process,
)

FULL_2 = demo_key("full", "secondary").reveal()
TOKEN = "admin-token-for-worker-tests"
INVALID = CONVENTIONS.messages.invalid_key
CONTENT = path_of("getContent", id=7488)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start ``pivotkit serve`` processes on one state file; each returns its base URL and
    every one is stopped (by its pid) afterwards."""
    env = clean_env(PIVOT_USAGE_FLUSH="0")
    with ExitStack() as stack:

        def run(*args: str) -> str:
            url, _, _ = stack.enter_context(
                serve_process(tmp_path, "--admin-token", TOKEN, *args, env=env)
            )
            return url

        yield run


def _status(url: str, key: str) -> int:
    response = httpx.get(
        f"{url}{CONTENT}",
        headers=key_headers(key),
        timeout=10,
    )
    if response.status_code == 401:
        assert response.json()["message"] == INVALID
    return response.status_code


def _regenerate(url: str) -> str:
    """Regenerate the full account's primary key through the admin API; the new key."""
    response = httpx.post(f"{url}/__pivot/accounts/full/keys/primary", headers=AUTH, timeout=10)
    return str(response.json()["key"])


def test_regenerated_key_stops_at_once_in_every_process(start: Callable[..., str]) -> None:
    """Two servers on one state file: a key regenerated on one is refused by both at once."""
    first, second = start(), start()
    assert _status(first, FULL) == 200 and _status(second, FULL) == 200
    new = _regenerate(first)
    assert _status(first, FULL) == 401
    assert _status(second, FULL) == 401
    assert _status(second, new) == 200 and _status(first, new) == 200
    assert _status(second, FULL_2) == 200
    usage = httpx.get(f"{second}/__pivot/usage?account=full", headers=AUTH, timeout=10)
    counts = {(r["operationId"], r["slot"]): r["count"] for r in usage.json()["usage"]}
    assert counts == {("getContent", "primary"): 4, ("getContent", "secondary"): 1}


def test_serve_prints_the_demo_keys_and_the_token(
    start: Callable[..., str], tmp_path: Path
) -> None:
    """The banner lists each account's demo keys; a given admin token is not printed."""
    start()
    [log] = tmp_path.glob("serve-*.log")
    text = log.read_text(errors="replace")
    assert FULL in text and FULL_2 in text and "limited" in text
    assert TOKEN not in text


def test_production_workers_share_keys_and_keep_connections(start: Callable[..., str]) -> None:
    """--production --workers 2: keep-alive, gzip, and a regenerated key refused by each worker."""
    url = start("--production", "--workers", "2")
    with httpx.Client(base_url=url, headers=key_headers(FULL), timeout=10) as client:
        zipped = client.get(CONTENT)
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.json()["data"]["id"] == 7488
        plain = client.get(CONTENT, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == zipped.json()
        in_query = client.get(
            CONTENT, params={"subscription-key": FULL_2}, headers={KEY_HEADER: ""}
        )
        assert in_query.status_code == 200
    conn = connection(url)
    try:
        sockets = []
        for _ in range(3):
            conn.request("GET", CONTENT, headers=key_headers(FULL))
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            sockets.append(conn.sock)
        assert sockets[0] is not None and all(s is sockets[0] for s in sockets)
    finally:
        conn.close()
    new = _regenerate(url)
    pids: set[int] = set()
    for _ in range(200):  # fresh connections until both workers have answered
        conn = connection(url)
        try:
            conn.request("GET", "/__pivot/health")
            pids.add(json.loads(conn.getresponse().read())["pid"])
            for key, expected in ((FULL, 401), (new, 200)):
                conn.request("GET", CONTENT, headers=key_headers(key))
                response = conn.getresponse()
                response.read()
                assert response.status == expected
        finally:
            conn.close()
        if len(pids) >= 2:
            break
    assert len(pids) == 2
