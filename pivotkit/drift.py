"""Drift: replay requests against a target, compare answers with the contract, report findings."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fnmatch
import json
import random
import re
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any
from xml.etree import ElementTree

import httpx
import yaml
from jsonschema import Draft202012Validator

from pivotkit.contract import OPENAPI_URI, Contract, Operation, Violation, escape_pointer_segment
from pivotkit.errors import BudgetExhausted, ConfigError, FixtureExists, QuotaExhausted
from pivotkit.fixtures import (
    Exchange,
    FixtureSet,
    Request,
    Response,
    atomic_write_text,
    safe_name,
    write_exchange,
)
from pivotkit.infer import (
    ITEMS,
    Difference,
    Node,
    Observer,
    View,
    contract_view,
    describe_format,
    diff,
    is_empty_result,
    string_format,
)

FORMAT = "pivotkit-drift/1"
SEVERITIES = ("breaking", "warning", "info")

#: Every finding kind and its severity. ``header-changed`` is breaking only when the
#: content type stops being one the contract declares (see :func:`_header_findings`).
KINDS: Mapping[str, str] = MappingProxyType(
    {
        "operation-gone": "breaking",
        "status-changed": "breaking",
        "envelope-changed": "breaking",
        "field-removed": "breaking",
        "required-missing": "breaking",
        "type-changed": "breaking",
        "became-nullable": "breaking",
        "format-changed": "breaking",
        "header-changed": "warning",
        "new-enum-value": "warning",
        "constraint-violated": "warning",
        "new-field": "info",
        "deviation-expired": "info",
    }
)

#: Fixtures whose status is one of these are replayed by default: the backend's answers.
#: Gateway answers (401, 403, 404, 429) depend on the key and the quota, not on the API.
REPLAYED_STATUSES = frozenset({200, 400})
#: Where header findings point (never a body pointer: those start with ``/``).
HEADER_POINTER = "headers/"
_EXAMPLE_MAX = 120
_KEY_SHAPED = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z])")
_REQUIRED_MESSAGE = re.compile(r"^'(.+)' is a required property$")
_CONSTRAINTS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "multipleOf",
        "uniqueItems",
        "minProperties",
        "maxProperties",
    }
)
_DEVIATIONS_SCHEMA_PATH = Path(__file__).with_name("known-deviations.schema.json")


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRequest:
    """One request to replay, with the fixture it was taken from (the baseline)."""

    operation_id: str
    request: Request
    baseline: Exchange | None = None

    @property
    def label(self) -> str:
        """``GET /path?query`` for messages."""
        query = "&".join(f"{k}={v}" for k, v in sorted(self.request.query.items()))
        return f"{self.request.method} {self.request.path}" + (f"?{query}" if query else "")


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


@dataclass(frozen=True)
class Deviation:
    """One known deviation: a finding pattern, why it is accepted, by whom, until when."""

    operation: str
    pointer: str
    kind: str
    reason: str
    owner: str
    expires: dt.date

    def matches(self, finding: Finding) -> bool:
        """Whether the finding fits the pattern (globs on operation, pointer and kind)."""
        return (
            fnmatch.fnmatchcase(finding.operation, self.operation)
            and fnmatch.fnmatchcase(finding.pointer, self.pointer)
            and fnmatch.fnmatchcase(finding.kind, self.kind)
        )

    def expired(self, today: dt.date) -> bool:
        """An entry holds through its expiry date and lapses the day after."""
        return today > self.expires

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "operation": self.operation,
            "pointer": self.pointer,
            "kind": self.kind,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }


@dataclass(frozen=True)
class Finding:
    """One drift finding: where, what kind, how bad, what the contract said, what came back."""

    operation: str
    pointer: str
    kind: str
    severity: str
    expected: str
    observed: str
    example: Any
    count: int
    answers: int
    suppressed_by: Deviation | None = None

    @property
    def sort_key(self) -> tuple[int, str, str, str]:
        return (SEVERITIES.index(self.severity), self.operation, self.pointer, self.kind)

    def line(self) -> str:
        """One readable line."""
        where = self.pointer or "/"
        return (
            f"[{self.severity}] {self.operation} {where}: {self.kind} - expected "
            f"{self.expected}; observed {self.observed} ({self.count}/{self.answers} answers)"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (keys stable across versions of format pivotkit-drift/1)."""
        return {
            "operation": self.operation,
            "pointer": self.pointer,
            "kind": self.kind,
            "severity": self.severity,
            "expected": self.expected,
            "observed": self.observed,
            "example": self.example,
            "count": self.count,
            "answers": self.answers,
            "suppressed": None if self.suppressed_by is None else self.suppressed_by.to_dict(),
        }


# -- account profile -------------------------------------------------------------------------


def _field_path(spec: str, source: str) -> tuple[str, ...]:
    spec = spec.strip()
    if spec.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in spec[1:].split("/")]
    else:
        parts = spec.split(".")
    parts = [p for p in parts if p != ITEMS]
    if not parts or "" in parts:
        raise ConfigError(
            source,
            f"{spec!r} names no field; use /credits/character or "
            "credits.character (relative to data)",
        )
    return tuple(parts)


@dataclass(frozen=True)
class AccountProfile:
    """What an account may not see: fields withheld (or only ``fields`` allowed), operations.

    Field entries use the notation of the mock's accounts file: JSON pointers or dotted
    paths relative to the payload (``data``), applied to every element of arrays.
    """

    name: str = "default"
    withheld: tuple[tuple[str, ...], ...] = ()
    allowed: tuple[tuple[str, ...], ...] | None = None
    operations: frozenset[str] | None = None

    def withholds(self, relative: Sequence[str]) -> bool:
        """Whether a field (payload-relative segments, array levels dropped) is withheld."""
        path = tuple(p for p in relative if p != ITEMS)
        if not path:
            return False
        if any(path[: len(w)] == w for w in self.withheld):
            return True
        if self.allowed is None:
            return False
        return not any(path[: len(a)] == a or a[: len(path)] == path for a in self.allowed)

    def may_call(self, operation_id: str) -> bool:
        """Whether the account's rights include the operation."""
        return self.operations is None or operation_id in self.operations

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> AccountProfile:
        """A profile from a parsed file (one account's table)."""

        def names(key: str) -> list[str] | None:
            raw = data.get(key)
            if raw is None:
                return None
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise ConfigError(source, f"{key!r} must be a list of strings")
            return raw

        fields = names("fields")
        operations = names("operations")
        return cls(
            name=str(data.get("name", "default")),
            withheld=tuple(_field_path(s, source) for s in names("withheld") or []),
            allowed=None
            if fields is None or "*" in fields
            else tuple(_field_path(s, source) for s in fields),
            operations=None if operations is None or "*" in operations else frozenset(operations),
        )


