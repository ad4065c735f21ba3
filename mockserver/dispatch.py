"""The API dispatch (the hot path): route, key, rights, limits, faults, parameters, answer, send.

A small WSGI callable in front of Flask: API paths are answered here, admin and portal paths
go to Flask. Order of a request: route (unknown path or method: the gateway's 404) -> key
(header or query; constant-time over every candidate) -> the account's operations (else the
invalid-key 401) -> rate limit and quota -> faults -> path parameters against their schemas
(ASP.NET's 400) -> fixture -> else record-through, dynamic body, or the empty-200 -> fields
outside the account's rights removed -> prepared bytes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from mockserver.faults import FAULT_HEADER, NO_FAULT, Fault, parse_fault
from mockserver.gateway import GatewayError
from mockserver.routing import Call
from mockserver.wire import Prepared, prepare_backend, prepare_gateway, status_line
from pivotkit.accounts import Account
from pivotkit.cache import BoundedCache
from pivotkit.codings import accepts_gzip
from pivotkit.errors import FaultSpecError, PivotError
from pivotkit.fixtures import Exchange, Request
from pivotkit.harness import LOG_APP, MOCK_LOGGER
from pivotkit.operations import Operation

if TYPE_CHECKING:
    from mockserver.app import PivotMock

log = logging.getLogger(MOCK_LOGGER)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_FAULT_ENV = "HTTP_" + FAULT_HEADER.upper().replace("-", "_")
_MOCK_HEADER = "x-pivot-mock"
_NO_QUERY: Mapping[str, str] = MappingProxyType({})


def environ_name(header: str) -> str:
    """The WSGI environ key of a request header (``HTTP_OCP_APIM_SUBSCRIPTION_KEY``)."""
    return "HTTP_" + header.upper().replace("-", "_")


def decode_path(raw: str) -> str:
    """PATH_INFO holds the decoded bytes as latin-1; the API's paths are UTF-8."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def abort_connection(environ: Mapping[str, Any]) -> bool:
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


class Seen:
    """What the dispatch learnt of a request on its way: what the journal writes down.

    ``key`` is the key as presented, kept in memory for the journal to mask it; it is never
    written anywhere.
    """

    __slots__ = (
        "account",
        "key",
        "key_in",
        "method",
        "operation",
        "params",
        "path",
        "query",
        "slot",
    )

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        self.query: Mapping[str, str] = _NO_QUERY
        self.operation: Operation | None = None
        self.params: Mapping[str, str] = _NO_QUERY
        self.account: Account | None = None
        self.slot: str | None = None
        self.key: str | None = None
        self.key_in: str | None = None


class Answer:
    """What the dispatch decided: a prepared answer, extra headers, a fault to play, how it
    was chosen (``via``: gateway, fault, invalid, fixture, record-through, dynamic, empty, or
    what a scenario chose) and the fixture it came from."""

    __slots__ = ("exchange", "extra", "fault", "prepared", "seen", "via")

    def __init__(
        self,
        prepared: Prepared,
        extra: tuple[tuple[str, str], ...] = (),
        fault: Fault = NO_FAULT,
        *,
        via: str = "gateway",
        exchange: Exchange | None = None,
    ) -> None:
        self.prepared = prepared
        self.extra = extra
        self.fault = fault
        self.via = via
        self.exchange = exchange
        self.seen: Seen | None = None


