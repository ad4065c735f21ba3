"""Recording: call an upstream (the live API or any base URL), redact, write fixtures atomically."""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import json
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import httpx
import yaml

from pivotkit.client import KEY_HEADER, QUOTA_PREFIX, ApiKey, CallBudget
from pivotkit.contract import Contract, Operation, load_contract
from pivotkit.errors import (
    BudgetExhausted,
    ConfigError,
    FixtureError,
    FixtureExists,
    PivotError,
    QuotaExhausted,
)
from pivotkit.fixtures import (
    Exchange,
    Request,
    Response,
    iter_fixture_files,
    read_exchange,
    safe_name,
    write_exchange,
)
from pivotkit.redact import Redactor

log = logging.getLogger("pivotkit.record")

DEFAULT_KEY_ENV = "PIVOT_API_KEY"
#: Response headers never stored: hop-by-hop ones, and ones that change on every call (the
#: recording time is ``meta.recorded``), so re-recording an unchanged upstream changes nothing.
UNSTORED_HEADERS = frozenset(
    {
        "date",
        "age",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "proxy-connection",
        "upgrade",
        "te",
        "trailer",
    }
)
#: Request headers sent upstream besides the key (and stored in the fixture).
SENT_HEADERS: Mapping[str, str] = MappingProxyType({"Cache-Control": "no-cache"})

