"""Each fixture's request replayed: status, content type, body, headers, gzip, lang."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract_tests.cases import (
    CONTRACT,
    CONVENTIONS,
    OPERATIONS,
    per_fixture,
    per_operation,
    representative,
)
from contract_tests.conftest import Probe
from pivotkit.conformance import Conformance, Problem, ResponseMismatch, request_line
from pivotkit.fixtures import Exchange

LANG = CONVENTIONS.lang_parameter
DEFAULT = CONVENTIONS.default_lang


def _fail(response: Any, problems: list[Problem]) -> None:
    if problems:
        raise ResponseMismatch(request_line(response.request), response.status_code, problems)


@pytest.mark.parametrize("exchange", per_fixture("status"))
def test_status_and_content_type(
    target: Probe, pivot_contract: Conformance, exchange: Exchange
) -> None:
    """The target answers the fixture's request with its status and JSON in UTF-8."""
    response = target.replay(exchange)
    problems = pivot_contract.problems(
        response, exchange.operation_id, expect=exchange.response.status, headers=False
    )
    _fail(response, [p for p in problems if p.pointer in ("/status", "/headers/content-type")])


@pytest.mark.parametrize("exchange", per_fixture("body"))
def test_body_fits_contract(target: Probe, pivot_contract: Conformance, exchange: Exchange) -> None:
    """The body fits the contract (tolerant mode) for the status the target gave."""
    response = target.replay(exchange)
    problems = pivot_contract.problems(response, exchange.operation_id, headers=False)
    _fail(response, [p for p in problems if p.pointer != "/headers/content-type"])


@pytest.mark.parametrize("exchange", per_fixture("headers", statuses=(200,)))
def test_provider_headers(target: Probe, pivot_contract: Conformance, exchange: Exchange) -> None:
    """A 200 carries the provider's headers (cache-control, vary, x-powered-by...) and a
    content-length equal to the bytes sent."""
    response = target.replay(exchange)
    if response.status_code != 200:
        pytest.fail(
            f"{exchange.operation_id} at /status: expected 200, got "
            f"{response.status_code} (value: {response.status_code})"
        )
    _fail(response, pivot_contract.header_problems(exchange.operation_id, response))


def _sample(op_id: str) -> Exchange:
    sample = representative(CONTRACT.operation(op_id))
    if sample is None:
        pytest.skip(f"{op_id}: no 200 fixture with data to sample")
    return sample


@pytest.mark.parametrize("op", per_operation("gzip"))
def test_gzip_and_identity_same_json(target: Probe, pivot_contract: Conformance, op: Any) -> None:
    """gzip and identity encodings carry the same JSON; only gzip says content-encoding."""
    sample = _sample(op.operation_id)
    zipped = target.replay(sample, encoding="gzip")
    plain = target.replay(sample, encoding="identity")
    assert zipped.headers.get("content-encoding") == "gzip", (
        f"{op.operation_id} at /headers/content-encoding: gzip accepted but not used "
        f"(value: {zipped.headers.get('content-encoding')!r})"
    )
    assert plain.headers.get("content-encoding") in (None, "identity"), (
        f"{op.operation_id} at /headers/content-encoding: identity asked but encoded "
        f"(value: {plain.headers.get('content-encoding')!r})"
    )
    assert zipped.status_code == plain.status_code == 200
    assert zipped.json() == plain.json(), (
        f"{op.operation_id} at /: gzip and identity bodies differ "
        f"(value: {json.dumps(plain.json())[:200]})"
    )


def _shape(value: Any, pointer: str = "", depth: int = 4) -> set[str]:
    """JSON pointers (array indices as ``*``) with the type found there."""
    kind = type(value).__name__
    out = {f"{pointer or '/'}:{kind}"}
    if depth == 0:
        return out
    if isinstance(value, dict):
        for key, sub in value.items():
            out |= _shape(sub, f"{pointer}/{key}", depth - 1)
    elif isinstance(value, list):
        for sub in value:
            out |= _shape(sub, f"{pointer}/*", depth - 1)
    return out


@pytest.mark.parametrize("op", per_operation("lang"))
def test_lang_is_optional(target: Probe, pivot_contract: Conformance, op: Any) -> None:
    """With and without ``lang`` the answer is a 200 of the same shape; an unknown lang falls
    back to the default (French)."""
    sample = _sample(op.operation_id)
    query = {k: v for k, v in sample.request.query.items() if k != LANG}
    bare = target.get(sample.request.path, query)
    french = target.get(sample.request.path, {**query, LANG: DEFAULT})
    english = target.get(sample.request.path, {**query, LANG: "en"})
    unknown = target.get(sample.request.path, {**query, LANG: "xx"})
    for response in (bare, french, english, unknown):
        pivot_contract.check(response, op.operation_id, expect=200, headers=False)
    base = _shape(bare.json())
    for label, response in ((f"{LANG}={DEFAULT}", french), (f"{LANG}=xx", unknown)):
        diff = sorted(base ^ _shape(response.json()))
        assert not diff, (
            f"{op.operation_id} at {diff[0].split(':')[0]}: shape differs "
            f"with {label} and without lang (value: {diff[:5]})"
        )
    top = {s for s in base if s.count("/") <= 1}
    other = {s for s in _shape(english.json()) if s.count("/") <= 1}
    assert top == other, (
        f"{op.operation_id} at /: envelope differs with {LANG}=en (value: {sorted(top ^ other)})"
    )


@pytest.mark.pivot_check(operation="(fixtures)", check="samples")
def test_every_operation_has_a_sample() -> None:
    """Every operation of the contract has a fixture with data to check (else the suite
    would pass by skipping)."""
    missing = [op.operation_id for op in OPERATIONS if representative(op) is None]
    assert not missing, f"operations without a 200 fixture with data: {missing}"
