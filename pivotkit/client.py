"""The one HTTP client of pivotkit: target, redacted key, lang, pacing, call budget, 429 waits,
quota stop. ``pivotkit test``, ``record``, ``drift`` and ``calibrate`` all send through it."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx

from pivotkit.errors import BudgetExhausted, ConfigError, QuotaExhausted

if TYPE_CHECKING:
    from pivotkit.contract import Contract
    from pivotkit.conventions import Conventions

MOCK_URL = "http://pivot.mock"
KEY_ENV = "PIVOT_API_KEY"
REDACTED = "***"
DEFAULT_LIVE_BUDGET = 50
KEY_EXTENSION = "pivot_key"
DEFAULT_RETRY_AFTER = 60.0
LOOK_INSIDE = 64 * 1024  # bytes of a 403/429 read to recognise the gateway's message

TargetKind = Literal["mock", "url", "live"]


def _conventions(contract: Contract | None) -> Conventions:
    from pivotkit.contract import load_contract

    return (contract or load_contract()).conventions


class ApiKey:
    """A subscription key whose ``repr`` and ``str`` never show it; :meth:`reveal` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ValueError("an API key cannot be empty")
        self._value = value

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, name: str = KEY_ENV
    ) -> ApiKey | None:
        """The key in ``$PIVOT_API_KEY`` (or ``name``), None when unset or blank."""
        raw = (os.environ if environ is None else environ).get(name, "")
        return cls(raw) if raw.strip() else None

    def reveal(self) -> str:
        """The key itself: only for the request header, never for output."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every run of 8 or more characters of the key, in any case or
        encoding, replaced by ``***`` (:meth:`pivotkit.redact.Redactor.log_text`)."""
        from pivotkit.redact import log_redactor

        return log_redactor((self._value,)).log_text(text)

    def __repr__(self) -> str:
        return f"ApiKey({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash((ApiKey, self._value))

    def __reduce__(self) -> Any:
        raise TypeError("an ApiKey is not picklable (it would leave the process in clear)")


def demo_key(account: str = "full", slot: Literal["primary", "secondary"] = "primary") -> ApiKey:
    """The mock's public demo key of ``account``: sha256("pivotkit-demo-<account>-<slot>")[:32]."""
    digest = hashlib.sha256(f"pivotkit-demo-{account}-{slot}".encode()).hexdigest()
    return ApiKey(digest[:32])


@dataclass(frozen=True)
class Target:
    """Where requests go: the ``mock`` (in process, or on a loopback port when ``socket``),
    any base ``url``, or the ``live`` API."""

    kind: TargetKind
    base_url: str
    socket: bool = False

    @property
    def label(self) -> str:
        """A short name for reports: ``mock``, ``mock-server``, ``live`` or the base URL."""
        if self.kind == "mock" and self.socket:
            return "mock-server"
        return self.base_url if self.kind == "url" else self.kind

    @property
    def needs_key(self) -> bool:
        """Every target but the in-process mock takes its key from ``$PIVOT_API_KEY``."""
        return self.kind != "mock"


def parse_target(
    spec: str, *, contract: Contract | None = None, option: str = "--pivot-target"
) -> Target:
    """Read a target: ``mock``, ``mock-server``, ``live`` or an ``http(s)://`` URL.

    The live URL is the contract's; ``option`` names the flag in the error message.
    """
    value = spec.strip()
    live = _conventions(contract).live_url
    if value == "mock":
        return Target("mock", MOCK_URL)
    if value == "mock-server":
        return Target("mock", MOCK_URL, socket=True)
    if value == "live":
        return Target("live", live)
    if value.startswith(("http://", "https://")):
        url = value.rstrip("/")
        return Target("live" if url == live else "url", url)
    raise ConfigError(option, f"{spec!r} is not 'mock', 'mock-server', 'live' or an http(s):// URL")


class CallBudget:
    """A thread-safe count of the requests a run may still send (None: unlimited).

    Once a quota answer was seen, :meth:`spend` raises QuotaExhausted without calling.
    ``option`` is the flag the user sets the budget with (named in the errors).
    """

    def __init__(self, limit: int | None = None, *, option: str = "--budget") -> None:
        if limit is not None and limit < 0:
            raise ConfigError(option, f"must be 0 or more, not {limit}")
        self.limit = limit
        self.option = option
        self.used = 0
        self.quota: QuotaExhausted | None = None
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        """Requests left, None when unlimited."""
        return None if self.limit is None else max(self.limit - self.used, 0)

    def spend(self) -> None:
        """Count one request; BudgetExhausted when none is left."""
        with self._lock:
            if self.quota is not None:
                raise self.quota
            if self.limit is not None and self.used >= self.limit:
                raise BudgetExhausted(self.limit, self.option)
            self.used += 1

    def stop(self, error: QuotaExhausted) -> None:
        """Refuse every further request with ``error``."""
        with self._lock:
            self.quota = error