class Dispatcher:
    """Answers API requests for one :class:`~mockserver.app.PivotMock`."""

    def __init__(self, mock: PivotMock) -> None:
        self.mock = mock
        conv = mock.contract.conventions
        self.conventions = conv
        self._key_env = environ_name(conv.key_header)
        self._key_query = conv.key_query
        # Whether a path's parameters fit their schemas, per (operation, path); bounded in
        # bytes, and long paths (which no schema accepts cheaply) are checked and not stored.
        self._valid_paths: BoundedCache[tuple[str, str], bool] = BoundedCache(
            2 * 1024 * 1024, max_entry=2048, sizer=lambda _: 0
        )
        #: Logged with every record, so a test harness keeps only its own app's errors.
        self.log_extra = {LOG_APP: mock.app}

    # -- deciding --------------------------------------------------------------------------

    def _query(self, environ: Mapping[str, Any]) -> dict[str, str]:
        qs = environ.get("QUERY_STRING", "")
        query: dict[str, str] = {}
        if qs:
            for name, value in parse_qsl(qs, keep_blank_values=True, errors="replace"):
                query.setdefault(name, value)
        return query

    def _key(self, environ: Mapping[str, Any], seen: Seen) -> None:
        """The key as presented (header, else query), and where it came."""
        key = environ.get(self._key_env)
        seen.key_in = "header" if key else None
        if not key and self._key_query:
            key = seen.query.get(self._key_query)
            seen.key_in = "query" if key else None
        seen.key = key or None

    def _identify(self, seen: Seen, operation: Operation) -> tuple[Account, str] | Answer:
        mock = self.mock
        key = seen.key
        if not key:
            return Answer(mock.errors[mock.gateway.errors.missing_key])
        who = mock.gateway.identify(key)
        if who is None or not who[0].may_call(operation.operation_id):
            return Answer(mock.errors[mock.gateway.errors.invalid_key])
        return who

    def _params_valid(self, operation: Operation, path: str, params: Mapping[str, str]) -> bool:
        checked = (operation.operation_id, path)
        valid = self._valid_paths.get(checked, None)
        if valid is None:
            valid = not operation.parameter_problems(params)
            self._valid_paths.put(checked, valid)
        return valid

    def answer(self, environ: Mapping[str, Any]) -> Answer:
        """Decide the answer for one API request (gateway layer, then backend layer)."""
        seen = Seen(environ.get("REQUEST_METHOD", "GET"), decode_path(environ.get("PATH_INFO", "")))
        answer = self._decide(environ, seen)
        answer.seen = seen
        return answer

    def _decide(self, environ: Mapping[str, Any], seen: Seen) -> Answer:
        mock = self.mock
        mock.sync()
        backend = mock.backend
        method, path = seen.method, seen.path
        query = seen.query = self._query(environ)
        self._key(environ, seen)
        found = backend.router.find(Call(method, path))
        if found is None:
            return Answer(mock.errors[mock.gateway.errors.not_found])
        operation, params = found
        seen.operation, seen.params = operation, params
        who = self._identify(seen, operation)
        if isinstance(who, Answer):
            return who
        account, slot = seen.account, seen.slot = who
        limited = mock.gateway.check_limits(account)
        if limited is not None:
            return Answer(self.gateway_answer(limited))
        mock.gateway.record_call(account, operation.operation_id, slot)
        fault = self._fault(environ)
        if isinstance(fault, Answer):
            return fault
        if not self._params_valid(operation, path, params):
            return Answer(backend.invalid_request, fault=fault, via="invalid")
        call = Call(method, path, query, lang=self.conventions.lang_of(query))
        scripted = mock.scenarios.answer(self, environ, operation, call, params, account)
        if scripted is not None:  # a Prefer header, a sequence or a timeline chose
            if scripted.fault is NO_FAULT:
                scripted.fault = fault
            return scripted
        return self.fixture_answer(operation, call, params, account, fault)

    def fixture_answer(
        self,
        operation: Operation,
        call: Call,
        params: Mapping[str, str],
        account: Account,
        fault: Fault = NO_FAULT,
    ) -> Answer:
        """The ordinary answer: the fixture, else record-through, a dynamic body or the
        empty-200."""
        backend = self.mock.backend
        exchange = backend.match(call)
        if exchange is not None:
            return Answer(
                backend.prepared(exchange, account), fault=fault, via="fixture", exchange=exchange
            )
        prepared, via = self._unrecorded(operation, call, params, account)
        return Answer(prepared, fault=fault, via=via)

    def _unrecorded(
        self, operation: Operation, call: Call, params: Mapping[str, str], account: Account
    ) -> tuple[Prepared, str]:
        """No fixture: record-through, then a generated body (dynamic), then the empty-200."""
        mock = self.mock
        if mock.record_through is not None:
            request = Request(call.method, call.path, MappingProxyType(dict(call.query)))
            recorded = mock.record_through(operation, request)
            if isinstance(recorded, Exchange):
                return mock.backend.prepare_exchange(recorded, account), "record-through"
            if recorded is None:  # a record-through callable of one's own that gave up
                failed = self._upstream_failed("nothing recorded", timed_out=False)
                return failed, "record-through-failed"
            failed = self._upstream_failed(recorded.message, timed_out=recorded.timed_out)
            return failed, "record-through-failed"
        if mock.settings.dynamic:
            generated = mock.backend.generated(operation, call, params, account)
            if generated is not None:
                return generated, "dynamic"
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "no fixture for %s %s (lang %s): empty-200; closest recorded: %s",
                call.method,
                call.path,
                call.lang,
                ", ".join(mock.backend.fixtures.closest(call.path)) or "none",
            )
        return mock.backend.empty, "empty"

    def _upstream_failed(self, reason: str, *, timed_out: bool) -> Prepared:
        """What a gateway answers when its backend failed: 504 when it did not answer in time,
        else 502; ``x-pivot-mock: record-through-failed`` says it was the recording upstream."""
        status = 504 if timed_out else 502
        body = self.conventions.messages.body(status, f"record-through failed: {reason}"[:300])
        return prepare_gateway(
            status,
            body,
            self.conventions.gateway_content_type,
            ((_MOCK_HEADER, "record-through-failed"),),
        )

    def gateway_answer(self, error: GatewayError) -> Prepared:
        """A prepared gateway error (with Retry-After when it announces a wait)."""
        conv = self.conventions
        extra = (
            ()
            if error.retry_after is None
            else ((conv.retry_after_header.lower(), str(error.retry_after)),)
        )
        return prepare_gateway(
            error.status, self.mock.gateway.errors.body(error), conv.gateway_content_type, extra
        )

    def _fault(self, environ: Mapping[str, Any]) -> Fault | Answer:
        """The fault to play: the request's header (if allowed) or the configured one."""
        fault = self.mock.settings.faults
        spec = environ.get(_FAULT_ENV) if self.mock.settings.fault_header else None
        if spec is not None:
            try:
                if not spec.strip():  # granian passes a header that is not ASCII as ""
                    raise FaultSpecError("", "the header is empty, or not ASCII")
                fault = parse_fault(spec)
            except FaultSpecError as exc:
                body = self.conventions.messages.body(400, str(exc))
                return Answer(
                    prepare_gateway(
                        400,
                        body,
                        self.conventions.gateway_content_type,
                        ((_MOCK_HEADER, "fault-error"),),
                    ),
                    via="fault",
                )
        if fault.empty or not fault.applies():
            return NO_FAULT
        if fault.status is not None:
            return Answer(
                self.status_answer(fault.status, fault.retry_after),
                fault=Fault(latency_ms=fault.latency_ms),
                via="fault",
            )
        return fault

    def status_answer(self, status: int, retry_after: int = 60) -> Prepared:
        """The mock's own answer with that status: ASP.NET's 500 and 400, the gateway's
        invalid-key 401, 404, rate-limit 429 and quota 403 (waiting ``retry_after``), or a
        gateway error for any other status."""
        mock = self.mock
        errors = mock.gateway.errors
        if status == 500:
            return mock.backend.server_error
        if status == 400:
            return mock.backend.invalid_request
        if status == 429:
            return self.gateway_answer(errors.rate_limited(retry_after))
        if status == 403:
            return self.gateway_answer(errors.quota_exhausted(retry_after))
        if status == 401:
            return mock.errors[errors.invalid_key]
        if status == 404:
            return mock.errors[errors.not_found]
        return self.gateway_answer(GatewayError(status, status_line(status).partition(" ")[2]))

    # -- sending ---------------------------------------------------------------------------

    def send(
        self, environ: Mapping[str, Any], start_response: StartResponse, answer: Answer
    ) -> Iterable[bytes]:
        """Write the answer, playing its fault (latency, drop, invalid JSON, truncation)."""
        prepared, fault = answer.prepared, answer.fault
        gzip_ok = prepared.gzipped is not None and accepts_gzip(
            environ.get("HTTP_ACCEPT_ENCODING", "")
        )
        body, headers = prepared.pick(gzip_ok)
        date = self.mock.date()
        if fault is NO_FAULT:
            start_response(prepared.status_line, [("date", date), *headers, *answer.extra])
            return [body]
        delay = fault.delay()
        if delay:
            time.sleep(delay)
        if fault.drop:
            if abort_connection(environ):
                raise ConnectionAbortedError("x-pivot-fault: drop")
            start_response(prepared.status_line, [("date", date), *headers])
            return _truncated(environ, b"")
        if fault.invalid_json:
            broken = prepared.identity[: max(1, len(prepared.identity) // 2)]
            kept = [h for h in headers if h[0] not in ("content-length", "content-encoding")]
            body, headers = prepare_backend(prepared.status, broken, kept, compress=gzip_ok).pick(
                gzip_ok
            )
        start_response(prepared.status_line, [("date", date), *headers, *answer.extra])
        if fault.truncate:
            return _truncated(environ, body)
        return [body]

    def wsgi(self, flask_wsgi: WSGIApp, own: tuple[str, ...], portal: str | None) -> WSGIApp:
        """The WSGI callable: paths under ``own`` go to Flask, the rest are the API's; the
        site root redirects to the portal when one is mounted."""
        prefixes = tuple(p + "/" for p in own)

        def dispatch(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path.startswith(prefixes) or path in own:
                try:  # the admin and portal pages show this worker's fixtures too
                    self.mock.sync()
                except PivotError as exc:  # the state is gone: health and ready still answer
                    log.error("cannot sync with the state: %s", exc, extra=self.log_extra)
                return flask_wsgi(environ, start_response)
            if portal and path == "/" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                # The portal's home is the site root, as on the provider's developer portal;
                # no API path is "/", so the gateway's behaviour is unchanged elsewhere.
                start_response("302 Found", [("Location", portal + "/"), ("Content-Length", "0")])
                return [b""]
            try:
                answer = self.answer(environ)
            except PivotError as exc:
                log.error("cannot answer %s: %s", path, exc, extra=self.log_extra)
                answer = self._failed(environ)
            except Exception:  # never leak a traceback; answer like ASP.NET would
                log.exception("unexpected error answering %s", path, extra=self.log_extra)
                answer = self._failed(environ)
            journal = self.mock.journal
            if journal is not None:  # before sending: the client may ask for it at once
                journal.note(answer)
            return self.send(environ, start_response, answer)

        return dispatch

    def _failed(self, environ: Mapping[str, Any]) -> Answer:
        answer = Answer(self.mock.backend.server_error, via="error")
        answer.seen = Seen(
            environ.get("REQUEST_METHOD", "GET"), decode_path(environ.get("PATH_INFO", ""))
        )
        return answer


def _truncated(environ: Mapping[str, Any], body: bytes) -> Iterator[bytes]:
    if body:
        yield body[: len(body) // 2]
    abort_connection(environ)
    raise ConnectionAbortedError("x-pivot-fault: truncate")
