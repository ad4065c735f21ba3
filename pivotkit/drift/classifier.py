"""The classifier: what a difference from the contract means for a consumer, by direction.

:data:`RULES` and :func:`finding_kind` are the one place where a difference becomes a finding
kind (severity in :data:`~pivotkit.drift.findings.KINDS`), for live drift (a strict violation
of an answer, an observed schema's diff with the contract) and for ``pivotkit diff`` (a new
contract's declarations against an old one's). The per-answer rules (status, headers,
violations) fill an :class:`Evidence`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from pivotkit.contract import Contract, Violation
from pivotkit.drift.findings import HEADER_POINTER, KINDS, ROOT_CAUSES, json_type, more_severe
from pivotkit.observer import describe_format, string_format
from pivotkit.operations import Operation
from pivotkit.pointers import ITEMS, escape_pointer_segment, split_pointer, values_at

if TYPE_CHECKING:
    from pivotkit.drift.baseline import Expectation
    from pivotkit.drift.replay import Answer

_REQUIRED_MESSAGE = re.compile(r"^'(.+)' is a required property$")
#: Headers with rules of their own (content type against the contract, encoding and charset
#: against the earlier answer).
_OWN_RULES = frozenset({"content-type", "content-encoding"})
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

#: THE direction rules: what a difference (a :data:`~pivotkit.difference.DIFF_KINDS` kind, or a
#: strict violation mapped to one) means for a consumer, by where it is seen. ``answer``: a
#: body position observed in live answers, against the contract; ``contract``: a body position
#: a new contract declares, against the old one; ``request``: a parameter the new contract
#: accepts, against what the old one let consumers send (the direction reversed: the consumer
#: produces it). ``status``, ``header``, ``media-type``, ``parameter``, ``operation``: an
#: element an answer or the new contract has that was not expected (``only-observed``), that is
#: gone (``only-in-contract``), or that is another (``differs``).
#: A difference without a rule is not drift (e.g. an optional field always present).
RULES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "answer": {
            "type-differs": "type-changed",
            "integral-float": "integer-as-float",
            "nullable-observed": "became-nullable",
            "format-differs": "format-changed",
            "enum-new-values": "new-enum-value",
            "only-observed": "new-field",
            "required-in-contract-missing-in-observed": "required-missing",
            "constraint-exceeded": "constraint-violated",
        },
        "contract": {
            "type-differs": "type-changed",
            "nullable-observed": "became-nullable",
            "format-differs": "format-changed",
            "pattern-differs": "pattern-changed",
            "enum-new-values": "new-enum-value",
            "enum-fewer-values": "enum-value-removed",
            "only-observed": "new-field",
            "only-in-contract": "field-removed",
            "required-in-contract-missing-in-observed": "required-missing",
            "required-observed-optional-in-contract": "became-required",
            "constraint-relaxed": "constraint-relaxed",
            "constraint-tightened": "constraint-tightened",
            "type-narrower": "type-narrowed",
        },
        "request": {
            "type-differs": "parameter-changed",
            "nullable-observed": "parameter-changed",
            "format-differs": "parameter-changed",
            "pattern-differs": "parameter-changed",
            "enum-new-values": "parameter-changed",
            "constraint-relaxed": "parameter-changed",
            "enum-fewer-values": "parameter-relaxed",
            "constraint-tightened": "parameter-relaxed",
            "type-narrower": "parameter-relaxed",
        },
        "status": {
            "only-observed": "status-added",
            "only-in-contract": "status-removed",
            "differs": "status-changed",
            "gateway-not-found": "operation-gone",
        },
        "success-status": {"only-observed": "status-added", "only-in-contract": "status-changed"},
        "header": {
            "only-observed": "header-added",
            "only-in-contract": "header-removed",
            "differs": "header-changed",
        },
        "media-type": {"only-in-contract": "header-changed", "differs": "header-changed"},
        "parameter": {
            "only-observed": "parameter-added",
            "only-in-contract": "parameter-removed",
            "became-required": "parameter-required",
        },
        "required-parameter": {"only-observed": "parameter-required"},
        "operation": {
            "only-observed": "operation-added",
            "only-in-contract": "operation-gone",
            "path-differs": "path-changed",
        },
    }
)
#: Positions whose findings are more severe than their kind: a content type no longer
#: declared is breaking (a header change is otherwise a warning).
SEVERITY_AT: Mapping[str, str] = MappingProxyType({"media-type": "breaking"})


def severity_of(kind: str, position: str = "answer") -> str:
    """The severity of a finding kind at a position (:data:`SEVERITY_AT`, else KINDS)."""
    return SEVERITY_AT.get(position, KINDS[kind])


#: Kinds that become ``envelope-changed`` at an envelope field (depth 1) or the root.
_ENVELOPE_KINDS = frozenset(
    {
        "type-changed",
        "became-nullable",
        "new-enum-value",
        "format-changed",
        "required-missing",
        "field-removed",
    }
)
#: Strict-violation keywords and the difference each shows.
_KEYWORDS: Mapping[str, str] = MappingProxyType(
    {
        "type": "type-differs",
        "const": "enum-new-values",
        "enum": "enum-new-values",
        "pattern": "format-differs",
        "format": "format-differs",
        "required": "required-in-contract-missing-in-observed",
        "unevaluatedProperties": "only-observed",
        "additionalProperties": "only-observed",
        **{name: "constraint-exceeded" for name in _CONSTRAINTS},
    }
)


def finding_kind(difference: str, pointer: str, position: str = "answer") -> str | None:
    """The finding kind of a difference at ``pointer`` seen at ``position`` (a key of
    :data:`RULES`), or None when it is no drift. The one place direction is decided."""
    kind = RULES[position].get(difference)
    body = pointer.startswith("/") or pointer == ""
    if kind in _ENVELOPE_KINDS and position in ("answer", "contract") and body:
        return "envelope-changed" if depth(pointer) <= 1 else kind
    return kind


def rule(difference: str, position: str) -> str:
    """The kind of an element difference that always is drift (a status, a header, a
    parameter, an operation: :data:`RULES`); KeyError when the table has no such rule."""
    kind = finding_kind(difference, "", position)
    if kind is None:
        raise KeyError(f"no direction rule for {difference} at {position}")
    return kind


def difference_kind(kind: str, pointer: str) -> str | None:
    """The finding kind of an observed-vs-contract difference (None: not drift)."""
    return finding_kind(kind, pointer, "answer")


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


@dataclass
class Entry:
    """One finding of one answer; a removal counts the objects without the field."""

    severity: str
    expected: str
    observed: str
    example: Any = None
    missing: int = 0
    objects: int = 0


class Evidence:
    """What one answer shows: findings keyed by (pointer, kind), the worst severity kept."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Entry] = {}

    def put(
        self,
        pointer: str,
        kind: str,
        expected: str,
        observed: str,
        example: Any = None,
        severity: str | None = None,
        *,
        missing: int = 0,
        objects: int = 0,
    ) -> None:
        """Record one finding of this answer (the first one at a pointer and kind stays,
        unless a later one is more severe)."""
        sev = severity or KINDS[kind]
        old = self.found.get((pointer, kind))
        if old is None or more_severe(sev, old.severity):
            self.found[pointer, kind] = Entry(sev, expected, observed, example, missing, objects)

    def has(self, pointer: str, *kinds: str) -> bool:
        """Whether a finding of one of ``kinds`` is at ``pointer``."""
        return any((pointer, kind) in self.found for kind in kinds)

    def collapse(self) -> None:
        """One finding per root cause: drop what a type change, a removal or a null at a
        pointer above already explains."""
        drop_below(self.found)


