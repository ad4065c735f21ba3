"""Soak and attack figures of `pivotkit serve` (issue 13): `nox -s soak`, never part of tests.

Each phase starts its own server(s) on free loopback ports, stops them by pid, and prints one
block of figures; everything also goes to bench/results/soak-<date>.json.

1. load      wrk -c64 for --duration s after a --warmup s warm-up against 2 workers: requests,
             errors, RSS of each worker before and after (growth %).
2. junk      distinct 60 KB unknown paths and 8 KB Accept-Encoding values (unauthenticated):
             RSS before and after.
3. slow      slow bodies (POST /portal/login, Content-Length 1000, one byte every 5 s),
             never-finished heads and silent connections, reconnecting, from 127.0.0.2, while a
             probe from 127.0.0.1 times normal requests (fast and dev servers): latency
             p50/p99/max of normal requests, how many were answered.
4. rate      `limited` (5 calls / 10 s), 2 workers, 16 clients from 1 s before a 10 s
             boundary for 25 s: 200s per fixed 10 s window, the most 200s in any sliding 10 s
             span (ceiling 5), the total (ceiling 15).
5. kill      2 workers, steady calls, kill -9 of one worker: calls sent, usage counted after,
             the loss, and the bound (calls per PIVOT_USAGE_FLUSH in the dead worker).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_mock import pivotkit_command  # noqa: E402

from pivotkit.client import demo_key  # noqa: E402

FULL = demo_key("full").reveal()
LIMITED = demo_key("limited").reveal()
KEY_HEADER = "Ocp-Apim-Subscription-Key"
PATH = "/v1/api/v1/contents/7488"
TOKEN = "admin-token-for-the-soak"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return sorted(found)


@contextlib.contextmanager
def serving(
    work: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`pivotkit serve ARGS` on a free port; yields (port, process); stopped by its pid."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIVOT_")}
    base.update({"PIVOT_ADMIN_TOKEN": TOKEN, "RUST_BACKTRACE": "0", **(env or {})})
    log = (work / f"serve-{port}.log").open("wb")
    state = work / f"state-{port}.sqlite"
    port_file = work / f"serve-{port}.port"
    proc = subprocess.Popen(
        [
            *pivotkit_command(),
            *("serve", "--port", str(port), "--state", str(state)),
            *("--port-file", str(port_file), *args),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=base,
    )
    try:
        deadline = time.monotonic() + 90
        while not port_file.exists():  # never connect before it listens (TCP self-connect)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server exited {proc.returncode}: see {log.name}")
            time.sleep(0.1)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def get(
    port: int,
    path: str = PATH,
    key: str | None = FULL,
    source: str = "127.0.0.1",
    timeout: float = 10,
) -> tuple[int, float]:
    """(status, seconds) of one request on a fresh connection."""
    start = time.monotonic()
    bind = None if source == "127.0.0.1" else (source, 0)  # an explicit bind wastes ports
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=bind)
    try:
        conn.request("GET", path, headers={KEY_HEADER: key} if key else {})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - start
    finally:
        conn.close()


# -- 1. load -------------------------------------------------------------------------------------


def _wrk(port: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c64",
            f"-d{int(seconds)}s",
            "-H",
            f"{KEY_HEADER}: {FULL}",
            "-H",
            "Accept-Encoding: gzip",
            f"http://127.0.0.1:{port}{PATH}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = sum(int(g) for g in errors.groups()) if errors else 0
    return {
        "requests": requests,
        "errors": socket_errors + (int(non2xx.group(1)) if non2xx else 0),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
    }


def load(work: Path, warmup: float, duration: float) -> dict[str, Any]:
    with serving(work, "--workers", "2") as (port, proc):
        workers = children(proc.pid)
        _wrk(port, warmup)
        before = {pid: rss_kb(pid) for pid in workers}
        run = _wrk(port, duration)
        after = {pid: rss_kb(pid) for pid in workers}
    growth = {pid: round(100 * (after[pid] - before[pid]) / before[pid], 1) for pid in workers}
    return {
        **run,
        "rss_before_mb": {p: round(v / 1024, 1) for p, v in before.items()},
        "rss_after_mb": {p: round(v / 1024, 1) for p, v in after.items()},
        "rss_growth_pct": growth,
    }


# -- 2. junk -------------------------------------------------------------------------------------


def junk(work: Path, paths: int, encodings: int) -> dict[str, Any]:
    with serving(work) as (port, proc):
        (worker,) = children(proc.pid)
        before = rss_kb(worker)
        statuses: dict[int, int] = {}
        lock = threading.Lock()

        def send(first: int, count: int, encoding: bool) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(first, first + count):
                if encoding:
                    conn.request(
                        "GET",
                        PATH,
                        headers={KEY_HEADER: FULL, "Accept-Encoding": f"br;q=0.{i}, " * 800},
                    )
                else:
                    conn.request("GET", f"/v1/{i:09d}" + "a" * 60_000)
                status = conn.getresponse()
                status.read()
                with lock:
                    statuses[status.status] = statuses.get(status.status, 0) + 1
            conn.close()

        threads = [
            threading.Thread(target=send, args=(n * 10**7, paths // 4, False)) for n in range(4)
        ]
        threads += [
            threading.Thread(target=send, args=(n * 10**7, encodings // 4, True)) for n in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = rss_kb(worker)
    return {
        "paths": paths,
        "accept_encodings": encodings,
        "statuses": statuses,
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
    }


# -- 3. slow clients -----------------------------------------------------------------------------


async def _attacker(
    port: int, kind: str, gap: float, stop: asyncio.Event, counts: dict[str, int]
) -> None:
    head = {
        "body": b"POST /portal/login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        "head": b"GET /__pivot/health HTTP/1.1\r\nHost: x\r\n",
        "silent": b"",
    }[kind]
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0)), 10
            )
        except (OSError, TimeoutError):
            counts["refused"] += 1
            await asyncio.sleep(0.2)
            continue
        counts["opened"] += 1
        try:
            writer.write(head)
            await writer.drain()
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(1024), gap)
                except TimeoutError:
                    if kind == "body":
                        writer.write(b"a")
                        await writer.drain()
                    continue
                if not data:
                    counts["closed by server"] += 1
                    break
                counts["answered"] += 1
                break
        except OSError:
            counts["closed by server"] += 1
        finally:
            writer.close()
        await asyncio.sleep(0.05)


async def _slow(port: int, bodies: int, heads: int, silent: int, seconds: float) -> dict[str, Any]:
    stop = asyncio.Event()
    counts = {"opened": 0, "refused": 0, "closed by server": 0, "answered": 0}
    tasks = [
        asyncio.create_task(_attacker(port, k, 5.0, stop, counts))
        for k, n in (("body", bodies), ("head", heads), ("silent", silent))
        for _ in range(n)
    ]
    await asyncio.sleep(5)  # the attack ramps up
    latencies: list[float] = []
    failed = 0
    end = time.monotonic() + seconds
    loop = asyncio.get_running_loop()
    while time.monotonic() < end:
        try:
            status, took = await loop.run_in_executor(None, lambda: get(port, timeout=10))
            if status == 200:
                latencies.append(took)
            else:
                failed += 1
        except OSError:
            failed += 1
        await asyncio.sleep(0.25)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    pick = lambda q: round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)  # noqa: E731
    return {
        "attackers": {"slow bodies": bodies, "unfinished heads": heads, "silent": silent},
        "attack_connections": counts,
        "normal_requests": len(latencies) + failed,
        "answered_200": len(latencies),
        "failed": failed,
        "latency_ms": {"p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)}
        if latencies
        else None,
    }


def slow(work: Path, seconds: float) -> dict[str, Any]:
    out = {}
    for name, args in (("fast", ["--workers", "2"]), ("dev", ["--dev", "--no-reload"])):
        with serving(work, *args) as (port, _):
            out[name] = asyncio.run(_slow(port, 560, 1100, 1000, seconds))
    return out


# -- 4. rate windows -----------------------------------------------------------------------------


def rate(work: Path) -> dict[str, Any]:
    with serving(work, "--workers", "2") as (port, _):
        wait = 10 - (time.time() % 10) - 1.0
        time.sleep(wait if wait > 0 else wait + 10)
        admitted: list[tuple[float, float]] = []  # (sent, received) of each 200
        lock = threading.Lock()
        end = time.time() + 25

        def client() -> None:
            while time.time() < end:
                with contextlib.suppress(OSError):
                    sent = time.time()
                    status, _ = get(port, key=LIMITED)
                    if status == 200:
                        with lock:
                            admitted.append((sent, time.time()))

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    admitted.sort()
    windows: dict[int, int] = {}
    for _, got in admitted:
        windows[int(got // 10) * 10] = windows.get(int(got // 10) * 10, 0) + 1
    # A 200 was admitted between its send and its receive time: count the ones surely admitted
    # inside one 10 s span (the sliding limit allows 5), a span starting at each send time.
    sliding = max(
        (sum(1 for s, r in admitted if start <= s and r < start + 10) for start, _ in admitted),
        default=0,
    )
    return {
        "200s_per_fixed_10s_window": list(windows.values()),
        "most_surely_admitted_in_any_10s": sliding,
        "limit_per_10s": 5,
        "total_200s_in_25s": len(admitted),
        "ceiling_in_25s": 15,
    }


# -- 5. kill -9 and usage ------------------------------------------------------------------------


def kill(work: Path, flush: float) -> dict[str, Any]:
    with serving(work, "--workers", "2", env={"PIVOT_USAGE_FLUSH": str(flush)}) as (port, proc):
        sent = 0
        start = time.monotonic()
        victim = children(proc.pid)[0]
        while time.monotonic() - start < 3:
            with contextlib.suppress(OSError):
                if get(port)[0] == 200:
                    sent += 1
        rate_per_s = sent / (time.monotonic() - start)
        os.kill(victim, signal.SIGKILL)
        lost_requests = 0
        for _ in range(200):
            try:
                if get(port)[0] == 200:
                    sent += 1
                    if len(children(proc.pid)) == 2:
                        break
            except (OSError, http.client.HTTPException):
                lost_requests += 1
        time.sleep(2 * flush + 1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(
            "GET", "/__pivot/usage?account=full", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        usage = sum(r["count"] for r in json.loads(conn.getresponse().read())["usage"])
        conn.close()
        alive = proc.poll() is None
    return {
        "usage_flush_s": flush,
        "calls_sent": sent,
        "usage_counted": usage,
        "lost": sent - usage,
        "bound": round(rate_per_s * flush, 1),
        "requests_failed_during_respawn": lost_requests,
        "server_alive": alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--slow-seconds", type=float, default=30)
    parser.add_argument("--paths", type=int, default=19_000)
    parser.add_argument("--encodings", type=int, default=1_200)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", action="append", choices=["load", "junk", "slow", "rate", "kill"])
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.duration, args.slow_seconds, args.paths, args.encodings = (
            2,
            5,
            5,
            2000,
            200,
        )
    phases = args.only or ["load", "junk", "slow", "rate", "kill"]
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="pivotkit-soak-") as tmp:
        work = Path(tmp)
        for phase in phases:
            started = time.monotonic()
            if phase == "load":
                results[phase] = load(work, args.warmup, args.duration)
            elif phase == "junk":
                results[phase] = junk(work, args.paths, args.encodings)
            elif phase == "slow":
                results[phase] = slow(work, args.slow_seconds)
            elif phase == "rate":
                results[phase] = rate(work)
            else:
                results[phase] = kill(work, 1.0)
            print(f"== {phase} ({time.monotonic() - started:.0f} s)")
            print(json.dumps(results[phase], indent=2, default=str), flush=True)
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"soak-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    target.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
