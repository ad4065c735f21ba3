"""A test's hold on a mock: what it was asked (the journal), what it will answer (sequences,
timelines), through the mock's admin API (``/__pivot/``).

:class:`Controls` is what ``pivot_mock``, ``pivot_respx`` and ``pivot_responses`` add to their
object: ``requests``, ``assert_called``, ``assert_not_called``, ``sequence`` and ``timeline``.
:class:`RemoteMock` gives the same to a test of a mock running elsewhere (``pivotkit serve``).
In process, the admin API is reached through WSGI (no socket); the answers are the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httpx

from pivotkit.errors import CallMismatch, MockAdminError, ScenarioError, UnknownOperation
from pivotkit.scenarios import THEN, answer_data

if TYPE_CHECKING:
    import flask

    from pivotkit.contract import Contract

_LISTED = 30  # requests a failure message lists before "... and N more"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class RequestRecord:
    """One request the mock answered, as its journal keeps it (the key never appears: only
    where it came, ``key_in``, and the account and slot it opened)."""

    id: int
    time: datetime
    method: str
    path: str
    query: Mapping[str, str]
    operation_id: str | None
    params: Mapping[str, str]
    account: str | None
    slot: str | None
    key_in: str | None
    status: int
    answer: str
    fixture: str | None
    fault: str | None
    worker: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestRecord:
        """From one entry of ``GET /__pivot/requests``."""
        return cls(
            id=int(data["id"]),
            time=datetime.fromisoformat(str(data["time"])),
            method=str(data["method"]),
            path=str(data["path"]),
            query=MappingProxyType(dict(data.get("query") or {})),
            operation_id=data.get("operationId"),
            params=MappingProxyType(dict(data.get("params") or {})),
            account=data.get("account"),
            slot=data.get("slot"),
            key_in=data.get("keyIn"),
            status=int(data["status"]),
            answer=str(data.get("answer", "")),
            fixture=data.get("fixture"),
            fault=data.get("fault"),
            worker=int(data.get("worker", 0)),
        )

    @property
    def values(self) -> Mapping[str, str]:
        """Path and query parameters together (the path's win)."""
        return {**self.query, **self.params}

    def line(self) -> str:
        """``GET /v1/api/v1/contents/7488?lang=en -> 200 (getContent, full, fixture 7488)``."""
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        about = [self.operation_id or "no operation"]
        if self.account:
            about.append(self.account)
        about.append(f"fixture {self.fixture}" if self.fixture else self.answer)
        if self.fault:
            about.append(f"fault {self.fault}")
        url = self.path + (f"?{query}" if query else "")
        return f"{self.method} {url} -> {self.status} ({', '.join(about)})"


@dataclass(frozen=True)
class Wanted:
    """Which requests an assertion counts: an operation, parameter values (path or query, as
    text), a status, an account; None matches anything."""

    operation: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None
    account: str | None = None

    def keeps(self, record: RequestRecord) -> bool:
        if self.operation is not None and record.operation_id != self.operation:
            return False
        if self.status is not None and record.status != self.status:
            return False
        if self.account is not None and record.account != self.account:
            return False
        values = record.values
        return all(values.get(k) == v for k, v in self.params.items())

    def describe(self) -> str:
        what = self.operation or "the mock"
        details = [f"{k}={v}" for k, v in self.params.items()]
        if self.account is not None:
            details.append(f"account {self.account}")
        if self.status is not None:
            details.append(f"status {self.status}")
        return what + (f" with {', '.join(details)}" if details else "")


def _times(n: int) -> str:
    return f"{n} time" if n == 1 else f"{n} times"


def _listing(records: list[RequestRecord], title: str) -> str:
    lines = [f"{title} ({len(records)} request{'s' if len(records) != 1 else ''}):"]
    lines += [f"  #{n} {r.line()}" for n, r in enumerate(records[:_LISTED], start=1)]
    if len(records) > _LISTED:
        lines.append(f"  ... and {len(records) - _LISTED} more")
    if not records:
        lines.append("  none")
    return "\n".join(lines)


@dataclass(frozen=True)
class TimelineState:
    """Where a timeline is: its step (0: not started) of ``steps``, the step's name and its
    date-time (``at``, written like the updates operation's date-time parameter)."""

    name: str
    step: int
    steps: int
    step_name: str | None
    at: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimelineState:
        return cls(
            str(data["name"]),
            int(data["step"]),
            int(data["steps"]),
            data.get("stepName"),
            data.get("at"),
        )


class MockControl:
    """The admin API of one mock, in process (``transport``: WSGI into the app) or over HTTP."""

    def __init__(
        self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url + "/__pivot",
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=30,
        )

    @classmethod
    def for_app(cls, app: flask.Flask) -> MockControl:
        """The admin API of an app in this process (no socket)."""
        mock = app.extensions["pivot"]
        return cls(
            "http://pivot-mock.invalid", mock.admin_token, transport=httpx.WSGITransport(app=app)
        )

    def call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """One admin request; MockAdminError (ScenarioError for a refused scenario) when the
        mock says no."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MockAdminError(what, 0, f"{self.base_url} is unreachable ({exc})") from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        if response.is_success:
            return body
        if isinstance(body, dict) and "reason" in body and "origin" in body:
            raise ScenarioError(body["origin"], body["reason"], body.get("pointer") or "")
        message = body.get("error") if isinstance(body, dict) else None
        raise MockAdminError(what, response.status_code, str(message or response.text[:200]))

    def close(self) -> None:
        self._client.close()


class SequenceHandle:
    """A sequence a test added: how many requests it answered, and ``remove()``."""

    def __init__(self, control: MockControl, data: Mapping[str, Any]) -> None:
        self._control = control
        self.name = str(data["name"])
        self.length = int(data["length"])

    def state(self) -> dict[str, Any]:
        """The sequence as the mock plays it, with ``answered`` (requests so far)."""
        rows = self._control.call("GET", "/sequences", f"sequence {self.name!r}")["sequences"]
        for row in rows:
            if row["name"] == self.name:
                return dict(row)
        raise ScenarioError(f"sequence {self.name!r}", "is no longer played (removed, or reset)")

    @property
    def answered(self) -> int:
        """How many requests the sequence has answered, in every worker."""
        return int(self.state()["answered"])

    def remove(self) -> None:
        """Stop playing it."""
        self._control.call("DELETE", f"/sequences/{self.name}", f"sequence {self.name!r}")

    def __repr__(self) -> str:
        return f"<SequenceHandle {self.name!r}: {self.length} answers>"


class TimelineHandle:
    """One timeline of the mock: ``advance()`` (step 1 when not started), ``go(n)``,
    ``reset()``, and where it is (``state()``, ``step``, ``at``)."""

    def __init__(self, control: MockControl, name: str) -> None:
        self._control = control
        self.name = name

    def _call(self, method: str, suffix: str = "") -> TimelineState:
        what = f"timeline {self.name!r}"
        data = self._control.call(method, f"/timelines/{self.name}{suffix}", what)
        return TimelineState.from_json(data)

    def state(self) -> TimelineState:
        return self._call("GET")

    def advance(self) -> TimelineState:
        """The next step, in every worker; ScenarioError at the last step."""
        return self._call("POST", "/next")

    def go(self, step: int) -> TimelineState:
        """Step ``step`` (1-based; 0 is not started)."""
        return self._call("POST", f"/step/{int(step)}")

    def reset(self) -> TimelineState:
        """Back to not started: the ordinary fixtures answer."""
        return self._call("POST", "/reset")

    @property
    def step(self) -> int:
        return self.state().step

    @property
    def at(self) -> str | None:
        """The current step's date-time (None when not started)."""
        return self.state().at

    def __repr__(self) -> str:
        return f"<TimelineHandle {self.name!r}>"


def _sequence_name(operation: str, params: Mapping[str, str], account: str | None) -> str:
    parts = [operation, *(f"{k}-{v}" for k, v in sorted(params.items()))]
    if account:
        parts.append(account)
    return _UNSAFE.sub("-", "-".join(parts)).strip("-.")[:64] or "sequence"


class Controls:
    """What a test asks of a mock; needs ``control`` (a :class:`MockControl`)."""

    control: MockControl
    contract: Contract | None = None

    # -- the journal ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request the mock answered since the last reset (per test), oldest first."""
        return self.find_requests()

    def find_requests(
        self,
        operation: str | None = None,
        *,
        account: str | None = None,
        status: int | str | None = None,
        since: datetime | str | None = None,
        limit: int | None = None,
    ) -> list[RequestRecord]:
        """The requests the journal kept, filtered by the mock (as ``GET /__pivot/requests``)."""
        query: dict[str, str] = {}
        for name, value in (
            ("operation", operation),
            ("account", account),
            ("status", status),
            ("limit", limit),
        ):
            if value is not None:
                query[name] = str(value)
        if since is not None:
            query["since"] = since.isoformat() if isinstance(since, datetime) else str(since)
        data = self.control.call("GET", "/requests", "the journal", params=query)
        return [RequestRecord.from_json(entry) for entry in data["requests"]]

    def clear_requests(self) -> None:
        """Forget what the journal holds (every worker)."""
        self.control.call("DELETE", "/requests", "the journal")

    def _wanted(
        self,
        operation: str | None,
        params: Mapping[str, object] | None,
        status: int | None,
        account: str | None,
    ) -> Wanted:
        if operation is not None:
            contract = self.contract
            if contract is None:
                from pivotkit.contract import load_contract

                contract = load_contract()
            if operation not in contract.operations:
                raise UnknownOperation(operation, sorted(contract.operations))
        values = {str(k): str(v) for k, v in (params or {}).items()}
        return Wanted(operation, values, status, account)

    def assert_called(
        self,
        operation: str | None = None,
        *,
        times: int | None = None,
        params: Mapping[str, object] | None = None,
        status: int | None = None,
        account: str | None = None,
    ) -> list[RequestRecord]:
        """Assert the mock answered such requests (``times`` exactly, else at least once);
        returns them. The failure (CallMismatch, an AssertionError) lists every request the
        mock answered instead."""
        wanted = self._wanted(operation, params, status, account)
        everything = self.requests
        found = [r for r in everything if wanted.keeps(r)]
        if (times is None and found) or (times is not None and len(found) == times):
            return found
        expected = "at least once" if times is None else _times(times)
        raise CallMismatch(
            f"expected {wanted.describe()} to be called {expected}, "
            f"it was called {_times(len(found))}",
            _listing(everything, "what the mock answered since the last reset"),
        )

    def assert_not_called(
        self,
        operation: str | None = None,
        *,
        params: Mapping[str, object] | None = None,
        status: int | None = None,
        account: str | None = None,
    ) -> None:
        """Assert the mock answered no such request; the failure lists those it did."""
        wanted = self._wanted(operation, params, status, account)
        found = [r for r in self.requests if wanted.keeps(r)]
        if found:
            raise CallMismatch(
                f"expected {wanted.describe()} not to be called, "
                f"it was called {_times(len(found))}",
                _listing(found, "the calls"),
            )

    # -- sequences and timelines ---------------------------------------------------------------

    def sequence(
        self,
        operation: str,
        answers: Iterable[object],
        *,
        params: Mapping[str, object] | None = None,
        account: str | None = None,
        then: str = "last",
        name: str | None = None,
    ) -> SequenceHandle:
        """Script the answers to the requests that match, in every worker, until the next
        reset: ``sequence("getContent", [503, 503, "fixture"], params={"id": 7488})``.

        An answer is a status (``503``; ``200`` is the ordinary answer), ``"fixture"``,
        ``"empty"``, ``"dynamic"``, ``"static"``, an x-pivot-fault spec
        (``"status=429,retry-after=2"``, ``"latency=2s"``) or a mapping in the scenarios file's
        format (``{"fixture": "7520"}``, ``{"status": 503, "times": 3}``). After the last one:
        ``then="last"`` repeats it, ``"cycle"`` starts again, ``"fixture"`` answers as usual.
        A sequence of the same name (by default: the operation, params and account) is
        replaced. ScenarioError says what the mock refused.
        """
        if then not in THEN:
            raise ScenarioError("sequence", f"then={then!r}: choose {', '.join(THEN)}")
        values = {str(k): str(v) for k, v in (params or {}).items()}
        match: dict[str, Any] = {"operation": operation}
        if values:
            match["params"] = values
        if account is not None:
            match["account"] = account
        data = {
            "name": name or _sequence_name(operation, values, account),
            "match": match,
            "answers": [answer_data(a) for a in answers],
            "then": then,
        }
        row = self.control.call("POST", "/sequences", f"sequence {data['name']!r}", json=data)
        return SequenceHandle(self.control, row)

    def sequences(self) -> list[dict[str, Any]]:
        """Every sequence the mock plays, with how many requests each answered."""
        return list(self.control.call("GET", "/sequences", "sequences")["sequences"])

    def timeline(self, name: str) -> TimelineHandle:
        """One timeline of the scenarios file; ScenarioError lists the known ones."""
        handle = TimelineHandle(self.control, name)
        handle.state()  # an unknown name fails here, not at the first advance()
        return handle


class RemoteMock(Controls):
    """A mock running elsewhere (``pivotkit serve``, a container): ``RemoteMock(url, token)``
    with its admin token; :meth:`reset` between tests."""

    def __init__(self, url: str, admin_token: str) -> None:
        self.url = url.rstrip("/")
        self.control = MockControl(self.url, admin_token)

    def reset(self) -> None:
        """What the pytest plugin does between tests (keys, limits, usage, journal, sequences,
        timelines)."""
        self.control.call("POST", "/reset", "reset")

    def close(self) -> None:
        self.control.close()

    def __enter__(self) -> RemoteMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Controls",
    "RemoteMock",
    "RequestRecord",
    "SequenceHandle",
    "TimelineHandle",
    "TimelineState",
]