def load_account_profile(path: Path, account: str | None = None) -> AccountProfile:
    """Read a profile from TOML or JSON: one account's keys at the top level, or an
    ``accounts`` list (the mock's accounts file) from which ``account`` picks one by name."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, f"cannot read the account profile: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            source, f"not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(source, "an account profile is a table (object)")
    accounts = data.get("accounts")
    if isinstance(accounts, list):
        chosen = [
            a
            for a in accounts
            if isinstance(a, dict) and (account is None or a.get("name") == account)
        ]
        if len(chosen) != 1:
            known = ", ".join(str(a.get("name")) for a in accounts if isinstance(a, dict))
            raise ConfigError(source, f"choose one account with --account (known: {known})")
        data = chosen[0]
    return AccountProfile.from_mapping(data, source)


# -- known deviations --------------------------------------------------------------------------


@cache
def _deviations_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(_DEVIATIONS_SCHEMA_PATH.read_text(encoding="utf-8")))


def _plain(value: Any) -> Any:
    """YAML and TOML dates as ISO strings, so the file validates against its JSON Schema."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_deviations(path: Path) -> list[Deviation]:
    """Read a known-deviations file (YAML, or TOML when it ends in ``.toml``).

    The format is ``pivotkit/known-deviations.schema.json``; ConfigError names the entry.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, f"cannot read the known deviations: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(source, f"unreadable: {exc}") from None
    data = _plain(raw if raw is not None else {})
    errors = sorted(_deviations_validator().iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/" + "/".join(str(p) for p in err.absolute_path)
        raise ConfigError(source, f"at {where}: {err.message}")
    out = []
    for entry in data.get("deviations", []):
        try:
            expires = dt.date.fromisoformat(entry["expires"])
        except ValueError:
            raise ConfigError(
                source, f"expires {entry['expires']!r} is not a date (YYYY-MM-DD)"
            ) from None
        out.append(
            Deviation(
                entry["operation"],
                entry.get("pointer", "*"),
                entry.get("kind", "*"),
                entry["reason"],
                entry["owner"],
                expires,
            )
        )
    return out


# -- redaction of examples ---------------------------------------------------------------------


def redact_example(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A short, secret-free copy of an observed value for reports.

    Uses :mod:`pivotkit.redact` when present; key-shaped strings (32 lowercase hex) are
    always masked, long strings cut.
    """
    try:
        from pivotkit.redact import Redactor

        value = Redactor.build(secrets=[s for s in secrets if s]).body(value)
    except ImportError:  # pragma: no cover - redact.py ships with pivotkit
        pass
    except ConfigError:
        pass
    return _mask_keys(value)


def _mask_keys(value: Any) -> Any:
    if isinstance(value, str):
        out = _KEY_SHAPED.sub(lambda m: "x" * 32, value)
        return out if len(out) <= _EXAMPLE_MAX else out[:_EXAMPLE_MAX] + "..."
    if isinstance(value, list):
        return [_mask_keys(v) for v in value[:3]] + (["..."] if len(value) > 3 else [])
    if isinstance(value, dict):
        return {k: _mask_keys(v) for k, v in list(value.items())[:8]}
    return value


# -- analysis --------------------------------------------------------------------------------


