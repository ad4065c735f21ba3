"""Baselines: what an earlier answer to the same request leads drift to expect of this one.

Two sources give an :class:`Expectation`, with the same weight whatever the provenance of the
earlier answer: the recorded fixture of the request (documented, synthetic or live alike), and
a history of earlier runs (:mod:`pivotkit.drift.history`). Presence is counted per object:
inside arrays a field is expected when every item had it, and missing when one item lacks it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pivotkit.contract import Contract
from pivotkit.fixtures import Exchange, Request
from pivotkit.observer import steady_pointers
from pivotkit.pointers import last_segment, parent_pointer, values_at


def request_key(request: Request) -> str:
    """``GET /path?a=1&lang=en``: what makes two answers answers to the same request."""
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
    return f"{request.method} {request.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Expectation:
    """What earlier answers to one request showed: status, content type and encoding,
    whether it was the empty result, the fields present in every object at their place
    (``steady``), the header names (lower case); ``source`` says where that comes from, for the
    findings' ``expected``."""

    source: str
    status: int
    content_type: str | None = None
    content_encoding: str | None = None
    empty: bool = False
    steady: frozenset[str] = frozenset()
    headers: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``steady`` sorted)."""
        return {
            "status": self.status,
            "contentType": self.content_type,
            "contentEncoding": self.content_encoding,
            "empty": self.empty,
            "steady": sorted(self.steady),
            "headers": sorted(self.headers),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> Expectation:
        """The expectation of :meth:`to_dict`."""
        return cls(
            source,
            int(data["status"]),
            data.get("contentType"),
            data.get("contentEncoding"),
            bool(data.get("empty")),
            frozenset(data.get("steady") or ()),
            frozenset(data.get("headers") or ()),
        )


def observe(
    contract: Contract, status: int, headers: Mapping[str, str], body: Any, source: str
) -> Expectation:
    """The expectation one answer sets (``headers`` with lower-case names)."""
    empty = status == 200 and contract.is_empty_result(body)
    steady = steady_pointers(body) if status == 200 and not empty else frozenset()
    return Expectation(
        source,
        status,
        headers.get("content-type"),
        headers.get("content-encoding"),
        empty,
        steady,
        frozenset(headers),
    )


def from_exchange(contract: Contract, exchange: Exchange) -> Expectation:
    """The expectation a recorded fixture sets, whatever its ``meta.source``: a field the
    fixture holds is a field consumers were shown, synthetic or not."""
    response = exchange.response
    return observe(
        contract,
        response.status,
        {k.lower(): v for k, v in response.headers.items()},
        response.body,
        f"recorded in fixture {exchange.operation_id}/{exchange.name}",
    )


def removals(body: Any, steady: frozenset[str]) -> Iterator[tuple[str, int, int]]:
    """(pointer, objects missing it, objects) of each expected field a body lacks.

    Only where the field's parent is there as objects: a parent that is gone or changed type
    is the finding, not each field below it.
    """
    by_parent: dict[str, list[str]] = {}
    for pointer in sorted(steady):
        by_parent.setdefault(parent_pointer(pointer), []).append(pointer)
    for parent, pointers in by_parent.items():
        objects = [v for v in values_at(body, parent) if isinstance(v, dict)]
        if not objects:
            continue
        for pointer in pointers:
            key = last_segment(pointer)
            missing = sum(1 for obj in objects if key not in obj)
            if missing:
                yield pointer, missing, len(objects)
