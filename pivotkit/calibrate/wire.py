"""What the gateway and the backend say besides data, calibrated from the probes: the gateway's
messages (missing key, invalid key, unknown path), the backend's answer to a malformed
parameter, and the provider's response headers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pivotkit.calibrate.crawl import CrawlResult
from pivotkit.calibrate.draft import Draft
from pivotkit.calibrate.revision import Change
from pivotkit.conventions import GATEWAY_ERROR_FILE, INVALID_REQUEST_FILE
from pivotkit.fixtures import Exchange
from pivotkit.redact import example_of

#: Probe purpose -> the gateway-error.json definition whose const it tells.
MESSAGE_PROBES = {
    "missing-key": "missingKey",
    "invalid-key": "invalidKey",
    "unknown-path": "notFound",
}


def _probe_body(result: CrawlResult, purpose: str) -> tuple[int | None, Any]:
    for probe in result.probes:
        if probe.purpose == purpose:
            outcome = probe.outcome
            if outcome.exchange is not None:
                return outcome.exchange.response.status, outcome.exchange.response.body
            return outcome.http_status, outcome.body
    return None, None


def revise_messages(draft: Draft, result: CrawlResult) -> tuple[list[Change], list[Change]]:
    """(changes, notes) for the gateway's messages and the backend's 400 body."""
    changes: list[Change] = []
    notes: list[Change] = []
    defs = draft.data[GATEWAY_ERROR_FILE].setdefault("$defs", {})
    fields = draft.data[GATEWAY_ERROR_FILE].get("properties") or {}
    message_field = next(
        (
            k
            for k, v in fields.items()
            if isinstance(v, dict) and v.get("x-pivot-role") == "message"
        ),
        "message",
    )
    for purpose, name in MESSAGE_PROBES.items():
        status, body = _probe_body(result, purpose)
        if status is None:
            continue
        pointer = f"/$defs/{name}/const"
        message = body.get(message_field) if isinstance(body, dict) else None
        declared = (defs.get(name) or {}).get("const")
        if not isinstance(message, str):
            notes.append(
                Change(
                    GATEWAY_ERROR_FILE,
                    pointer,
                    "not-observed",
                    f"{purpose}: the upstream answered {status} without a "
                    f"`{message_field}` (kept {declared!r})",
                    1,
                    example_of(body),
                )
            )
        elif message != declared:
            defs.setdefault(name, {})["const"] = message
            changes.append(
                Change(
                    GATEWAY_ERROR_FILE,
                    pointer,
                    "const",
                    f"{purpose} ({status}): {declared!r} -> {message!r}",
                    1,
                    example_of(body),
                )
            )
    _invalid_request(draft, result, changes, notes)
    _gateway_examples(draft, result)
    return changes, notes


def _invalid_request(
    draft: Draft, result: CrawlResult, changes: list[Change], notes: list[Change]
) -> None:
    status, body = _probe_body(result, "malformed")
    if status is None:
        return
    schema = draft.data[INVALID_REQUEST_FILE]
    if status != 400 or not isinstance(body, dict) or not body:
        notes.append(
            Change(
                INVALID_REQUEST_FILE,
                "",
                "not-observed",
                f"a malformed parameter answered {status}, not a 400 with a JSON "
                "object (the contract's invalid request is kept)",
                1,
                example_of(body),
            )
        )
        return
    props = schema.setdefault("properties", {})
    required = schema.get("required") or []
    declared = {k: v.get("const") for k, v in props.items() if isinstance(v, dict)}
    if set(required) != set(body) or any(declared.get(k) != v for k, v in body.items()):
        for key, value in body.items():
            kind = "string" if isinstance(value, str) else None
            props[key] = {
                **({"type": kind} if kind else {}),
                **(props.get(key) or {}),
                "const": value,
            }
        for key in [k for k in required if k not in body]:
            props.pop(key, None)
        schema["required"] = list(body)
        schema["examples"] = [body]
        changes.append(
            Change(
                INVALID_REQUEST_FILE,
                "",
                "const",
                f"the backend's 400 body is now {body!r}",
                1,
                example_of(body),
            )
        )


def _gateway_examples(draft: Draft, result: CrawlResult) -> None:
    """The gateway-error schema's example: the missing-key answer when it was seen."""
    status, body = _probe_body(result, "missing-key")
    if status == 401 and isinstance(body, dict):
        draft.data[GATEWAY_ERROR_FILE]["examples"] = [body]


def revise_headers(
    draft: Draft, exchanges: Iterable[Exchange]
) -> tuple[list[Change], list[Change]]:
    """Provider header consts corrected from the 200 answers; headers never sent reported."""
    headers = (draft.openapi.get("components") or {}).get("headers") or {}
    answers = [ex for ex in exchanges if ex.response.status == 200]
    changes: list[Change] = []
    notes: list[Change] = []
    if not answers:
        return changes, notes
    for name, header in headers.items():
        schema = header.get("schema") if isinstance(header, dict) else None
        if not isinstance(schema, dict) or "const" not in schema:
            continue
        seen = Counter(ex.response.headers.get(name.lower()) for ex in answers)
        pointer = f"/components/headers/{name}/schema/const"
        present = {v: n for v, n in seen.items() if v is not None}
        if not present:
            notes.append(
                Change(
                    "openapi.yaml",
                    pointer,
                    "never-observed",
                    f"{name}: declared, in none of {len(answers)} answers (kept)",
                )
            )
            continue
        if len(present) == 1 and schema["const"] not in present:
            (value,) = present
            changes.append(
                Change(
                    "openapi.yaml",
                    pointer,
                    "const",
                    f"{name}: {schema['const']!r} -> {value!r} "
                    f"(in {present[value]} of {len(answers)} answers)",
                    present[value],
                    value,
                )
            )
            schema["const"] = value
            header["example"] = value
        elif len(present) > 1:
            notes.append(
                Change(
                    "openapi.yaml",
                    pointer,
                    "varies",
                    f"{name}: {len(present)} different values (kept {schema['const']!r}; review)",
                    sum(present.values()),
                )
            )
    return changes, notes
