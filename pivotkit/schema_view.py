"""The contract's expectations at a position: a schema flattened ($ref, allOf, anyOf and
if/else followed) into a lazy :class:`View`, what drift and infer compare answers with."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivotkit.contract import Contract
from pivotkit.observer import FORMATS, TYPE_NAMES, describe_format

if TYPE_CHECKING:
    from referencing._core import Resolver

_Thunk = Callable[[], "View"]


@dataclass
class View:
    """The flattened constraints of a contract schema at one position ($ref, allOf, if/else
    and anyOf followed); children are computed lazily, so recursive schemas are fine."""

    types: set[str] | None = None
    props: dict[str, _Thunk] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    items: _Thunk | None = None
    enum: list[Any] | None = None
    patterns: list[str] = field(default_factory=list)

    def allows_type(self, kind: str) -> bool:
        """Whether a value of this JSON type may appear here."""
        types = self.effective_types()
        if types is None:
            return True
        return kind in types or (kind == "integer" and "number" in types)

    def effective_types(self) -> set[str] | None:
        """Declared types, or the types of the enum/const values when no type is declared."""
        if self.types is not None:
            return self.types
        if self.enum is not None:
            return {TYPE_NAMES.get(type(v), "unknown") for v in self.enum}
        return None

    def formats(self) -> set[str | None] | None:
        """The formats whose canonical example the patterns accept (None: no pattern)."""
        if not self.patterns:
            return None
        out: set[str | None] = set()
        for name, (_, _, example) in FORMATS.items():
            if all(re.search(p, example) for p in self.patterns):
                out.add(name)
        return out

    def describe(self) -> str:
        """A short readable summary: types, enum, format."""
        parts = []
        types = self.effective_types()
        parts.append("|".join(sorted(types)) if types is not None else "any type")
        if self.enum is not None:
            parts.append("one of " + ", ".join(json.dumps(v) for v in self.enum))
        fmts = self.formats()
        if fmts:
            parts.append(" or ".join(describe_format(f) for f in sorted(fmts, key=str)))
        elif self.patterns:
            parts.append("pattern " + " and ".join(self.patterns))
        return ", ".join(parts)


def _intersect(a: View, b: View) -> View:
    types = b.types if a.types is None else a.types if b.types is None else a.types & b.types
    props = dict(a.props)
    for k, f in b.props.items():
        if k in props:
            props[k] = _both(props[k], f)
        else:
            props[k] = f
    items = a.items or b.items
    if a.items is not None and b.items is not None:
        items = _both(a.items, b.items)
    if a.enum is None or b.enum is None:
        enum = a.enum if b.enum is None else b.enum
    else:
        enum = [v for v in a.enum if v in b.enum]
    return View(types, props, a.required | b.required, items, enum, a.patterns + b.patterns)


def _both(f: _Thunk, g: _Thunk) -> _Thunk:
    def thunk() -> View:
        return _intersect(f(), g())

    return thunk


def _either(fs: list[_Thunk]) -> _Thunk:
    if len(fs) == 1:
        return fs[0]

    def thunk() -> View:
        return _union([f() for f in fs])

    return thunk


def _lazy(schema: Any, resolver: Resolver[Any]) -> _Thunk:
    def thunk() -> View:
        return view_of(schema, resolver)

    return thunk


def _union(views: list[View]) -> View:
    if len(views) == 1:
        return views[0]
    types: set[str] | None = set()
    enum: list[Any] | None = []
    props: dict[str, list[_Thunk]] = {}
    items: list[_Thunk] = []
    required: set[str] | None = None
    for v in views:
        types = None if types is None or v.types is None else types | v.types
        enum = (
            None if enum is None or v.enum is None else enum + [x for x in v.enum if x not in enum]
        )
        for k, f in v.props.items():
            props.setdefault(k, []).append(f)
        if v.items is not None:
            items.append(v.items)
        required = set(v.required) if required is None else required & v.required
    merged_props = {k: _either(fs) for k, fs in props.items()}
    merged_items = _either(items) if items else None
    # A pattern of one alternative does not bind the others: keep them only when all agree.
    patterns = views[0].patterns if all(v.patterns == views[0].patterns for v in views) else []
    return View(types, merged_props, required or set(), merged_items, enum, patterns)


def _local(schema: Mapping[str, Any], resolver: Resolver[Any]) -> View:
    """The constraints a schema object states itself (no composition followed)."""
    view = View()
    kind = schema.get("type")
    if isinstance(kind, str):
        view.types = {kind}
    elif isinstance(kind, list):
        view.types = set(kind)
    if "const" in schema:
        view.enum = [schema["const"]]
    elif isinstance(schema.get("enum"), list):
        view.enum = list(schema["enum"])
    if isinstance(schema.get("pattern"), str):
        view.patterns = [schema["pattern"]]
    view.required = set(schema.get("required", []))
    for key, sub in (schema.get("properties") or {}).items():
        view.props[key] = _lazy(sub, resolver)
    if "items" in schema:
        view.items = _lazy(schema["items"], resolver)
    return view


def view_of(schema: Any, resolver: Resolver[Any]) -> View:
    """The flattened :class:`View` of ``schema`` resolved through ``resolver``."""
    if schema is True or not isinstance(schema, Mapping):
        return View() if schema is not False else View(types=set())
    view = _local(schema, resolver)
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved = resolver.lookup(ref)
        view = _intersect(view, view_of(resolved.contents, resolved.resolver))
    for sub in schema.get("allOf", []):
        view = _intersect(view, view_of(sub, resolver))
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            view = _intersect(view, _union([view_of(s, resolver) for s in schema[key]]))
    # ``if`` is a condition, not a constraint: the answers it selects are the alternatives
    # ``then`` and ``else``. An absent ``then`` means "the body fits ``if``" (for the response
    # schemas: the empty result), which observed non-empty bodies never are.
    branches = [schema[k] for k in ("then", "else") if k in schema]
    if branches:
        view = _intersect(view, _union([view_of(s, resolver) for s in branches]))
    return view


def contract_view(contract: Contract, operation_id: str, status: int = 200) -> View:
    """The :class:`View` of the contract's response schema for an operation and status: its
    envelope alternative when it has one (a non-empty answer is judged by it)."""
    uri = contract.envelope_ref(operation_id, status) or contract.schema_ref(operation_id, status)
    resolved = contract.registry.resolver().lookup(uri)
    return view_of(resolved.contents, resolved.resolver)
