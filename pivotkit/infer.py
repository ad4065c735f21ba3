"""Inference: an observed schema's diff with the contract, and proposals from fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivotkit.contract import Contract
from pivotkit.difference import DIFF_KINDS, Difference, diff_shape  # noqa: F401 (re-exported)
from pivotkit.documents import refuse_inside
from pivotkit.errors import NoSamples
from pivotkit.fixtures import Exchange, FixtureSet
from pivotkit.locations import atomic_write_text
from pivotkit.observer import Observer
from pivotkit.schema_view import View, contract_view


def diff(observer: Observer, view: View) -> list[Difference]:
    """Every difference between what ``observer`` saw and the contract ``view``.

    Sorted by pointer, then kind (in :data:`~pivotkit.difference.DIFF_KINDS` order).
    """
    return diff_shape(observer.root, view) if observer.samples else []


@dataclass
class Inference:
    """The result of :func:`infer`: the observer, the proposed schema and the diff."""

    operation_id: str
    status: int
    observer: Observer
    schema: dict[str, Any]
    differences: list[Difference]
    exchanges: list[Exchange]

    def report_lines(self) -> list[str]:
        """The readable diff, one line per difference."""
        head = (
            f"{self.operation_id} {self.status}: {len(self.exchanges)} fixtures, "
            f"{len(self.differences)} differences with the contract"
        )
        return [head] + [f"  {d}" for d in self.differences]


def observe_exchanges(
    contract: Contract, exchanges: Iterable[Exchange], operation_id: str, status: int = 200
) -> tuple[Observer, list[Exchange]]:
    """An observer over the exchanges with ``status`` that are not the empty result."""
    observer = Observer(f"{operation_id} {status} (observed)")
    used = []
    for ex in exchanges:
        if ex.operation_id != operation_id or ex.response.status != status:
            continue
        if contract.is_empty_result(ex.response.body):
            continue
        observer.add(ex.response.body)
        used.append(ex)
    return observer, used


def infer(
    contract: Contract, fixtures: FixtureSet, operation_id: str, status: int = 200
) -> Inference:
    """Infer the observed schema of an operation from its fixtures and diff it with the contract.

    Raises UnknownOperation for an id the contract lacks and NoSamples when no fixture fits.
    """
    contract.schema_ref(operation_id, status)
    observer, used = observe_exchanges(
        contract, fixtures.for_operation(operation_id), operation_id, status
    )
    if not used:
        raise NoSamples(operation_id, fixtures.root)
    schema = observer.to_schema()
    differences = diff(observer, contract_view(contract, operation_id, status))
    return Inference(operation_id, status, observer, schema, differences, used)


def write_proposal(
    schema: Mapping[str, Any], path: Path, *, schemas_dir: Path | None = None
) -> Path:
    """Write a proposed schema atomically; refuses to write inside the contract's directory."""
    target = path.resolve()
    if schemas_dir is not None:
        refuse_inside(target, schemas_dir, "--out")
    atomic_write_text(target, json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    return target


__all__ = [
    "Difference",
    "Inference",
    "diff",
    "infer",
    "write_proposal",
]
