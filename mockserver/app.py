"""The mock's Flask app: ``create_app(config)``, the API dispatch in front of Flask, the state."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import logging
import os
import secrets
import shutil
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, request

from mockserver.backend import Backend, Call, empty_result_validator, load_fixtures
from mockserver.config import FOREIGN, Settings, resolve_settings
from mockserver.faults import FAULT_HEADER, NO_FAULT, Fault, FaultSpecError, parse_fault
from mockserver.gateway import (
    INVALID,
    MISSING,
    UNROUTED,
    Account,
    AccountsFile,
    Gateway,
    GatewayError,
    load_accounts,
    quota_message,
    rate_limited_message,
)
from mockserver.state import State, UsageRow
from mockserver.wire import (
    HttpDate,
    Prepared,
    accepts_gzip,
    prepare_backend,
    prepare_gateway,
)
from pivotkit.contract import Contract, load_contract
from pivotkit.errors import ConfigError, PivotError
from pivotkit.fixtures import Exchange, FixtureSet, default_fixtures_dir

log = logging.getLogger("pivotkit.mock")

ADMIN_PREFIX = "/__pivot"
_KEY_ENV = "HTTP_OCP_APIM_SUBSCRIPTION_KEY"
_FAULT_ENV = "HTTP_" + FAULT_HEADER.upper().replace("-", "_")
_GATEWAY_STATUS_MESSAGES = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def bundled_accounts_file() -> Path:
    """The default accounts file shipped in ``fixtures/accounts.toml``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (
        here / "fixtures" / "accounts.toml",
        here / "pivotkit" / "_bundled" / "fixtures" / "accounts.toml",
    ):
        if candidate.is_file():
            return candidate
    return default_fixtures_dir() / "accounts.toml"


def _decode_path(raw: str) -> str:
    """PATH_INFO holds the decoded bytes as latin-1; the API's paths are UTF-8."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def _abort_connection(environ: Mapping[str, Any]) -> bool:
    """Close the client connection under the server's feet (drop and truncate faults).

    False when the server does not expose its socket (granian): the caller then aborts the
    response body instead, which makes the server close the connection.
    """
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


def _remove_if_owner(folder: str, owner: int) -> None:
    """Remove a temporary state folder, from the process that made it only (not a fork)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


class _Answer:
    """What the API dispatch decided: a prepared answer, extra headers, a fault to play."""

    __slots__ = ("extra", "fault", "prepared")

    def __init__(
        self, prepared: Prepared, extra: tuple[tuple[str, str], ...] = (), fault: Fault = NO_FAULT
    ) -> None:
        self.prepared = prepared
        self.extra = extra
        self.fault = fault


