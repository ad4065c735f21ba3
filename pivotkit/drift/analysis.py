"""Drift analysis: answers in, findings out (per answer, and per operation's observed schema)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pivotkit.accounts import Rights
from pivotkit.contract import Contract
from pivotkit.drift.baseline import Expectation, from_exchange, observe, removals, request_key
from pivotkit.drift.classifier import Classifier, Evidence, drop_below, finding_kind
from pivotkit.drift.deviations import Deviation
from pivotkit.drift.findings import HEADER_POINTER, KINDS, Finding, Tally, more_severe
from pivotkit.drift.replay import Answer
from pivotkit.fixtures import Exchange
from pivotkit.infer import Difference, diff
from pivotkit.observer import Observer
from pivotkit.operations import Operation
from pivotkit.pointers import escape_pointer_segment, parent_pointer, split_pointer
from pivotkit.redact import example_of
from pivotkit.schema_view import View, contract_view

_FixtureKey = tuple[str, str, str, str]
_Key = tuple[str, str, str]


def _fixture_key(exchange: Exchange) -> _FixtureKey:
    return (exchange.operation_id, exchange.name, exchange.request.method, exchange.request.path)


def _example_at(observer: Observer, d: Difference) -> Any:
    node = observer.node(d.pointer)
    if node is None or not node.values or d.kind == "integral-float":
        return None
    return next(iter(node.values))


class DriftAnalysis:
    """Findings from answers: :meth:`add` each answer, then :meth:`findings`.

    Per answer: status and gateway answers, headers, strict validation (each violation
    classified), fields an earlier answer to the same request had in every object and this
    one lacks (the recorded fixture's, and ``history``'s: request key -> expectation); per
    operation, an :class:`~pivotkit.observer.Observer` of the answers diffed with the
    contract by direction. A finding the recorded fixture of the same request already shows
    is not drift: it is counted in :attr:`preexisting` instead. :attr:`seen` keeps what
    each request's answer showed, for the next run's history.
    """

    def __init__(
        self,
        contract: Contract,
        *,
        rights: Rights | None = None,
        secrets: Iterable[str] = (),
        history: Mapping[str, Expectation] | None = None,
    ) -> None:
        self.contract = contract
        self.rights = rights or Rights()
        self.history: Mapping[str, Expectation] = history or {}
        self._secrets = tuple(secrets)
        self._classifier = Classifier(contract, self._describe, self._withheld)
        self._tallies: dict[_Key, Tally] = {}
        self.answers: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {}
        self.observers: dict[str, Observer] = {}
        self.seen: dict[str, tuple[str, Expectation]] = {}
        self._baseline_observers: dict[str, Observer] = {}
        self._baseline_keys: dict[_FixtureKey, frozenset[tuple[str, str]]] = {}
        self._expectations: dict[_FixtureKey, Expectation] = {}
        self._views: dict[tuple[str, int], View | None] = {}
        envelope = contract.conventions.envelope
        self._envelope = envelope
        self._payload = "/" + escape_pointer_segment(envelope.payload_field)
        self.preexisting = 0

    # -- public --

    def add(self, answer: Answer) -> set[str]:
        """Analyse one answer; returns the kinds of the findings it showed."""
        op = self.contract.operations.get(answer.operation_id)
        if op is None:
            return set()
        self.answers[op.operation_id] += 1
        self.statuses.setdefault(op.operation_id, Counter())[answer.status] += 1
        key = request_key(answer.request)
        expected = self._expected(answer, key)
        evidence = Evidence()
        self._examine(op, answer, expected, evidence)
        evidence.collapse()
        found = evidence.found
        if found and answer.baseline is not None:
            known = self._baseline_findings(op, answer.baseline)
            for item in [k for k in found if k in known]:
                del found[item]
                self.preexisting += 1
        for (pointer, kind), entry in found.items():
            tally = self._tallies.get((op.operation_id, pointer, kind))
            if tally is None:
                tally = self._tallies[op.operation_id, pointer, kind] = Tally(
                    entry.severity,
                    entry.expected,
                    entry.observed,
                    example_of(entry.example, self._secrets),
                )
            elif more_severe(entry.severity, tally.severity):
                tally.severity = entry.severity
            tally.count += 1
            tally.missing += entry.missing
            tally.objects += entry.objects
        if key not in self.seen and not answer.not_json:
            self.seen[key] = (
                op.operation_id,
                observe(self.contract, answer.status, answer.headers, answer.body, ""),
            )
        return {kind for _, kind in found}

    def findings(
        self, deviations: Iterable[Deviation] = (), today: dt.date | None = None
    ) -> tuple[list[Finding], list[Finding]]:
        """The active and the suppressed findings, each sorted (severity, operation, pointer).

        Observer-diff findings are added where per-answer analysis found nothing at the same
        pointer and kind; one finding per root cause. Expired deviations suppress nothing and
        are reported as info.
        """
        today = today or dt.date.today()
        tallies = dict(self._tallies)
        for op_id, observer in self.observers.items():
            for key, tally in self._observed_findings(op_id, observer).items():
                tallies.setdefault(key, tally)
        drop_below(tallies, lambda k: (f"{k[0]}\0{k[1]}", k[2]))
        _note_renames(tallies)
        entries = list(deviations)
        active: list[Finding] = []
        suppressed: list[Finding] = []
        for (op_id, pointer, kind), t in tallies.items():
            observed = t.observed
            if kind == "field-removed" and t.objects > t.count:
                observed = f"absent from {t.missing} of {t.objects} objects" + observed[6:]
            finding = Finding(
                op_id,
                pointer,
                kind,
                t.severity,
                t.expected,
                observed,
                t.example,
                t.count,
                self.answers[op_id],
                contract=self._contract_side(op_id, pointer),
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

    def _expected(self, answer: Answer, key: str) -> list[Expectation]:
        """What earlier answers to this request lead to expect: the fixture's, the history's."""
        out = []
        baseline = answer.baseline
        if baseline is not None:
            cached = self._expectations.get(_fixture_key(baseline))
            if cached is None:
                cached = self._expectations[_fixture_key(baseline)] = from_exchange(
                    self.contract, baseline
                )
            out.append(cached)
        history = self.history.get(key)
        if history is not None:
            out.append(history)
        return out

    def _examine(
        self, op: Operation, answer: Answer, expected: list[Expectation], evidence: Evidence
    ) -> None:
        first = expected[0] if expected else None
        status = answer.status
        if status != (first.status if first is not None else 200):
            self._classifier.status(op, answer, first, evidence)
            return
        self._classifier.headers(op, answer, expected, evidence)
        if answer.not_json:
            evidence.put(
                "", "envelope-changed", "a JSON body", "a body that is not JSON", answer.body
            )
            return
        body = answer.body
        if status not in op.statuses:
            return
        empty = self._violations(op, status, body, evidence)
        if status != 200:
            return
        if empty:
            had_data = next((e for e in expected if e.status == 200 and not e.empty), None)
            if had_data is not None:
                evidence.put(
                    "",
                    "result-emptied",
                    f"data ({had_data.source})",
                    "the empty result",
                    body,
                )
            return
        self.observers.setdefault(op.operation_id, Observer(op.operation_id)).add(body)
        for before in expected:
            if before.status == 200 and not before.empty:
                self._removed_fields(op, body, before, evidence)

    def _violations(self, op: Operation, status: int, body: Any, evidence: Evidence) -> bool:
        """Classify the strict violations of a body; returns whether it is the empty result.

        An empty result whose version or status field changed is that change alone: the
        rest of it is judged as the empty result it would be without it (one root cause).
        """
        empty = status == 200 and self.contract.is_empty_result(body)
        patched = None if empty or status != 200 else self._envelope_restored(body)
        if self.contract.is_valid(op.operation_id, status, body, mode="strict"):
            return empty
        violations = self.contract.validate(op.operation_id, status, body, mode="strict")
        if patched is not None:
            fields = {
                "/" + escape_pointer_segment(self._envelope.version_field),
                "/" + escape_pointer_segment(self._envelope.status_field),
            }
            violations = [v for v in violations if v.pointer in fields]
        for violation in violations:
            self._classifier.violation(op, status, body, violation, evidence)
        return empty or patched is not None

    def _envelope_restored(self, body: Any) -> dict[str, Any] | None:
        """The body with the contract's version and a 200 status, when that makes it the
        empty result (and it was not one): else None."""
        if not isinstance(body, dict):
            return None
        env = self._envelope
        patched = dict(body)
        if env.version_field in body:
            patched[env.version_field] = env.version
        if env.status_field in body:
            patched[env.status_field] = 200
        if patched == body or not self.contract.is_empty_result(patched):
            return None
        return patched

    def _removed_fields(
        self, op: Operation, body: Any, before: Expectation, evidence: Evidence
    ) -> None:
        for pointer, missing, objects in removals(body, before.steady):
            if self._withheld(op, pointer):
                continue
            if evidence.has(pointer, "required-missing", "envelope-changed"):
                continue
            kind = finding_kind("only-in-contract", pointer, "contract") or "field-removed"
            evidence.put(
                pointer,
                kind,
                f"present ({before.source})",
                "absent",
                missing=missing,
                objects=objects,
            )

    # -- baselines --

    def _baseline_findings(self, op: Operation, baseline: Exchange) -> frozenset[tuple[str, str]]:
        """What the recorded fixture itself shows (replayed as an answer to itself)."""
        key = _fixture_key(baseline)
        cached = self._baseline_keys.get(key)
        if cached is None:
            evidence = Evidence()
            status = baseline.response.status
            if status in op.statuses:
                body = baseline.response.body
                empty = self._violations(op, status, body, evidence)
                if status == 200 and not empty:
                    self._baseline_observers.setdefault(
                        op.operation_id, Observer(op.operation_id)
                    ).add(body)
            evidence.collapse()
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
        return view.at(pointer) if view is not None else None

    def _describe(self, operation_id: str, status: int, pointer: str) -> str | None:
        view = self._view_at(operation_id, status, pointer)
        return view.describe() if view is not None else None

    def _contract_side(self, op_id: str, pointer: str) -> Any:
        """What the contract says where a finding points (the report's "contract" column)."""
        op = self.contract.operations.get(op_id)
        if op is None:
            return None
        if pointer.startswith(HEADER_POINTER):
            status = 200 if 200 in op.statuses else op.statuses[0]
            return {"content": sorted(self.contract.media_types(op_id, status))}
        if not pointer:
            return {"statuses": list(op.statuses), "path": f"{op.method} {op.path}"}
        view = self._view_at(op_id, 200, pointer) if 200 in op.statuses else None
        if view is None:
            return {"declared": False}
        return view.summary()

    def _observed_findings(self, op_id: str, observer: Observer) -> dict[_Key, Tally]:
        """Findings from the observed schema's diff with the contract, by direction; a
        difference the recorded fixtures already show is not one."""
        view = self._view_at(op_id, 200, "")
        if view is None:
            return {}
        baseline = self._baseline_observers.get(op_id)
        known = {(d.pointer, d.kind) for d in diff(baseline, view)} if baseline else set()
        out: dict[_Key, Tally] = {}
        op = self.contract.operation(op_id)
        for d in diff(observer, view):
            kind = finding_kind(d.kind, d.pointer)
            if kind is None or (d.pointer, d.kind) in known:
                continue
            if kind in ("required-missing", "field-removed") and self._withheld(op, d.pointer):
                continue
            example = example_of(_example_at(observer, d), self._secrets)
            out[op_id, d.pointer, kind] = Tally(
                KINDS[kind], d.contract, d.observed, example, d.answers
            )
        return out


def _note_renames(tallies: dict[_Key, Tally]) -> None:
    """A removed field beside a new one of the same operation and parent: say so (a rename
    is both findings, and the removal says which field may have replaced it)."""
    added: dict[tuple[str, str], list[str]] = {}
    for op_id, pointer, kind in tallies:
        if kind == "new-field":
            added.setdefault((op_id, parent_pointer(pointer)), []).append(pointer)
    for (op_id, pointer, kind), tally in tallies.items():
        if kind == "field-removed":
            beside = added.get((op_id, parent_pointer(pointer)))
            if beside:
                tally.observed += f"; new beside it: {', '.join(sorted(beside)[:3])} (renamed?)"


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
