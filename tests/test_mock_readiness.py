"""Health, readiness and graceful shutdown of `pivotkit serve` (granian, real subprocesses):
/__pivot/ready is 200 only when the instance should get traffic, SIGTERM drains requests in
flight and the process exits 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import FULL, KEY_HEADER, clean_env, path_of, redis_server, serve_process

TOKEN = "admin-token-for-readiness-tests"
CONTENT = path_of("getContent", id=7488)


def _env(**extra: str) -> dict[str, str]:
    return clean_env(PIVOT_ADMIN_TOKEN=TOKEN, RUST_BACKTRACE="0", **extra)


def _slow_call(url: str, seconds: float, out: list[httpx.Response | BaseException]) -> None:
    try:
        out.append(
            httpx.get(
                url + CONTENT,
                headers={KEY_HEADER: FULL, "x-pivot-fault": f"latency={seconds}s"},
                timeout=30,
            )
        )
    except BaseException as exc:
        out.append(exc)


def test_ready_is_open_and_holds_no_secret(tmp_path: Path) -> None:
    with serve_process(tmp_path, env=_env()) as (url, _, _):
        ready = httpx.get(f"{url}/__pivot/ready", timeout=10)
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready" and body["fixtures"] and body["state"]
        assert body["draining"] is False
        assert TOKEN not in ready.text and "sqlite" not in ready.text.lower()
        assert httpx.get(f"{url}/__pivot/health", timeout=10).status_code == 200


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_a_request_in_flight_and_exits_0(tmp_path: Path, workers: str) -> None:
    """A request 2 s long is in flight when SIGTERM comes: during the drain delay ready says
    503 draining (health stays 200), the request completes with 200, and the process exits 0
    within the delay plus the request plus granian's grace."""
    env = _env(PIVOT_DRAIN_DELAY="1.5")
    with serve_process(tmp_path, "--workers", workers, env=env) as (url, proc, _):
        out: list[httpx.Response | BaseException] = []
        slow = threading.Thread(target=_slow_call, args=(url, 2, out))
        slow.start()
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = httpx.get(f"{url}/__pivot/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert httpx.get(f"{url}/__pivot/health", timeout=5).status_code == 200
        slow.join(30)
        [answer] = out
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200 and answer.json()["data"]["id"] == 7488
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - sent < 15
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/__pivot/health", timeout=2)


def test_sigterm_without_a_delay_still_finishes_the_request(tmp_path: Path) -> None:
    with serve_process(tmp_path, env=_env()) as (url, proc, _):
        out: list[httpx.Response | BaseException] = []
        slow = threading.Thread(target=_slow_call, args=(url, 1.5, out))
        slow.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        slow.join(30)
        [answer] = out
        assert isinstance(answer, httpx.Response) and answer.status_code == 200, answer
        assert proc.wait(timeout=15) == 0


def test_ready_says_503_while_redis_is_gone(tmp_path: Path) -> None:
    """The state unreachable: ready 503 (the balancer takes the instance out), health 200."""
    with (
        redis_server(tmp_path) as redis_url,
        serve_process(tmp_path, "--state", redis_url, env=_env()) as (url, _, _),
    ):
        assert httpx.get(f"{url}/__pivot/ready", timeout=10).status_code == 200
        import redis

        redis.Redis.from_url(redis_url).shutdown(nosave=True)
        time.sleep(0.2)
        ready = httpx.get(f"{url}/__pivot/ready", timeout=20)
        assert ready.status_code == 503 and ready.json()["status"] == "state unreachable"
        assert "127.0.0.1" not in ready.text
        assert httpx.get(f"{url}/__pivot/health", timeout=10).status_code == 200
