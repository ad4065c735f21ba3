"""Drift findings: the kinds, their severities, and one finding with its evidence."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivotkit.drift.deviations import Deviation

FORMAT = "pivotkit-drift/1"
SEVERITIES = ("breaking", "warning", "info")

#: Every finding kind and its severity, for live drift (answers against the contract) and
#: for ``pivotkit diff`` (a new contract against an old one). ``header-changed`` is breaking
#: only when the content type stops being one the contract declares.
KINDS: Mapping[str, str] = MappingProxyType(
    {
        "operation-gone": "breaking",
        "path-changed": "breaking",
        "status-changed": "breaking",
        "envelope-changed": "breaking",
        "field-removed": "breaking",
        "required-missing": "breaking",
        "type-changed": "breaking",
        "became-nullable": "breaking",
        "format-changed": "breaking",
        "parameter-required": "breaking",
        "parameter-changed": "breaking",
        "header-changed": "warning",
        "new-enum-value": "warning",
        "constraint-violated": "warning",
        "integer-as-float": "warning",
        "result-emptied": "warning",
        "pattern-changed": "warning",
        "constraint-relaxed": "warning",
        "status-added": "warning",
        "header-removed": "warning",
        "parameter-removed": "warning",
        "new-field": "info",
        "deviation-expired": "info",
        "operation-added": "info",
        "status-removed": "info",
        "header-added": "info",
        "parameter-added": "info",
        "parameter-relaxed": "info",
        "became-required": "info",
        "type-narrowed": "info",
        "enum-value-removed": "info",
        "constraint-tightened": "info",
    }
)
#: Kinds only a comparison of two contracts gives (a live answer cannot show them).
CONTRACT_KINDS = frozenset(
    {
        "path-changed",
        "parameter-required",
        "parameter-changed",
        "pattern-changed",
        "constraint-relaxed",
        "status-added",
        "parameter-removed",
        "operation-added",
        "status-removed",
        "header-added",
        "parameter-added",
        "parameter-relaxed",
        "became-required",
        "type-narrowed",
        "enum-value-removed",
        "constraint-tightened",
    }
)
#: Kinds that explain every finding below their pointer (one finding per root cause).
ROOT_CAUSES = frozenset(
    {"type-changed", "envelope-changed", "became-nullable", "field-removed", "required-missing"}
)
#: Lifecycle of a finding across the runs of a history.
STATUSES = ("new", "ongoing", "resolved")
#: Where header findings point (never a body pointer: those start with ``/``).
HEADER_POINTER = "headers/"


def more_severe(a: str, b: str) -> bool:
    """Whether severity ``a`` is worse than ``b``."""
    return SEVERITIES.index(a) < SEVERITIES.index(b)


def json_type(value: Any) -> str:
    """The JSON type of a value (containers kept as JSON text by violations included)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        if value[:1] in "[{":
            try:
                parsed = json.loads(value)
            except ValueError:
                return "string"
            return "array" if isinstance(parsed, list) else "object"
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@dataclass
class Tally:
    """Accumulates one finding (operation, pointer, kind) over answers; ``missing`` and
    ``objects`` add up, for a removal, the objects without the field and all of them."""

    severity: str
    expected: str
    observed: str
    example: Any
    count: int = 0
    missing: int = 0
    objects: int = 0


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
    contract: Any = None
    status: str = ""
    since: int | None = None
    since_date: str = ""
    runs: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two findings of different runs the same finding."""
        return (self.operation, self.pointer, self.kind)

    @property
    def sort_key(self) -> tuple[int, str, str, str]:
        return (SEVERITIES.index(self.severity), self.operation, self.pointer, self.kind)

    def line(self) -> str:
        """One readable line."""
        where = self.pointer or "/"
        line = (
            f"[{self.severity}] {self.operation} {where}: {self.kind} - expected "
            f"{self.expected}; observed {self.observed} ({self.count}/{self.answers} answers)"
        )
        return line + (f" [{self.life()}]" if self.status else "")

    def life(self) -> str:
        """``new``, ``ongoing since run 3 (2 runs)`` or ``resolved``."""
        if self.status == "ongoing":
            return f"ongoing since run {self.since} ({self.runs} runs)"
        if self.status == "resolved":
            return f"resolved (seen since run {self.since}, {self.runs} runs)"
        return self.status

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
            "contract": self.contract,
            "status": self.status or None,
            "since": self.since,
            "sinceDate": self.since_date or None,
            "runs": self.runs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The finding of :meth:`to_dict` (a history's record; the deviation is not kept)."""
        return cls(
            str(data["operation"]),
            str(data["pointer"]),
            str(data["kind"]),
            str(data["severity"]),
            str(data["expected"]),
            str(data["observed"]),
            data.get("example"),
            int(data.get("count", 0)),
            int(data.get("answers", 0)),
            contract=data.get("contract"),
            status=str(data.get("status") or ""),
            since=data.get("since"),
            since_date=str(data.get("sinceDate") or ""),
            runs=int(data.get("runs", 0)),
        )
