"""Discovery by following answers: a fair, budgeted, breadth-first crawl of an upstream.

Every operation is first tried once with the values the contract gives (its examples, recent
days for date parameters); each non-empty answer then feeds other operations through the
contract's links (:mod:`pivotkit.calibrate.links`). Operations take turns (round robin), each
picking its next request at random (seeded) among the ones found so far, so a small budget
still samples every operation. A missing parameter of a link is completed from the values the
same parameter had in requests that answered. The crawl records every answer it keeps through
the one :class:`~pivotkit.recorder.Recorder` (redacted, atomic), and probes what a mock needs
beside data: an empty result per operation, the gateway's answers to a missing and an invalid
key and to an unknown path, the backend's answer to a malformed parameter.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from pivotkit.calibrate.links import Rule, rules
from pivotkit.contract import Contract
from pivotkit.operations import Operation, Parameter
from pivotkit.plan import PlanItem
from pivotkit.recorder import Outcome, Recorder

PathState = Literal["untried", "confirmed", "wrong", "refused", "failing"]
Params = dict[str, str]

#: A value far beyond any real id, and a day long before any schedule: the empty-result probes.
FAR_ID = "999999999"
FAR_DAY = datetime(2001, 1, 1, tzinfo=UTC)


@dataclass
class OperationLog:
    """What the crawl learnt about one operation."""

    operation_id: str
    path: PathState = "untried"
    answers: int = 0  # non-empty 200s recorded
    empties: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    found: list[Params] = field(default_factory=list)  # from links, not yet sent
    seeds: list[Params] = field(default_factory=list)  # from the contract, not yet sent
    sent: set[tuple[tuple[str, str], ...]] = field(default_factory=set)
    wrong_answer: Any = None

    @property
    def reached(self) -> bool:
        """Whether the upstream answered this operation's path at all (200, empty or not)."""
        return self.path == "confirmed"

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class Probe:
    """One request of the crawl and what came back."""

    operation_id: str
    params: Mapping[str, str]
    purpose: str  # data, seed, empty, lang, missing-key, invalid-key, malformed
    outcome: Outcome


@dataclass
class CrawlResult:
    """Everything the crawl did: per operation, every probe, why it stopped."""

    operations: dict[str, OperationLog]
    probes: list[Probe]
    not_found: Any = None  # the gateway's answer to an unknown path
    not_found_path: str = ""
    stopped: str = ""
    quota: bool = False
    unreachable: bool = False
    links: dict[str, list[int]] = field(default_factory=dict)  # link -> [answers, requests]

    def barren_links(self) -> list[str]:
        """Links whose source answered with data but that never gave a request."""
        return sorted(
            name for name, (answers, found) in self.links.items() if answers and not found
        )

    def outcomes(self) -> list[Outcome]:
        return [p.outcome for p in self.probes]


def _key(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(params.items()))


def _recent(fmt: str, days_back: int, now: datetime) -> str:
    moment = now - timedelta(days=days_back)
    if "%H" in fmt:
        moment = moment.replace(hour=0, minute=0, second=0)
    return moment.strftime(fmt)


