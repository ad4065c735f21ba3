"""The classifier: what a difference from the contract means for a consumer, by direction.

Each rule maps one observed difference (a status, a header, a schema violation, an observed
schema's diff with the contract) to a finding kind and severity (:data:`KINDS`). The
per-answer rules fill an :class:`Evidence`; :data:`DIRECTION` maps the observer's
differences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pivotkit.contract import Contract, Violation
from pivotkit.drift.findings import HEADER_POINTER, KINDS, json_type, more_severe
from pivotkit.observer import describe_format, string_format
from pivotkit.operations import Operation
from pivotkit.pointers import ITEMS, escape_pointer_segment, split_pointer

if TYPE_CHECKING:
    from pivotkit.drift.replay import Answer

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

#: Observed-vs-contract differences that are drift, and the finding kind they become.
#: The others (only in the contract, always present but optional, narrower types, enums
#: or formats the contract leaves open) do not break a consumer.
DIRECTION: Mapping[str, str] = MappingProxyType(
    {
        "type-differs": "type-changed",
        "nullable-observed": "became-nullable",
        "format-differs": "format-changed",
        "enum-new-values": "new-enum-value",
        "only-observed": "new-field",
        "required-in-contract-missing-in-observed": "required-missing",
    }
)


def normalize(body: Any, pointer: str) -> str:
    """The pointer with array indices replaced by ``*`` (the observer's notation)."""
    out = []
    node = body
    for part in split_pointer(pointer):
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


def parent(pointer: str) -> str:
    """The pointer one level up ("" for the root)."""
    return pointer[: pointer.rfind("/")] if pointer else ""


def depth(pointer: str) -> int:
    """How many levels below the root (an envelope field is at depth 1)."""
    return pointer.count("/")


def media_type(value: str) -> tuple[str, str | None]:
    """(media type, charset) of a Content-Type value, both lower case."""
    main, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, val = param.strip().partition("=")
        if name.lower() == "charset":
            charset = val.strip().strip('"').lower()
    return main.strip().lower(), charset


class Evidence:
    """What one answer shows: findings keyed by (pointer, kind), the worst severity kept."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], tuple[str, str, str, Any]] = {}

    def put(
        self,
        pointer: str,
        kind: str,
        expected: str,
        observed: str,
        example: Any = None,
        severity: str | None = None,
    ) -> None:
        """Record one finding of this answer."""
        sev = severity or KINDS[kind]
        old = self.found.get((pointer, kind))
        if old is None or more_severe(sev, old[0]):
            self.found[pointer, kind] = (sev, expected, observed, example)

    def has(self, pointer: str, *kinds: str) -> bool:
        """Whether a finding of one of ``kinds`` is at ``pointer``."""
        return any((pointer, kind) in self.found for kind in kinds)


Describe = Callable[[str, int, str], "str | None"]
Withheld = Callable[[Operation, str], bool]


class Classifier:
    """Per-answer rules. ``describe(op, status, pointer)`` says what the contract expects
    there; ``withheld(op, pointer)`` whether the account may not see a field."""

    def __init__(self, contract: Contract, describe: Describe, withheld: Withheld) -> None:
        self.contract = contract
        self.describe = describe
        self.withheld = withheld

    def status(
        self, op: Operation, answer: Answer, expected_status: int, evidence: Evidence
    ) -> None:
        """The answer's status is not the recorded one."""
        body = answer.body
        if (
            answer.status == 404
            and 404 in op.statuses
            and not answer.not_json
            and self.contract.is_valid(op.operation_id, 404, body)
        ):
            evidence.put(
                "",
                "operation-gone",
                f"{expected_status} from the backend",
                "404 from the gateway: no operation matches the path",
                body,
            )
            return
        expected = str(expected_status)
        if answer.baseline is not None and self.contract.is_empty_result(
            answer.baseline.response.body
        ):
            expected += " (empty result)"
        evidence.put("", "status-changed", expected, str(answer.status), body)

    def headers(self, op: Operation, answer: Answer, evidence: Evidence) -> None:
        """Content type not declared, charset or encoding changed from the recording."""
        declared = self.contract.media_types(op.operation_id, answer.status)
        live_type = answer.headers.get("content-type", "")
        media, charset = media_type(live_type)
        pointer = HEADER_POINTER + "content-type"
        if declared and media not in declared:
            evidence.put(
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
            _, old_charset = media_type(recorded["content-type"])
            if old_charset != charset:
                evidence.put(
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
                evidence.put(
                    HEADER_POINTER + "content-encoding",
                    "header-changed",
                    old,
                    new or "identity (no content-encoding)",
                    new,
                )

    def violation(
        self, op: Operation, status: int, body: Any, violation: Violation, evidence: Evidence
    ) -> None:
        """One strict-mode violation of the answer's body."""
        pointer = normalize(body, violation.pointer)
        keyword = violation.schema_path.rsplit("/", 1)[-1]
        value = violation.value
        if violation.kind == "undeclared" or keyword in (
            "unevaluatedProperties",
            "additionalProperties",
        ):
            evidence.put(
                pointer, "new-field", "not declared", f"new field of type {json_type(value)}", value
            )
            return
        if keyword == "required":
            match = _REQUIRED_MESSAGE.match(violation.message)
            missing = f"{pointer}/{escape_pointer_segment(match.group(1) if match else '?')}"
            if depth(missing) <= 1:
                evidence.put(missing, "envelope-changed", "required envelope field", "absent")
            elif not self.withheld(op, missing):
                evidence.put(missing, "required-missing", "required", "absent")
            return
        expected = self.describe(op.operation_id, status, pointer) or keyword
        self._keyword(keyword, pointer, expected, violation, evidence)

    @staticmethod
    def _keyword(
        keyword: str, pointer: str, expected: str, violation: Violation, evidence: Evidence
    ) -> None:
        value = violation.value
        envelope = depth(pointer) <= 1
        if keyword == "type":
            kind = (
                "envelope-changed"
                if envelope
                else ("became-nullable" if value is None else "type-changed")
            )
            evidence.put(pointer, kind, expected, json_type(value), value)
        elif keyword in ("const", "enum"):
            evidence.put(
                pointer,
                "envelope-changed" if envelope else "new-enum-value",
                expected,
                json.dumps(value, ensure_ascii=False),
                value,
            )
        elif keyword in ("pattern", "format"):
            observed = (
                describe_format(string_format(value))
                if isinstance(value, str)
                else json_type(value)
            )
            evidence.put(pointer, "format-changed", expected, observed, value)
        elif keyword in _CONSTRAINTS:
            evidence.put(
                pointer,
                "constraint-violated",
                f"{keyword} of the contract",
                violation.message[:200],
                value,
            )
        else:
            evidence.put(
                pointer,
                "envelope-changed" if envelope else "type-changed",
                expected,
                violation.message[:200],
                value,
            )


def difference_kind(kind: str, pointer: str) -> str | None:
    """The finding kind of an observed-vs-contract difference (None: not drift)."""
    found = DIRECTION.get(kind)
    if found is not None and depth(pointer) <= 1 and found != "new-field":
        return "envelope-changed"
    return found