def _segments(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _normalize(body: Any, pointer: str) -> str:
    """The pointer with array indices replaced by ``*`` (the observer's notation)."""
    out = []
    node = body
    for part in _segments(pointer):
        if isinstance(node, list):
            out.append(ITEMS)
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                node = None
        else:
            out.append(escape_pointer_segment(part))
            node = node.get(part) if isinstance(node, dict) else None
    return "".join("/" + p for p in out)


def _parent(pointer: str) -> str:
    return pointer[: pointer.rfind("/")] if pointer else ""


def _depth(pointer: str) -> int:
    return pointer.count("/")


def _media_type(value: str) -> tuple[str, str | None]:
    main, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, val = param.strip().partition("=")
        if name.lower() == "charset":
            charset = val.strip().strip('"').lower()
    return main.strip().lower(), charset


@dataclass
class _Tally:
    """Accumulates one finding (operation, pointer, kind) over answers."""

    severity: str
    expected: str
    observed: str
    example: Any
    count: int = 0


class DriftAnalysis:
    """Findings from answers: :meth:`add` each answer, then :meth:`findings`.

    Per answer: status and gateway answers, headers, strict validation (each violation
    classified), fields of the recorded fixture missing from the answer; per operation, an
    :class:`~pivotkit.infer.Observer` of the answers diffed with the contract by direction.
    A finding the recorded fixture of the same request already shows is not drift: it is
    counted in :attr:`preexisting` instead.
    """

    def __init__(
        self,
        contract: Contract,
        *,
        profile: AccountProfile | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.contract = contract
        self.profile = profile or AccountProfile()
        self._secrets = tuple(secrets)
        self._tallies: dict[tuple[str, str, str], _Tally] = {}
        self.answers: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {}
        self.observers: dict[str, Observer] = {}
        self._baseline_observers: dict[str, Observer] = {}
        self._baseline_keys: dict[_FixtureKey, frozenset[tuple[str, str]]] = {}
        self._baseline_pointers: dict[_FixtureKey, frozenset[str]] = {}
        self._payload: dict[str, str] = {}
        self._views: dict[tuple[str, int], View] = {}
        self.preexisting = 0

    # -- public --

    def add(self, answer: Answer) -> set[str]:
        """Analyse one answer; returns the kinds of the findings it showed."""
        op = self.contract.operations.get(answer.operation_id)
        if op is None:
            return set()
        self.answers[op.operation_id] += 1
        self.statuses.setdefault(op.operation_id, Counter())[answer.status] += 1
        found: dict[tuple[str, str], tuple[str, str, str, Any]] = {}
        self._examine(op, answer, found)
        if found and answer.baseline is not None:
            known = self._baseline_findings(op, answer.baseline)
            for key in [k for k in found if k in known]:
                del found[key]
                self.preexisting += 1
        for (pointer, kind), (severity, expected, observed, example) in found.items():
            tally = self._tallies.get((op.operation_id, pointer, kind))
            if tally is None:
                tally = self._tallies[op.operation_id, pointer, kind] = _Tally(
                    severity, expected, observed, redact_example(example, self._secrets)
                )
            elif SEVERITIES.index(severity) < SEVERITIES.index(tally.severity):
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
        for entry in entries:
            if entry.expired(today):
                active.append(
                    Finding(
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
                )
        return (
            sorted(active, key=lambda f: f.sort_key),
            sorted(suppressed, key=lambda f: f.sort_key),
        )

    # -- per answer --

    def _put(
        self,
        found: dict[tuple[str, str], tuple[str, str, str, Any]],
        pointer: str,
        kind: str,
        expected: str,
        observed: str,
        example: Any = None,
        severity: str | None = None,
    ) -> None:
        sev = severity or KINDS[kind]
        old = found.get((pointer, kind))
        if old is None or SEVERITIES.index(sev) < SEVERITIES.index(old[0]):
            found[pointer, kind] = (sev, expected, observed, example)

    def _examine(
        self, op: Operation, answer: Answer, found: dict[tuple[str, str], tuple[str, str, str, Any]]
    ) -> None:
        baseline = answer.baseline
        expected_status = baseline.response.status if baseline is not None else 200
        status = answer.status
        if status != expected_status:
            self._status_finding(op, answer, expected_status, found)
            return
        self._header_findings(op, answer, found)
        if answer.not_json:
            self._put(
                found, "", "envelope-changed", "a JSON body", "a body that is not JSON", answer.body
            )
            return
        body = answer.body
        if status not in op.statuses:
            return
        if not self.contract.is_valid(op.operation_id, status, body, mode="strict"):
            for violation in self.contract.validate(op.operation_id, status, body, mode="strict"):
                self._classify(op, answer, violation, found)
        if status != 200 or is_empty_result(body):
            return
        seen: list[Node] = []
        self.observers.setdefault(op.operation_id, Observer(op.operation_id)).add(body, seen=seen)
        if baseline is not None and not is_empty_result(baseline.response.body):
            live = {node.pointer for node in seen}
            self._removed_fields(op, baseline, live, found)

    def _status_finding(
        self,
        op: Operation,
        answer: Answer,
        expected_status: int,
        found: dict[tuple[str, str], tuple[str, str, str, Any]],
    ) -> None:
        body = answer.body
        if (
            answer.status == 404
            and 404 in op.statuses
            and not answer.not_json
            and self.contract.is_valid(op.operation_id, 404, body)
        ):
            self._put(
                found,
                "",
                "operation-gone",
                f"{expected_status} from the backend",
                "404 from the gateway: no operation matches the path",
                body,
            )
            return
        expected = str(expected_status)
        if answer.baseline is not None and is_empty_result(answer.baseline.response.body):
            expected += " (empty result)"
        self._put(found, "", "status-changed", expected, str(answer.status), body)

    def _header_findings(
        self, op: Operation, answer: Answer, found: dict[tuple[str, str], tuple[str, str, str, Any]]
    ) -> None:
        declared = _declared_media_types(self.contract, op, answer.status)
        live_type = answer.headers.get("content-type", "")
        media, charset = _media_type(live_type)
        pointer = HEADER_POINTER + "content-type"
        if declared and media not in declared:
            self._put(
                found,
                pointer,
                "header-changed",
                " or ".join(sorted(declared)),
                live_type or "no content-type",
                live_type,
                severity="breaking",
            )
        baseline = answer.baseline
        if baseline is None:
            return
        recorded = {k.lower(): v for k, v in baseline.response.headers.items()}
        if "content-type" in recorded:
            _, old_charset = _media_type(recorded["content-type"])
            if old_charset != charset:
                self._put(
                    found,
                    pointer,
                    "header-changed",
                    recorded["content-type"],
                    live_type or "no content-type",
                    live_type,
                )
        if "content-encoding" in recorded:
            old = recorded["content-encoding"].lower()
            new = answer.headers.get("content-encoding", "").lower()
            if old != new:
                self._put(
                    found,
                    HEADER_POINTER + "content-encoding",
                    "header-changed",
                    old,
                    new or "identity (no content-encoding)",
                    new,
                )

    def _classify(
        self,
        op: Operation,
        answer: Answer,
        violation: Violation,
        found: dict[tuple[str, str], tuple[str, str, str, Any]],
    ) -> None:
        body = answer.body
        pointer = _normalize(body, violation.pointer)
        keyword = violation.schema_path.rsplit("/", 1)[-1]
        value = violation.value
        if violation.kind == "undeclared" or keyword in (
            "unevaluatedProperties",
            "additionalProperties",
        ):
            self._put(
                found,
                pointer,
                "new-field",
                "not declared",
                f"new field of type {_json_type(value)}",
                value,
            )
            return
        if keyword == "required":
            match = _REQUIRED_MESSAGE.match(violation.message)
            name = match.group(1) if match else "?"
            missing = f"{pointer}/{escape_pointer_segment(name)}"
            if _depth(missing) <= 1:
                self._put(
                    found, missing, "envelope-changed", "required envelope field", "absent", None
                )
            elif not self._withheld(op, missing):
                self._put(found, missing, "required-missing", "required", "absent", None)
            return
        view = self._view_at(op.operation_id, answer.status, pointer)
        expected = view.describe() if view is not None else keyword
        envelope = _depth(pointer) <= 1
        if keyword == "type":
            kind = (
                "envelope-changed"
                if envelope
                else ("became-nullable" if value is None else "type-changed")
            )
            self._put(found, pointer, kind, expected, _json_type(value), value)
        elif keyword in ("const", "enum"):
            self._put(
                found,
                pointer,
                "envelope-changed" if envelope else "new-enum-value",
                expected,
                json.dumps(value, ensure_ascii=False),
                value,
            )
        elif keyword in ("pattern", "format"):
            observed = _json_type(value)
            if isinstance(value, str):
                fmt = string_format(value)
                observed = describe_format(fmt)
            self._put(found, pointer, "format-changed", expected, observed, value)
        elif keyword in _CONSTRAINTS:
            self._put(
                found,
                pointer,
                "constraint-violated",
                f"{keyword} of the contract",
                violation.message[:200],
                value,
            )
        else:
            self._put(
                found,
                pointer,
                "envelope-changed" if envelope else "type-changed",
                expected,
                violation.message[:200],
                value,
            )

    def _removed_fields(
        self,
        op: Operation,
        baseline: Exchange,
        live: set[str],
        found: dict[tuple[str, str], tuple[str, str, str, Any]],
    ) -> None:
        recorded = self._recorded_pointers(baseline)
        for pointer in sorted(recorded - live):
            if _parent(pointer) not in live or self._withheld(op, pointer):
                continue
            if (pointer, "required-missing") in found or (pointer, "envelope-changed") in found:
                continue
            self._put(
                found,
                pointer,
                "field-removed",
                f"present (recorded in fixture {baseline.operation_id}/{baseline.name})",
                "absent",
                None,
            )

    # -- helpers --

    def _recorded_pointers(self, baseline: Exchange) -> frozenset[str]:
        """The fields of a fixture that make a baseline for "removed": every field it holds,
        but inside arrays only those every item has (an actor's ``character`` is missing
        from a director's credit: that is data, not drift), and none it marks synthetic."""
        key = _fixture_key(baseline)
        cached = self._baseline_pointers.get(key)
        if cached is None:
            body = baseline.response.body
            synthetic = [
                _normalize(body, p)
                for p in baseline.meta.get("synthetic", [])
                if isinstance(p, str)
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
            found: dict[tuple[str, str], tuple[str, str, str, Any]] = {}
            status = baseline.response.status
            if status in op.statuses:
                body = baseline.response.body
                if not self.contract.is_valid(op.operation_id, status, body, mode="strict"):
                    as_answer = Answer.from_exchange(baseline, baseline=None)
                    for violation in self.contract.validate(
                        op.operation_id, status, body, mode="strict"
                    ):
                        self._classify(op, as_answer, violation, found)
                if status == 200 and not is_empty_result(body):
                    self._baseline_observers.setdefault(
                        op.operation_id, Observer(op.operation_id)
                    ).add(body)
            cached = self._baseline_keys[key] = frozenset(found)
        return cached

    def _payload_pointer(self, operation_id: str) -> str:
        """The payload's pointer (``/data``): the one top-level field of the contract's 200
        schema that holds objects or arrays; the root when there is not exactly one."""
        cached = self._payload.get(operation_id)
        if cached is None:
            cached = ""
            view = self._view_at(operation_id, 200, "")
            if view is not None:
                holders = [
                    k
                    for k, f in view.props.items()
                    if (f().effective_types() or set()) & {"object", "array"}
                ]
                if len(holders) == 1:
                    cached = "/" + escape_pointer_segment(holders[0])
            self._payload[operation_id] = cached
        return cached

    def _withheld(self, op: Operation, pointer: str) -> bool:
        base = self._payload_pointer(op.operation_id)
        if base and not pointer.startswith(base + "/"):
            return False
        return self.profile.withholds(_segments(pointer[len(base) :]))

    def _view_at(self, operation_id: str, status: int, pointer: str) -> View | None:
        key = (operation_id, status)
        view: View | None = self._views.get(key)
        if view is None:
            try:
                view = self._views[key] = contract_view(self.contract, operation_id, status)
            except Exception:  # an unresolvable schema only loses the "expected" text
                return None
        for part in _segments(pointer):
            if view is None:
                return None
            if part == ITEMS:
                view = view.items() if view.items is not None else None
            else:
                thunk = view.props.get(part)
                view = thunk() if thunk is not None else None
        return view

    def _observed_findings(
        self, op_id: str, observer: Observer
    ) -> dict[tuple[str, str, str], _Tally]:
        """Findings from the observed schema's diff with the contract, by direction; a
        difference the recorded fixtures already show is not one."""
        view = self._view_at(op_id, 200, "")
        if view is None:
            return {}
        baseline = self._baseline_observers.get(op_id)
        known = set()
        if baseline is not None:
            known = {(d.pointer, d.kind) for d in diff(baseline, view)}
        out: dict[tuple[str, str, str], _Tally] = {}
        for d in diff(observer, view):
            kind = _DIRECTION.get(d.kind)
            if kind is None or (d.pointer, d.kind) in known:
                continue
            if kind in ("required-missing", "field-removed") and self._withheld(
                self.contract.operation(op_id), d.pointer
            ):
                continue
            if _depth(d.pointer) <= 1 and kind != "new-field":
                kind = "envelope-changed"
            example = _example_at(observer, d)
            out[op_id, d.pointer, kind] = _Tally(
                KINDS[kind],
                d.contract,
                d.observed,
                redact_example(example, self._secrets),
                d.answers,
            )
        return out


#: Observed-vs-contract differences that are drift, and the finding kind they become.
#: The others (only in the contract, always present but optional, narrower types, enums
#: or formats the contract leaves open) do not break a consumer.
_DIRECTION: Mapping[str, str] = MappingProxyType(
    {
        "type-differs": "type-changed",
        "nullable-observed": "became-nullable",
        "format-differs": "format-changed",
        "enum-new-values": "new-enum-value",
        "only-observed": "new-field",
        "required-in-contract-missing-in-observed": "required-missing",
    }
)


_FixtureKey = tuple[str, str, tuple[str, str, str]]


def _fixture_key(exchange: Exchange) -> _FixtureKey:
    return (exchange.operation_id, exchange.name, exchange.key)


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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        # Violations keep containers as their JSON text.
        if value[:1] in "[{":
            try:
                parsed = json.loads(value)
            except ValueError:
                return "string"
            return "array" if isinstance(parsed, list) else "object"
        return "string"
    return type(value).__name__


def _declared_media_types(contract: Contract, op: Operation, status: int) -> frozenset[str]:
    return _media_types_cached(contract, op.path, op.method.lower(), status)


@cache
def _media_types_cached(contract: Contract, path: str, method: str, status: int) -> frozenset[str]:
    spec = contract.openapi.get("paths", {}).get(path, {}).get(method, {})
    response = spec.get("responses", {}).get(str(status))
    if not isinstance(response, dict):
        return frozenset()
    while "$ref" in response:
        response = contract.resolve(OPENAPI_URI + response["$ref"])
    return frozenset(k.lower() for k in response.get("content", {}))


# -- the plan and the run ----------------------------------------------------------------------


def plan_from_fixtures(
    fixtures: FixtureSet,
    contract: Contract,
    *,
    sample: int | None = None,
    seed: int | None = None,
    profile: AccountProfile | None = None,
) -> list[PlannedRequest]:
    """The request of every replayable fixture (one per method, path and query), or a seeded
    sample of ``sample`` of them, in file order."""
    profile = profile or AccountProfile()
    plan: list[PlannedRequest] = []
    seen: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
    for ex in fixtures:
        if ex.operation_id not in contract.operations or not profile.may_call(ex.operation_id):
            continue
        if ex.response.status not in REPLAYED_STATUSES:
            continue
        key = (ex.request.method, ex.request.path, tuple(sorted(ex.request.query.items())))
        if key in seen:
            continue
        seen.add(key)
        plan.append(PlannedRequest(ex.operation_id, ex.request, ex))
    if sample is not None and sample < len(plan):
        chosen = sorted(random.Random(seed).sample(range(len(plan)), sample))
        plan = [plan[i] for i in chosen]
    return plan


def plan_from_file(
    path: Path, fixtures: FixtureSet, contract: Contract, *, profile: AccountProfile | None = None
) -> list[PlannedRequest]:
    """A plan from a file in ``pivotkit record --plan`` format (YAML or JSON list of
    ``{operationId, params, lang?}``); the fixture of the same request, if any, is the
    baseline."""
    from pivotkit.record import load_plan

    profile = profile or AccountProfile()
    plan = []
    for item in load_plan(path):
        if item.error:
            raise ConfigError(str(path), item.error)
        op = contract.operation(item.operation_id)
        try:
            request_path = op.expand(**item.params)
        except KeyError as exc:
            raise ConfigError(str(path), str(exc)) from None
        if not profile.may_call(op.operation_id):
            continue
        query = MappingProxyType({"lang": item.lang} if item.lang else {})
        request = Request(op.method, request_path, query)
        baseline = fixtures.match(op.method, request_path, item.lang)
        if baseline is not None and baseline.request.lang != request.lang:
            baseline = None  # a French fixture is no baseline for an English answer
        plan.append(PlannedRequest(op.operation_id, request, baseline))
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


class _Pacer:
    """Spaces request starts at least ``1/rate`` seconds apart across threads."""

    def __init__(self, rate: float | None, sleep: Callable[[float], None]) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


def replay(
    plan: Sequence[PlannedRequest],
    base_url: str,
    *,
    key: Any = None,
    budget: int | None = None,
    concurrency: int = 4,
    rate: float | None = 5.0,
    max_wait: float = 120.0,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """Send every planned request to ``base_url`` (bounded concurrency and rate, a call
    budget, 429s retried after Retry-After, a quota answer stops the run)."""
    from pivotkit.client import CallBudget, PivotClient

    result = RunResult(planned=len(plan))
    calls = CallBudget(budget)
    stop = threading.Event()
    pacer = _Pacer(rate, sleep)
    slots: list[Answer | None] = [None] * len(plan)
    lock = threading.Lock()

    def one(index: int, item: PlannedRequest, client: PivotClient) -> None:
        if stop.is_set():
            return
        pacer.wait()
        req = item.request
        headers = dict(req.headers)
        if not any(k.lower() == "accept-encoding" for k in headers):
            # What the fixtures were recorded with; httpx would also offer br or zstd when
            # their packages happen to be installed, and the encoding would drift with them.
            headers["Accept-Encoding"] = "gzip"
        try:
            response = client.request(
                req.method, req.path, params=dict(req.query) or None, headers=headers
            )
        except QuotaExhausted as exc:
            with lock:
                result.quota = exc
            stop.set()
            return
        except BudgetExhausted:
            with lock:
                result.budget_spent = True
            stop.set()
            return
        except httpx.HTTPError as exc:
            message = key.scrub(str(exc)) if hasattr(key, "scrub") else str(exc)
            with lock:
                result.errors.append(f"{item.label}: {type(exc).__name__}: {message}")
            return
        if response.status_code == 429:  # still limited after the retries: not an answer
            with lock:
                result.errors.append(
                    f"{item.label}: still rate limited (429) after retries; "
                    "lower --rate or raise --max-wait"
                )
            return
        slots[index] = _answer_of(item, response)

    with PivotClient(
        base_url,
        key,
        budget=calls,
        max_retries=3,
        max_wait=max_wait,
        transport=transport,
        timeout=timeout,
        sleep=sleep,
    ) as client:
        workers = max(1, min(concurrency, len(plan) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pivot-drift") as pool:
            for future in [pool.submit(one, i, item, client) for i, item in enumerate(plan)]:
                future.result()
    result.calls = calls.used
    result.answers = [a for a in slots if a is not None]
    return result


def _answer_of(item: PlannedRequest, response: httpx.Response) -> Answer:
    headers = {k.lower(): v for k, v in response.headers.items()}
    try:
        body: Any = response.json()
        not_json = False
    except ValueError:
        body, not_json = response.text[:2000], True
    return Answer(
        item.operation_id,
        item.request,
        response.status_code,
        headers,
        body,
        item.baseline,
        not_json,
    )


# -- the report --------------------------------------------------------------------------------


@dataclass
class DriftReport:
    """Everything a drift run found, and its renderings (JSON, Markdown, JUnit, text)."""

    target: str
    findings: list[Finding]
    suppressed: list[Finding]
    answers: Mapping[str, int]
    statuses: Mapping[str, Mapping[int, int]]
    operations: list[str]
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    planned: int = 0
    preexisting: int = 0
    stopped: str | None = None
    started: str = ""
    finished: str = ""

    def count(self, severity: str) -> int:
        """Active findings of one severity."""
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def exit_code(self) -> int:
        """0 without a breaking finding, 1 with one (3 for an unreachable target is the CLI's)."""
        return 1 if self.count("breaking") else 0

    def summary(self) -> dict[str, int]:
        """The counts of the report."""
        return {
            "breaking": self.count("breaking"),
            "warning": self.count("warning"),
            "info": self.count("info"),
            "suppressed": len(self.suppressed),
            "preexisting": self.preexisting,
            "answers": sum(self.answers.values()),
            "planned": self.planned,
            "calls": self.calls,
            "errors": len(self.errors),
        }

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form, ``{"format": "pivotkit-drift/1", ...}``."""
        return {
            "format": FORMAT,
            "target": self.target,
            "started": self.started,
            "finished": self.finished,
            "summary": self.summary(),
            "stopped": self.stopped,
            "operations": [
                {
                    "operation": op,
                    "answers": self.answers.get(op, 0),
                    "statuses": {str(s): n for s, n in sorted(self.statuses.get(op, {}).items())},
                    "breaking": sum(
                        1 for f in self.findings if f.operation == op and f.severity == "breaking"
                    ),
                }
                for op in self.operations
            ],
            "findings": [f.to_dict() for f in self.findings],
            "suppressed": [f.to_dict() for f in self.suppressed],
            "errors": list(self.errors),
        }

    def dumps(self) -> str:
        """The JSON text (2-space indent, final newline)."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"

    def text_summary(self) -> str:
        """One paragraph for chat (the webhook's ``text``)."""
        s = self.summary()
        verdict = (
            "BREAKING drift"
            if s["breaking"]
            else "drift without breaking change"
            if self.findings
            else "no drift"
        )
        text = (
            f"pivotkit drift against {self.target}: {verdict}. {s['answers']} answers from "
            f"{len(self.operations)} operations: {s['breaking']} breaking, {s['warning']} "
            f"warning, {s['info']} info, {s['suppressed']} suppressed."
        )
        top = [f for f in self.findings if f.severity == "breaking"][:3]
        if top:
            text += " " + "; ".join(f"{f.operation} {f.pointer or '/'} {f.kind}" for f in top)
            text += "."
        if self.stopped:
            text += f" Stopped early: {self.stopped}."
        return text

    def to_markdown(self) -> str:
        """A Markdown page for a CI step summary."""
        s = self.summary()
        lines = [
            f"## pivotkit drift: {self.target}",
            "",
            self.text_summary(),
            "",
            "| breaking | warning | info | suppressed | answers | calls |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {s['breaking']} | {s['warning']} | {s['info']} | {s['suppressed']} | "
            f"{s['answers']} | {s['calls']} |",
            "",
        ]
        if self.findings:
            lines += [
                "### Findings",
                "",
                "| severity | operation | pointer | kind | expected | observed | example "
                "| answers |",
                "|---|---|---|---|---|---|---|---:|",
            ]
            lines += [_md_row(f) for f in self.findings]
            lines.append("")
        if self.suppressed:
            lines += [
                "### Suppressed (known deviations)",
                "",
                "| operation | pointer | kind | reason | owner | until |",
                "|---|---|---|---|---|---|",
            ]
            for f in self.suppressed:
                d = f.suppressed_by
                assert d is not None
                lines.append(
                    f"| {f.operation} | `{f.pointer or '/'}` | {f.kind} | "
                    f"{_md(d.reason)} | {_md(d.owner)} | {d.expires.isoformat()} |"
                )
            lines.append("")
        if self.errors:
            lines += ["### Errors", ""] + [f"- {_md(e)}" for e in self.errors] + [""]
        return "\n".join(lines)

    def to_junit(self) -> str:
        """JUnit XML: one test case per operation, failed by its breaking findings."""
        suite = ElementTree.Element(
            "testsuite",
            {
                "name": "pivotkit-drift",
                "tests": str(len(self.operations)),
                "failures": str(sum(1 for op in self.operations if self._breaking(op))),
                "errors": "0",
                "skipped": str(sum(1 for op in self.operations if not self.answers.get(op))),
            },
        )
        for op in self.operations:
            case = ElementTree.SubElement(
                suite, "testcase", {"classname": "pivotkit.drift", "name": op}
            )
            breaking = self._breaking(op)
            others = [f for f in self.findings if f.operation == op and f.severity != "breaking"]
            if not self.answers.get(op):
                ElementTree.SubElement(case, "skipped", {"message": "no answer"})
            elif breaking:
                failure = ElementTree.SubElement(
                    case,
                    "failure",
                    {"message": f"{len(breaking)} breaking finding(s)", "type": "drift"},
                )
                failure.text = "\n".join(f.line() for f in breaking)
            if others:
                out = ElementTree.SubElement(case, "system-out")
                out.text = "\n".join(f.line() for f in others)
        ElementTree.indent(suite)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            + ElementTree.tostring(suite, encoding="unicode")
            + "\n"
        )

    def _breaking(self, op: str) -> list[Finding]:
        return [f for f in self.findings if f.operation == op and f.severity == "breaking"]

    def webhook_payload(self) -> dict[str, Any]:
        """The webhook's JSON: a Slack-style ``text`` plus the machine-readable summary."""
        return {
            "text": self.text_summary(),
            "format": FORMAT,
            "target": self.target,
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings[:50]],
        }


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_row(f: Finding) -> str:
    example = "" if f.example is None else json.dumps(f.example, ensure_ascii=False)
    if len(example) > 60:
        example = example[:57] + "..."
    shown = f"`{_md(example)}`" if example else ""
    return (
        f"| {f.severity} | {f.operation} | `{f.pointer or '/'}` | {f.kind} | "
        f"{_md(f.expected)} | {_md(f.observed)} | {shown} | {f.count}/{f.answers} |"
    )


def build_report(
    analysis: DriftAnalysis,
    *,
    target: str,
    deviations: Iterable[Deviation] = (),
    today: dt.date | None = None,
    run: RunResult | None = None,
    operations: Iterable[str] | None = None,
    started: str = "",
) -> DriftReport:
    """Turn an analysis (and the run that fed it) into a report."""
    active, suppressed = analysis.findings(deviations, today)
    ops = sorted(set(operations or ()) | set(analysis.answers))
    stopped = None
    if run is not None and run.quota is not None:
        stopped = str(run.quota)
    elif run is not None and run.budget_spent:
        stopped = f"call budget spent after {run.calls} calls"
    return DriftReport(
        target=target,
        findings=active,
        suppressed=suppressed,
        answers=dict(analysis.answers),
        statuses={k: dict(v) for k, v in analysis.statuses.items()},
        operations=ops,
        errors=list(run.errors) if run else [],
        calls=run.calls if run else 0,
        planned=run.planned if run else 0,
        preexisting=analysis.preexisting,
        stopped=stopped,
        started=started,
        finished=_now(),
    )


def analyze(
    contract: Contract,
    answers: Iterable[Answer],
    *,
    profile: AccountProfile | None = None,
    deviations: Iterable[Deviation] = (),
    today: dt.date | None = None,
    target: str = "recorded",
) -> DriftReport:
    """The drift report of answers already at hand (no HTTP): the in-process entry point."""
    analysis = DriftAnalysis(contract, profile=profile)
    for answer in answers:
        analysis.add(answer)
    return build_report(analysis, target=target, deviations=deviations, today=today)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def post_webhook(
    url: str,
    report: DriftReport,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """POST the report's webhook payload as JSON; returns the receiver's status."""
    with httpx.Client(timeout=timeout, transport=transport) as client:
        response = client.post(url, json=report.webhook_payload())
    return response.status_code


def write_drift_fixtures(
    answers: Iterable[tuple[Answer, set[str]]],
    root: Path,
    *,
    schemas_dir: Path | None = None,
    account: str = "live",
    upstream: str = "",
    secrets: Iterable[str] = (),
) -> list[Path]:
    """Write each drifted answer as a new fixture under ``root`` for review.

    Atomic, ``meta.source`` live, never overwriting (a taken name gets ``-2``, ``-3``...),
    never inside the contract's directory.
    """
    target = root.resolve()
    if schemas_dir is not None:
        guard = schemas_dir.resolve()
        if target == guard or guard in target.parents:
            raise ConfigError(
                "--update-fixtures",
                f"{root} is inside the contract ({schemas_dir}); fixtures for review go elsewhere",
            )
    try:
        from pivotkit.redact import Redactor

        redactor: Any = Redactor.build(secrets=[s for s in secrets if s])
    except ImportError:  # pragma: no cover - redact.py ships with pivotkit
        redactor = None
    stamp = _now()
    written: list[Path] = []
    for answer, kinds in answers:
        if not kinds:
            continue
        base = (
            answer.baseline.name
            if answer.baseline is not None
            else safe_name(answer.request.path.strip("/").replace("/", "-"))
        )
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k not in ("content-length", "transfer-encoding", "connection")
        }
        request_headers = {
            k: v
            for k, v in answer.request.headers.items()
            if k.lower() != "ocp-apim-subscription-key"
        }
        exchange = Exchange(
            answer.operation_id,
            "",
            Request(
                answer.request.method,
                answer.request.path,
                MappingProxyType(dict(answer.request.query)),
                MappingProxyType(request_headers),
            ),
            Response(answer.status, answer.body, MappingProxyType(headers)),
            MappingProxyType(
                {
                    "operationId": answer.operation_id,
                    "source": "live",
                    "recorded": stamp,
                    "account": account,
                    "upstream": upstream,
                    "notes": "re-recorded by pivotkit drift for review: "
                    + ", ".join(sorted(kinds)),
                }
            ),
        )
        if redactor is not None:
            exchange = redactor.exchange(exchange)
        day = stamp[:10].replace("-", "")
        for n in range(1, 1000):
            name = f"{base}-drift-{day}" + (f"-{n}" if n > 1 else "")
            candidate = Exchange(
                exchange.operation_id, name, exchange.request, exchange.response, exchange.meta
            )
            try:
                written.append(write_exchange(candidate, target, overwrite=False))
                break
            except FixtureExists:
                continue
    return written


def write_text(path: Path, text: str) -> None:
    """Write a report file atomically."""
    atomic_write_text(path, text)


def append_step_summary(path: Path, markdown: str) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY`` (the runner owns the file: appending is the API)."""
    with contextlib.suppress(OSError), path.open("a", encoding="utf-8") as handle:
        handle.write(markdown + "\n")


# -- the command ---------------------------------------------------------------------------------

KEY_SHAPE = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class DriftOptions:
    """The options of ``pivotkit drift`` (see its ``--help``)."""

    target: str = "live"
    fixtures_dir: Path | None = None
    schemas_dir: Path | None = None
    plan: Path | None = None
    sample: int | None = None
    seed: int | None = None
    budget: int | None = None
    concurrency: int = 4
    rate: float = 5.0
    max_wait: float = 120.0
    account_profile: Path | None = None
    account: str | None = None
    known_deviations: Path | None = None
    markdown: Path | None = None
    json_out: Path | None = None
    junit: Path | None = None
    webhook: str | None = None
    update_fixtures: Path | None = None
    today: dt.date | None = None
    timeout: float = 30.0


def run_drift(
    options: DriftOptions,
    *,
    environ: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``pivotkit drift``: plan, replay, analyse, report. Returns the exit code (0 no
    breaking finding, 1 breaking, 3 unreachable or out of quota); ConfigError for exit 2."""
    import os

    from pivotkit.client import DEFAULT_LIVE_BUDGET, KEY_ENV, ApiKey, parse_target
    from pivotkit.contract import Contract

    env = os.environ if environ is None else environ
    target = parse_target(options.target)
    if target.kind == "mock":
        raise ConfigError(
            "--target", "drift needs a server: start `pivotkit serve` and pass its URL, or 'live'"
        )
    key = ApiKey.from_env(env, KEY_ENV)
    if key is not None and not KEY_SHAPE.fullmatch(key.reveal()):
        raise ConfigError(
            KEY_ENV,
            "a key is 32 lowercase hexadecimal characters; the value "
            "set has another shape (it is not shown)",
        )
    if key is None and target.kind == "live":
        raise ConfigError(
            KEY_ENV, "set the subscription key in $PIVOT_API_KEY to run against the live API"
        )
    budget = options.budget
    if budget is None and target.kind == "live":
        budget = DEFAULT_LIVE_BUDGET
    contract = Contract.load(options.schemas_dir)
    fixtures = FixtureSet.load(options.fixtures_dir)
    profile = (
        load_account_profile(options.account_profile, options.account)
        if options.account_profile is not None
        else AccountProfile(name="default")
    )
    deviations = (
        load_deviations(options.known_deviations) if options.known_deviations is not None else []
    )
    if options.sample is not None and options.sample < 1:
        raise ConfigError("--sample", "must be 1 or more")
    if options.plan is not None:
        plan = plan_from_file(options.plan, fixtures, contract, profile=profile)
        if options.sample is not None and options.sample < len(plan):
            chosen = sorted(random.Random(options.seed).sample(range(len(plan)), options.sample))
            plan = [plan[i] for i in chosen]
    else:
        plan = plan_from_fixtures(
            fixtures, contract, sample=options.sample, seed=options.seed, profile=profile
        )
    if not plan:
        raise ConfigError(
            "--fixtures",
            f"no replayable fixture under {fixtures.root} "
            f"(status {', '.join(map(str, sorted(REPLAYED_STATUSES)))})",
        )
    started = _now()
    echo(
        f"drift: {len(plan)} requests to {target.label}"
        + (f" (budget {budget})" if budget is not None else "")
    )
    run = replay(
        plan,
        target.base_url,
        key=key,
        budget=budget,
        concurrency=options.concurrency,
        rate=options.rate,
        max_wait=options.max_wait,
        timeout=options.timeout,
        transport=transport,
        sleep=sleep,
    )
    if run.answers and all(a.status == 401 for a in run.answers):
        raise ConfigError(
            KEY_ENV,
            f"{target.label} answered 401 to every request: the key is "
            "missing, unknown, regenerated, or not subscribed to this API",
        )
    secrets = [key.reveal()] if key is not None else []
    analysis = DriftAnalysis(contract, profile=profile, secrets=secrets)
    drifted = [(answer, analysis.add(answer)) for answer in run.answers]
    report = build_report(
        analysis,
        target=target.label,
        deviations=deviations,
        today=options.today,
        run=run,
        operations=sorted({p.operation_id for p in plan}),
        started=started,
    )
    for finding in report.findings:
        echo(finding.line())
    for finding in report.suppressed:
        echo(f"(suppressed) {finding.line()}")
    for error in run.errors:
        echo(f"error: {error}")
    echo(report.text_summary())
    _write_reports(report, options, env, echo)
    if options.update_fixtures is not None:
        written = write_drift_fixtures(
            drifted,
            options.update_fixtures,
            schemas_dir=contract.directory,
            account=profile.name,
            upstream=target.label,
            secrets=secrets,
        )
        echo(f"{len(written)} drifted answers written under {options.update_fixtures} for review")
    if run.quota is not None or run.unreachable:
        return 3
    return report.exit_code


def _write_reports(
    report: DriftReport, options: DriftOptions, env: Mapping[str, str], echo: Callable[[str], None]
) -> None:
    markdown = report.to_markdown()
    if options.markdown is not None:
        write_text(options.markdown, markdown)
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        append_step_summary(Path(summary), markdown)
    if options.json_out is not None:
        write_text(options.json_out, report.dumps())
    if options.junit is not None:
        write_text(options.junit, report.to_junit())
    if options.webhook:
        try:
            status = post_webhook(options.webhook, report)
        except httpx.HTTPError as exc:
            echo(f"webhook: not delivered ({type(exc).__name__})")  # the URL may hold a token
        else:
            if status >= 400:
                echo(f"webhook: the receiver answered {status}")


__all__ = [
    "FORMAT",
    "KINDS",
    "REPLAYED_STATUSES",
    "SEVERITIES",
    "AccountProfile",
    "Answer",
    "Deviation",
    "DriftAnalysis",
    "DriftOptions",
    "DriftReport",
    "Finding",
    "PlannedRequest",
    "RunResult",
    "analyze",
    "append_step_summary",
    "build_report",
    "load_account_profile",
    "load_deviations",
    "plan_from_file",
    "plan_from_fixtures",
    "post_webhook",
    "redact_example",
    "replay",
    "run_drift",
    "write_drift_fixtures",
    "write_text",
]
