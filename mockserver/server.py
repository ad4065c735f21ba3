"""Running the mock: the fast server (granian workers) by default, werkzeug with ``--dev``.

``serve`` checks the port first (a taken port is one line and exit 2, before any banner),
builds and validates the app, prints the banner with the address actually bound (``--port 0``
included), writes ``--port-file`` once the server accepts connections, then serves until
interrupted. The fast server is :mod:`mockserver.workers`, the development one
:mod:`mockserver.devserver`; both log through :mod:`mockserver.logs` (keys masked).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import gc
import logging.config
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from mockserver import logs
from mockserver.app import ADMIN_PREFIX, DEFER_INDEX_CHECK, PivotMock, create_app
from mockserver.config import resolve_settings
from mockserver.state import is_redis_url
from mockserver.workers import run_granian
from pivotkit.client import demo_key
from pivotkit.errors import PortUnavailable
from pivotkit.locations import atomic_write_text
from pivotkit.redact import mask_keys

# The app the supervising process built (its fixture index open) before granian forked its
# workers: they inherit it copy-on-write instead of each opening the corpus again.
_PREBUILT: Flask | None = None
_RELOADED_CHILD = "WERKZEUG_RUN_MAIN"


def prebuilt_app() -> Flask:
    """The app built before the workers were forked; a spawned worker builds its own from the
    PIVOT_ variables."""
    return _PREBUILT if _PREBUILT is not None else create_app()


def redact(text: str, key_query: str | None = None) -> str:
    """A request line with the key masked, however it is spelled: the key parameter (named
    after percent-decoding: ``subscription%2Dkey``) and any value key-shaped once decoded."""
    names = logs.key_names() if key_query is None else (key_query,)
    return mask_keys(text, names)


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (a free port for 0); PortUnavailable (exit 2) when the
    port is taken or not allowed. It binds without SO_REUSEPORT, so it fails even when the
    holder is another granian."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise PortUnavailable(host, port, f"unknown host ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise PortUnavailable(host, port, reason) from None
    return sock


def reserve_port(host: str, port: int) -> int:
    """The port to serve on: ``port`` once checked free, or a free one for 0 (see
    :func:`bind`; the check's socket is closed again for granian to bind)."""
    with bind(host, port) as probe:
        return int(probe.getsockname()[1])


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


class PortFile:
    """``--port-file``: the bound port, written atomically once connections are accepted, and
    removed when the server stops (so a script never reads a stale one)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.unlink(missing_ok=True)

    def write(self, port: int) -> None:
        if self.path is None:
            return
        atomic_write_text(self.path, f"{port}\n")
        atexit.register(self._remove, f"{port}\n", os.getpid())

    def _remove(self, text: str, owner: int) -> None:
        if self.path is not None and os.getpid() == owner:
            with contextlib.suppress(OSError):
                if self.path.read_text(encoding="utf-8") == text:
                    self.path.unlink()

    def when_ready(self, host: str, port: int, timeout: float = 120.0) -> None:
        """Write the file from a thread once ``host:port`` accepts a connection."""
        if self.path is None:
            return

        def wait() -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection((_connect_host(host), port), timeout=1):
                        self.write(port)
                        return
                except OSError:
                    time.sleep(0.05)

        threading.Thread(target=wait, name="pivot-port-file", daemon=True).start()


def _mask(key: str) -> str:
    return key[:4] + "..." + key[-2:]


def banner(
    app: Flask,
    host: str,
    port: int,
    *,
    token_generated: bool,
    workers: int = 1,
    dev: bool = False,
) -> list[str]:
    """The lines ``pivotkit serve`` prints at start: the address bound, the fixtures (and how
    many were refused, and why), accounts and keys, admin token."""
    mock: PivotMock = app.extensions["pivot"]
    base = f"http://{_url_host(host)}:{port}"
    server = (
        "development server, auto-reload"
        if dev
        else f"{workers} worker{'s' if workers > 1 else ''}"
    )
    lines = [
        f"pivotkit mock on {base} ({server}; "
        f"{len(mock.backend.fixtures)} fixtures from {mock.fixtures_dir})"
    ]
    if mock.refused_line:
        lines.append(
            f"{mock.refused_line}: pivotkit check --fixtures {mock.fixtures_dir} lists them all"
            " (--strict refuses to start)"
        )
    demo = mock.accounts_file.demo_keys
    lines.append(
        f"accounts from {mock.accounts_path}"
        + (" (public demo keys)" if demo else " (keys masked)")
    )
    for account in mock.gateway.accounts:
        primary, secondary = mock.current_keys(account.name)
        # In clear only a key that is its account's public demo key: a file that says
        # demo_keys may still hold real ones, and a regenerated key is never a demo key.
        shown = (
            primary if demo and primary == demo_key(account.name).reveal() else _mask(primary),
            secondary
            if demo and secondary == demo_key(account.name, "secondary").reveal()
            else _mask(secondary),
        )
        ops = (
            "all operations"
            if account.operations is None
            else f"{len(account.operations)} operations"
        )
        lines.append(f"  {account.name:<10} primary {shown[0]}  secondary {shown[1]}  ({ops})")
    if token_generated:
        lines.append(
            f"admin token (generated): {mock.admin_token}  -> "
            f"Authorization: Bearer <token> on {base}{ADMIN_PREFIX}/"
        )
    else:
        lines.append(f"admin token: from configuration ({base}{ADMIN_PREFIX}/)")
    if any(name != "pivot_admin" for name in app.blueprints):
        lines.append(
            f"developer portal: {base}{mock.settings.portal_prefix}/ "
            "(log in with an account name and its password)"
        )
    if is_redis_url(mock.settings.state or ""):
        lines.append(f"shared state: {mock.state.describe()} (journal per instance)")
    if mock.settings.dynamic:
        lines.append(
            "dynamic mode: unrecorded ids get schema-generated bodies (x-pivot-mock: dynamic)"
        )
    return lines


def serve(
    flags: Mapping[str, Any],
    *,
    host: str,
    port: int,
    workers: int = 1,
    dev: bool = False,
    reload: bool = True,
    port_file: Path | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Check the port, validate the settings, print the banner, then serve until interrupted.

    The fast server runs the app in ``workers`` granian processes sharing one state (a
    temporary SQLite file unless PIVOT_STATE names a file or a Redis server) and one admin
    token. ``dev`` runs werkzeug's
    development server in one process instead, restarting on code and fixture changes unless
    ``reload`` is false.
    """
    settings = dict(flags)
    # The flags, the PIVOT_ variables and the --config file may each give the token.
    token_generated = resolve_settings(settings).admin_token is None
    # Logging is configured by the server that runs: granian applies logs.config() itself (in
    # its supervisor and every worker), the development server just below.
    if dev:
        _serve_dev(settings, host, port, reload, PortFile(port_file), token_generated, echo)
        return
    port = reserve_port(host, port)
    if not (settings.get("PIVOT_STATE") or os.environ.get("PIVOT_STATE")):
        settings["PIVOT_STATE"] = _temporary_state()
    if token_generated and not _on_redis(settings):
        # On Redis the generated token is the one every instance shares (kept in the state).
        settings["PIVOT_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    app = create_app({**settings, DEFER_INDEX_CHECK: True})
    for line in banner(app, host, port, token_generated=token_generated, workers=workers):
        echo(line)
    global _PREBUILT
    gc.collect()
    gc.freeze()  # keep the loaded objects' pages shared with the forked workers
    _PREBUILT = app
    PortFile(port_file).when_ready(host, port)
    mock: PivotMock = app.extensions["pivot"]
    run_granian(
        settings,
        host=host,
        port=port,
        workers=max(1, workers),
        head_timeout=mock.settings.client_timeout,
        drain=mock.readiness.drain,
        drain_delay=mock.settings.drain_delay,
    )


def _on_redis(settings: Mapping[str, Any]) -> bool:
    setting = settings.get("PIVOT_STATE") or os.environ.get("PIVOT_STATE") or ""
    return is_redis_url(str(setting).strip())


def _temporary_state() -> str:
    folder = tempfile.mkdtemp(prefix="pivotkit-state-")
    atexit.register(_remove_if_owner, folder, os.getpid())
    return str(Path(folder) / "state.sqlite")


def _remove_if_owner(folder: str, owner: int) -> None:
    if os.getpid() == owner:  # not a forked worker, not a reloaded child
        shutil.rmtree(folder, ignore_errors=True)


def _serve_dev(
    settings: dict[str, Any],
    host: str,
    port: int,
    reload: bool,
    port_file: PortFile,
    token_generated: bool,
    echo: Callable[[str], None],
) -> None:
    """werkzeug, bounded (mockserver.devserver). With ``reload`` this process only holds the
    socket and restarts a child that serves whenever a source, fixture or accounts file
    changes; the child inherits the socket, the state file and the admin token."""
    from werkzeug._reloader import run_with_reloader

    from mockserver.devserver import BoundedServer, DevRequestHandler

    logging.config.dictConfig(logs.config())
    child = os.environ.get(_RELOADED_CHILD) == "true" and "WERKZEUG_SERVER_FD" in os.environ
    listening = None
    if child:
        fd = int(os.environ["WERKZEUG_SERVER_FD"])
    else:
        listening = bind(host, port)
        listening.listen(128)
        fd = listening.fileno()
        if reload:
            if not (settings.get("PIVOT_STATE") or os.environ.get("PIVOT_STATE")):
                os.environ["PIVOT_STATE"] = _temporary_state()
            listening.set_inheritable(True)
            os.environ["WERKZEUG_SERVER_FD"] = str(fd)
            run_with_reloader(lambda: None)  # restarts the child until it exits otherwise
            return
    app = create_app(settings)
    timeout = app.extensions["pivot"].settings.client_timeout
    handler = type(
        "Handler", (DevRequestHandler,), {"head_timeout": timeout, "body_timeout": timeout}
    )
    server = BoundedServer(host, port, app, handler=handler, fd=fd)
    if listening is not None:
        listening.close()  # the server holds its own copy
    port = int(server.socket.getsockname()[1])
    for line in banner(app, host, port, token_generated=token_generated, dev=True):
        echo(line)
    port_file.write(port)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
    try:
        if child:
            run_with_reloader(server.serve_forever, extra_files=_watched(app), interval=1)
        else:
            server.serve_forever()
    finally:
        server.server_close()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _watched(app: Flask) -> list[str]:
    """The files whose change restarts the development server: the fixtures (and their
    folders, for files added or removed) and the accounts file."""
    mock: PivotMock = app.extensions["pivot"]
    root = mock.fixtures_dir
    paths = [root, *(p for p in root.iterdir() if p.is_dir()), mock.accounts_path]
    paths += [p for p in root.glob("*/*.json")]
    return [str(p) for p in paths]


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)