def seed_values(param: Parameter, now: datetime) -> list[str]:
    """Values to try first for a path parameter: recent days for a date, the contract's
    examples otherwise (the first few)."""
    fmt = param.date_format
    if fmt is not None:
        return [_recent(fmt, back, now) for back in (0, 1, 7)]
    return [_text(v) for v in param.sample_values()[:3]]


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class Crawl:
    """A crawl of one upstream through one recorder (see the module's docstring)."""

    def __init__(
        self,
        recorder: Recorder,
        contract: Contract,
        *,
        operations: Iterable[str] | None = None,
        seeds: Mapping[str, list[Params]] | None = None,
        per_operation: int = 12,
        seed: int = 0,
        now: datetime | None = None,
        on_probe: Callable[[Probe], None] | None = None,
    ) -> None:
        self.recorder = recorder
        self.contract = contract
        self.per_operation = per_operation
        self.random = random.Random(seed)
        self.now = now or datetime.now(UTC)
        self.on_probe = on_probe
        chosen = list(operations) if operations is not None else list(contract.operations)
        self.ops: dict[str, Operation] = {o: contract.operation(o) for o in chosen}
        self.logs = {o: OperationLog(o) for o in self.ops}
        self.rules: list[Rule] = [r for r in rules(contract) if r.target in self.ops]
        self.pool: dict[str, list[str]] = {}  # parameter name -> values that answered
        self.pool_sets: list[Params] = []  # parameter sets seen together (a day's start, end)
        self.result = CrawlResult(self.logs, [])
        self._stop = False
        for op_id, op in self.ops.items():
            given = [dict(p) for p in (seeds or {}).get(op_id, [])]
            self.logs[op_id].seeds = given + self._seeds(op)

    # -- candidates ---------------------------------------------------------------------

    def _seeds(self, op: Operation) -> list[Params]:
        params = op.path_parameters
        if not params:
            return [{}]
        columns = [seed_values(p, self.now) for p in params]
        width = max(len(c) for c in columns)
        out = []
        for i in range(width):
            out.append(
                {p.name: c[min(i, len(c) - 1)] for p, c in zip(params, columns, strict=True) if c}
            )
        return [s for s in out if len(s) == len(params)]

    def _complete(self, op: Operation, params: Params) -> Params | None:
        """Fill the path parameters a link did not give: together from a set of values seen
        together (a start and an end), else each from the pool, else from seeds."""
        out = dict(params)
        missing = [p for p in op.path_parameters if p.name not in out]
        if len(missing) > 1:
            names = {p.name for p in missing}
            together = [s for s in self.pool_sets if names <= set(s)]
            if together:
                chosen = self.random.choice(together)
                out.update({n: chosen[n] for n in names})
                missing = []
        for p in missing:
            known = self.pool.get(p.name) or seed_values(p, self.now)
            if not known:
                return None
            out[p.name] = self.random.choice(known)
        return out

    def _feed(self, source: str, params: Mapping[str, str], body: Any) -> None:
        """Queue what a non-empty answer of ``source`` gives the operations it links to."""
        for rule in self.rules:
            if rule.source != source:
                continue
            found = rule.candidates(params, body, limit=200)
            stats = self.result.links.setdefault(rule.label(), [0, 0])
            stats[0] += 1
            stats[1] += len(found)
            log = self.logs[rule.target]
            if log.path in ("wrong", "refused") or log.answers >= self.per_operation:
                continue
            for candidate in found:
                self._remember(candidate)  # a value an answer gave is a real one
                if _key(candidate) not in log.sent and candidate not in log.found:
                    log.found.append(candidate)

    def _remember(self, params: Mapping[str, str]) -> None:
        for name, value in params.items():
            values = self.pool.setdefault(name, [])
            if value not in values and len(values) < 500:
                values.append(value)
        if len(params) > 1 and dict(params) not in self.pool_sets and len(self.pool_sets) < 2000:
            self.pool_sets.append(dict(params))

    def _next(self, op: Operation) -> tuple[Params, str] | None:
        log = self.logs[op.operation_id]
        while log.found or log.seeds:
            if log.found:
                raw = log.found.pop(self.random.randrange(len(log.found)))
                purpose = "data"
            else:
                raw, purpose = log.seeds.pop(0), "seed"
            params = self._complete(op, raw)
            if params is not None and _key(params) not in log.sent:
                return params, purpose
        return None

    # -- sending ------------------------------------------------------------------------

    def _send(self, op: Operation, params: Params, purpose: str, **options: Any) -> Outcome:
        log = self.logs[op.operation_id]
        log.sent.add(_key(params))
        lang = options.pop("lang", None)
        name = options.pop("name", None)
        item = PlanItem(op.operation_id, MappingProxyType(params), lang, name)
        outcome = self.recorder.record(item, **options)
        probe = Probe(op.operation_id, MappingProxyType(params), purpose, outcome)
        self.result.probes.append(probe)
        if self.on_probe is not None:
            self.on_probe(probe)
        self._after(outcome)
        return outcome

    def _after(self, outcome: Outcome) -> None:
        """Stop on a spent budget, an exhausted quota, or an upstream that is not there."""
        if self.recorder.quota is not None:
            self._stop, self.result.quota = True, True
            self.result.stopped = str(self.recorder.quota)
        elif outcome.status == "skipped" and "budget" in outcome.message:
            self._stop = True
            self.result.stopped = outcome.message
        elif outcome.unreachable:
            self._stop, self.result.unreachable = True, True
            self.result.stopped = outcome.message

    def _is_gateway_404(self, outcome: Outcome, path: str) -> bool:
        """Whether a 404 is the answer to a path no operation has (the unknown-path probe's
        answer, the requested path aside), not a backend's 404 for a missing id."""
        if outcome.http_status != 404:
            return False
        known = self.result.not_found
        if known is not None:
            return _same_answer(outcome.body, path, known, self.result.not_found_path)
        message = self.contract.conventions.messages.message_of(outcome.body)
        return message == self.contract.conventions.messages.not_found

    def _data(self, op: Operation, params: Params, purpose: str) -> None:
        log = self.logs[op.operation_id]
        empty = "mark" if log.empties < 2 else "skip"  # the mock answers the others itself
        outcome = self._send(op, params, purpose, check=False, empty=empty)
        if outcome.http_status is not None:
            log.statuses[outcome.http_status] += 1
        exchange = outcome.exchange
        if exchange is not None and exchange.response.status == 200:
            log.path = "confirmed"
            if self.contract.is_empty_result(exchange.response.body):
                log.empties += 1
                return
            log.answers += 1
            self._remember(params)
            self._feed(op.operation_id, params, exchange.response.body)
            return
        self._refused(op, params, outcome)

    def _refused(self, op: Operation, params: Params, outcome: Outcome) -> None:
        log = self.logs[op.operation_id]
        status = outcome.http_status
        if self._is_gateway_404(outcome, op.expand(**params)):
            if log.path != "confirmed":
                log.path, log.wrong_answer = "wrong", outcome.body
                log.found.clear()
                log.seeds.clear()
        elif status == 401:
            log.path = "refused" if log.path != "confirmed" else log.path
            log.note(f"401 with the key: the account may not call {op.operation_id}")
            log.found.clear()
            log.seeds.clear()
        elif status == 429:
            log.found.append(params)  # sent again later
            log.sent.discard(_key(params))
            log.note("rate limited (429) beyond --max-wait: lower --rate")
        elif status is not None:
            shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "no parameter"
            log.note(f"{outcome.message or f'HTTP {status}'} ({shown})")
            if log.path == "untried" and (status >= 500 or outcome.exchange is None):
                log.path = "failing"

    # -- phases -------------------------------------------------------------------------

    def _probe_unknown_path(self) -> None:
        """The gateway's answer to a path no operation has (the 'path wrong' signature)."""
        op = next(iter(self.ops.values()), None)
        if op is None:
            return
        prefix = _common_prefix([o.path for o in self.ops.values()])
        path = f"{prefix}/pivotkit-calibrate-{secrets.token_hex(4)}"
        outcome = self.recorder.probe(op, path)
        self.result.probes.append(
            Probe("", MappingProxyType({"path": path}), "unknown-path", outcome)
        )
        self._after(outcome)
        if outcome.http_status == 404:
            self.result.not_found, self.result.not_found_path = outcome.body, path

    def _reserve(self) -> int:
        """Calls kept for the probes after the crawl: errors, empty results, languages."""
        with_params = sum(1 for op in self.ops.values() if op.path_parameters)
        wanted = 3 + with_params + len(self.ops)
        limit = self.recorder.budget.limit
        return wanted if limit is None else min(wanted, limit // 3)

    def _round_robin(self, reserve: int = 0) -> None:
        while not self._stop:
            progressed = False
            for op in self.ops.values():
                remaining = self.recorder.budget.remaining
                if remaining is not None and remaining <= reserve:
                    if not reserve:
                        self._stop = True
                        self.result.stopped = (
                            f"the budget of {self.recorder.budget.limit} calls is spent"
                        )
                    return
                if self._stop:
                    return
                log = self.logs[op.operation_id]
                if log.answers >= self.per_operation or log.path in ("wrong", "refused"):
                    continue
                chosen = self._next(op)
                if chosen is None:
                    continue
                self._data(op, *chosen)
                progressed = True
            if not progressed:
                return

    def _first_rounds(self) -> None:
        """The crawl proper, leaving the probes their calls."""
        self._round_robin(self._reserve())

    def _sample_params(self, op: Operation) -> Params | None:
        """The parameters of a request that answered with data (else with the empty result),
        for the extra probes."""
        answered = []
        for probe in self.result.probes:
            exchange = probe.outcome.exchange
            if (
                probe.operation_id == op.operation_id
                and exchange is not None
                and exchange.response.status == 200
                and probe.purpose in ("data", "seed")
            ):
                if not self.contract.is_empty_result(exchange.response.body):
                    return dict(probe.params)
                answered.append(dict(probe.params))
        return answered[0] if answered else None

    def _empty_params(self, op: Operation) -> Params | None:
        base = self._sample_params(op) or self._complete(op, {})
        if base is None or not op.path_parameters:
            return None
        out = dict(base)
        for p in op.path_parameters:
            fmt = p.date_format
            if fmt is not None:
                out[p.name] = FAR_DAY.strftime(fmt)
            elif p.schema.get("type") == "integer":
                out[p.name] = FAR_ID
        return out if out != base else None

    def _probe_empties(self) -> None:
        for op in self.ops.values():
            log = self.logs[op.operation_id]
            if self._stop or log.empties or log.path in ("wrong", "refused"):
                continue
            params = self._empty_params(op)
            if params is None or _key(params) in log.sent:
                continue
            name = "empty-" + PlanItem(op.operation_id, MappingProxyType(params)).fixture_name(op)
            outcome = self._send(op, params, "empty", check=False, name=name)
            exchange = outcome.exchange
            if exchange is not None and exchange.response.status == 200:
                log.path = "confirmed"
                if self.contract.is_empty_result(exchange.response.body):
                    log.empties += 1
                else:
                    log.answers += 1

    def _probe_errors(self) -> None:
        """A missing key, an invalid key (gateway), a malformed parameter (backend)."""
        reached = [op for op in self.ops.values() if self.logs[op.operation_id].reached]
        if not reached:
            return
        target = next((op for op in reached if op.path_parameters), None)
        keys: tuple[tuple[str, str | bool], ...] = (
            ("missing-key", False),
            ("invalid-key", secrets.token_hex(16)),
        )
        for offset, (purpose, key) in enumerate(keys):
            if self._stop:
                return
            if target is None:  # no path of its own for the fixture: learn the answer only
                op = reached[0]
                outcome = self.recorder.probe(op, op.path, key=key)
                self.result.probes.append(
                    Probe(op.operation_id, MappingProxyType({}), purpose, outcome)
                )
                self._after(outcome)
                continue
            params = self._unused_params(target, offset + 1)
            self._send(
                target, params, purpose, errors=True, check=False, key=key, name=f"401-{purpose}"
            )
        for op in reached:
            integer = next(
                (p for p in op.path_parameters if p.schema.get("type") == "integer"), None
            )
            if integer is None or self._stop:
                continue
            bad = dict(self._sample_params(op) or {}) | {integer.name: "not-an-integer"}
            self._send(
                op,
                bad,
                "malformed",
                errors=True,
                check=False,
                name=f"400-{integer.name}-not-an-integer",
            )
            return  # one is enough to learn the backend's 400

    def _unused_params(self, op: Operation, offset: int) -> Params:
        """Parameters no data fixture uses (an error fixture must not shadow one)."""
        out = dict(self._sample_params(op) or self._complete(op, {}) or {})
        first = op.path_parameters[0]
        fmt = first.date_format
        if fmt is not None:
            out[first.name] = (FAR_DAY + timedelta(days=offset)).strftime(fmt)
        else:
            out[first.name] = str(int(FAR_ID) - offset)
        return out

    def _probe_langs(self) -> None:
        """One answer in another language per operation that takes ``lang``."""
        conv = self.contract.conventions
        for op in self.ops.values():
            lang = next((p for p in op.parameters if p.name == conv.lang_parameter), None)
            params = self._sample_params(op)
            if self._stop or lang is None or params is None:
                continue
            others = [_text(v) for v in lang.sample_values() if _text(v) != conv.default_lang]
            if others:
                self._send(op, params, "lang", check=False, lang=others[0])

    def run(self) -> CrawlResult:
        """Crawl until every operation has its answers, the budget is spent or the quota is."""
        try:
            for phase in (
                self._probe_unknown_path,
                self._first_rounds,
                self._probe_errors,
                self._probe_empties,
                self._probe_langs,
                self._round_robin,  # what the budget still allows
            ):
                if self._stop:
                    break
                phase()
        except KeyboardInterrupt:
            self.result.stopped = "interrupted"
        return self.result


def _same_answer(body: Any, path: str, known: Any, known_path: str) -> bool:
    """Two answers are the same once each one's own path is taken out of it."""

    def scrub(value: Any, where: str) -> Any:
        if isinstance(value, str):
            return value.replace(where, "<path>") if where else value
        if isinstance(value, dict):
            return {k: scrub(v, where) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v, where) for v in value]
        return value

    return bool(scrub(body, path) == scrub(known, known_path))


def _common_prefix(paths: list[str]) -> str:
    """The literal segments every path starts with (``/v1/api/v1``)."""
    split = [p.strip("/").split("/") for p in paths]
    out: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1 or "{" in parts[0]:
            break
        out.append(parts[0])
    return "/" + "/".join(out) if out else ""