class PivotMock:
    """Everything the mock holds, reachable as ``app.extensions["pivot"]``.

    Attributes: ``settings``/``config`` (validated), ``contract``, ``fixtures``, ``accounts``,
    ``backend`` (routes, prepared answers), ``gateway`` (keys, rights, limits), ``state``
    (SQLite), ``admin_token``.
    The developer portal's API is delegated here: :attr:`accounts`, :meth:`verify_password`,
    :meth:`current_keys`, :meth:`regenerate_key`, :meth:`usage`.
    """

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.contract: Contract = load_contract(settings.schemas)
        self.fixtures_dir = settings.fixtures or default_fixtures_dir()
        if not self.fixtures_dir.is_dir():
            raise ConfigError("PIVOT_FIXTURES", f"{self.fixtures_dir}: no such directory")
        self.accounts_path = settings.accounts or (
            self.fixtures_dir / "accounts.toml"
            if (self.fixtures_dir / "accounts.toml").is_file()
            else bundled_accounts_file()
        )
        accounts = load_accounts(self.accounts_path, self.contract.operations)
        if empty_result_validator(self.contract).is_valid(settings.empty_body) is False:
            raise ConfigError(
                "PIVOT_EMPTY_BODY",
                f"{settings.empty_body!r} is not an empty result (see schemas/empty-result.json)",
            )
        for op in self.contract.operations.values():
            if op.path.startswith((ADMIN_PREFIX, settings.portal_prefix + "/")):
                raise ConfigError(
                    "PIVOT_PORTAL_PREFIX",
                    f"{op.path} of {op.operation_id} collides with the mock's own pages",
                )
        state_path = self._state_path(settings)
        try:
            self.state = State(state_path, usage_flush=settings.usage_flush)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                "PIVOT_STATE", f"{state_path}: cannot open the state ({exc})"
            ) from None
        self.gateway = Gateway(accounts, self.state)
        self.admin_token = settings.admin_token or self.state.meta(
            "admin_token", secrets.token_urlsafe(24)
        )
        self.request_context = self.state.meta("request_context", f"appId=cid-v1:{uuid.uuid4()}")
        self.date = HttpDate()
        self.fixture_problems: list[str] = []
        self.backend = self._load_backend()
        self._fixtures_generation = self.state.generations().fixtures
        self._valid_paths: dict[tuple[str, str], bool] = {}
        self._errors = {
            e: prepare_gateway(e.status, e.body()) for e in (MISSING, INVALID, UNROUTED)
        }

    # -- loading -----------------------------------------------------------------------------

    @staticmethod
    def _state_path(settings: Settings) -> Path:
        if settings.state is not None:
            return settings.state
        folder = tempfile.mkdtemp(prefix="pivotkit-state-")
        atexit.register(_remove_if_owner, folder, os.getpid())
        return Path(folder) / "state.sqlite"

    def _load_backend(self) -> Backend:
        fixtures, problems = load_fixtures(
            self.fixtures_dir, self.contract, strict=self.settings.strict_fixtures
        )
        for line in problems:
            log.warning("fixture left out: %s", line)
        self.fixture_problems = problems
        return Backend(
            self.contract,
            fixtures,
            request_context=self.request_context,
            empty_body=self.settings.empty_body,
            dynamic=self.settings.dynamic,
        )

    def reload(self) -> dict[str, Any]:
        """Re-read fixtures and accounts here, and tell every other worker to do the same."""
        self._reload_local()
        self.state.bump_fixtures()
        self._fixtures_generation = self.state.generations().fixtures
        return {
            "fixtures": len(self.backend.fixtures),
            "problems": self.fixture_problems,
            "accounts": [a.name for a in self.gateway.accounts],
        }

    def _reload_local(self) -> None:
        accounts = load_accounts(self.accounts_path, self.contract.operations)
        backend = self._load_backend()
        self.gateway = Gateway(accounts, self.state)
        self.backend = backend
        self._valid_paths = {}

    # -- the portal's API ----------------------------------------------------------------------

    @property
    def accounts(self) -> tuple[Account, ...]:
        """Every account, in file order (see :class:`mockserver.gateway.Account`)."""
        return self.gateway.accounts

    @property
    def accounts_file(self) -> AccountsFile:
        """The accounts file as loaded: ``path``, ``accounts``, ``demo_keys``."""
        return self.gateway.file

    @property
    def fixtures(self) -> FixtureSet:
        """The fixtures being served."""
        return self.backend.fixtures

    @property
    def config(self) -> Settings:
        """The validated settings (same as :attr:`settings`)."""
        return self.settings

    def verify_password(self, name: str, password: str) -> bool:
        """See :meth:`Gateway.verify_password`."""
        return self.gateway.verify_password(name, password)

    def current_keys(self, name: str) -> tuple[str, str]:
        """See :meth:`Gateway.current_keys`."""
        return self.gateway.current_keys(name)

    def regenerate_key(self, name: str, slot: str) -> str:
        """See :meth:`Gateway.regenerate_key`."""
        return self.gateway.regenerate_key(name, slot)

    def usage(self, name: str) -> list[UsageRow]:
        """See :meth:`Gateway.usage`."""
        return self.gateway.usage(name)

    def reset(self) -> None:
        """Clean state for the next test: keys from the accounts file, no counters, no usage."""
        self.state.reset()
        self.gateway.sync(self.state.generations().keys)

    # -- the API dispatch (hot path) -------------------------------------------------------

    def wsgi(self, flask_wsgi: WSGIApp) -> WSGIApp:
        """The WSGI callable: API paths answered here, admin and portal paths by Flask."""
        # The portal's prefix goes to Flask only when a portal is mounted; otherwise those
        # paths are API paths like any other (the gateway's 404).
        mounted = any(name != "pivot_admin" for name in self.app.blueprints)
        portal = self.settings.portal_prefix if mounted else ADMIN_PREFIX
        own = (ADMIN_PREFIX + "/", portal + "/")

        def dispatch(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path.startswith(own) or path in (ADMIN_PREFIX, portal):
                return flask_wsgi(environ, start_response)
            if mounted and path == "/" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                # The portal's home is the site root, as on the provider's developer portal;
                # no API path is "/", so the gateway's behaviour is unchanged elsewhere.
                start_response("302 Found", [("Location", portal + "/"), ("Content-Length", "0")])
                return [b""]
            try:
                answer = self.answer(environ)
            except Exception:  # never leak a traceback; answer like ASP.NET would
                log.exception("unexpected error answering %s", path)
                answer = _Answer(self.backend.server_error)
            return self._send(environ, start_response, answer)

        return dispatch

    def answer(self, environ: Mapping[str, Any]) -> _Answer:
        """Decide the answer for one API request (gateway layer, then backend layer)."""
        generations = self.state.generations()
        if generations.fixtures != self._fixtures_generation:
            self._fixtures_generation = generations.fixtures
            try:
                self._reload_local()
            except PivotError as exc:  # keep serving what was loaded
                log.error("reload asked by another worker failed: %s", exc)
        gateway = self.gateway
        gateway.sync(generations.keys)
        backend = self.backend
        method = environ.get("REQUEST_METHOD", "GET")
        path = _decode_path(environ.get("PATH_INFO", ""))
        found = backend.router.find(Call(method, path))
        if found is None:
            return _Answer(self._errors[UNROUTED])
        operation, params = found
        qs = environ.get("QUERY_STRING", "")
        query: dict[str, str] = {}
        if qs:
            for name, value in parse_qsl(qs, keep_blank_values=True, errors="replace"):
                query.setdefault(name, value)
        key = environ.get(_KEY_ENV) or query.get("subscription-key")
        if not key:
            return _Answer(self._errors[MISSING])
        who = gateway.identify(key)
        if who is None or not who[0].may_call(operation.operation_id):
            return _Answer(self._errors[INVALID])
        account, slot = who
        limited = gateway.check_limits(account)
        if limited is not None:
            return _Answer(self._gateway_error(limited))
        gateway.record_call(account, operation.operation_id, slot)
        fault = self._fault(environ)
        if isinstance(fault, _Answer):
            return fault
        checked = (operation.operation_id, path)
        valid = self._valid_paths.get(checked)
        if valid is None:
            valid = not operation.parameter_problems(params)
            if len(self._valid_paths) > 20_000:
                self._valid_paths.clear()
            self._valid_paths[checked] = valid
        if not valid:
            return _Answer(backend.invalid_request, fault=fault)
        call = Call(method, path, query)
        exchange = backend.match(call)
        if exchange is not None:
            return _Answer(backend.prepared(exchange, account), fault=fault)
        return _Answer(self._unrecorded(operation, call, params, account, environ), fault=fault)

    def _unrecorded(
        self,
        operation: Any,
        call: Call,
        params: Mapping[str, str],
        account: Account,
        environ: Mapping[str, Any],
    ) -> Prepared:
        """No fixture: record-through, then a generated body (dynamic), then the empty-200."""
        recorder = self.app.extensions.get("pivot_recorder")
        if self.app.config.get("PIVOT_RECORD_FROM") and callable(recorder):
            with self.app.request_context(dict(environ)):
                recorded = recorder(operation, request)
            if isinstance(recorded, Exchange):
                return self.backend.prepare_exchange(recorded, account)
        if self.settings.dynamic:
            generated = self.backend.generated(operation, call, params, account)
            if generated is not None:
                return generated
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "no fixture for %s %s (lang %s): empty-200; closest recorded: %s",
                call.method,
                call.path,
                call.lang,
                ", ".join(self.backend.fixtures.closest(call.path)) or "none",
            )
        return self.backend.empty

    def _gateway_error(self, error: GatewayError) -> Prepared:
        extra = () if error.retry_after is None else (("retry-after", str(error.retry_after)),)
        return prepare_gateway(error.status, error.body(), extra)

    def _fault(self, environ: Mapping[str, Any]) -> Fault | _Answer:
        """The fault to play: the request's header (if allowed) or the configured one."""
        fault = self.settings.faults
        spec = environ.get(_FAULT_ENV) if self.settings.fault_header else None
        if spec:
            try:
                fault = parse_fault(spec)
            except FaultSpecError as exc:
                body = {"statusCode": 400, "message": str(exc)}
                return _Answer(prepare_gateway(400, body, (("x-pivot-mock", "fault-error"),)))
        if fault.empty or not fault.applies():
            return NO_FAULT
        if fault.status is not None:
            return _Answer(self._fault_status(fault), fault=Fault(latency_ms=fault.latency_ms))
        return fault

    def _fault_status(self, fault: Fault) -> Prepared:
        status = fault.status or 500
        if status == 500:
            return self.backend.server_error
        if status == 429:
            return self._gateway_error(
                GatewayError(429, rate_limited_message(fault.retry_after), fault.retry_after)
            )
        if status == 403:
            return self._gateway_error(
                GatewayError(403, quota_message(fault.retry_after), fault.retry_after)
            )
        return prepare_gateway(
            status, {"statusCode": status, "message": _GATEWAY_STATUS_MESSAGES[status]}
        )

    def _send(
        self, environ: Mapping[str, Any], start_response: StartResponse, answer: _Answer
    ) -> Iterable[bytes]:
        prepared, fault = answer.prepared, answer.fault
        gzip_ok = prepared.gzipped is not None and accepts_gzip(
            environ.get("HTTP_ACCEPT_ENCODING", "")
        )
        body, headers = prepared.pick(gzip_ok)
        if fault is NO_FAULT:
            start_response(prepared.status_line, [("date", self.date()), *headers, *answer.extra])
            return [body]
        delay = fault.delay()
        if delay:
            time.sleep(delay)
        if fault.drop:
            if _abort_connection(environ):
                raise ConnectionAbortedError("x-pivot-fault: drop")
            start_response(prepared.status_line, [("date", self.date()), *headers])
            return self._truncated(environ, b"")
        if fault.invalid_json:
            broken = prepared.identity[: max(1, len(prepared.identity) // 2)]
            rebuilt = prepare_backend(
                prepared.status,
                broken,
                [h for h in headers if h[0] not in ("content-length", "content-encoding")],
                compress=gzip_ok,
            )
            body, headers = rebuilt.pick(gzip_ok)
        start_response(prepared.status_line, [("date", self.date()), *headers, *answer.extra])
        if fault.truncate:
            return self._truncated(environ, body)
        return [body]

    @staticmethod
    def _truncated(environ: Mapping[str, Any], body: bytes) -> Iterator[bytes]:
        if body:
            yield body[: len(body) // 2]
        _abort_connection(environ)
        raise ConnectionAbortedError("x-pivot-fault: truncate")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the mock: settings, contract, fixtures, accounts, state, admin pages, portal.

    ``config`` holds ``PIVOT_*`` settings (the highest layer, above the file named by
    ``PIVOT_CONFIG``, then the environment, then the defaults) and any Flask setting.
    """
    settings = resolve_settings(config)
    app = Flask("mockserver", static_folder=None)
    # Flask's own settings and the other parts' PIVOT_RECORD_*/PIVOT_PORTAL_* pass through.
    app.config.update(
        {
            k: v
            for k, v in (config or {}).items()
            if not k.startswith("PIVOT_") or k.startswith(FOREIGN)
        }
    )
    app.config.update(settings.as_config())
    mock = PivotMock(app, settings)
    app.extensions["pivot"] = mock
    from mockserver.admin import admin

    app.register_blueprint(admin, url_prefix=ADMIN_PREFIX)
    app.register_error_handler(404, _admin_not_found)
    _register_portal(app)
    if settings.record_from:
        from pivotkit.record import install_record_through

        install_record_through(app)
    app.wsgi_app = mock.wsgi(app.wsgi_app)  # type: ignore[method-assign, assignment]
    return app


def _admin_not_found(error: Exception) -> Any:
    """Unknown pages under /__pivot/ answer JSON; the portal keeps its own 404 pages."""
    if request.path.startswith(ADMIN_PREFIX):
        return {"error": f"no admin endpoint {request.path}"}, 404
    return error


def _register_portal(app: Flask) -> None:
    """Mount ``mockserver.portal`` (it reads PIVOT_PORTAL_PREFIX) when the module exists."""
    try:
        portal = importlib.import_module("mockserver.portal")
    except ImportError as exc:
        if importlib.util.find_spec("mockserver.portal") is not None:
            log.warning("developer portal not mounted: %s", exc)
        return
    init_app = getattr(portal, "init_app", None)
    if callable(init_app):
        init_app(app)


__all__ = ["ADMIN_PREFIX", "PivotMock", "bundled_accounts_file", "create_app"]
