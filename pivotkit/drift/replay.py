"""The replay: a plan's requests sent to a target through the one client, answers collected."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pivotkit.accounts import Rights
from pivotkit.client import ApiKey, CallBudget, PivotClient
from pivotkit.contract import Contract
from pivotkit.errors import BudgetExhausted, ConfigError, QuotaExhausted, TargetUnreachable
from pivotkit.fixtures import Exchange, FixtureSet, Request
from pivotkit.plan import PlanItem, load_plan

#: Fixtures whose status is one of these are replayed by default: the backend's answers.
#: Gateway answers (401, 403, 404, 429) depend on the key and the quota, not on the API.
REPLAYED_STATUSES = frozenset({200, 400})
#: What the fixtures were recorded with; httpx would also offer br or zstd when their
#: packages happen to be installed, and the encoding would drift with them.
REPLAYED_ENCODING = "gzip"


@dataclass(frozen=True)
class Answer:
    """One answer of the target: status, headers (lower-case names) and decoded body."""

    operation_id: str
    request: Request
    status: int
    headers: Mapping[str, str]
    body: Any
    baseline: Exchange | None = None
    not_json: bool = False

    @classmethod
    def from_exchange(cls, exchange: Exchange, *, baseline: Exchange | None = None) -> Answer:
        """An answer made of a recorded exchange (for benchmarks and offline analysis)."""
        return cls(
            exchange.operation_id,
            exchange.request,
            exchange.response.status,
            {k.lower(): v for k, v in exchange.response.headers.items()},
            exchange.response.body,
            baseline,
        )


def request_line(request: Request) -> str:
    """``GET /path?query`` for messages."""
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
    return f"{request.method} {request.path}" + (f"?{query}" if query else "")


def plan_from_file(
    path: Path, fixtures: FixtureSet, contract: Contract, *, rights: Rights | None = None
) -> list[PlanItem]:
    """A plan from a file in ``pivotkit record --plan`` format; the fixture of the same
    request (same ``lang``), if any, is the baseline."""
    plan = []
    for item in load_plan(path):
        op = contract.operation(item.operation_id)
        try:
            request = item.request(contract)
        except KeyError as exc:
            raise ConfigError(str(path), str(exc)) from None
        if rights is not None and not rights.may_call(op.operation_id):
            continue
        baseline = fixtures.match(op.method, request.path, item.lang)
        if baseline is not None and baseline.request.lang != item.lang:
            baseline = None  # a fixture in another language is no baseline for this answer
        plan.append(
            PlanItem(item.operation_id, item.params, item.lang, item.name, baseline=baseline)
        )
    return plan


@dataclass
class RunResult:
    """What a replay produced: the answers, and why it stopped early if it did."""

    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    quota: QuotaExhausted | None = None
    budget_spent: bool = False
    planned: int = 0

    @property
    def unreachable(self) -> bool:
        """No answer at all came back, though requests were planned."""
        return self.planned > 0 and not self.answers and bool(self.errors)


class _Run:
    """One replay in progress: the shared result, the stop flag, the answers by position."""

    def __init__(self, contract: Contract, plan: Sequence[PlanItem], key: ApiKey | None) -> None:
        self.contract = contract
        self.plan = plan
        self.key = key
        self.result = RunResult(planned=len(plan))
        self.stop = threading.Event()
        self.slots: list[Answer | None] = [None] * len(plan)
        self.lock = threading.Lock()
        self.unreachable: str | None = None

    def _error(self, message: str) -> None:
        with self.lock:
            self.result.errors.append(message)

    def one(self, index: int, client: PivotClient) -> None:
        if self.stop.is_set():
            return
        item = self.plan[index]
        request = item.request(self.contract)
        line = request_line(request)
        try:
            response = client.request(
                request.method,
                request.path,
                params=dict(request.query) or None,
                headers={"Accept-Encoding": REPLAYED_ENCODING},
            )
        except QuotaExhausted as exc:
            with self.lock:
                self.result.quota = exc
            self.stop.set()
            return
        except BudgetExhausted:
            with self.lock:
                self.result.budget_spent = True
            self.stop.set()
            return
        except httpx.HTTPError as exc:
            message = self.key.scrub(str(exc)) if self.key is not None else str(exc)
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                self.unreachable = f"{message or type(exc).__name__} ({type(exc).__name__})"
            self._error(f"{line}: {type(exc).__name__}: {message}")
            return
        if response.status_code == 429:  # still limited after the retries: not an answer
            self._error(
                f"{line}: still rate limited (429) after retries; lower --rate or raise --max-wait"
            )
            return
        self.slots[index] = _answer_of(item, request, response)


def replay(
    plan: Sequence[PlanItem],
    base_url: str,
    *,
    contract: Contract,
    key: ApiKey | None = None,
    budget: CallBudget | None = None,
    concurrency: int = 4,
    rate: float | None = 5.0,
    max_wait: float = 120.0,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    started: Callable[[], None] = lambda: None,
) -> RunResult:
    """Send every planned request to ``base_url`` (bounded concurrency and rate, a call
    budget, 429s retried after Retry-After, a quota answer stops the run).

    The first request goes alone: when it cannot connect, TargetUnreachable is raised before
    anything else is sent; ``started`` is called once it got through.
    """
    run = _Run(contract, plan, key)
    calls = budget if budget is not None else CallBudget()
    with PivotClient(
        base_url,
        key,
        contract=contract,
        budget=calls,
        rate=rate,
        max_retries=3,
        max_wait=max_wait,
        transport=transport,
        timeout=timeout,
        sleep=sleep,
    ) as client:
        if plan:
            run.one(0, client)
            if run.unreachable is not None:
                raise TargetUnreachable(base_url, run.unreachable)
            started()
        workers = max(1, min(concurrency, len(plan) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pivot-drift") as pool:
            for future in [pool.submit(run.one, i, client) for i in range(1, len(plan))]:
                future.result()
    run.result.calls = calls.used
    run.result.answers = [a for a in run.slots if a is not None]
    return run.result


def _answer_of(item: PlanItem, request: Request, response: httpx.Response) -> Answer:
    headers = {k.lower(): v for k, v in response.headers.items()}
    try:
        body: Any = response.json()
        not_json = False
    except ValueError:
        body, not_json = response.text[:2000], True
    return Answer(
        item.operation_id, request, response.status_code, headers, body, item.baseline, not_json
    )
