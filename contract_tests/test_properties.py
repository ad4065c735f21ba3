"""Property tests over each operation's parameter space: what the target must never do."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from contract_tests.cases import FIXTURES, per_operation
from contract_tests.conftest import Probe
from pivotkit.conformance import Conformance, Problem, ResponseMismatch, request_line
from pivotkit.pytest_plugin import register_profiles
from pivotkit.strategies import RequestSpec, requests

# Against the live API each example is a call against the account's quota.
LIVE_EXAMPLES = 2


def _settings(pytestconfig: pytest.Config, target: Probe) -> settings:
    """The profile chosen with --hypothesis-profile (else ``dev``), capped against live."""
    chosen = pytestconfig.getoption("hypothesis_profile", None)
    register_profiles()
    base = settings() if chosen else settings.get_profile("dev")
    if target.target.kind == "live":
        return settings(base, max_examples=min(base.max_examples, LIVE_EXAMPLES))
    return base


def _invariants(target: Probe, pivot_contract: Conformance, spec: RequestSpec) -> None:
    response = target.client.get(spec.path, params=dict(spec.query))
    status = response.status_code
    op_id = spec.operation_id
    if status >= 500:
        raise ResponseMismatch(
            request_line(response.request),
            status,
            [
                Problem(
                    op_id,
                    "/status",
                    f"a 5xx answers {spec} (body: {response.text[:200]!r})",
                    status,
                )
            ],
        )
    if not spec.valid and status not in (400, 404):
        raise ResponseMismatch(
            request_line(response.request),
            status,
            [
                Problem(
                    op_id,
                    "/status",
                    "a path parameter breaking its schema must get 400 (or 404 "
                    "when the path no longer routes)",
                    status,
                )
            ],
        )
    found = pivot_contract.problems(response, op_id if status != 404 else None, headers=False)
    if found:
        raise ResponseMismatch(request_line(response.request), status, found)


@pytest.mark.parametrize("op", per_operation("properties"))
def test_any_request_gets_a_documented_answer(
    target: Probe, pivot_contract: Conformance, pytestconfig: pytest.Config, op: Any
) -> None:
    """For any parameters (valid, recorded, broken; any lang; undeclared extras) the target
    never answers 5xx; a 200 is a valid envelope or the empty result; a 4xx is a gateway
    or ASP.NET error of the documented shape."""

    @given(spec=requests(op, fixtures=FIXTURES, invalid=None))
    def check(spec: RequestSpec) -> None:
        _invariants(target, pivot_contract, spec)

    _settings(pytestconfig, target)(check)()


@pytest.mark.parametrize("op", per_operation("properties-valid"))
def test_valid_requests_get_a_valid_200(
    target: Probe, pivot_contract: Conformance, pytestconfig: pytest.Config, op: Any
) -> None:
    """Parameters that fit the contract get a 200 that fits it (data or the empty result)."""

    @given(spec=requests(op, fixtures=FIXTURES, invalid=False, extras=False))
    def check(spec: RequestSpec) -> None:
        response = target.client.get(spec.path, params=dict(spec.query))
        found = pivot_contract.problems(response, op.operation_id, expect=200, headers=False)
        if found:
            raise ResponseMismatch(request_line(response.request), response.status_code, found)

    _settings(pytestconfig, target)(check)()
