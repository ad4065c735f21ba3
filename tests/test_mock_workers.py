"""Several real server processes sharing one SQLite state: keys, usage, keep-alive, workers."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from pivotkit.client import demo_key
from pivotkit.control import RemoteMock
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


def _fresh(
    port: int, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection (so that either worker may take it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _records(port: int) -> list[dict[str, object]]:
    status, _, body = _fresh(port, "GET", "/__pivot/requests", AUTH)
    assert status == 200
    records: list[dict[str, object]] = json.loads(body)["requests"]
    return records


def test_one_journal_for_both_workers(start: Callable[..., int]) -> None:
    """--production --workers 2: every request either worker answered is in the journal
    either worker reads, in order; DELETE through one empties it for both."""
    port = int(start("--workers", "2").rsplit(":", 1)[1])
    key = {"Ocp-Apim-Subscription-Key": FULL}
    sent = 0
    for _ in range(100):  # fresh connections until both workers have answered some
        _fresh(port, "GET", "/v1/api/v1/contents/7488", key)
        sent += 1
        workers = {r["worker"] for r in _records(port)}
        if len(workers) == 2 and sent >= 10:
            break
    assert len(workers) == 2
    readers: set[int] = set()
    for _ in range(100):  # until both workers have read the same journal
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:  # one connection, one worker: who it is, then what it reads
            conn.request("GET", "/__pivot/health")
            reader = json.loads(conn.getresponse().read())["pid"]
            conn.request("GET", "/__pivot/requests", headers=AUTH)
            records = json.loads(conn.getresponse().read())["requests"]
        finally:
            conn.close()
        readers.add(reader)
        assert len(records) == sent
        assert [r["time"] for r in records] == sorted(r["time"] for r in records)
        assert len({r["id"] for r in records}) == sent
        if readers == workers:
            break
    assert readers == workers
    assert _fresh(port, "DELETE", "/__pivot/requests", AUTH)[0] == 200
    for _ in range(10):
        assert _records(port) == []


def test_a_sequence_is_played_once_across_workers(start: Callable[..., int]) -> None:
    """A scripted series (thirty 503s, then the fixture; a 429 with Retry-After 2, then 200)
    is consumed request by request whichever worker takes it."""
    port = int(start("--workers", "2").rsplit(":", 1)[1])
    with RemoteMock(f"http://127.0.0.1:{port}", TOKEN) as mock:
        mock.sequence("getContent", [{"status": 503, "times": 30}, "fixture"], params={"id": 7488})
        mock.sequence("getContent", ["status=429,retry-after=2", 200], params={"id": 7520})
        key = {"Ocp-Apim-Subscription-Key": FULL}
        statuses = [_fresh(port, "GET", "/v1/api/v1/contents/7488", key)[0] for _ in range(34)]
        assert statuses == [503] * 30 + [200] * 4
        limited = [_fresh(port, "GET", "/v1/api/v1/contents/7520", key) for _ in range(3)]
        assert [s for s, _, _ in limited] == [429, 200, 200]
        assert limited[0][1]["retry-after"] == "2"
        assert (
            json.loads(limited[0][2])["message"]
            == "Rate limit is exceeded. Try again in 2 seconds."
        )
        failed = mock.find_requests("getContent", status=503)
        assert len(failed) == 30 and len({r.worker for r in failed}) == 2
        mock.assert_called("getContent", times=34, params={"id": 7488})
        mock.reset()
        assert _fresh(port, "GET", "/v1/api/v1/contents/7488", key)[0] == 200


def test_a_timeline_step_is_seen_by_every_worker(start: Callable[..., int]) -> None:
    """Advancing the bundled timeline through one worker changes the data both answer."""
    port = int(start("--workers", "2").rsplit(":", 1)[1])
    key = {"Ocp-Apim-Subscription-Key": FULL}
    path = "/v1/api/v1/broadcasts/34/20241112/20241112"
    with RemoteMock(f"http://127.0.0.1:{port}", TOKEN) as mock:
        timeline = mock.timeline("canal-plus-evening")
        assert json.loads(_fresh(port, "GET", path, key)[2]) == {}
        for step, count in ((1, 3), (2, 2)):
            assert timeline.advance().step == step
            for _ in range(12):
                body = json.loads(_fresh(port, "GET", path, key)[2])
                assert len(body["data"]) == count
        assert len({r.worker for r in mock.find_requests("listBroadcasts")}) == 2