Status = Literal["recorded", "unchanged", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("recorded", "unchanged", "skipped", "failed")


# -- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanItem:
    """One request to record: an operation, its parameters, an optional ``lang`` and name.

    ``error`` marks an item that could not be planned (reported as failed, never sent),
    ``skip`` one that is not to be sent (reported as skipped, with the reason).
    """

    operation_id: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lang: str | None = None
    name: str | None = None
    error: str = ""
    skip: str = ""

    def label(self) -> str:
        """``getContent id=7488 lang=en``: the item in a report line."""
        parts = [self.operation_id, *(f"{k}={v}" for k, v in self.params.items())]
        if self.lang:
            parts.append(f"lang={self.lang}")
        return " ".join(parts)

    def fixture_name(self, operation: Operation) -> str:
        """The file name: ``name``, else the path parameters and the lang asked for, joined
        by ``-`` (``7488``, ``7488-en``, ``en``), ``all`` when there is neither."""
        if self.name:
            return safe_name(self.name)
        values = [
            str(self.params[p.name]) for p in operation.path_parameters if p.name in self.params
        ]
        return safe_name("-".join([*values, *([self.lang] if self.lang else [])]) or "all")


def _item_from_mapping(raw: Any, where: str) -> PlanItem:
    if not isinstance(raw, dict) or not isinstance(raw.get("operationId"), str):
        raise ConfigError(
            where,
            "each request is a mapping with an operationId, e.g. "
            "{operationId: getContent, params: {id: 7488}, lang: en}",
        )
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(where, "params must be a mapping of parameter names to values")
    unknown = set(raw) - {"operationId", "params", "lang", "name"}
    if unknown:
        raise ConfigError(
            where, f"unknown keys {sorted(unknown)}; allowed: operationId, params, lang, name"
        )
    lang, name = raw.get("lang"), raw.get("name")
    return PlanItem(
        raw["operationId"],
        MappingProxyType({str(k): str(v) for k, v in params.items()}),
        None if lang is None else str(lang),
        None if name is None else str(name),
    )


def load_plan(path: Path) -> list[PlanItem]:
    """Read a plan file (YAML or JSON): a list of ``{operationId, params, lang?, name?}``,
    or a mapping with that list under ``requests``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the plan: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not YAML or JSON: {exc}") from None
    if isinstance(data, dict) and "requests" in data:
        data = data["requests"]
    if not isinstance(data, list):
        raise ConfigError(str(path), "a plan is a list of requests (or {requests: [...]})")
    return [_item_from_mapping(raw, f"{path} request {i + 1}") for i, raw in enumerate(data)]


def plan_from_fixtures(root: Path, contract: Contract) -> list[PlanItem]:
    """One item per fixture under ``root``, named like the fixture it re-records."""
    items: list[PlanItem] = []
    for path in iter_fixture_files(root):
        try:
            ex = read_exchange(path)
        except FixtureError as exc:
            items.append(
                PlanItem(path.parent.name, name=path.stem, error=f"unreadable fixture: {exc}")
            )
            continue
        found = contract.find_operation(ex.request.method, ex.request.path)
        if found is None:
            items.append(
                PlanItem(
                    ex.operation_id,
                    name=ex.name,
                    error=(
                        f"{path}: {ex.request.method} {ex.request.path} fits no operation of the "
                        "contract; fix the path in the fixture or in schemas/openapi.yaml"
                    ),
                )
            )
            continue
        op, params = found
        status = ex.response.status
        skip = (
            ""
            if 200 <= status < 300
            else (
                f"{path}: a {status} answer is not re-recorded (the upstream gives it only in "
                "that condition)"
            )
        )
        items.append(
            PlanItem(
                op.operation_id,
                MappingProxyType(params),
                ex.request.query.get("lang"),
                ex.name,
                skip=skip,
            )
        )
    return items


def plan_from_options(
    operations: Sequence[str], params: Sequence[str], langs: Sequence[str], contract: Contract
) -> list[PlanItem]:
    """Items for ``--op``/``--param``/``--lang``: every combination of the given values.

    ``--param id=1 --param id=2`` records both ids for each ``--op`` that takes an ``id``.
    """
    values: dict[str, list[str]] = {}
    for raw in params:
        name, eq, value = raw.partition("=")
        if not eq or not name:
            raise ConfigError("--param", f"{raw!r} is not NAME=VALUE (e.g. --param id=7488)")
        values.setdefault(name.strip(), []).append(value.strip())
    used: set[str] = set()
    items: list[PlanItem] = []
    for op_id in operations:
        op = contract.operation(op_id)
        names = [p.name for p in op.path_parameters]
        missing = [n for n in names if n not in values]
        if missing:
            raise ConfigError(
                "--param", f"{op_id} needs {', '.join(missing)} (e.g. --param {missing[0]}=...)"
            )
        used.update(names)
        for combo in product(*(values[n] for n in names)):
            lang_choices: list[str | None] = [*langs] or [None]
            for lang in lang_choices:
                items.append(
                    PlanItem(op_id, MappingProxyType(dict(zip(names, combo, strict=True))), lang)
                )
    unused = set(values) - used
    if unused:
        raise ConfigError("--param", f"no --op takes {', '.join(sorted(unused))}")
    return items


# -- outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What recording one plan item did."""

    item: PlanItem
    status: Status
    message: str = ""
    path: Path | None = None
    exchange: Exchange | None = None
    unreachable: bool = False

    def line(self) -> str:
        """One report line: status, then the file or the request, then why."""
        what = str(self.path) if self.path is not None else self.item.label()
        tail = f": {self.message}" if self.message else ""
        return f"{self.status:<9} {what}{tail}"


@dataclass
class Report:
    """Every outcome of a run, and why it stopped early if it did."""

    outcomes: list[Outcome] = field(default_factory=list)
    calls: int = 0
    stopped: str = ""
    quota_exhausted: bool = False
    interrupted: bool = False

    def count(self, status: Status) -> int:
        """How many outcomes have this status."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def all_unreachable(self) -> bool:
        """Whether every request that was sent failed to reach the upstream at all."""
        sent = [o for o in self.outcomes if o.status != "skipped" and not o.item.error]
        return bool(sent) and all(o.unreachable for o in sent)

    @property
    def exit_code(self) -> int:
        """0 no failure; 1 some request failed; 3 quota exhausted or upstream unreachable;
        130 interrupted (Ctrl-C)."""
        if self.interrupted:
            return 130
        if self.quota_exhausted or self.all_unreachable:
            return 3
        return 1 if self.count("failed") else 0

    def summary(self) -> str:
        """The final line: the four counts, then the upstream calls made."""
        counts = ", ".join(f"{s} {self.count(s)}" for s in STATUSES)
        return f"{counts} ({len(self.outcomes)} requests, {self.calls} upstream calls)"


class _Failure(Exception):
    """A request that produced nothing worth writing (internal to the recorder)."""

    def __init__(
        self, message: str, *, unreachable: bool = False, status: Status = "failed"
    ) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.status: Status = status


# -- the recorder ---------------------------------------------------------------------------


def base_url(upstream: str) -> str:
    """The upstream without credentials, query or fragment (what ``meta.upstream`` holds)."""
    try:
        url = httpx.URL(upstream)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError("--upstream", f"{upstream!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("--upstream", "give an http(s) base URL, e.g. https://api.plurimedia.fr")
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_after(response: httpx.Response, body: bytes) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date), else the gateway message."""
    raw = response.headers.get("retry-after", "").strip()
    if raw.isdigit():
        return float(raw)
    if raw:
        try:
            when = email.utils.parsedate_to_datetime(raw)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            pass
    m = re.search(r"[Tt]ry again in (\d+) seconds", _message(response, body))
    return float(m.group(1)) if m else None


def _decode(response: httpx.Response, raw: bytes) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise _Failure(f"truncated or corrupt {encoding} body ({len(raw)} bytes): {exc}") from None
    if encoding not in ("identity", ""):
        raise _Failure(f"unsupported content-encoding {encoding!r}")
    return raw


def _parse_json(response: httpx.Response, data: bytes) -> Any:
    ctype = response.headers.get("content-type", "")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Failure(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if "html" in ctype or text.lstrip()[:1] == "<":
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        hint = f" {title.group(1).strip()[:60]!r}" if title else ""
        raise _Failure(
            f"HTML page instead of JSON (HTTP {response.status_code}, "
            f"{ctype or 'no content-type'}){hint}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Failure(
            f"invalid JSON (HTTP {response.status_code}): {exc.msg} at line "
            f"{exc.lineno} column {exc.colno}"
        ) from None


def _message(response: httpx.Response, raw: bytes) -> str:
    """The gateway's or ASP.NET's message in an error body, if any (short)."""
    try:
        data = json.loads(_decode(response, raw).decode("utf-8-sig"))
    except (ValueError, _Failure):
        return ""
    if isinstance(data, dict):
        for k in ("message", "Message"):
            if isinstance(data.get(k), str):
                return str(data[k])[:120]
    return ""


def _comparable(data: Mapping[str, Any]) -> dict[str, Any]:
    """A fixture dictionary without what changes on every recording (``meta.recorded``)."""
    out = json.loads(json.dumps(data))
    if isinstance(out.get("meta"), dict):
        out["meta"].pop("recorded", None)
    return dict(out)


class Recorder:
    """Records plan items from one upstream into one fixtures directory.

    Keeps to a budget of upstream calls and a rate; waits out 429 (``Retry-After``, capped at
    ``max_wait``) up to ``retries`` times; stops at the first 403 quota answer. Safe to share
    between threads (the mock's record-through calls it from request handlers).
    """

    def __init__(
        self,
        upstream: str,
        key: str,
        out_dir: Path | str,
        *,
        account: str = "default",
        contract: Contract | None = None,
        redactor: Redactor | None = None,
        overwrite: bool = False,
        budget: int | None = None,
        rate: float | None = None,
        max_wait: float = 60.0,
        retries: int = 3,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = _utc_now,
    ) -> None:
        if not key:
            raise ConfigError(
                "key",
                f"no key: set ${DEFAULT_KEY_ENV} (or the variable "
                "--key-env names) to your subscription key",
            )
        if rate is not None and rate <= 0:
            raise ConfigError("--rate", "the rate is calls per second, more than 0")
        self.upstream = base_url(upstream)
        self.out_dir = Path(out_dir)
        self.account = account
        self.contract = contract or load_contract()
        Redactor.build([key])  # refuses a key too short to scrub safely
        base = redactor or Redactor()
        self.redactor = dataclasses.replace(base, secrets=(*base.secrets, key))
        self.overwrite = overwrite
        self.budget = CallBudget(budget)
        self.rate = rate
        self.max_wait = max_wait
        self.retries = retries
        self._key = ApiKey(key)
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._next_call = 0.0
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one call ---------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Upstream calls made so far (retries included)."""
        return self.budget.used

    @property
    def quota(self) -> QuotaExhausted | None:
        """The quota answer that stopped recording, if one came."""
        return self.budget.quota

    def _take_call(self) -> None:
        """Spend one call of the budget and wait for the rate, or raise _Failure(skipped)."""
        try:
            self.budget.spend()
        except QuotaExhausted as exc:
            raise _Failure(f"not sent: quota exhausted ({exc.message})", status="skipped") from None
        except BudgetExhausted as exc:
            raise _Failure(
                f"not sent: the budget of {exc.limit} calls is spent", status="skipped"
            ) from None
        wait = 0.0
        with self._lock:
            if self.rate:
                now = self._clock()
                wait = max(0.0, self._next_call - now)
                self._next_call = max(now, self._next_call) + 1.0 / self.rate
        if wait:
            self._sleep(wait)

    def _get(self, path: str, query: Mapping[str, str]) -> tuple[httpx.Response, bytes]:
        """One GET upstream, the raw body read in full; transport problems become _Failure."""
        self._take_call()
        headers = {**SENT_HEADERS, KEY_HEADER: self._key.reveal(), "Accept-Encoding": "gzip"}
        try:
            request = self._client.build_request(
                "GET", self.upstream + path, params=dict(query), headers=headers
            )
            response = self._client.send(request, stream=True)
            try:
                raw = b"".join(response.iter_raw())
            finally:
                response.close()
        except httpx.ConnectError as exc:
            raise _Failure(
                f"cannot connect to {self.upstream}: {self.redactor.text(str(exc))}",
                unreachable=True,
            ) from None
        except httpx.TimeoutException as exc:
            raise _Failure(f"timed out ({type(exc).__name__})", unreachable=True) from None
        except httpx.TransportError as exc:
            raise _Failure(
                f"connection broken mid-response ({type(exc).__name__}: "
                f"{self.redactor.text(str(exc))})",
                unreachable=True,
            ) from None
        return response, raw

    def fetch(self, operation: Operation, path: str, query: Mapping[str, str]) -> Response:
        """The upstream's answer as a (not yet redacted) Response; _Failure otherwise."""
        for attempt in range(self.retries + 1):
            response, raw = self._get(path, query)
            status = response.status_code
            if status == 429:
                wait = _retry_after(response, raw)
                if attempt < self.retries:
                    self._sleep(min(wait if wait is not None else 1.0, self.max_wait))
                    continue
                raise _Failure(f"rate limited (429) {self.retries + 1} times; lower --rate")
            if not 200 <= status < 300:
                raise self._refusal(operation, response, raw)
            body = _parse_json(response, _decode(response, raw))
            headers: dict[str, str] = {}
            for name, value in response.headers.multi_items():
                low = name.lower()
                if low not in UNSTORED_HEADERS:
                    headers[low] = f"{headers[low]}, {value}" if low in headers else value
            return Response(status, body, MappingProxyType(headers))
        raise AssertionError("unreachable")  # pragma: no cover

    def _refusal(self, operation: Operation, response: httpx.Response, raw: bytes) -> _Failure:
        """The failure for a non-2xx answer; a quota answer also stops every further call."""
        status, message = response.status_code, _message(response, raw)
        detail = f": {message}" if message else ""
        if status == 403 and message.startswith(QUOTA_PREFIX):
            self.budget.stop(QuotaExhausted(message, response.headers.get("retry-after")))
            return _Failure(f"not recorded: quota exhausted ({message})", status="skipped")
        if status == 401:
            return _Failure(
                f"HTTP 401{detail} (check the key, and that the account may call "
                f"{operation.operation_id})"
            )
        if status == 404:
            return _Failure(f"HTTP 404{detail} (is the path in schemas/openapi.yaml right?)")
        return _Failure(f"HTTP {status}" + (" from upstream" if status >= 500 else "") + detail)

    # -- one item ---------------------------------------------------------------------

    def record(self, item: PlanItem) -> Outcome:
        """Record one item: fetch, redact, write. Never raises for upstream trouble."""
        if item.error:
            return Outcome(item, "failed", item.error)
        if item.skip:
            return Outcome(item, "skipped", item.skip)
        try:
            op = self.contract.operation(item.operation_id)
        except PivotError as exc:
            return Outcome(item, "failed", str(exc))
        problems = op.parameter_problems(item.params)
        known = {p.name for p in op.path_parameters}
        problems += [
            f"{k}: not a path parameter of {op.operation_id}" for k in item.params if k not in known
        ]
        if problems:
            return Outcome(item, "failed", "; ".join(problems))
        path = op.expand(**item.params)
        query = {"lang": item.lang} if item.lang else {}
        try:
            response = self.fetch(op, path, query)
        except _Failure as exc:
            return Outcome(
                item, exc.status, self.redactor.text(str(exc)), unreachable=exc.unreachable
            )
        request_headers = {**SENT_HEADERS, KEY_HEADER: self._key.reveal()}
        exchange = Exchange(
            operation_id=op.operation_id,
            name=item.fixture_name(op),
            request=Request(
                "GET", path, MappingProxyType(query), MappingProxyType(request_headers)
            ),
            response=response,
            meta=MappingProxyType(
                {
                    "operationId": op.operation_id,
                    "source": "live",
                    "recorded": self._now(),
                    "account": self.account,
                    "upstream": self.upstream,
                }
            ),
        )
        try:
            exchange = self.redactor.exchange(exchange)
            outcome = self._write(item, exchange)
        except (PivotError, OSError) as exc:
            return Outcome(item, "failed", self.redactor.text(f"not written: {exc}"))
        if outcome.status != "recorded":
            return outcome
        note = self._contract_note(op, exchange.response)
        message = "; ".join(m for m in (outcome.message, note) if m)
        return dataclasses.replace(outcome, message=message)

    def _contract_note(self, op: Operation, response: Response) -> str:
        """A short note when a recorded body breaks the contract (drift, worth a look)."""
        try:
            violations = self.contract.validate(op.operation_id, response.status, response.body)
        except PivotError:
            return f"the contract declares no {response.status} for {op.operation_id}"
        if not violations:
            return ""
        first = violations[0]
        return self.redactor.text(
            f"breaks the contract at {len(violations)} place(s), first {first.pointer or '/'}: "
            f"{first.message[:80]} (run pivotkit check)"
        )

    def _write(self, item: PlanItem, exchange: Exchange) -> Outcome:
        """Write atomically; an equal fixture is left alone, a different one kept beside."""
        new = _comparable(exchange.to_dict())
        name = exchange.name
        first_summary = ""
        target = self.out_dir
        for n in range(1, 1000):
            candidate = dataclasses.replace(exchange, name=name if n == 1 else f"{name}-{n}")
            target = self.out_dir / safe_name(candidate.operation_id) / f"{candidate.name}.json"
            existed = target.exists()
            try:
                written = write_exchange(candidate, self.out_dir, overwrite=False)
            except FixtureExists as exc:
                try:
                    old = json.loads(target.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    old = None
                if isinstance(old, dict) and _comparable(old) == new:
                    return Outcome(
                        item, "unchanged", "", target, dataclasses.replace(candidate, file=target)
                    )
                if self.overwrite:
                    written = write_exchange(candidate, self.out_dir, overwrite=True)
                    return Outcome(
                        item,
                        "recorded",
                        f"overwritten ({exc.summary})",
                        written,
                        dataclasses.replace(candidate, file=written),
                    )
                if n == 1:
                    first_summary = exc.summary
                continue
            if existed:
                return Outcome(
                    item, "unchanged", "", written, dataclasses.replace(candidate, file=written)
                )
            note = (
                ""
                if n == 1
                else (
                    f"{name}.json differs ({first_summary}); kept it, "
                    "pass --overwrite to replace it"
                )
            )
            return Outcome(
                item, "recorded", note, written, dataclasses.replace(candidate, file=written)
            )
        return Outcome(item, "failed", f"{name}-2 to -999 exist; clean up {target.parent}")

    # -- a run ------------------------------------------------------------------------

    def run(
        self, items: Iterable[PlanItem], on_outcome: Callable[[Outcome], None] | None = None
    ) -> Report:
        """Record every item in order; a quota stop or a spent budget skips the rest."""
        report = Report()
        try:
            for item in items:
                outcome = self.record(item)
                report.outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        except KeyboardInterrupt:  # what was written is complete (atomic writes): keep it
            report.interrupted = True
        report.calls = self.calls
        report.quota_exhausted = self.quota is not None
        if self.quota is not None:
            report.stopped = str(self.quota)
        elif report.interrupted:
            report.stopped = "interrupted"
        return report


# -- record-through for the mock ------------------------------------------------------------

RecordThrough = Callable[[Operation, Any], "Exchange | None"]


def make_record_through(
    upstream: str, key: str, out_dir: Path | str, account: str = "default", **options: Any
) -> RecordThrough:
    """A callable ``(operation, flask_request) -> Exchange | None`` for the mock.

    It forwards the request upstream (with ``key``, never the client's key), redacts, writes
    the fixture and returns the exchange; None when the upstream gave nothing usable (the
    reason is logged). A request already recorded by this callable is replayed from memory.
    ``options`` go to :class:`Recorder` (budget, rate, overwrite, ...).
    """
    recorder = Recorder(upstream, key, out_dir, account=account, **options)
    seen: dict[tuple[str, str | None], Exchange] = {}

    def record_through(operation: Operation, request: Any) -> Exchange | None:
        path = str(request.path)
        lang = request.args.get("lang") or None
        cached = seen.get((path, lang))
        if cached is not None:  # recorded by this process: replay, spend no quota
            return cached
        params = operation.match(path) or {}
        outcome = recorder.record(PlanItem(operation.operation_id, MappingProxyType(params), lang))
        log.info("record-through %s", outcome.line())
        if outcome.exchange is not None:
            seen[path, lang] = outcome.exchange
        return outcome.exchange

    record_through.recorder = recorder  # type: ignore[attr-defined]
    return record_through


def install_record_through(app: Any, **overrides: Any) -> RecordThrough | None:
    """Set ``app.extensions["pivot_recorder"]`` from the app's configuration.

    Each setting is read from ``app.config``, else the environment, and ``overrides`` (the
    lower-case name without the prefix, ``upstream`` for ``FROM``: ``key_env="MY_KEY"``,
    ``budget=100``) win over both:
    ``PIVOT_RECORD_FROM`` (the upstream base URL; nothing happens without it),
    ``PIVOT_RECORD_KEY_ENV`` (default ``PIVOT_API_KEY``), ``PIVOT_RECORD_OUT`` (default
    ``PIVOT_FIXTURES``, then the default fixtures directory), ``PIVOT_RECORD_ACCOUNT``,
    ``PIVOT_RECORD_OVERWRITE``, ``PIVOT_RECORD_BUDGET``, ``PIVOT_RECORD_RATE``,
    ``PIVOT_RECORD_TIMEOUT``, ``PIVOT_RECORD_REDACT_HEADERS`` and ``PIVOT_RECORD_REDACT_FIELDS``
    (comma-separated). Returns the hook, or None when record-through is off.
    """
    from pivotkit.fixtures import default_fixtures_dir

    def _get(name: str) -> Any:
        short = "upstream" if name == "FROM" else name.lower()
        if overrides.get(short) is not None:
            return overrides[short]
        value = app.config.get(f"PIVOT_RECORD_{name}")
        if value is None or value == "":
            value = os.environ.get(f"PIVOT_RECORD_{name}") or None
        return value

    def _list(name: str) -> list[str]:
        value = _get(name) or []
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return [str(v) for v in value]

    def _number(name: str, kind: type[int] | type[float]) -> Any:
        value = _get(name)
        try:
            return None if value is None else kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"PIVOT_RECORD_{name}", f"{value!r} is not a number") from None

    upstream = _get("FROM")
    if not upstream:
        return None
    key_env = str(_get("KEY_ENV") or DEFAULT_KEY_ENV)
    key = os.environ.get(key_env, "").strip()
    if not key:
        raise ConfigError(
            "PIVOT_RECORD_KEY_ENV",
            f"record-through needs the upstream key in "
            f"${key_env}; export it (the key is never written anywhere)",
        )
    out = _get("OUT") or app.config.get("PIVOT_FIXTURES") or default_fixtures_dir()
    options: dict[str, Any] = {
        "redactor": Redactor.build(headers=_list("REDACT_HEADERS"), fields=_list("REDACT_FIELDS")),
        "overwrite": str(_get("OVERWRITE")).lower() in ("1", "true", "yes"),
        "budget": _number("BUDGET", int),
        "rate": _number("RATE", float),
    }
    timeout = _number("TIMEOUT", float)
    if timeout is not None:
        options["timeout"] = timeout
    fn = make_record_through(
        str(upstream), key, Path(out), str(_get("ACCOUNT") or "default"), **options
    )
    app.extensions["pivot_recorder"] = fn
    return fn


__all__ = [
    "DEFAULT_KEY_ENV",
    "STATUSES",
    "UNSTORED_HEADERS",
    "Outcome",
    "PlanItem",
    "Recorder",
    "Report",
    "base_url",
    "install_record_through",
    "load_plan",
    "make_record_through",
    "plan_from_fixtures",
    "plan_from_options",
]
