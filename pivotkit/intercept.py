"""A test's HTTP clients answered by the mock app, in process: respx for httpx, responses for
requests; every other request is refused before it reaches the network.

Both route into the mock app through WSGI, so the gateway's rules (key, rights, limits,
faults, the empty-200) are the app's own. Routes a test adds win over the mock. A request to
another host raises :class:`~pivotkit.errors.UnmockedRequest` (an AssertionError, which a
client's retry loop does not swallow). Each fixture also guards the other library at the
network's edge: under ``pivot_respx`` a ``requests`` call to a host other than loopback is
refused (and under ``pivot_responses`` an httpx one), with the fixture to use instead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import respx
from respx.models import AllMockedAssertionError

from pivotkit.control import Controls, MockControl
from pivotkit.errors import UnmockedRequest

if TYPE_CHECKING:
    import flask
    from requests import PreparedRequest

    from pivotkit.contract import Contract


def _contract(app: flask.Flask) -> Contract:
    contract: Contract = app.extensions["pivot"].contract
    return contract


def _base(app: flask.Flask, base_url: str | None) -> str:
    return (base_url or _contract(app).conventions.live_url).rstrip("/")


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- httpx: respx ------------------------------------------------------------------------------


def _answer(transport: httpx.WSGITransport, request: httpx.Request) -> httpx.Response:
    response = transport.handle_request(request)
    stream = response.stream
    assert isinstance(stream, httpx.SyncByteStream)
    try:
        raw = b"".join(stream)
    finally:
        stream.close()
    # A plain bytes body serves sync and async clients alike; httpx decodes the gzip itself.
    return httpx.Response(
        response.status_code, headers=response.headers.raw, content=raw, request=request
    )


class PivotRouter(respx.MockRouter, Controls):
    """A respx router that answers ``base_url`` from the mock app (routes a test adds win),
    refuses every other request, and has the mock's :class:`~pivotkit.control.Controls`."""

    def __init__(
        self, app: flask.Flask, base_url: str | None = None, *, assert_all_called: bool = False
    ) -> None:
        self.base_url = _base(app, base_url)
        super().__init__(base_url=self.base_url, assert_all_called=assert_all_called)
        self.app = app
        self.control = MockControl.for_app(app)
        self.contract = _contract(app)
        transport = httpx.WSGITransport(app=app)
        fallback = self.route(url__startswith=self.base_url + "/", name="pivot-mock")
        self._fallback = fallback

        def side_effect(request: httpx.Request) -> httpx.Response | None:
            # None is respx's "no match": a route the test added answers instead.
            for route in self.routes:
                if route is not fallback and (
                    route.pattern is None or route.pattern.match(request)
                ):
                    return None
            return _answer(transport, request)

        fallback.side_effect = side_effect

    def assert_all_called(self) -> None:
        """Every route the caller added was called (the route into the app is not one)."""
        missed = [r for r in self.routes if r is not self._fallback and not r.called]
        assert not missed, f"RESPX: some routes were not called! {missed}"

    def _refused(self, request: httpx.Request) -> UnmockedRequest:
        return UnmockedRequest(
            request.method,
            str(request.url),
            f"pivot_respx answers {self.base_url} (from the mock) and the routes you add "
            "(pivot_respx.get(...)); add a route for this host, or point the client at the mock",
        )

    def resolve(self, request: httpx.Request) -> Any:
        try:
            return super().resolve(request)
        except AllMockedAssertionError:
            raise self._refused(request) from None

    async def aresolve(self, request: httpx.Request) -> Any:
        try:
            return await super().aresolve(request)
        except AllMockedAssertionError:
            raise self._refused(request) from None


# -- requests: responses -----------------------------------------------------------------------


