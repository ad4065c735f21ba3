"""Running the mock: werkzeug (threaded) for development, granian workers for production.

granian was picked by measurement (GET /v1/api/v1/contents/7488, gzip, 2 workers, wrk -c16 on
2 shared cores): granian ~15,000-19,000 req/s, waitress (8 threads) ~3,500, gunicorn sync or
gthread (2 workers) ~3,000, werkzeug threaded ~630.
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from flask import Flask
from werkzeug.serving import WSGIRequestHandler

from mockserver.app import ADMIN_PREFIX, PivotMock, create_app

FACTORY = "mockserver.server:prebuilt_app"
# The app the supervising process built (and warmed) before granian forked its workers: they
# inherit it copy-on-write instead of each loading every fixture again.
_PREBUILT: Flask | None = None


def prebuilt_app() -> Flask:
    """The app built before the workers were forked; a spawned worker builds its own from the
    PIVOT_ variables."""
    return _PREBUILT if _PREBUILT is not None else create_app()


_QUERY = re.compile(r"\?([^\s#]*)")
_KEY_SHAPED = re.compile(r"[0-9a-fA-F]{32}")


def redact(text: str, key_query: str | None = None) -> str:
    """A request line with the key masked, however the query spells it: the key parameter
    (named after percent-decoding: ``subscription%2Dkey``) and any key-shaped value."""
    if key_query is None:
        from pivotkit.contract import load_contract

        key_query = load_contract().conventions.key_query or ""

    def mask_query(match: re.Match[str]) -> str:
        pairs = []
        for pair in match.group(1).split("&"):
            name, eq, value = pair.partition("=")
            decoded_name = unquote_plus(name).strip().lower()
            if eq and (
                decoded_name == key_query.lower() or _KEY_SHAPED.search(unquote_plus(value))
            ):
                value = "***"
            pairs.append(f"{name}{eq}{value}")
        return "?" + "&".join(pairs)

    return _QUERY.sub(mask_query, text)


class RedactingRequestHandler(WSGIRequestHandler):
    """The development server's handler: request lines logged without keys, no second date.

    http.server adds ``Server`` and ``Date`` to every answer; the mock writes the provider's
    own ``date`` and the provider sends no ``Server``, so both are left out here.
    """

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if hasattr(self, "path"):
            self.path = redact(self.path)
        self.requestline = redact(getattr(self, "requestline", ""))
        super().log_request(code, size)


def _mask(key: str) -> str:
    return key[:4] + "..." + key[-2:]


def banner(
    app: Flask, host: str, port: int, *, token_generated: bool, workers: int = 1
) -> list[str]:
    """The lines ``pivotkit serve`` prints at start: URL, accounts and keys, admin token."""
    mock: PivotMock = app.extensions["pivot"]
    base = f"http://{host}:{port}"
    lines = [
        f"pivotkit mock on {base} ({workers} worker{'s' if workers > 1 else ''}; "
        f"{len(mock.backend.fixtures)} fixtures from {mock.fixtures_dir}"
        + (
            f", {len(mock.fixture_problems)} left out: see {ADMIN_PREFIX}/fixtures"
            if mock.fixture_problems
            else ""
        )
        + ")"
    ]
    demo = mock.accounts_file.demo_keys
    lines.append(
        f"accounts from {mock.accounts_path}"
        + (" (public demo keys)" if demo else " (keys masked)")
    )
    for account in mock.gateway.accounts:
        primary, secondary = mock.current_keys(account.name)
        regenerated = (primary, secondary) != (account.primary_key, account.secondary_key)
        shown = (
            (primary, secondary) if demo and not regenerated else (_mask(primary), _mask(secondary))
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
    production: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Validate the settings, print the banner, then serve until interrupted.

    With ``production`` (or ``workers`` > 1) the app runs in granian worker processes that share
    one SQLite state file (a temporary one unless PIVOT_STATE is set) and one admin token.
    """
    settings = dict(flags)
    production = production or workers > 1
    token_generated = not (settings.get("PIVOT_ADMIN_TOKEN") or os.environ.get("PIVOT_ADMIN_TOKEN"))
    if production:
        if not (settings.get("PIVOT_STATE") or os.environ.get("PIVOT_STATE")):
            folder = tempfile.mkdtemp(prefix="pivotkit-state-")
            atexit.register(shutil.rmtree, folder, True)
            settings["PIVOT_STATE"] = str(Path(folder) / "state.sqlite")
        if token_generated:
            settings["PIVOT_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    app = create_app(settings)
    for line in banner(
        app, host, port, token_generated=token_generated, workers=workers if production else 1
    ):
        echo(line)
    # SIGTERM ends the process through SystemExit, so atexit cleanups (temp state) run.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
    try:
        if not production:
            app.run(
                host=host,
                port=port,
                threaded=True,
                use_reloader=False,
                request_handler=RedactingRequestHandler,
            )
        else:
            global _PREBUILT
            app.extensions["pivot"].backend.warmed.wait()  # fork once everything is prepared
            gc.collect()
            gc.freeze()  # keep the loaded objects' pages shared with the forked workers
            _PREBUILT = app
            _run_granian(settings, host=host, port=port, workers=max(1, workers))
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_granian(settings: Mapping[str, Any], *, host: str, port: int, workers: int) -> None:
    try:
        from granian import Granian
        from granian.constants import Interfaces
    except ImportError:
        raise RuntimeError("--production needs granian: pip install 'pivotkit[server]'") from None
    # Workers build their own app from the environment: flags become PIVOT_ variables.
    for key, value in settings.items():
        if key.startswith("PIVOT_") and value is not None:
            os.environ[key] = _env_value(value)
    Granian(
        FACTORY,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        factory=True,
        log_access=False,
        websockets=False,
    ).serve()


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
