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

#: Every finding kind and its severity. ``header-changed`` is breaking only when the
#: content type stops being one the contract declares.
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
    """Accumulates one finding (operation, pointer, kind) over answers."""

    severity: str
    expected: str
    observed: str
    example: Any
    count: int = 0


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
