"""Inference: an observed schema's diff with the contract, and proposals from fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivotkit.contract import Contract
from pivotkit.documents import refuse_inside
from pivotkit.errors import NoSamples
from pivotkit.fixtures import Exchange, FixtureSet, atomic_write_text
from pivotkit.observer import Node, Observer, describe_format
from pivotkit.pointers import escape_pointer_segment
from pivotkit.schema_view import View, contract_view

# -- the diff --------------------------------------------------------------------------------

#: Difference kinds, in report order.
DIFF_KINDS = (
    "type-differs",
    "nullable-observed",
    "only-in-contract",
    "only-observed",
    "required-in-contract-missing-in-observed",
    "required-observed-optional-in-contract",
    "format-differs",
    "format-observed",
    "enum-new-values",
    "enum-observed",
    "type-narrower",
)


@dataclass(frozen=True)
class Difference:
    """One way the observed schema differs from the contract, at one pointer."""

    pointer: str
    kind: str
    contract: str
    observed: str
    answers: int = 0
    example: Any = None

    def __str__(self) -> str:
        label = self.kind.replace("-", " ")
        return (
            f"{self.pointer or '/'}: {label} (contract: {self.contract}; observed: {self.observed})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "pointer": self.pointer,
            "kind": self.kind,
            "contract": self.contract,
            "observed": self.observed,
            "answers": self.answers,
        }


def _observed_types(node: Node) -> list[str]:
    return sorted(k for k in node.types if k != "unknown")


def diff(observer: Observer, view: View) -> list[Difference]:
    """Every difference between what ``observer`` saw and the contract ``view``.

    Sorted by pointer, then kind (in :data:`DIFF_KINDS` order).
    """
    out: list[Difference] = []
    if observer.samples:
        _diff_node(observer.root, view, out)
    order = {k: i for i, k in enumerate(DIFF_KINDS)}
    return sorted(out, key=lambda d: (d.pointer, order.get(d.kind, 99)))


def _diff_node(node: Node, view: View, out: list[Difference]) -> None:
    if not _diff_types(node, view, out):
        return
    if "string" in node.types:
        _diff_format(node, view, out)
    _diff_enum(node, view, out)
    if "object" in node.types and view.allows_type("object"):
        _diff_object(node, view, out)
    if (
        "array" in node.types
        and node.items is not None
        and view.items is not None
        and view.allows_type("array")
    ):
        _diff_node(node.items, view.items(), out)


def _diff_types(node: Node, view: View, out: list[Difference]) -> bool:
    """Type differences at one position; False when the types disagree (nothing below is
    compared then)."""
    observed = [t for t in _observed_types(node) if t != "null"]
    if "null" in node.types and not view.allows_type("null"):
        out.append(
            Difference(
                node.pointer,
                "nullable-observed",
                view.describe(),
                f"null in {node.types['null']} of {node.count} values",
                node.answers,
                None,
            )
        )
    if any(not view.allows_type(t) for t in observed):
        out.append(
            Difference(
                node.pointer,
                "type-differs",
                view.describe(),
                "|".join(_observed_types(node)),
                node.answers,
            )
        )
        return False
    contract_types = view.effective_types()
    if contract_types is not None and observed:
        wider = {t for t in contract_types if t != "null"} - set(observed)
        if "number" in wider and "integer" in observed:
            wider.discard("number")
        if wider:
            out.append(
                Difference(
                    node.pointer, "type-narrower", view.describe(), "|".join(observed), node.answers
                )
            )
    return True


def _diff_object(node: Node, view: View, out: list[Difference]) -> None:
    objects = node.objects
    for key, sub in sorted(node.props.items()):
        if key not in view.props:
            out.append(
                Difference(
                    sub.pointer,
                    "only-observed",
                    "not declared",
                    "|".join(_observed_types(sub)),
                    sub.answers,
                )
            )
            continue
        if sub.count == objects and key not in view.required:
            out.append(
                Difference(
                    sub.pointer,
                    "required-observed-optional-in-contract",
                    "optional",
                    f"present in all {objects} objects",
                    sub.answers,
                )
            )
        elif sub.count < objects and key in view.required:
            out.append(
                Difference(
                    sub.pointer,
                    "required-in-contract-missing-in-observed",
                    "required",
                    f"missing in {objects - sub.count} of {objects} objects",
                    node.answers,
                )
            )
        _diff_node(sub, view.props[key](), out)
    for key in sorted(set(view.props) - set(node.props)):
        pointer = f"{node.pointer}/{escape_pointer_segment(key)}"
        label = "required" if key in view.required else "optional"
        out.append(
            Difference(pointer, "only-in-contract", f"declared ({label})", "never present", 0)
        )


def _diff_format(node: Node, view: View, out: list[Difference]) -> None:
    accepted = view.formats()
    seen = {f: n for f, n in node.formats.items()}
    described = ", ".join(
        f"{describe_format(f, node.fmin, node.fmax)} ({n})"
        for f, n in sorted(seen.items(), key=lambda kv: str(kv[0]))
    )
    if accepted is None:
        fmt = node.single_format()
        if fmt is not None and view.enum is None:
            out.append(
                Difference(
                    node.pointer, "format-observed", view.describe(), described, node.answers
                )
            )
        return
    if not accepted:
        return  # the contract's pattern is no known format (a code list, say): not compared
    if any(f not in accepted for f in seen):
        out.append(
            Difference(node.pointer, "format-differs", view.describe(), described, node.answers)
        )


def _diff_enum(node: Node, view: View, out: list[Difference]) -> None:
    values = [v for v in node.values if not isinstance(v, bool)]
    if view.enum is not None:
        if node.overflow:
            return
        new = [v for v in values if v not in view.enum]
        if new:
            shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in new[:5])
            out.append(
                Difference(
                    node.pointer, "enum-new-values", view.describe(), f"also {shown}", node.answers
                )
            )
        return
    observed = node.enum_values()
    if observed is not None:
        shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in observed)
        out.append(
            Difference(
                node.pointer, "enum-observed", view.describe(), f"only {shown}", node.answers
            )
        )


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
