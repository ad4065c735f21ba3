"""The fast server (``pivotkit serve``): granian worker processes, configured to stay up.

granian was picked by measurement (GET /v1/api/v1/contents/7488, gzip, 2 workers, wrk -c16 on
2 shared cores): granian ~15,000-19,000 req/s, waitress (8 threads) ~3,500, gunicorn sync or
gthread (2 workers) ~3,000, werkzeug threaded ~630.

What each setting bounds (measured with granian 2.8.9, see the README's deployment notes):

- a worker that dies (``kill -9``, a crash) is replaced at once (``respawn_failed_workers``);
  granian itself stops, exit 1, if the same worker dies again within 5.5 s of its respawn;
- a request head must arrive whole within ``PIVOT_CLIENT_TIMEOUT`` seconds (also the idle
  keep-alive limit) and be at most :data:`MAX_HEAD` bytes (431 beyond); HTTP/1.1 only (no
  h2c, whose settings these are not); request bodies are bounded by mockserver.uploads;
- a worker holds at most :data:`BACKPRESSURE` connections and runs the app in
  :data:`THREADS` Python threads; a worker over its memory ceiling is replaced gracefully;
- SIGTERM turns ``/__pivot/ready`` to 503 at once, waits ``PIVOT_DRAIN_DELAY`` seconds (0 by
  default) for the balancer to notice, then closes the listener and lets requests in flight
  finish for :data:`KILL_TIMEOUT` seconds, then kills.

Not bounded here: a connection that never sends a byte (granian has no timeout for it), and
the connections one client address holds. A front end (nginx) bounds both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from mockserver.logs import config as log_config
from pivotkit.errors import ConfigError

FACTORY = "mockserver.server:prebuilt_app"
MAX_HEAD = 65_536
BACKPRESSURE = 4096
THREADS = 32
KILL_TIMEOUT = 10
RSS_HEADROOM_MB = 512


def max_rss_mb(parent_rss_mb: float) -> int:
    """A worker's memory ceiling: twice the loaded app (filtered copies of fixtures for
    restricted accounts are prepared on use) plus headroom for the bounded caches."""
    return int(2 * parent_rss_mb + RSS_HEADROOM_MB)


def rss_mb() -> float:
    """This process's resident memory, in MiB (0 when /proc is not there)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def drain_first(server: Any, drain: Callable[[], None], delay: float) -> None:
    """On SIGTERM (or SIGINT), call ``drain`` (readiness turns 503) at once, then let granian
    stop after ``delay`` seconds: it closes the listener and lets requests in flight finish
    (at most :data:`KILL_TIMEOUT` seconds). A second signal stops without waiting."""
    stop = server.signal_handler_interrupt
    signalled: list[bool] = []

    def interrupt(*args: Any, **kwargs: Any) -> None:
        drain()
        if delay > 0 and not signalled:
            signalled.append(True)
            threading.Timer(delay, stop).start()
        else:
            stop(*args, **kwargs)

    server.signal_handler_interrupt = interrupt


def run_granian(
    settings: Mapping[str, Any],
    *,
    host: str,
    port: int,
    workers: int,
    head_timeout: float = 10.0,
    drain: Callable[[], None] | None = None,
    drain_delay: float = 0.0,
) -> None:
    """Serve the prebuilt app (mockserver.server) in ``workers`` granian processes; with
    ``drain``, SIGTERM drains first (:func:`drain_first`)."""
    try:
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP1Settings
    except ImportError as exc:
        raise ConfigError(
            "granian", f"cannot be imported ({exc}): reinstall pivotkit, or serve with --dev"
        ) from None

    # Workers started by spawn build their own app from the environment: flags become PIVOT_
    # variables (forked workers inherit the prebuilt app).
    for key, value in settings.items():
        if key.startswith("PIVOT_") and value is not None:
            os.environ[key] = _env_value(value)
    loaded = rss_mb()
    server = Granian(
        FACTORY,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        factory=True,
        log_access=False,
        log_dictconfig=log_config(),
        websockets=False,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, int(head_timeout * 1000)),
            keep_alive=True,
            max_buffer_size=MAX_HEAD,
        ),
        backpressure=BACKPRESSURE,
        blocking_threads=THREADS,
        respawn_failed_workers=True,
        workers_kill_timeout=KILL_TIMEOUT,
        workers_max_rss=max_rss_mb(loaded) if loaded else None,
        rss_sample_interval=10,
        rss_samples=2,
    )
    if drain is not None:
        drain_first(server, drain, drain_delay)
    server.serve()


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
