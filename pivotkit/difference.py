"""Differences between what a producer gives and what a consumer expects, at each position.

The producer is a :class:`Shape`: an observation of answers (:class:`~pivotkit.observer.Node`)
or a declaration (:class:`~pivotkit.schema_view.View` of a contract); the consumer is always a
contract :class:`~pivotkit.schema_view.View`. One walk serves ``pivotkit infer``, drift (live
answers against the contract) and ``pivotkit diff`` (a new contract against an old one); what a
difference means for a consumer is the classifier's (:mod:`pivotkit.drift.classifier`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pivotkit.pointers import escape_pointer_segment

if TYPE_CHECKING:
    from pivotkit.schema_view import View

#: Difference kinds, in report order.
DIFF_KINDS = (
    "type-differs",
    "integral-float",
    "nullable-observed",
    "only-in-contract",
    "only-observed",
    "required-in-contract-missing-in-observed",
    "required-observed-optional-in-contract",
    "format-differs",
    "pattern-differs",
    "format-observed",
    "enum-new-values",
    "enum-fewer-values",
    "enum-observed",
    "constraint-relaxed",
    "constraint-tightened",
    "type-narrower",
)

#: Lower and upper bounds a View may carry (what ``constraint-*`` compares).
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


class Shape(Protocol):
    """What a producer gives at one position (an observation or a declaration)."""

    declared: bool  # a declaration: what it does not state, it never gives
    answers: int  # answers that showed this position (0 for a declaration)

    def type_counts(self) -> Mapping[str, int]:
        """JSON type -> how many values of it (a declaration: 1 per declared type)."""

    def integral_floats(self) -> int:
        """Answers that gave integral floats (``117.0``) here, when every number given here
        is integral; else 0."""

    def string_formats(self) -> Mapping[str | None, int] | None:
        """Format of the strings -> count (None: any string)."""

    def format_text(self) -> str:
        """The formats given, for a report."""

    def patterns_given(self) -> list[str]:
        """The patterns a declaration states (an observation: none)."""

    def enum_given(self) -> list[Any] | None:
        """The values given, when they are known to be all of them (else None)."""

    def enum_like(self) -> list[Any] | None:
        """The values given when they look like a small closed set."""

    def declared_bounds(self) -> Mapping[str, Any]:
        """Declared constraints (minimum, maxLength, ...); an observation: none."""

    def null_text(self) -> str:
        """How null is given, for a report."""

    def fields(self) -> Mapping[str, tuple[Shape, bool, str]]:
        """Field name -> (its shape, always given, how often it is missing)."""

    def item_shape(self) -> Shape | None:
        """The shape of array items, when any were given."""

    def identity(self) -> object:
        """What makes this position the same as another (recursive schemas end there)."""


@dataclass(frozen=True)
class Difference:
    """One way the producer differs from the contract, at one pointer."""

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


def diff_shape(shape: Shape, view: View, pointer: str = "") -> list[Difference]:
    """Every difference between the producer ``shape`` and the contract ``view`` at
    ``pointer`` and below, sorted by pointer, then kind (in :data:`DIFF_KINDS` order)."""
    out: list[Difference] = []
    _Walk(out).node(shape, view, pointer)
    order = {k: i for i, k in enumerate(DIFF_KINDS)}
    return sorted(out, key=lambda d: (d.pointer, order.get(d.kind, 99)))


class _Walk:
    """One walk of a producer shape against a contract view."""

    def __init__(self, out: list[Difference]) -> None:
        self.out = out
        self.path: set[tuple[object, object]] = set()

    def add(self, pointer: str, kind: str, contract: str, observed: str, answers: int) -> None:
        self.out.append(Difference(pointer, kind, contract, observed, answers))

    def node(self, shape: Shape, view: View, pointer: str) -> None:
        key = (shape.identity(), view.identity())
        if key in self.path:  # a recursive schema compared with itself further down
            return
        self.path.add(key)
        try:
            self.compare(shape, view, pointer)
        finally:
            self.path.discard(key)

    def compare(self, shape: Shape, view: View, pointer: str) -> None:
        types = shape.type_counts()
        if not self.types(shape, view, pointer):
            return
        if "string" in types:
            self.formats(shape, view, pointer)
        self.enum(shape, view, pointer)
        if shape.declared:
            self.bounds(shape, view, pointer)
        if "object" in types and view.allows_type("object"):
            self.object(shape, view, pointer)
        items = shape.item_shape()
        if (
            "array" in types
            and items is not None
            and view.items is not None
            and view.allows_type("array")
        ):
            self.node(items, view.items(), f"{pointer}/*")

    def types(self, shape: Shape, view: View, pointer: str) -> bool:
        """Type differences at one position; False when the types disagree (nothing below
        is compared then: one finding per root cause)."""
        counts = shape.type_counts()
        observed = sorted(t for t in counts if t not in ("null", "unknown"))
        if "null" in counts and not view.allows_type("null"):
            self.add(
                pointer, "nullable-observed", view.describe(), shape.null_text(), shape.answers
            )
        observed = self.integral(shape, view, pointer, observed)
        if any(not view.allows_type(t) for t in observed):
            shown = "|".join(sorted(t for t in counts if t != "unknown"))
            self.add(pointer, "type-differs", view.describe(), shown, shape.answers)
            return False
        self.narrower(shape, view, pointer, observed)
        return True

    def integral(self, shape: Shape, view: View, pointer: str, observed: list[str]) -> list[str]:
        """Integral floats where the contract says integer: a difference of their own, and
        the types compared further as integers (JSON Schema counts them so)."""
        floats = shape.integral_floats()
        if "number" not in observed or not floats or view.allows_type("number"):
            return observed
        if not view.allows_type("integer"):
            return observed
        self.add(
            pointer,
            "integral-float",
            view.describe(),
            "integral number now written as a float",
            floats,
        )
        return sorted({*observed, "integer"} - {"number"})

    def narrower(self, shape: Shape, view: View, pointer: str, observed: list[str]) -> None:
        """Fewer types than the contract allows (not drift; a changelog's info)."""
        contract_types = view.effective_types()
        if contract_types is None or not observed:
            return
        wider = {t for t in contract_types if t != "null"} - set(observed)
        if "number" in wider and "integer" in observed:
            wider.discard("number")
        if wider:
            self.add(pointer, "type-narrower", view.describe(), "|".join(observed), shape.answers)

    def object(self, shape: Shape, view: View, pointer: str) -> None:
        fields = shape.fields()
        for key, (sub, always, presence) in sorted(fields.items()):
            at = f"{pointer}/{escape_pointer_segment(key)}"
            if key not in view.props:
                shown = "|".join(sorted(t for t in sub.type_counts() if t != "unknown"))
                self.add(at, "only-observed", "not declared", shown, sub.answers)
                continue
            if always and key not in view.required:
                self.add(
                    at,
                    "required-observed-optional-in-contract",
                    "optional",
                    presence,
                    sub.answers,
                )
            elif not always and key in view.required:
                self.add(
                    at,
                    "required-in-contract-missing-in-observed",
                    "required",
                    presence,
                    shape.answers,
                )
            self.node(sub, view.props[key](), at)
        for key in sorted(set(view.props) - set(fields)):
            label = "required" if key in view.required else "optional"
            self.add(
                f"{pointer}/{escape_pointer_segment(key)}",
                "only-in-contract",
                f"declared ({label})",
                "not declared" if shape.declared else "never present",
                0,
            )

    def formats(self, shape: Shape, view: View, pointer: str) -> None:
        accepted = view.formats()
        given = shape.string_formats()
        described = shape.format_text()
        if accepted is None:
            if not shape.declared and given is not None and len(given) == 1 and view.enum is None:
                (only,) = given
                if only is not None:
                    self.add(pointer, "format-observed", view.describe(), described, shape.answers)
            return
        if not accepted:  # the contract's pattern is no known format (a code list, say)
            patterns = shape.patterns_given()
            if shape.declared and patterns != view.patterns:
                shown = " and ".join(patterns) if patterns else "any string"
                self.add(pointer, "pattern-differs", view.describe(), shown, shape.answers)
            return
        if given is None or any(f not in accepted for f in given):
            self.add(pointer, "format-differs", view.describe(), described, shape.answers)

    def enum(self, shape: Shape, view: View, pointer: str) -> None:
        given = shape.enum_given()
        if view.enum is not None:
            if given is None:
                if shape.declared:
                    self.add(pointer, "enum-new-values", view.describe(), "any value", 0)
                return
            values = [v for v in given if not isinstance(v, bool)]
            new = [v for v in values if v not in view.enum]
            if new:
                shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in new[:5])
                self.add(
                    pointer, "enum-new-values", view.describe(), f"also {shown}", shape.answers
                )
            gone = [v for v in view.enum if v not in given]
            if shape.declared and gone:
                shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in gone[:5])
                self.add(pointer, "enum-fewer-values", view.describe(), f"no longer {shown}", 0)
            return
        observed = shape.enum_like()
        if observed is not None:
            shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in observed)
            self.add(pointer, "enum-observed", view.describe(), f"only {shown}", shape.answers)

    def bounds(self, shape: Shape, view: View, pointer: str) -> None:
        given, expected = shape.declared_bounds(), view.bounds
        for name in (*LOWER_BOUNDS, *UPPER_BOUNDS):
            old, new = expected.get(name), given.get(name)
            if old == new:
                continue
            lower = name in LOWER_BOUNDS
            if old is None:
                kind = "constraint-tightened"
            elif new is None:
                kind = "constraint-relaxed"
            else:
                kind = "constraint-relaxed" if (new < old) == lower else "constraint-tightened"
            self.add(
                pointer,
                kind,
                f"{name} {old}" if old is not None else f"no {name}",
                f"{name} {new}" if new is not None else f"no {name}",
                0,
            )
