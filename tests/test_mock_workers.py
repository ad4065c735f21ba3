"""Several real server processes sharing one SQLite state: keys, usage, keep-alive, workers."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pivotkit.control import RemoteMock

FULL = "acf7a7c2d48e4a01098e3feabc0ecb24"
FULL_2 = "399d666bea1cf47c93633a485471cb6d"
TOKEN = "admin-token-for-worker-tests"
INVALID = (
    "Access denied due to invalid subscription key. Make sure to provide a valid key "
    "for an active subscription."
)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll /__pivot/health until it answers (the deadline only bounds a broken start)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if httpx.get(f"http://127.0.0.1:{port}/__pivot/health", timeout=5).status_code == 200:
                return
        except (OSError, httpx.HTTPError):
            time.sleep(0.1)
    pytest.fail(f"server on {port} not ready: {log.read_text(errors='replace')}")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Start ``pivotkit serve`` processes; every one is stopped (by its pid) afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOT_")}
    env["PIVOT_USAGE_FLUSH"] = "0"

    def run(*args: str) -> int:
        port = _free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from pivotkit.cli import main; main()",
                    "serve",
                    "--port",
                    str(port),
                    "--state",
                    str(tmp_path / "state.sqlite"),
                    "--admin-token",
                    TOKEN,
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        procs.append(proc)
        _wait_ready(port, proc, log)
        return port

    yield run
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _status(port: int, key: str) -> int:
    response = httpx.get(
        f"http://127.0.0.1:{port}/v1/api/v1/contents/7488",
        headers={"Ocp-Apim-Subscription-Key": key},
        timeout=10,
    )
    if response.status_code == 401:
        assert response.json()["message"] == INVALID
    return response.status_code


def test_regenerated_key_stops_at_once_in_every_process(start: Callable[..., int]) -> None:
    """Two servers on one state file: a key regenerated on one is refused by both at once."""
    first, second = start(), start()
    assert _status(first, FULL) == 200 and _status(second, FULL) == 200
    response = httpx.post(
        f"http://127.0.0.1:{first}/__pivot/accounts/full/keys/primary", headers=AUTH, timeout=10
    )
    new = response.json()["key"]
    assert _status(first, FULL) == 401
    assert _status(second, FULL) == 401
    assert _status(second, new) == 200 and _status(first, new) == 200
    assert _status(second, FULL_2) == 200
    usage = httpx.get(
        f"http://127.0.0.1:{second}/__pivot/usage?account=full", headers=AUTH, timeout=10
    ).json()["usage"]
    counts = {(r["operationId"], r["slot"]): r["count"] for r in usage}
    assert counts == {("getContent", "primary"): 4, ("getContent", "secondary"): 1}


def test_serve_prints_the_demo_keys_and_the_token(
    start: Callable[..., int], tmp_path: Path
) -> None:
    """The banner lists each account's demo keys; a given admin token is not printed."""
    port = start()
    text = (tmp_path / f"serve-{port}.log").read_text(errors="replace")
    assert FULL in text and FULL_2 in text and "limited" in text
    assert TOKEN not in text


def test_production_workers_share_keys_and_keep_connections(start: Callable[..., int]) -> None:
    """--production --workers 2: keep-alive, gzip, and a regenerated key refused by each worker."""
    port = start("--production", "--workers", "2")
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Ocp-Apim-Subscription-Key": FULL}, timeout=10
    ) as client:
        zipped = client.get("/v1/api/v1/contents/7488")
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.json()["data"]["id"] == 7488
        plain = client.get("/v1/api/v1/contents/7488", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == zipped.json()
        assert (
            client.get(
                "/v1/api/v1/contents/7488",
                params={"subscription-key": FULL_2},
                headers={"Ocp-Apim-Subscription-Key": ""},
            ).status_code
            == 200
        )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sockets = []
        for _ in range(3):
            conn.request(
                "GET", "/v1/api/v1/contents/7488", headers={"Ocp-Apim-Subscription-Key": FULL}
            )
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            sockets.append(conn.sock)
        assert sockets[0] is not None and all(s is sockets[0] for s in sockets)
    finally:
        conn.close()
    new = httpx.post(
        f"http://127.0.0.1:{port}/__pivot/accounts/full/keys/primary", headers=AUTH, timeout=10
    ).json()["key"]
    pids: set[int] = set()
    for _ in range(200):  # fresh connections until both workers have answered
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/__pivot/health")
            pids.add(json.loads(conn.getresponse().read())["pid"])
            for key, expected in ((FULL, 401), (new, 200)):
                conn.request(
                    "GET", "/v1/api/v1/contents/7488", headers={"Ocp-Apim-Subscription-Key": key}
                )
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
    port = start("--production", "--workers", "2")
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
    port = start("--production", "--workers", "2")
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
    port = start("--production", "--workers", "2")
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