def _wsgi_call(
    app: flask.Flask, request: PreparedRequest
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send a requests PreparedRequest to the app through WSGI; the raw (gzipped) answer."""
    from urllib.parse import urlsplit

    from werkzeug.test import EnvironBuilder, run_wsgi_app

    url = urlsplit(str(request.url))
    body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body
    builder = EnvironBuilder(
        path=url.path or "/",
        base_url=f"{url.scheme}://{url.netloc}",
        query_string=url.query,
        method=request.method or "GET",
        headers=[
            (k, v.decode("latin-1") if isinstance(v, bytes) else v)
            for k, v in request.headers.items()
        ],
        data=body if isinstance(body, bytes) else None,
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    iterable, status, headers = run_wsgi_app(app, environ)
    try:
        raw = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return int(status.split(" ", 1)[0]), list(headers.items()), raw


@contextlib.contextmanager
def responses_router(app: flask.Flask, base_url: str | None = None) -> Iterator[Any]:
    """A ``responses.RequestsMock`` that answers ``base_url`` (default: the contract's live
    URL) from the mock app, lets the routes a test adds win, and refuses the rest; it has the
    mock's :class:`~pivotkit.control.Controls` (``requests``, ``assert_called``...)."""
    with _responses_mock(app, _base(app, base_url)) as mock:
        yield mock


def _responses_mock(app: flask.Flask, base: str) -> Any:
    try:
        import requests
        import responses
        from responses.registries import FirstMatchRegistry
    except ImportError:  # pragma: no cover - depends on the environment
        raise UnmockedRequest(
            "GET",
            base,
            "pivot_responses needs the responses library: pip install 'pivotkit[requests]'",
        ) from None

    def answer(request: PreparedRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            return _wsgi_call(app, request)
        except ConnectionAbortedError as exc:  # the drop and truncate faults
            raise requests.ConnectionError(f"Connection aborted: {exc}", request=request) from None

    def refuse(request: PreparedRequest) -> Any:
        raise UnmockedRequest(
            request.method or "GET",
            str(request.url),
            f"pivot_responses answers {base} (from the mock) and the routes you add "
            "(pivot_responses.add(...)); add a route for this host, or point the client at "
            "the mock",
        )

    class _Fallback(responses.CallbackResponse):
        """The mock (a prefix, any method) or the refusal (anything): tried after the test's
        own routes, never counted by assert_all_requests_are_fired."""

        def __init__(self, prefix: str | None, callback: Callable[[Any], Any]) -> None:
            super().__init__("GET", re.compile(".*"), callback, content_type=None)
            self.prefix = prefix

        def matches(self, request: PreparedRequest) -> tuple[bool, str]:
            url = str(request.url)
            return (self.prefix is None or url.startswith(self.prefix)), ""

    class _Registry(FirstMatchRegistry):
        owner: Any = None

        def find(self, request: PreparedRequest) -> tuple[Any, list[str]]:
            found, reasons = super().find(request)
            if found is not None or self.owner is None:
                return found, reasons
            url = str(request.url)
            if any(
                p.match(url) if isinstance(p, re.Pattern) else url.startswith(p)
                for p in self.owner.passthru_prefixes
            ):
                return None, reasons  # the test asked for the real network
            for fallback in self.owner.pivot_fallbacks:
                if fallback.matches(request)[0]:
                    return fallback, reasons
            return None, reasons

    class PivotResponses(responses.RequestsMock, Controls):
        """responses, answering from the mock app (see :func:`responses_router`)."""

        def __init__(self) -> None:
            super().__init__(assert_all_requests_are_fired=False, registry=_Registry)
            self.app = app
            self.base_url = base
            self.control = MockControl.for_app(app)
            self.contract = _contract(app)
            self.pivot_fallbacks = (_Fallback(base + "/", answer), _Fallback(None, refuse))
            registry = self.get_registry()
            assert isinstance(registry, _Registry)
            registry.owner = self

        def reset(self) -> None:
            super().reset()
            registry = self.get_registry()
            if isinstance(registry, _Registry):
                registry.owner = self

    return PivotResponses()


# -- the other library, at the network's edge ----------------------------------------------------


@contextlib.contextmanager
def refuse_requests_library(fixture: str, instead: str) -> Iterator[None]:
    """Refuse ``requests`` calls to any host but loopback (urllib3, below every mock of
    requests), naming the fixture that answers them; nothing when requests is missing."""
    try:
        from urllib3.connectionpool import HTTPConnectionPool
    except ImportError:  # pragma: no cover - depends on the environment
        yield
        return
    original = HTTPConnectionPool.urlopen

    def urlopen(pool: HTTPConnectionPool, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if _loopback(pool.host or ""):
            return original(pool, method, url, *args, **kwargs)
        raise UnmockedRequest(
            method,
            f"{pool.scheme}://{pool.host}{url}",
            f"{fixture} answers httpx; this call was made with requests (urllib3): use {instead}",
        )

    with _patched(HTTPConnectionPool, "urlopen", urlopen):
        yield


@contextlib.contextmanager
def refuse_httpx_library(fixture: str, instead: str) -> Iterator[None]:
    """Refuse httpx calls to any host but loopback (httpcore's network backends, below every
    mock of httpx), naming the fixture that answers them."""
    import httpcore

    def guard(original: Callable[..., Any]) -> Callable[..., Any]:
        def connect_tcp(backend: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            if _loopback(host):
                return original(backend, host, port, *args, **kwargs)
            raise UnmockedRequest(
                "CONNECT",
                f"{host}:{port}",
                f"{fixture} answers requests; this call was made with httpx: use {instead}",
            )

        return connect_tcp

    with contextlib.ExitStack() as stack:
        for backend in (httpcore.SyncBackend, httpcore.AnyIOBackend):
            stack.enter_context(_patched(backend, "connect_tcp", guard(backend.connect_tcp)))
        yield


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)
