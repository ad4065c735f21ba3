"""Running the mock inside tests: a loopback thread server, and routers into the app (respx for
httpx, responses for requests: :mod:`pivotkit.intercept`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from pivotkit.client import ApiKey, PivotClient, demo_key
from pivotkit.control import Controls, MockControl

if TYPE_CHECKING:
    import flask
    import respx
    from werkzeug.serving import BaseWSGIServer

MOCK_LOGGER = "pivotkit.mock"
#: The attribute of a record on MOCK_LOGGER that names the Flask app it comes from: a server
#: keeps only its own app's exceptions (several mocks may run at once, on one logger).
LOG_APP = "pivot_app"


def make_app(config: Mapping[str, Any] | None = None) -> flask.Flask:
    """The mock app from ``mockserver.create_app`` (imported here, never at module level)."""
    from mockserver import create_app

    return create_app(dict(config or {}))


def _quiet_handler() -> type[Any]:
    from werkzeug.serving import WSGIRequestHandler

    class _Quiet(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Tests read results, not access logs."""

    return _Quiet


class MockServer(Controls):
    """The mock app served on a free 127.0.0.1 port by a background thread.

    ``url`` is its base URL, ``key(account)`` a demo key, ``client(account)`` a PivotClient
    bound to it; ``requests``, ``assert_called``, ``sequence``, ``timeline`` come from
    :class:`~pivotkit.control.Controls`. Exceptions raised inside the app are kept and
    re-raised by :meth:`check_errors` (the ``pivot_mock`` fixture does it after each test): its
    own app's only, a Flask view's and those the mock logs while answering (their record names
    the app, :data:`LOG_APP`), so several servers may run at once.
    """

    def __init__(self, app: flask.Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        if "pivot" not in app.extensions:
            raise TypeError(
                f"MockServer serves the mock's app (pivotkit.harness.make_app), not {app.name!r}"
            )
        self.app = app
        self.control = MockControl.for_app(app)
        self.contract = app.extensions["pivot"].contract
        self.host = host
        self.port = port
        self.errors: list[BaseException] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._handler: logging.Handler | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError("the mock server is not started; call start() first")
        return f"http://{self.host}:{self.port}"

    def _record(self, sender: Any, exception: BaseException, **extra: Any) -> None:
        with self._lock:
            self.errors.append(exception)

    def _log_error(self, record: logging.LogRecord) -> bool:
        """The mock answers its own exceptions with a 500 and logs them: keep this app's."""
        if (
            record.exc_info
            and record.exc_info[1] is not None
            and getattr(record, LOG_APP, None) is self.app
        ):
            self._record(self.app, record.exc_info[1])
        return False  # recorded; nothing to emit

    def start(self) -> MockServer:
        """Bind the port and serve in a daemon thread."""
        from flask import got_request_exception
        from werkzeug.serving import make_server

        got_request_exception.connect(self._record, self.app)
        self._handler = logging.Handler(logging.ERROR)
        self._handler.addFilter(self._log_error)
        logging.getLogger(MOCK_LOGGER).addHandler(self._handler)
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=_quiet_handler()
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"pivot-mock-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        from flask import got_request_exception

        got_request_exception.disconnect(self._record, self.app)
        if self._handler is not None:
            logging.getLogger(MOCK_LOGGER).removeHandler(self._handler)
            self._handler = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def key(
        self, account: str = "full", slot: Literal["primary", "secondary"] = "primary"
    ) -> ApiKey:
        """The demo key of an account of the default accounts file."""
        return demo_key(account, slot)

    def client(self, account: str | None = "full", **kwargs: Any) -> PivotClient:
        """A PivotClient on this server with the account's demo key (None: no key)."""
        key = self.key(account) if account is not None else None
        return PivotClient(self.url, key, **kwargs)

    def clear_errors(self) -> None:
        """Forget exceptions raised so far."""
        with self._lock:
            self.errors.clear()

    def check_errors(self) -> None:
        """Re-raise the first exception raised inside the app since the last clear."""
        with self._lock:
            errors, self.errors = self.errors, []
        if errors:
            raise errors[0]

    def reset(self) -> None:
        """Back to a clean state: regenerated keys, usage counts and rate windows forgotten."""
        reset_app(self.app)


def reset_app(app: flask.Flask) -> None:
    """Clear the mock app's state through its own ``reset()``: keys back to the accounts
    file, rate and quota windows and usage forgotten."""
    pivot = app.extensions.get("pivot")
    if pivot is not None:
        pivot.reset()


@contextmanager
def respx_router(
    app: flask.Flask, base_url: str | None = None, *, assert_all_called: bool = False
) -> Iterator[respx.MockRouter]:
    """A respx router that answers every request on ``base_url`` (default: the contract's
    live URL) from the mock app.

    Routing into the app through WSGI, rather than re-implementing its rules, keeps the
    answers identical to the mock's: key check and exact 401s, empty-200, 404, lang
    fallback, gzip and the provider's headers. Routes you add win over the mock (the app
    answers only what no route of yours matches); a request to another host is refused
    (:class:`~pivotkit.errors.UnmockedRequest`). The router has the mock's
    :class:`~pivotkit.control.Controls` (``requests``, ``assert_called``, ``sequence``...).

    With ``assert_all_called=True``, leaving the block fails when a route *you* added was
    never called (``router.assert_all_called()`` checks the same at any time); the router's
    own route into the app (named ``pivot-mock``) does not count, called or not.
    """
    from pivotkit.intercept import PivotRouter

    with PivotRouter(app, base_url, assert_all_called=assert_all_called) as router:
        yield router


@contextmanager
def responses_router(app: flask.Flask, base_url: str | None = None) -> Iterator[Any]:
    """The same for the ``requests`` library: a ``responses.RequestsMock`` into the mock app
    (needs ``pip install 'pivotkit[requests]'``)."""
    from pivotkit.intercept import responses_router as router

    with router(app, base_url) as mock:
        yield mock


__all__ = [
    "MockServer",
    "make_app",
    "responses_router",
    "respx_router",
]
