"""Recording: call an upstream through the one client, redact, write fixtures atomically."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import httpx

from pivotkit.cache import BoundedCache
from pivotkit.client import KEY_EXTENSION, CallBudget, ExchangeTimer, PivotClient
from pivotkit.contract import Contract, load_contract
from pivotkit.errors import (
    BudgetExhausted,
    ConfigError,
    PivotError,
    QuotaExhausted,
)
from pivotkit.fixtures import Exchange, Request, Response, header_problem, place_exchange
from pivotkit.operations import Operation
from pivotkit.plan import PlanItem
from pivotkit.redact import Redactor
from pivotkit.upstream_answer import (
    TEXT_KEPT,
    Outcome,
    Report,
    StreamedBody,
    UpstreamFailure,
    parse_answer,
)

log = logging.getLogger("pivotkit.record")

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
RECORDED_ENCODING = "gzip"
DEFAULT_MAX_SIZE = 16 * 1024 * 1024  # decoded bytes of one recorded body


def base_url(upstream: str) -> str:
    """The upstream without credentials, query or fragment (what ``meta.upstream`` holds)."""
    try:
        url = httpx.URL(upstream)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError("--upstream", f"{upstream!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("--upstream", "give an http(s) base URL, e.g. https://host.example")
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"


def _key_extension(key: str | bool) -> dict[str, Any]:
    """The client's request extension for ``key`` (True: the account's key)."""
    if key is True:
        return {}
    return {KEY_EXTENSION: key if isinstance(key, str) else None}


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Recorder:
    """Records plan items from one upstream into one fixtures directory.

    Sends through :class:`~pivotkit.client.PivotClient`: a budget of upstream calls, a rate,
    429s waited out (Retry-After up to ``max_wait``) up to ``retries`` times, a stop at the
    first 403 quota answer. Safe to share between threads (the mock's record-through calls
    it from request handlers).
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
        max_size: int = DEFAULT_MAX_SIZE,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = _utc_now,
    ) -> None:
        if not key:
            raise ConfigError(
                "key",
                "no key: set $PIVOT_API_KEY (or the variable --key-env "
                "names) to your subscription key",
            )
        self.upstream = base_url(upstream)
        self.out_dir = Path(out_dir)
        self.account = account
        self.contract = contract or load_contract()
        self.conventions = self.contract.conventions
        Redactor.build([key])  # refuses a key too short to scrub safely
        base = redactor or Redactor()
        self.redactor = dataclasses.replace(base, secrets=(*base.secrets, key))
        self.overwrite = overwrite
        self.budget = CallBudget(budget, option="--budget")
        self.retries = retries
        self.timeout = timeout
        self.max_size = max_size
        self._key = key
        self._now = now
        self._client = PivotClient(
            self.upstream,
            key,
            contract=self.contract,
            budget=self.budget,
            rate=rate,
            max_retries=retries,
            max_wait=max_wait,
            sleep=sleep,
            clock=clock,
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

    @property
    def calls(self) -> int:
        """Upstream calls made so far (retries included)."""
        return self.budget.used

    @property
    def quota(self) -> QuotaExhausted | None:
        """The quota answer that stopped recording, if one came."""
        return self.budget.quota

    # -- one call ---------------------------------------------------------------------

    def _get(
        self, path: str, query: Mapping[str, str], *, key: str | bool = True
    ) -> tuple[httpx.Response, bytes]:
        """One GET upstream (retries inside the client): the response and its decoded body,
        within ``timeout`` seconds for the whole exchange and ``max_size`` decoded bytes.
        Transport trouble, quota and budget become UpstreamFailure."""
        timer = ExchangeTimer(self.timeout)
        try:
            request = self._client.build_request(
                "GET",
                path,
                params=dict(query),
                headers={"Accept-Encoding": RECORDED_ENCODING},
                extensions={"trace": timer.trace, **_key_extension(key)},
            )
            response = self._client.send(request, stream=True)
            try:
                timer.watch(response)
                if response.is_stream_consumed:  # a 403/429 the client read to look inside
                    return response, response.content
                return response, self._read(response, timer)
            finally:
                response.close()
        except QuotaExhausted as exc:
            raise UpstreamFailure(
                f"not recorded: quota exhausted ({exc.message})", status="skipped"
            ) from None
        except BudgetExhausted as exc:
            raise UpstreamFailure(
                f"not sent: the budget of {exc.limit} calls is spent", status="skipped"
            ) from None
        except httpx.ConnectError as exc:
            raise UpstreamFailure(
                f"cannot connect to {self.upstream}: {self.redactor.log_text(str(exc))}",
                unreachable=True,
            ) from None
        except httpx.TransportError as exc:
            if timer.expired or isinstance(exc, httpx.TimeoutException):
                raise UpstreamFailure(
                    f"timed out: no whole answer within --timeout {self.timeout:g} s",
                    unreachable=True,
                    timed_out=True,
                ) from None
            raise UpstreamFailure(
                f"connection broken mid-response ({type(exc).__name__}: "
                f"{self.redactor.log_text(str(exc))})",
                unreachable=True,
            ) from None
        finally:
            timer.close()

    def _read(self, response: httpx.Response, timer: ExchangeTimer) -> bytes:
        """The decoded body, refused early when the declared length is already too much."""
        body = StreamedBody(response.headers.get("content-encoding", "identity"), self.max_size)
        declared = response.headers.get("content-length", "")
        digits = declared.isascii() and declared.isdigit() and len(declared) < 20
        if body.encoding == "identity" and digits and int(declared) > self.max_size:
            raise UpstreamFailure(
                f"the body is {int(declared):,} bytes (content-length), over --max-size "
                f"{self.max_size:,}; not recorded, nothing written"
            )
        for chunk in response.iter_raw():
            timer.check()
            body.feed(chunk)
        return body.finish()

    def fetch(
        self,
        operation: Operation,
        path: str,
        query: Mapping[str, str],
        *,
        key: str | bool = True,
        errors: bool = False,
    ) -> Response:
        """The upstream's answer as a (not yet redacted) Response; UpstreamFailure otherwise
        (and for any non-2xx answer, unless ``errors``: then a JSON error answer is returned)."""
        response, data = self._get(path, query, key=key)
        status = response.status_code
        if status == 429 and not errors:
            raise UpstreamFailure(
                f"rate limited (429) {self.retries + 1} times, or asked to wait "
                f"longer than --max-wait {self._client.max_wait:g} s; lower --rate",
                http_status=429,
            )
        if not 200 <= status < 300 and not errors:
            raise self._refusal(operation, response, data)
        body = parse_answer(response, data)
        headers: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            low = name.lower()
            if low not in UNSTORED_HEADERS:
                headers[low] = f"{headers[low]}, {value}" if low in headers else value
        return Response(status, body, MappingProxyType(headers))

    def _refusal(
        self, operation: Operation, response: httpx.Response, body: bytes
    ) -> UpstreamFailure:
        """The failure for a non-2xx answer (quota answers never get here: see _get)."""
        status = response.status_code
        try:
            message = self.conventions.messages.message_of(json.loads(body.decode("utf-8-sig")))
        except ValueError:
            message = None
        if message is None:
            try:
                data = json.loads(body.decode("utf-8-sig"))
                message = next((str(v) for v in data.values() if isinstance(v, str)), None)
            except (ValueError, AttributeError):
                message = None
        detail = f": {message[:120]}" if message else ""
        try:
            parsed = json.loads(body.decode("utf-8-sig"))
        except ValueError:  # a page, not JSON: its start, to compare with other answers
            parsed = body[:TEXT_KEPT].decode("utf-8", "replace")
        failure = self._refusal_text(operation, status, detail)
        failure.http_status, failure.body = status, parsed
        return failure

    @staticmethod
    def _refusal_text(operation: Operation, status: int, detail: str) -> UpstreamFailure:
        if status == 401:
            return UpstreamFailure(
                f"HTTP 401{detail} (check the key, and that the account may call "
                f"{operation.operation_id})"
            )
        if status == 404:
            return UpstreamFailure(f"HTTP 404{detail} (is the path in schemas/openapi.yaml right?)")
        return UpstreamFailure(
            f"HTTP {status}" + (" from upstream" if status >= 500 else "") + detail
        )

    def _failed(self, item: PlanItem, exc: UpstreamFailure) -> Outcome:
        """The outcome of a request that produced nothing worth writing."""
        return Outcome(
            item,
            exc.status,
            self.redactor.log_text(str(exc)),
            unreachable=exc.unreachable,
            timed_out=exc.timed_out,
            http_status=exc.http_status,
            body=exc.body,
        )

    def probe(self, operation: Operation, path: str, *, key: str | bool = True) -> Outcome:
        """GET any path (an unknown one, to learn the gateway's 404) and write nothing: the
        outcome carries the status and the parsed body."""
        item = PlanItem(operation.operation_id)
        try:
            response = self.fetch(operation, path, {}, key=key, errors=True)
        except UpstreamFailure as exc:
            return self._failed(item, exc)
        body = self.redactor.body(response.body)
        return Outcome(
            item, "skipped", "a probe (not recorded)", http_status=response.status, body=body
        )

    # -- one item ---------------------------------------------------------------------

    def record(
        self,
        item: PlanItem,
        *,
        errors: bool = False,
        key: str | bool = True,
        check: bool = True,
        empty: Literal["write", "mark", "skip"] = "write",
    ) -> Outcome:
        """Record one item: fetch, redact, write. Never raises for upstream trouble.

        ``errors`` writes an error answer (a 400, 401, 404...) as a fixture too; ``key`` False
        sends no key, a string sends that one instead of the account's (redacted like it);
        ``check`` False sends parameters that break the contract (to see the upstream's
        answer to them). ``empty`` says what to do with an empty result: write it as named,
        ``mark`` it (named ``empty-<name>``), or ``skip`` writing it (the outcome still
        carries the redacted exchange).
        """
        refused = self._refuse(item, check)
        if refused is not None:
            return refused
        op = self.contract.operation(item.operation_id)
        request = item.request(self.contract)
        try:
            response = self.fetch(op, request.path, request.query, key=key, errors=errors)
        except UpstreamFailure as exc:
            return self._failed(item, exc)
        # A header the mock could not serve as written (not ASCII, control characters) would
        # make the fixture refused at load: it is left out, and the outcome says so.
        dropped = sorted(k for k, v in response.headers.items() if header_problem(k, v))
        if dropped:
            kept = {k: v for k, v in response.headers.items() if k not in dropped}
            response = dataclasses.replace(response, headers=MappingProxyType(kept))
        is_empty = response.status == 200 and self.contract.is_empty_result(response.body)
        name = item.fixture_name(op)
        if is_empty and empty == "mark" and not item.name:
            name = f"empty-{name}"
        exchange, redactor = self._exchange(op, name, request, response, key)
        try:
            exchange = redactor.exchange(exchange)
            if is_empty and empty == "skip":
                return Outcome(
                    item,
                    "skipped",
                    "an empty result (not written)",
                    exchange=exchange,
                    http_status=200,
                )
            outcome = self._write(item, exchange)
        except (PivotError, OSError) as exc:
            return Outcome(item, "failed", self.redactor.log_text(f"not written: {exc}"))
        outcome = dataclasses.replace(outcome, http_status=response.status)
        if outcome.status != "recorded":
            return outcome
        note = self._contract_note(op, exchange.response)
        left_out = f"left out header(s) {', '.join(dropped)} (not plain ASCII)" if dropped else ""
        message = "; ".join(m for m in (outcome.message, note, left_out) if m)
        return dataclasses.replace(outcome, message=message)

    def _refuse(self, item: PlanItem, check: bool) -> Outcome | None:
        """The outcome of an item that is not sent (planning error, skip, bad parameters)."""
        if item.error:
            return Outcome(item, "failed", item.error)
        if item.skip:
            return Outcome(item, "skipped", item.skip)
        try:
            op = self.contract.operation(item.operation_id)
        except PivotError as exc:
            return Outcome(item, "failed", str(exc))
        known = {p.name for p in op.path_parameters}
        problems = op.parameter_problems(item.params) if check else []
        problems += [
            f"{k}: not a path parameter of {op.operation_id}" for k in item.params if k not in known
        ]
        return Outcome(item, "failed", "; ".join(problems)) if problems else None

    def _exchange(
        self, op: Operation, name: str, request: Request, response: Response, key: str | bool
    ) -> tuple[Exchange, Redactor]:
        """The (not yet redacted) exchange of an answer, and the redactor for it (which also
        scrubs a key given instead of the account's)."""
        sent = dict(self.conventions.request_headers)
        redactor = self.redactor
        if key is True:
            sent[self.conventions.key_header] = self._key
        elif isinstance(key, str):
            sent[self.conventions.key_header] = key
            redactor = dataclasses.replace(redactor, secrets=(*redactor.secrets, key))
        exchange = Exchange(
            operation_id=op.operation_id,
            name=name,
            request=Request("GET", request.path, request.query, MappingProxyType(sent)),
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
        return exchange, redactor

    def _contract_note(self, op: Operation, response: Response) -> str:
        """A short note when a recorded body breaks the contract (drift, worth a look)."""
        try:
            violations = self.contract.validate(op.operation_id, response.status, response.body)
        except PivotError:
            return f"the contract declares no {response.status} for {op.operation_id}"
        if not violations:
            return ""
        first = violations[0]
        return self.redactor.log_text(
            f"breaks the contract at {len(violations)} place(s), first {first.pointer or '/'}: "
            f"{first.message[:80]} (run pivotkit check)"
        )

    def _write(self, item: PlanItem, exchange: Exchange) -> Outcome:
        """Write atomically; an equal fixture is left alone, a different one kept beside."""
        placed = place_exchange(exchange, self.out_dir, overwrite=self.overwrite)
        if placed.status == "unchanged":
            return Outcome(item, "unchanged", "", placed.path, placed.exchange)
        note = {
            "written": "",
            "overwritten": f"overwritten ({placed.summary})",
            "beside": f"{exchange.name}.json differs ({placed.summary}); kept it, pass "
            "--overwrite to replace it",
        }[placed.status]
        return Outcome(item, "recorded", note, placed.path, placed.exchange)

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


RecordThrough = Callable[[Operation, Request], "Exchange | Outcome"]
RECORD_THROUGH_CACHE = 64 * 1024 * 1024  # bytes of recorded answers replayed from memory


def make_record_through(
    upstream: str, key: str, out_dir: Path | str, account: str = "default", **options: Any
) -> RecordThrough:
    """A callable ``(operation, request) -> Exchange | Outcome`` for the mock.

    It forwards the request upstream (with ``key``, never the client's key), redacts, writes
    the fixture and returns the exchange; when the upstream gave nothing usable it logs one
    line naming the failure and returns the failed :class:`Outcome` (``timed_out`` says
    whether the whole-exchange timeout ran out), which the mock answers as a gateway's 502 or
    504. A request recorded by this callable is replayed from memory (a cache bounded in
    bytes). ``options`` go to :class:`Recorder` (budget, rate, overwrite, timeout, max_wait,
    max_size, ...).
    """
    recorder = Recorder(upstream, key, out_dir, account=account, **options)
    lang_name = recorder.conventions.lang_parameter
    seen: BoundedCache[tuple[str, str | None], Exchange] = BoundedCache(
        RECORD_THROUGH_CACHE, sizer=lambda exchange: len(exchange.dumps())
    )

    def record_through(operation: Operation, request: Request) -> Exchange | Outcome:
        lang = request.query.get(lang_name) or None
        cached = seen.get((request.path, lang), None)
        if cached is not None:  # recorded by this process: replay, spend no quota
            return cached
        params = operation.match(request.path) or {}
        outcome = recorder.record(PlanItem(operation.operation_id, MappingProxyType(params), lang))
        if outcome.exchange is None:
            log.warning("record-through of GET %s failed: %s", request.path, outcome.line())
            return outcome
        log.info("record-through %s", outcome.line())
        return seen.put((request.path, lang), outcome.exchange)

    record_through.recorder = recorder  # type: ignore[attr-defined]
    return record_through


__all__ = [
    "Outcome",
    "Recorder",
    "Report",
    "make_record_through",
]
