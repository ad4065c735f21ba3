"""The gateway's own answers: exact 401s, 404 for what no operation matches, the empty-200."""

from __future__ import annotations

from typing import Any

import pytest

from contract_tests.cases import CONTRACT, OPERATIONS, empty_sample, params, per_operation
from contract_tests.conftest import INVALID_KEY, Probe
from pivotkit.conformance import Conformance

# The gateway's exact answers, as the contract states them (gateway-error.json).
MESSAGES = CONTRACT.conventions.messages
NOT_FOUND = MESSAGES.body(404, MESSAGES.not_found)


def _sample_path(op: Any) -> str:
    values = {p.name: (p.schema.get("examples") or [1])[0] for p in op.path_parameters}
    return str(op.expand(**values))


def _exact(op_id: str, response: Any, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status, (
        f"{op_id} at /status: expected {status}, got {response.status_code} "
        f"(value: {response.text[:200]!r})"
    )
    got = response.json()
    for field in sorted(set(body) | set(got)):
        assert got.get(field) == body.get(field), (
            f"{op_id} at /{field}: expected {body.get(field)!r} (value: {got.get(field)!r})"
        )


@pytest.mark.parametrize("op", per_operation("missing-key"))
def test_missing_key_is_the_gateway_401(target: Probe, op: Any) -> None:
    """Without a key every operation answers the gateway's exact 401 (no version, no data)."""
    response = target.get(_sample_path(op), key="none")
    _exact(op.operation_id, response, 401, MESSAGES.body(401, MESSAGES.missing_key))


@pytest.mark.parametrize("op", per_operation("invalid-key"))
def test_invalid_key_is_the_gateway_401(target: Probe, op: Any) -> None:
    """With an unknown key every operation answers the gateway's exact 401."""
    response = target.get(_sample_path(op), key=INVALID_KEY)
    _exact(op.operation_id, response, 401, MESSAGES.body(401, MESSAGES.invalid_key))


@pytest.mark.parametrize("op", per_operation("not-found"))
def test_other_method_is_404_not_405(target: Probe, op: Any) -> None:
    """A method the operation does not have answers the gateway's 404 (there is no 405)."""
    response = target.get(_sample_path(op), method="POST")
    _exact(op.operation_id, response, 404, NOT_FOUND)


# Paths in the API's space that no operation matches. ("/" is left out: the mock serves its
# developer portal there, and nothing documents the live gateway's answer.)
UNKNOWN_PATHS = [
    "/v1/api/v1/nothing-here",
    "/v1/api/v2/contents/7488",
    "/v1/api/v1",
    "/v1/api/v1/contents",
    "/v1/api/v1/contents/7488/extra",
    "/v2/api/v1/days",
]


@pytest.mark.parametrize(
    "path", params(((f"gateway-{i}", p) for i, p in enumerate(UNKNOWN_PATHS)), "not-found")
)
def test_unknown_path_is_404(target: Probe, pivot_contract: Conformance, path: str) -> None:
    """A path no operation matches answers the gateway's 404, with or without a key."""
    for key in ("own", "none"):
        response = target.get(path, key=key)
        assert CONTRACT.find_operation("GET", path) is None
        _exact(f"(no operation) GET {path}", response, 404, NOT_FOUND)


@pytest.mark.parametrize(
    "op", per_operation("empty", only=[o for o in OPERATIONS if o.empty_result])
)
def test_no_data_is_an_empty_200(target: Probe, pivot_contract: Conformance, op: Any) -> None:
    """An id or period without data answers 200 with the empty result, never 404."""
    path, origin = empty_sample(op)
    response = target.get(path)
    body = pivot_contract.check(response, op.operation_id, expect=200)
    assert pivot_contract.is_empty_result(body), (
        f"{op.operation_id} at /data: expected the empty result for {path} ({origin}) "
        f"(value: {str(body)[:200]})"
    )
