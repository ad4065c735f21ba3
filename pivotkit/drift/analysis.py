"""Drift analysis: answers in, findings out (per answer, and per operation's observed schema)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pivotkit.accounts import Rights
from pivotkit.contract import Contract
from pivotkit.drift.classifier import Classifier, Evidence, difference_kind, normalize, parent
from pivotkit.drift.deviations import Deviation
from pivotkit.drift.findings import KINDS, Finding, Tally, more_severe
from pivotkit.drift.replay import Answer
from pivotkit.fixtures import Exchange
from pivotkit.infer import Difference, diff
from pivotkit.observer import Node, Observer
from pivotkit.operations import Operation
from pivotkit.pointers import ITEMS, escape_pointer_segment, split_pointer
from pivotkit.redact import example_of
from pivotkit.schema_view import View, contract_view

_FixtureKey = tuple[str, str, str, str]


def _fixture_key(exchange: Exchange) -> _FixtureKey:
    return (exchange.operation_id, exchange.name, exchange.request.method, exchange.request.path)


def _steady_pointers(node: Node) -> list[str]:
    """Pointers of ``node`` and below, descending only into fields every object has."""
    out = [node.pointer]
    objects = node.objects
    for sub in node.props.values():
        if sub.count == objects:
            out += _steady_pointers(sub)
    if node.items is not None:
        out += _steady_pointers(node.items)
    return out


def _example_at(observer: Observer, d: Difference) -> Any:
    node = observer.node(d.pointer)
    if node is None or not node.values:
        return None
    return next(iter(node.values))


class DriftAnalysis:
    """Findings from answers: :meth:`add` each answer, then :meth:`findings`.

    Per answer: status and gateway answers, headers, strict validation (each violation
    classified), fields of the recorded fixture missing from the answer; per operation, an
    :class:`~pivotkit.infer.Observer` of the answers diffed with the contract by direction.
    A finding the recorded fixture of the same request already shows is not drift: it is
    counted in :attr:`preexisting` instead.
    """

    def __init__(
        self, contract: Contract, *, rights: Rights | None = None, secrets: Iterable[str] = ()
    ) -> None:
        self.contract = contract
        self.rights = rights or Rights()
        self._secrets = tuple(secrets)
        self._classifier = Classifier(contract, self._describe, self._withheld)
        self._tallies: dict[tuple[str, str, str], Tally] = {}
        self.answers: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {}
        self.observers: dict[str, Observer] = {}
        self._baseline_observers: dict[str, Observer] = {}
        self._baseline_keys: dict[_FixtureKey, frozenset[tuple[str, str]]] = {}
        self._baseline_pointers: dict[_FixtureKey, frozenset[str]] = {}
        self._views: dict[tuple[str, int], View | None] = {}
        self._payload = "/" + escape_pointer_segment(contract.conventions.envelope.payload_field)
        self.preexisting = 0

    # -- public --

    def add(self, answer: Answer) -> set[str]:
        """Analyse one answer; returns the kinds of the findings it showed."""
        op = self.contract.operations.get(answer.operation_id)
        if op is None:
            return set()
        self.answers[op.operation_id] += 1
        self.statuses.setdefault(op.operation_id, Counter())[answer.status] += 1
        evidence = Evidence()
        self._examine(op, answer, evidence)
        found = evidence.found
        if found and answer.baseline is not None:
            known = self._baseline_findings(op, answer.baseline)
            for key in [k for k in found if k in known]:
                del found[key]
                self.preexisting += 1
        for (pointer, kind), (severity, expected, observed, example) in found.items():
            tally = self._tallies.get((op.operation_id, pointer, kind))
            if tally is None:
                tally = self._tallies[op.operation_id, pointer, kind] = Tally(
                    severity, expected, observed, example_of(example, self._secrets)
                )
            elif more_severe(severity, tally.severity):
                tally.severity = severity
            tally.count += 1
        return {kind for _, kind in found}

    def findings(
        self, deviations: Iterable[Deviation] = (), today: dt.date | None = None
    ) -> tuple[list[Finding], list[Finding]]:
        """The active and the suppressed findings, each sorted (severity, operation, pointer).

        Observer-diff findings are added where per-answer analysis found nothing at the same
        pointer and kind. Expired deviations suppress nothing and are reported as info.
        """
        today = today or dt.date.today()
        tallies = dict(self._tallies)
        for op_id, observer in self.observers.items():
            for key, tally in self._observed_findings(op_id, observer).items():
                tallies.setdefault(key, tally)
        entries = list(deviations)
        active: list[Finding] = []
        suppressed: list[Finding] = []
        for (op_id, pointer, kind), t in tallies.items():
            finding = Finding(
                op_id,
                pointer,
                kind,
                t.severity,
                t.expected,
                t.observed,
                t.example,
                t.count,
                self.answers[op_id],
            )
            entry = next((d for d in entries if not d.expired(today) and d.matches(finding)), None)
            if entry is None:
                active.append(finding)
            else:
                suppressed.append(dataclasses.replace(finding, suppressed_by=entry))
        active += [_expired(entry) for entry in entries if entry.expired(today)]
        return (
            sorted(active, key=lambda f: f.sort_key),
            sorted(suppressed, key=lambda f: f.sort_key),
        )

    # -- per answer --

    def _examine(self, op: Operation, answer: Answer, evidence: Evidence) -> None:
        baseline = answer.baseline
        expected_status = baseline.response.status if baseline is not None else 200
        status = answer.status
        if status != expected_status:
            self._classifier.status(op, answer, expected_status, evidence)
            return
        self._classifier.headers(op, answer, evidence)
        if answer.not_json:
            evidence.put(
                "", "envelope-changed", "a JSON body", "a body that is not JSON", answer.body
            )
            return
        body = answer.body
        if status not in op.statuses:
            return
        self._violations(op, status, body, evidence)
        if status != 200 or self.contract.is_empty_result(body):
            return
        seen: list[Node] = []
        self.observers.setdefault(op.operation_id, Observer(op.operation_id)).add(body, seen=seen)
        if baseline is not None and not self.contract.is_empty_result(baseline.response.body):
            self._removed_fields(op, baseline, {node.pointer for node in seen}, evidence)

    def _violations(self, op: Operation, status: int, body: Any, evidence: Evidence) -> None:
        if not self.contract.is_valid(op.operation_id, status, body, mode="strict"):
            for violation in self.contract.validate(op.operation_id, status, body, mode="strict"):
                self._classifier.violation(op, status, body, violation, evidence)

    def _removed_fields(
        self, op: Operation, baseline: Exchange, live: set[str], evidence: Evidence
    ) -> None:
        recorded = self._recorded_pointers(baseline)
        for pointer in sorted(recorded - live):
            if parent(pointer) not in live or self._withheld(op, pointer):
                continue
            if evidence.has(pointer, "required-missing", "envelope-changed"):
                continue
            evidence.put(
                pointer,
                "field-removed",
                f"present (recorded in fixture {baseline.operation_id}/{baseline.name})",
                "absent",
            )

    # -- baselines --

    def _recorded_pointers(self, baseline: Exchange) -> frozenset[str]:
        """The fields of a fixture that make a baseline for "removed": every field it holds,
        but inside arrays only those every item has (an actor's ``character`` is missing
        from a director's credit: that is data, not drift), and none it marks synthetic."""
        key = _fixture_key(baseline)
        cached = self._baseline_pointers.get(key)
        if cached is None:
            body = baseline.response.body
            synthetic = [
                normalize(body, p) for p in baseline.meta.get("synthetic", []) if isinstance(p, str)
            ]
            observer = Observer()
            observer.add(body)
            cached = frozenset(
                p
                for p in _steady_pointers(observer.root)
                if not any(p == s or p.startswith(s + "/") for s in synthetic)
            )
            self._baseline_pointers[key] = cached
        return cached

    def _baseline_findings(self, op: Operation, baseline: Exchange) -> frozenset[tuple[str, str]]:
        """What the recorded fixture itself shows (replayed as an answer to itself)."""
        key = _fixture_key(baseline)
        cached = self._baseline_keys.get(key)
        if cached is None:
            evidence = Evidence()
            status = baseline.response.status
            if status in op.statuses:
                body = baseline.response.body
                self._violations(op, status, body, evidence)
                if status == 200 and not self.contract.is_empty_result(body):
                    self._baseline_observers.setdefault(
                        op.operation_id, Observer(op.operation_id)
                    ).add(body)
            cached = self._baseline_keys[key] = frozenset(evidence.found)
        return cached

    # -- the contract side --

    def _withheld(self, op: Operation, pointer: str) -> bool:
        base = self._payload
        if not pointer.startswith(base + "/"):
            return False
        return self.rights.withholds(split_pointer(pointer[len(base) :]))

    def _view_at(self, operation_id: str, status: int, pointer: str) -> View | None:
        key = (operation_id, status)
        if key not in self._views:
            try:
                self._views[key] = contract_view(self.contract, operation_id, status)
            except Exception:  # an unresolvable schema only loses the "expected" text
                self._views[key] = None
        view = self._views[key]
        for part in split_pointer(pointer):
            if view is None:
                return None
            if part == ITEMS:
                view = view.items() if view.items is not None else None
            else:
                thunk = view.props.get(part)
                view = thunk() if thunk is not None else None
        return view

    def _describe(self, operation_id: str, status: int, pointer: str) -> str | None:
        view = self._view_at(operation_id, status, pointer)
        return view.describe() if view is not None else None

    def _observed_findings(
        self, op_id: str, observer: Observer
    ) -> dict[tuple[str, str, str], Tally]:
        """Findings from the observed schema's diff with the contract, by direction; a
        difference the recorded fixtures already show is not one."""
        view = self._view_at(op_id, 200, "")
        if view is None:
            return {}
        baseline = self._baseline_observers.get(op_id)
        known = {(d.pointer, d.kind) for d in diff(baseline, view)} if baseline else set()
        out: dict[tuple[str, str, str], Tally] = {}
        op = self.contract.operation(op_id)
        for d in diff(observer, view):
            kind = difference_kind(d.kind, d.pointer)
            if kind is None or (d.pointer, d.kind) in known:
                continue
            if kind in ("required-missing", "field-removed") and self._withheld(op, d.pointer):
                continue
            example = example_of(_example_at(observer, d), self._secrets)
            out[op_id, d.pointer, kind] = Tally(
                KINDS[kind], d.contract, d.observed, example, d.answers
            )
        return out


def _expired(entry: Deviation) -> Finding:
    return Finding(
        entry.operation,
        entry.pointer,
        "deviation-expired",
        KINDS["deviation-expired"],
        f"suppressed until {entry.expires.isoformat()}",
        f"expired; matching findings are reported again (reason: {entry.reason}; "
        f"owner: {entry.owner})",
        None,
        0,
        0,
    )
