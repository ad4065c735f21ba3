"""The suite's shared fixtures: the target with a memo of its answers; hypothesis profiles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from pivotkit.client import PivotClient, Target
from pivotkit.fixtures import Exchange

# Made up, syntactically valid (32 lowercase hex): the gateway must call it invalid.
INVALID_KEY = "0123456789abcdef0123456789abcdef"


class Probe:
    """The target as the checks see it: one client, and a memo of GETs (one request per
    distinct path, query and encoding, whatever the number of checks that read it)."""

    def __init__(self, client: PivotClient, target: Target) -> None:
        self.client = client
        self.target = target
        self._memo: dict[tuple[str, str, str, str], httpx.Response] = {}

    @property
    def is_mock(self) -> bool:
        """Whether the target is the in-process mock (its data is the fixtures' own)."""
        return self.target.kind == "mock"

    def get(
        self,
        path: str,
        query: Mapping[str, str] | None = None,
        *,
        encoding: str = "gzip",
        key: object = "own",
        method: str = "GET",
    ) -> httpx.Response:
        """One answer of the target, memoised."""
        query = dict(query or {})
        key_kind = key if isinstance(key, str) and key in ("own", "none") else "other"
        memo_key = (method + " " + path, json.dumps(query, sort_keys=True), encoding, key_kind)
        if key_kind == "other" or memo_key not in self._memo:
            extensions: dict[str, Any] = {}
            if key == "none":
                extensions["pivot_key"] = None
            elif key != "own":
                extensions["pivot_key"] = key
            response = self.client.request(
                method,
                path,
                params=query,
                headers={"Accept-Encoding": encoding},
                extensions=extensions,
            )
            if key_kind == "other":
                return response
            self._memo[memo_key] = response
        return self._memo[memo_key]

    def replay(self, exchange: Exchange, *, encoding: str = "gzip") -> httpx.Response:
        """The target's answer to a fixture's request."""
        return self.get(exchange.request.path, exchange.request.query, encoding=encoding)


@pytest.fixture(scope="session")
def target(pivot_client: PivotClient, pivot_target: Target) -> Probe:
    """The target under test with a memo of its answers."""
    return Probe(pivot_client, pivot_target)


# Against the live API the budget (50 calls by default) runs out long before the suite does:
# spend it where it tells most, round-robin over the operations, most telling check first.
_LIVE_ORDER = (
    "status",
    "body",
    "headers",
    "missing-key",
    "empty",
    "invalid-key",
    "lang",
    "gzip",
    "not-found",
    "images",
    "updates",
    "properties-valid",
    "properties",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the suite for the live API's call budget (other targets keep file order)."""
    import os

    from pivotkit.client import parse_target
    from pivotkit.errors import ConfigError

    spec = config.getoption("pivot_target", None) or os.environ.get("PIVOT_TARGET") or "mock"
    try:
        if parse_target(spec).kind != "live":
            return
    except ConfigError:
        return
    seen: dict[tuple[str, str], int] = {}
    keyed = []
    for position, item in enumerate(items):
        mark = item.get_closest_marker("pivot_check")
        operation = str(mark.kwargs.get("operation", "")) if mark else ""
        check = str(mark.kwargs.get("check", "")) if mark else ""
        rank = seen.get((operation, check), 0)
        seen[operation, check] = rank + 1
        priority = _LIVE_ORDER.index(check) if check in _LIVE_ORDER else len(_LIVE_ORDER)
        # status, body and headers of one fixture share one request: keep them together.
        group = min(priority, 2) if priority <= 2 else priority
        keyed.append(((rank, group, priority, position), item))
    items[:] = [item for _, item in sorted(keyed, key=lambda pair: pair[0])]