def drop_below(found: dict[Any, Any], at: Callable[[Any], tuple[str, str]] = lambda k: k) -> None:
    """Remove, in place, the entries of ``found`` whose pointer lies below the pointer of a
    root-cause entry (:data:`~pivotkit.drift.findings.ROOT_CAUSES`); ``at`` gives an entry
    key's (pointer, kind)."""
    roots = {at(key)[0] for key in found if at(key)[1] in ROOT_CAUSES}
    if not roots:
        return
    for key in list(found):
        pointer = at(key)[0]
        if any(pointer.startswith(root + "/") for root in roots):
            del found[key]


Describe = Callable[[str, int, str], "str | None"]
Withheld = Callable[[Operation, str], bool]


class Classifier:
    """Per-answer rules. ``describe(op, status, pointer)`` says what the contract expects
    there; ``withheld(op, pointer)`` whether the account may not see a field."""

    def __init__(self, contract: Contract, describe: Describe, withheld: Withheld) -> None:
        self.contract = contract
        self.describe = describe
        self.withheld = withheld
        self._headers: dict[tuple[str, int], dict[str, Any]] = {}

    def status(
        self,
        op: Operation,
        answer: Answer,
        expected: Expectation | None,
        evidence: Evidence,
    ) -> None:
        """The answer's status is not the one an earlier answer had (else 200)."""
        body = answer.body
        expected_status = expected.status if expected is not None else 200
        if (
            answer.status == 404
            and 404 in op.statuses
            and not answer.not_json
            and self.contract.is_valid(op.operation_id, 404, body)
        ):
            evidence.put(
                "",
                rule("gateway-not-found", "status"),
                f"{expected_status} from the backend",
                "404 from the gateway: no operation matches the path",
                body,
            )
            return
        text = str(expected_status)
        if expected is not None and expected.empty:
            text += " (empty result)"
        if expected is not None:
            text += f" ({expected.source})"
        evidence.put("", rule("differs", "status"), text, str(answer.status), body)

    def headers(
        self, op: Operation, answer: Answer, expected: Iterable[Expectation], evidence: Evidence
    ) -> None:
        """Content type not declared, charset or encoding changed from an earlier answer."""
        declared = self.contract.media_types(op.operation_id, answer.status)
        live_type = answer.headers.get("content-type", "")
        media, charset = media_type(live_type)
        pointer = HEADER_POINTER + "content-type"
        if declared and media not in declared:
            evidence.put(
                pointer,
                rule("differs", "media-type"),
                " or ".join(sorted(declared)),
                live_type or "no content-type",
                live_type,
                severity=severity_of("header-changed", "media-type"),
            )
        self._provider_headers(op, answer, expected, evidence)
        for before in expected:
            if before.content_type is not None:
                _, old_charset = media_type(before.content_type)
                if old_charset != charset:
                    evidence.put(
                        pointer,
                        rule("differs", "header"),
                        f"{before.content_type} ({before.source})",
                        live_type or "no content-type",
                        live_type,
                    )
            if before.content_encoding is not None:
                old = before.content_encoding.lower()
                new = answer.headers.get("content-encoding", "").lower()
                if old != new:
                    evidence.put(
                        HEADER_POINTER + "content-encoding",
                        rule("differs", "header"),
                        f"{old} ({before.source})",
                        new or "identity (no content-encoding)",
                        new,
                    )

    def _provider_headers(
        self, op: Operation, answer: Answer, expected: Iterable[Expectation], evidence: Evidence
    ) -> None:
        """Each other declared header: gone when an earlier answer had it, changed when its
        value breaks its schema (content type and encoding have their own rules above)."""
        for name, validator in self._header_validators(op.operation_id, answer.status).items():
            pointer = HEADER_POINTER + name
            value = answer.headers.get(name)
            if value is None:
                before = next((e for e in expected if name in e.headers), None)
                if before is not None:
                    evidence.put(
                        pointer,
                        rule("only-in-contract", "header"),
                        f"present ({before.source})",
                        "absent",
                    )
            elif not validator.is_valid(int(value) if value.isdigit() else value):
                evidence.put(
                    pointer,
                    rule("differs", "header"),
                    json.dumps(validator.schema, ensure_ascii=False, sort_keys=True),
                    value,
                    value,
                )

    def _header_validators(self, operation_id: str, status: int) -> dict[str, Any]:
        key = (operation_id, status)
        cached = self._headers.get(key)
        if cached is None:
            declared = self.contract.response_headers(operation_id, status)
            cached = self._headers[key] = {
                name.lower(): Draft202012Validator(dict(schema))
                for name, schema in declared.items()
                if name.lower() not in _OWN_RULES and isinstance(schema, Mapping)
            }
        return cached

    def violation(
        self, op: Operation, status: int, body: Any, violation: Violation, evidence: Evidence
    ) -> None:
        """One strict-mode violation of the answer's body, classified by :data:`RULES`."""
        pointer = normalize(body, violation.pointer)
        keyword = violation.schema_path.rsplit("/", 1)[-1]
        found = values_at(body, violation.pointer)
        value = found[0] if found else violation.value  # the value, not its JSON text
        if violation.kind == "undeclared":
            difference = "only-observed"
        else:
            difference = _KEYWORDS.get(keyword, "type-differs")
        if difference in ("type-differs", "enum-new-values") and value is None:
            difference = "nullable-observed"  # a null where a type or a value list says no
        if difference == "required-in-contract-missing-in-observed":
            match = _REQUIRED_MESSAGE.match(violation.message)
            missing = f"{pointer}/{escape_pointer_segment(match.group(1) if match else '?')}"
            kind = finding_kind(difference, missing)
            if kind == "envelope-changed":
                evidence.put(missing, kind, "required envelope field", "absent")
            elif kind is not None and not self.withheld(op, missing):
                evidence.put(missing, kind, "required", "absent")
            return
        kind = finding_kind(difference, pointer)
        if kind is None:
            return
        if difference == "only-observed":
            observed = f"new field of type {json_type(value)}"
            evidence.put(pointer, kind, "not declared", observed, value)
            return
        expected = self.describe(op.operation_id, status, pointer) or keyword
        evidence.put(pointer, kind, expected, _observed(difference, value, violation), value)


def _observed(difference: str, value: Any, violation: Violation) -> str:
    """What came back, in the words of the difference."""
    if difference == "nullable-observed" or (
        difference == "type-differs" and violation.schema_path.endswith("/type")
    ):
        return json_type(value)
    if difference == "enum-new-values":
        return json.dumps(value, ensure_ascii=False)
    if difference == "format-differs":
        if isinstance(value, str):
            return describe_format(string_format(value))
        return json_type(value)
    return violation.message[:200]
