"""The suite's parametrisation, read from the contract and the fixtures (never hard-coded)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pivotkit.contract import Contract, Operation, load_contract
from pivotkit.fixtures import Exchange, FixtureSet

# Statuses the backend writes: a fixture with one of them is replayable by path alone.
# 401/403/429 fixtures record gateway conditions (no key, quota, rate): they are checked by
# the gateway tests and by `pivotkit check`, not replayed.
BACKEND_STATUSES = frozenset({200, 400})

CONTRACT: Contract = load_contract()
FIXTURES: FixtureSet = FixtureSet.load(contract=CONTRACT)
CONVENTIONS = CONTRACT.conventions
OPERATIONS: list[Operation] = [CONTRACT.operations[name] for name in sorted(CONTRACT.operations)]


def case_id(exchange: Exchange) -> str:
    """``getContent-7488``: operation and fixture name."""
    return f"{exchange.operation_id}-{exchange.name}"


def replayable(statuses: Iterable[int] = BACKEND_STATUSES) -> list[Exchange]:
    """Fixtures whose request alone reproduces their status on any target."""
    wanted = set(statuses)
    return [
        ex
        for ex in FIXTURES
        if ex.response.status in wanted and ex.operation_id in CONTRACT.operations
    ]


def is_empty(exchange: Exchange) -> bool:
    """Whether the recorded answer is the empty result (the contract's one definition)."""
    return CONTRACT.is_empty_result(exchange.response.body)


def representative(op: Operation) -> Exchange | None:
    """The operation's first 200 fixture with data and no ``lang``: the sample of its checks."""
    for ex in FIXTURES.for_operation(op.operation_id):
        if ex.response.status == 200 and not is_empty(ex) and ex.request.lang is None:
            return ex
    return None


def empty_sample(op: Operation) -> tuple[str, str]:
    """A path of ``op`` that has no data, and where it comes from (a fixture, or made up)."""
    for ex in FIXTURES.for_operation(op.operation_id):
        if ex.response.status == 200 and is_empty(ex):
            return ex.request.path, f"fixture {case_id(ex)}"
    values: dict[str, Any] = {}
    for p in op.path_parameters:
        if p.schema.get("type") == "integer":
            values[p.name] = int(p.schema.get("maximum", 2147483647)) - 1
        elif p.name == "since":
            values[p.name] = "20991231235959"
        else:
            values[p.name] = "20000101"
    return op.expand(**values), "made up: no empty fixture"


def params(items: Iterable[tuple[str, Any]], check: str) -> list[Any]:
    """pytest params with readable ids, each marked with its operation and check."""
    return [
        pytest.param(
            value,
            id=ident,
            marks=pytest.mark.pivot_check(operation=ident.split("-", 1)[0], check=check),
        )
        for ident, value in items
    ]


def per_fixture(check: str, statuses: Iterable[int] = BACKEND_STATUSES) -> list[Any]:
    """One param per replayable fixture (id ``getContent-7488``)."""
    return params(((case_id(ex), ex) for ex in replayable(statuses)), check)


def per_operation(check: str, *, only: Iterable[Operation] | None = None) -> list[Any]:
    """One param per operation (id ``getContent``)."""
    ops = OPERATIONS if only is None else list(only)
    return params(((op.operation_id, op) for op in ops), check)