class Pacer:
    """Spaces request starts at least ``1/rate`` seconds apart, across threads."""

    def __init__(
        self,
        rate: float | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ConfigError("--rate", "the rate is calls per second, more than 0")
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock

    def wait(self) -> None:
        """Sleep until this request may start."""
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


class ExchangeTimer:
    """A deadline for one whole exchange: connecting, sending, waiting and reading the body.

    httpx's timeouts bound each read; an upstream that drips one byte at a time never trips
    them. Pass :meth:`trace` as the request's ``trace`` extension: each attempt (a retried 429
    is another one) is armed when its request goes out and disarmed when its response is
    closed. Past the deadline a watchdog shuts the connection's socket down, so a blocked read
    returns at once; :attr:`expired` then says why the exchange failed. :meth:`check` raises
    between chunks for transports without a socket.
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.expired = False
        self._clock = clock
        self._deadline: float | None = None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._armed = threading.Event()
        self._watchdog: threading.Thread | None = None

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace callback (see the class docstring)."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self._socket = _socket_of(info.get("return_value"))
        elif event == "http11.send_request_headers.started":
            with self._lock:
                self._deadline = self._clock() + self.seconds
            self._arm()
        elif event == "http11.response_closed.complete":
            with self._lock:
                self._deadline = None

    def watch(self, response: httpx.Response) -> None:
        """Learn the socket of a reused connection from its response; raise if past due."""
        found = _socket_of(response.extensions.get("network_stream"))
        if found is not None:
            self._socket = found
        self.check()

    def check(self) -> None:
        """Raise httpx.ReadTimeout when the exchange is past its deadline."""
        with self._lock:
            late = self._deadline is not None and self._clock() > self._deadline
        if late or self.expired:
            self.expired = True
            raise httpx.ReadTimeout(f"the exchange took more than {self.seconds:g} s")

    def close(self) -> None:
        """Stop watching (call when the exchange is over)."""
        with self._lock:
            self._deadline = None
        self._armed.set()

    def _arm(self) -> None:
        if self._watchdog is not None:
            return
        self._watchdog = threading.Thread(target=self._watch, name="pivot-deadline", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        while not self._armed.wait(0.02):
            with self._lock:
                due = self._deadline is not None and self._clock() > self._deadline
            if due:
                self.expired = True
                if self._socket is not None:
                    with contextlib.suppress(OSError):  # the base class's: TLS sockets too
                        socket.socket.shutdown(self._socket, socket.SHUT_RDWR)
                return


def _socket_of(stream: Any) -> socket.socket | None:
    get = getattr(stream, "get_extra_info", None)
    found = get("socket") if callable(get) else None
    return found if isinstance(found, socket.socket) else None


def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The decoded body of a streamed response, or None (and the response closed) when it is
    longer than ``limit`` bytes: a body looked into is never read whole into memory."""
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            response.close()
            return None
        parts.append(chunk)
    return b"".join(parts)


def retry_after(response: httpx.Response, conventions: Conventions) -> float | None:
    """The wait a 429 or 403 announces, in seconds: the ``Retry-After`` header (seconds or an
    HTTP date), else the wait written in the gateway's message; None when neither says."""
    raw = response.headers.get(conventions.retry_after_header, "").strip()
    if raw.isascii() and raw.isdigit():  # "²".isdigit() is true; float() of it fails
        return float(raw)
    if raw:
        try:
            when = email.utils.parsedate_to_datetime(raw)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            pass
    message = _message(response, conventions)
    found = conventions.messages.rate_limited_wait.search(message or "")
    return float(found.group(1)) if found else None


def _message(response: httpx.Response, conventions: Conventions) -> str | None:
    try:
        return conventions.messages.message_of(response.json())
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


def quota_error(response: httpx.Response, conventions: Conventions) -> QuotaExhausted | None:
    """The QuotaExhausted a 403 quota answer means, else None."""
    if response.status_code != 403:
        return None
    message = _message(response, conventions)
    if message is not None and message.startswith(conventions.messages.quota_prefix):
        return QuotaExhausted(message, response.headers.get(conventions.retry_after_header))
    return None


class PivotClient(httpx.Client):
    """An ``httpx.Client`` for the Pivot API (or the mock) that adds the key to every request.

    The key goes in the contract's key header unless the request already carries one (the
    header or the key query parameter); ``extensions={"pivot_key": None}`` sends none and
    ``{"pivot_key": "<other>"}`` sends another. ``lang`` is added to the query of requests
    that have none. Every attempt waits for the ``rate`` (calls per second) and spends the
    ``budget``; a 429 is retried after its Retry-After (:func:`retry_after`) up to
    ``max_retries`` times, but a wait above ``max_wait`` seconds is not made (the 429 is
    returned); a 403 quota answer raises QuotaExhausted and stops the budget. Other keyword
    arguments go to ``httpx.Client`` (``transport=`` routes into a WSGI app or a respx mock).
    """

    def __init__(
        self,
        base_url: str | None = None,
        key: ApiKey | str | None = None,
        *,
        lang: str | None = None,
        budget: CallBudget | None = None,
        rate: float | None = None,
        max_retries: int = 2,
        max_wait: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        contract: Contract | None = None,
        **kwargs: Any,
    ) -> None:
        self.conventions = _conventions(contract)
        self.contract = contract
        self.key = ApiKey(key) if isinstance(key, str) else key
        self.lang = lang
        self.budget = budget if budget is not None else CallBudget()
        self.pacer = Pacer(rate, sleep=sleep, clock=clock)
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._sleep = sleep
        headers = {**self.conventions.request_headers, **dict(kwargs.pop("headers", None) or {})}
        kwargs.setdefault("timeout", 30.0)
        url = (base_url or self.conventions.live_url).rstrip("/")
        super().__init__(base_url=url, headers=headers, **kwargs)

    def __repr__(self) -> str:
        return f"PivotClient({str(self.base_url).rstrip('/')!r}, key={self.key!r})"

    def _prepare(self, request: httpx.Request) -> None:
        chosen = request.extensions.get(KEY_EXTENSION, self.key)
        key = ApiKey(chosen) if isinstance(chosen, str) else chosen
        conv = self.conventions
        if (
            isinstance(key, ApiKey)
            and conv.key_header not in request.headers
            and (conv.key_query is None or conv.key_query not in request.url.params)
        ):
            request.headers[conv.key_header] = key.reveal()
        if self.lang is not None and conv.lang_parameter not in request.url.params:
            request.url = request.url.copy_merge_params({conv.lang_parameter: self.lang})

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send through the pacer and the budget with the key, waiting out 429s; see the class
        docstring."""
        self._prepare(request)
        attempt = 0
        while True:
            self.pacer.wait()
            self.budget.spend()
            response = super().send(request, **{**kwargs, "stream": True})
            try:
                if response.status_code in (403, 429):
                    self._look_inside(response)
                elif not kwargs.get("stream"):
                    response.read()
            except BaseException:
                response.close()
                raise
            quota = quota_error(response, self.conventions)
            if quota is not None:
                response.close()
                self.budget.stop(quota)
                raise quota
            if response.status_code != 429 or attempt >= self.max_retries:
                return response
            wait = retry_after(response, self.conventions)
            wait = DEFAULT_RETRY_AFTER if wait is None else wait
            if wait > self.max_wait:
                return response
            response.close()
            attempt += 1
            self._sleep(wait)

    @staticmethod
    def _look_inside(response: httpx.Response) -> None:
        """Read a 403 or 429 to see whether it is the quota's or the rate limit's; a body over
        64 KiB is no gateway message (it is left unread, and the response closed)."""
        body = read_bounded(response, LOOK_INSIDE)
        if body is not None:
            response._content = body  # what response.read() would have kept

    def call(
        self,
        operation_id: str,
        *,
        params: Mapping[str, str] | None = None,
        key: object = KEY_EXTENSION,
        headers: Mapping[str, str] | None = None,
        **path_params: object,
    ) -> httpx.Response:
        """GET one operation of the contract by id, e.g. ``call("getContent", id=7488)``.

        ``key=None`` sends no key, a string or ApiKey sends that one.
        """
        from pivotkit.contract import load_contract

        contract = self.contract or load_contract()
        path = contract.operation(operation_id).expand(**path_params)
        extensions = {} if key is KEY_EXTENSION else {KEY_EXTENSION: key}
        return self.get(path, params=params, headers=headers, extensions=extensions)


__all__ = [
    "KEY_ENV",
    "ApiKey",
    "CallBudget",
    "PivotClient",
    "Target",
    "demo_key",
    "parse_target",
]
