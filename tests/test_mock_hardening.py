"""Attacks on `pivotkit serve` through real sockets and processes: a killed worker, the rate
limit across workers and window boundaries, slow clients, memory, reloads, concurrent logins.

Each test bounds counts, never times; the load figures are `nox -s soak`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    BASIC,
    FULL,
    KEY_HEADER,
    LIMITED,
    clean_env,
    path_of,
    serve_process,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "admin-token-for-hardening"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTENT = path_of("getContent", id=7488)


def _env(**extra: str) -> dict[str, str]:
    return clean_env(PIVOT_ADMIN_TOKEN=TOKEN, RUST_BACKTRACE="0", **extra)


def _children(pid: int) -> set[int]:
    """The direct children of a process (granian's workers)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _status(url: str, path: str = CONTENT, key: str = FULL, source: str = "127.0.0.1") -> int:
    """One request on a fresh connection (so that each may land on another worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", _port(url), timeout=20)
    conn.source_address = (source, 0)
    try:
        conn.request("GET", path, headers={KEY_HEADER: key})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _health_pid(url: str) -> int | None:
    try:
        return int(httpx.get(f"{url}/__pivot/health", timeout=5).json()["pid"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _usage(url: str, account: str = "full") -> int:
    rows = httpx.get(f"{url}/__pivot/usage?account={account}", headers=AUTH, timeout=10)
    return sum(r["count"] for r in rows.json()["usage"])


# -- item 1: a dead worker is replaced -------------------------------------------------------------


def test_a_killed_worker_is_replaced_and_flushed_usage_survives(tmp_path: Path) -> None:
    """kill -9 of one of two workers: the server keeps answering from a new worker; usage
    counts already flushed (every PIVOT_USAGE_FLUSH seconds, by each worker itself) survive,
    so at most one flush interval of the dead worker's counts can be lost."""
    env = _env(PIVOT_USAGE_FLUSH="0.2")
    with serve_process(tmp_path, "--workers", "2", env=env) as (url, proc, log):
        workers: set[int] = set()
        for _ in range(200):  # fresh connections until both workers are known
            workers.add(_health_pid(url) or 0)
            if len(workers - {0}) == 2:
                break
        assert workers - {0} == _children(proc.pid)
        assert all(_status(url) == 200 for _ in range(30))
        for _ in range(100):  # no request needed: the workers flush by themselves
            if _usage(url) == 30:
                break
            time.sleep(0.1)
        assert _usage(url) == 30
        victim = sorted(workers - {0})[0]
        os.kill(victim, signal.SIGKILL)
        answered: set[int] = set()
        for _ in range(400):
            pid = _health_pid(url)
            if pid is not None:
                answered.add(pid)
            if answered - workers:
                break
            time.sleep(0.02)
        assert answered - workers, log.read_text(errors="replace")[-2000:]
        assert proc.poll() is None
        assert victim not in _children(proc.pid) and len(_children(proc.pid)) == 2
        assert all(_status(url) == 200 for _ in range(20))
        for _ in range(100):
            if _usage(url) == 50:
                break
            time.sleep(0.1)
        assert _usage(url) == 50


# -- item 2: the rate limit at window boundaries, two workers -------------------------------------


def _fast_limits(tmp_path: Path, calls: int, period: int) -> Path:
    """The bundled accounts with `limited` at ``calls`` per ``period`` seconds."""
    text = (ROOT / "fixtures" / "accounts.toml").read_text("utf-8")
    text = text.replace(
        "rate_limit = { calls = 5, period = 10 }",
        f"rate_limit = {{ calls = {calls}, period = {period} }}",
    ).replace("quota = { calls = 30, period = 3600 }", "quota = { calls = 100000, period = 3600 }")
    path = tmp_path / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rate_limit_is_exact_across_workers_and_boundaries(tmp_path: Path) -> None:
    """`limited` at 3 calls per second, two workers, 16 clients hammering across several
    second boundaries: no 4 admitted calls fit in one second (a sliding window, whatever the
    boundary), checked on each call's send and receive times, and refused calls do not count."""
    calls, period = 3, 1
    accounts = _fast_limits(tmp_path, calls, period)
    with serve_process(tmp_path, "--workers", "2", "--accounts", str(accounts), env=_env()) as (
        url,
        _,
        _,
    ):
        port = _port(url)
        admitted: list[tuple[float, float]] = []
        statuses: list[int] = []
        lock = threading.Lock()
        start = threading.Barrier(16)

        def client() -> None:
            start.wait()
            for _ in range(50):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                sent = time.monotonic()
                conn.request("GET", CONTENT, headers={KEY_HEADER: LIMITED})
                response = conn.getresponse()
                response.read()
                got = time.monotonic()
                conn.close()
                with lock:
                    statuses.append(response.status)
                    if response.status == 200:
                        admitted.append((sent, got))
                time.sleep(0.1)  # pacing, so that 50 calls span several windows

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert set(statuses) <= {200, 429} and len(statuses) == 800
    admitted.sort(key=lambda sr: sr[1])
    span = admitted[-1][1] - min(s for s, _ in admitted)
    assert span > 3 * period  # the run crossed several boundaries
    for i in range(len(admitted) - calls):
        group = admitted[i : i + calls + 1]  # calls + 1 admitted: they cannot fit one period
        assert group[-1][1] - min(s for s, _ in group) >= period, (i, group)
    assert len(admitted) <= calls * (span / period + 1)
    assert len(admitted) >= calls * int(span / period - 1)  # refused calls were not counted


# -- item 3: slow clients -------------------------------------------------------------------------


def _open(port: int, data: bytes, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    if data:
        sock.sendall(data)
    return sock


def _verdict(sock: socket.socket) -> bytes:
    """The status line the server answered (b"" if it closed without answering); a server
    that neither answers nor closes makes recv time out, failing the test."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0][:12]


def _login_head(length: int) -> bytes:
    return (
        b"POST /portal/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\na" % length
    )


@pytest.mark.parametrize("server", ["fast", "dev"])
def test_slow_clients_do_not_starve_normal_requests(tmp_path: Path, server: str) -> None:
    """Slow bodies, unfinished heads and silent connections from one address: requests from
    another address keep being answered; uploads beyond the caps get 503 at once, a body too
    big 413 unread, a body past the deadline 408; unfinished heads and connections that send
    nothing are closed at the head deadline (PIVOT_CLIENT_TIMEOUT)."""
    args = ["--dev", "--no-reload"] if server == "dev" else []
    with serve_process(tmp_path, *args, env=_env(PIVOT_CLIENT_TIMEOUT="2")) as (url, proc, _):
        port = _port(url)
        bodies = [_open(port, _login_head(1000)) for _ in range(30)]
        heads = [_open(port, b"GET /__pivot/health HTTP/1.1\r\nHost: x\r\n") for _ in range(60)]
        silent = [_open(port, b"") for _ in range(60)]
        try:
            probes = [_status(url, source="127.0.0.2") for _ in range(20)]
            probes += [_status(url, "/__pivot/health", source="127.0.0.2") for _ in range(20)]
            assert probes == [200] * 40
            with _open(port, _login_head(10_000_000), source="127.0.0.3") as big:
                assert _verdict(big) == b"HTTP/1.1 413"
            time.sleep(2.5)  # past PIVOT_CLIENT_TIMEOUT: one more byte, then the verdict
            for sock in bodies:
                with contextlib.suppress(OSError):
                    sock.sendall(b"b")
            verdicts = [_verdict(s) for s in bodies]
            assert all(v in (b"HTTP/1.1 503", b"HTTP/1.1 408", b"") for v in verdicts), verdicts
            assert verdicts.count(b"HTTP/1.1 503") >= 20  # at most 4 or 8 were ever read
            # closed at the head deadline (or, on the dev server, refused past the per-client
            # cap of connections); never left hanging
            closed = (b"", b"HTTP/1.1 408", b"HTTP/1.1 503")
            assert all(_verdict(s) in closed for s in heads + silent)
            assert _status(url, source="127.0.0.2") == 200
        finally:
            for sock in bodies + heads + silent:
                sock.close()
        assert proc.poll() is None


# -- item 4: memory bounded in bytes ---------------------------------------------------------------


def test_unauthenticated_junk_does_not_grow_a_worker(tmp_path: Path) -> None:
    """4,000 distinct 16 KB paths (404) and 500 distinct 8 KB Accept-Encoding values: the
    worker's memory grows by far less than what they weigh (64 MB), since no cache keeps a
    long key and every cache is bounded in bytes."""
    with serve_process(tmp_path, env=_env()) as (url, proc, _):
        (worker,) = _children(proc.pid)
        port = _port(url)
        assert _status(url) == 200
        before = _rss_kb(worker)

        def junk(first: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                for i in range(first, first + 1000):
                    conn.request("GET", f"/v1/{i:08d}" + "a" * 16_000)
                    conn.getresponse().read()
                for i in range(first, first + 125):
                    conn.request(
                        "GET",
                        CONTENT,
                        headers={KEY_HEADER: FULL, "Accept-Encoding": f"br;q=0.{i}, " * 800},
                    )
                    conn.getresponse().read()
            finally:
                conn.close()

        threads = [threading.Thread(target=junk, args=(n * 10_000,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        grown_mb = (_rss_kb(worker) - before) / 1024
        assert _status(url) == 200
    assert grown_mb < 24, grown_mb


# -- item 8: reload is all or nothing, in every worker ------------------------------------------


def _workers_answer(url: str, key: str, path: str = CONTENT) -> set[int]:
    """The statuses 40 fresh connections get (spread over the workers)."""
    return {_status(url, path, key) for _ in range(40)}


def _reload(url: str) -> httpx.Response:
    return httpx.post(f"{url}/__pivot/reload", headers=AUTH, timeout=30)


def test_reload_switches_every_worker_or_none(tmp_path: Path) -> None:
    """Two workers. A removed account is refused by both at once; an accounts file with a
    typo, or a served fixture truncated, is refused (409, every reason) and both workers keep
    serving what they served; an edit made after a reload changes nothing until the next one."""
    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", fixtures)
    accounts = fixtures / "accounts.toml"
    with serve_process(tmp_path, "--workers", "2", "--fixtures", str(fixtures), env=_env()) as (
        url,
        _,
        _,
    ):
        assert _workers_answer(url, BASIC) == {200}
        text = accounts.read_text("utf-8")
        start = text.index('[[accounts]]\nname = "basic"')
        end = text.index("[[accounts]]", start + 5)
        accounts.write_text(text[:start] + text[end:], "utf-8")
        assert _reload(url).status_code == 200
        assert _workers_answer(url, BASIC) == {401}
        assert _workers_answer(url, FULL) == {200}

        accounts.write_text(accounts.read_text("utf-8") + "\n[[accounts]\nname = ", "utf-8")
        refused = _reload(url)
        assert refused.status_code == 409 and refused.json()["changed"] is False
        assert str(accounts) in refused.json()["problems"][0]
        assert _workers_answer(url, BASIC) == {401} and _workers_answer(url, FULL) == {200}
        accounts.write_text(text[:start] + text[end:], "utf-8")

        served = fixtures / "getContent" / "7488.json"
        whole = served.read_text("utf-8")
        served.write_text(whole[: len(whole) // 2], "utf-8")
        refused = _reload(url)
        assert refused.status_code == 409
        assert any("7488.json" in p and "served now" in p for p in refused.json()["problems"])
        bodies = set()
        for _ in range(20):
            r = httpx.get(f"{url}{CONTENT}", headers={KEY_HEADER: FULL}, timeout=10)
            bodies.add(r.json()["data"]["title"])
        assert bodies == {"Blade Runner"}

        served.write_text(whole.replace("Blade Runner", "Blade Runner (reloaded)"), "utf-8")
        assert _reload(url).status_code == 200
        titles = {
            httpx.get(f"{url}{CONTENT}", headers={KEY_HEADER: FULL}, timeout=10).json()["data"][
                "title"
            ]
            for _ in range(30)
        }
        assert titles == {"Blade Runner (reloaded)"}
        # Bodies are read on first use: a file broken after the reload is never served
        # broken; a worker that has its answer prepared keeps it, one that has not answers
        # as if it were absent (the empty-200).
        served.write_text("{ typo", "utf-8")
        answers = {
            httpx.get(f"{url}{CONTENT}", headers={KEY_HEADER: FULL}, timeout=10).content
            for _ in range(30)
        }
        body = json.loads(whole.replace("Blade Runner", "Blade Runner (reloaded)"))
        compact = json.dumps(body["response"]["body"], ensure_ascii=False, separators=(",", ":"))
        assert answers <= {b"{}", compact.encode()}


# -- item 13: the login throttle under concurrency, two workers -----------------------------------


def test_concurrent_logins_are_throttled_across_workers(tmp_path: Path) -> None:
    """40 wrong-password logins at once over two workers: at most 5 passwords are checked
    (401), the rest are throttled (429) before any check (an attempt refused by the upload cap,
    503, is retried as a client would)."""
    with serve_process(tmp_path, "--workers", "2", env=_env()) as (url, _, _):
        with httpx.Client(base_url=url, timeout=30) as client:
            page = client.get("/portal/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            cookies = dict(client.cookies)
        statuses: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(40)

        def attempt() -> None:
            with httpx.Client(base_url=url, cookies=cookies, timeout=30) as client:
                barrier.wait()
                for _ in range(100):  # 503: too many bodies from this address at once, retry
                    r = client.post(
                        "/portal/login",
                        data={"account": "full", "password": "wrong", "csrf_token": token.group(1)},
                    )
                    if r.status_code != 503:
                        break
                with lock:
                    statuses.append(r.status_code)

        threads = [threading.Thread(target=attempt) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(set(statuses)) == [401, 429]
    assert statuses.count(401) <= 5 and len(statuses) == 40
