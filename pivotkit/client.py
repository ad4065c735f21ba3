"""A small httpx client for the Pivot API: target, redacted key, lang, call budget, 429 retries."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from pivotkit.errors import BudgetExhausted, ConfigError, QuotaExhausted

LIVE_URL = "https://api.plurimedia.fr"
MOCK_URL = "http://pivot.mock"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
KEY_QUERY = "subscription-key"
KEY_ENV = "PIVOT_API_KEY"
REDACTED = "***"
DEFAULT_LIVE_BUDGET = 50
QUOTA_PREFIX = "Out of call volume quota"

TargetKind = Literal["mock", "url", "live"]


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
        """``text`` with every occurrence of the key replaced by ``***``."""
        return text.replace(self._value, REDACTED) if self._value in text else text

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


def parse_target(spec: str) -> Target:
    """Read ``--pivot-target``: ``mock``, ``mock-server``, ``live`` or an ``http(s)://`` URL."""
    value = spec.strip()
    if value == "mock":
        return Target("mock", MOCK_URL)
    if value == "mock-server":
        return Target("mock", MOCK_URL, socket=True)
    if value == "live":
        return Target("live", LIVE_URL)
    if value.startswith(("http://", "https://")):
        url = value.rstrip("/")
        return Target("live" if url == LIVE_URL else "url", url)
    raise ConfigError(
        "--pivot-target", f"{spec!r} is not 'mock', 'mock-server', 'live' or an http(s):// URL"
    )


class CallBudget:
    """A thread-safe count of the requests a run may still send (None: unlimited).

    Once a quota answer was seen, :meth:`spend` raises QuotaExhausted without calling.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 0:
            raise ConfigError("--pivot-budget", f"must be 0 or more, not {limit}")
        self.limit = limit
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
                raise BudgetExhausted(self.limit)
            self.used += 1

    def stop(self, error: QuotaExhausted) -> None:
        """Refuse every further request with ``error``."""
        with self._lock:
            self.quota = error


def _quota_error(response: httpx.Response) -> QuotaExhausted | None:
    if response.status_code != 403:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message.startswith(QUOTA_PREFIX):
        return QuotaExhausted(message, response.headers.get("retry-after"))
    return None


def _retry_after(response: httpx.Response, default: float) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return default


KEY_EXTENSION = "pivot_key"


class PivotClient(httpx.Client):
    """An ``httpx.Client`` for the Pivot API (or the mock) that adds the key to every request.

    The key goes in ``Ocp-Apim-Subscription-Key`` unless the request already carries one (a
    header or the ``subscription-key`` query parameter); ``extensions={"pivot_key": None}``
    sends none and ``{"pivot_key": "<other>"}`` sends another. ``lang`` is added to the
    query of requests that have none. ``budget`` bounds the requests sent (each retry
    counts); a 429 is retried after its ``Retry-After`` up to ``max_retries`` times (waits
    above ``max_wait`` seconds are not made: the 429 is returned); a 403 quota answer raises
    QuotaExhausted and stops the budget. Other keyword arguments go to ``httpx.Client``
    (``transport=`` routes into a WSGI app or a respx mock).
    """

    def __init__(
        self,
        base_url: str = LIVE_URL,
        key: ApiKey | str | None = None,
        *,
        lang: str | None = None,
        budget: CallBudget | None = None,
        max_retries: int = 2,
        max_wait: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        self.key = ApiKey(key) if isinstance(key, str) else key
        self.lang = lang
        self.budget = budget if budget is not None else CallBudget()
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._sleep = sleep
        headers = {"Cache-Control": "no-cache", **dict(kwargs.pop("headers", None) or {})}
        kwargs.setdefault("timeout", 30.0)
        super().__init__(base_url=base_url.rstrip("/"), headers=headers, **kwargs)

    def __repr__(self) -> str:
        return f"PivotClient({str(self.base_url).rstrip('/')!r}, key={self.key!r})"

    def _prepare(self, request: httpx.Request) -> None:
        chosen = request.extensions.get(KEY_EXTENSION, self.key)
        key = ApiKey(chosen) if isinstance(chosen, str) else chosen
        if (
            isinstance(key, ApiKey)
            and KEY_HEADER not in request.headers
            and KEY_QUERY not in request.url.params
        ):
            request.headers[KEY_HEADER] = key.reveal()
        if self.lang is not None and "lang" not in request.url.params:
            request.url = request.url.copy_merge_params({"lang": self.lang})

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send through the budget with the key, retrying 429s; see the class docstring."""
        self._prepare(request)
        attempt = 0
        while True:
            self.budget.spend()
            response = super().send(request, **kwargs)
            if response.status_code in (403, 429):
                response.read()
            quota = _quota_error(response)
            if quota is not None:
                response.close()
                self.budget.stop(quota)
                raise quota
            if response.status_code != 429 or attempt >= self.max_retries:
                return response
            wait = _retry_after(response, 60.0)
            if wait > self.max_wait:
                return response
            response.close()
            attempt += 1
            self._sleep(wait)

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

        path = load_contract().operation(operation_id).expand(**path_params)
        extensions = {} if key is KEY_EXTENSION else {KEY_EXTENSION: key}
        return self.get(path, params=params, headers=headers, extensions=extensions)


__all__ = [
    "DEFAULT_LIVE_BUDGET",
    "KEY_ENV",
    "KEY_EXTENSION",
    "KEY_HEADER",
    "KEY_QUERY",
    "LIVE_URL",
    "MOCK_URL",
    "ApiKey",
    "CallBudget",
    "PivotClient",
    "Target",
    "TargetKind",
    "demo_key",
    "parse_target",
]
