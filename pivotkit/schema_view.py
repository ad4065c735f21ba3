"""The contract's expectations at a position: a schema flattened ($ref, allOf, anyOf and
if/else followed) into a lazy :class:`View`, what drift and infer compare answers with."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivotkit.contract import Contract
from pivotkit.difference import LOWER_BOUNDS, UPPER_BOUNDS
from pivotkit.observer import FORMATS, TYPE_NAMES, describe_format
from pivotkit.pointers import ITEMS, split_pointer

if TYPE_CHECKING:
    from referencing._core import Resolver

_Thunk = Callable[[], "View"]
_ANY_TYPE = ("array", "boolean", "integer", "null", "number", "object", "string")


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
    bounds: dict[str, Any] = field(default_factory=dict)
    sources: tuple[int, ...] = ()

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

    def at(self, pointer: str) -> View | None:
        """The view at a pointer below this one (``*`` for items), None when the contract
        declares nothing there."""
        view: View | None = self
        for part in split_pointer(pointer):
            if view is None:
                return None
            if part == ITEMS:
                view = view.items() if view.items is not None else None
            else:
                thunk = view.props.get(part)
                view = thunk() if thunk is not None else None
        return view

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

    # -- as a producer's shape (pivotkit.difference.Shape): a declaration --

    declared = True
    answers = 0

    def type_counts(self) -> dict[str, int]:
        """The declared types (an untyped schema: object when it declares properties, array
        when it declares items, else any type)."""
        types = self.effective_types()
        if types is None:
            types = {"object"} if self.props else {"array"} if self.items else set(_ANY_TYPE)
        return {t: 1 for t in types}

    def integral_floats(self) -> int:
        """A declared number may be any number."""
        return 0

    def string_formats(self) -> dict[str | None, int] | None:
        """The formats the patterns accept (None: any string; a pattern of no known format:
        ``{None: 1}``)."""
        formats = self.formats()
        if formats is None:
            return None
        return {f: 1 for f in formats} if formats else {None: 1}

    def format_text(self) -> str:
        """The declared format."""
        return self.describe()

    def patterns_given(self) -> list[str]:
        """The declared patterns."""
        return self.patterns

    def enum_given(self) -> list[Any] | None:
        """The declared values (None: any)."""
        return self.enum

    def enum_like(self) -> list[Any] | None:
        """The declared values (None: any)."""
        return self.enum

    def declared_bounds(self) -> dict[str, Any]:
        """The declared constraints."""
        return self.bounds

    def null_text(self) -> str:
        """The declared types, null among them."""
        return self.describe()

    def fields(self) -> dict[str, tuple[View, bool, str]]:
        """Field -> (its view, required, "required" or "optional")."""
        return {
            key: (thunk(), key in self.required, "required" if key in self.required else "optional")
            for key, thunk in self.props.items()
        }

    def item_shape(self) -> View | None:
        """The view of the items."""
        return self.items() if self.items is not None else None

    def identity(self) -> object:
        """The schema objects this view was made of."""
        return tuple(sorted(set(self.sources)))

    def summary(self) -> dict[str, Any]:
        """The contract's expectations here, as a small JSON Schema-like mapping (reports)."""
        out: dict[str, Any] = {}
        types = self.effective_types()
        if types is not None:
            out["type"] = sorted(types) if len(types) != 1 else next(iter(types))
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.patterns:
            out["pattern"] = self.patterns[0] if len(self.patterns) == 1 else list(self.patterns)
        out.update(self.bounds)
        if self.props:
            out["properties"] = sorted(self.props)
        if self.required:
            out["required"] = sorted(self.required)
        if self.items is not None:
            out["items"] = self.items().summary_line()
        return out

    def summary_line(self) -> str:
        """:meth:`describe` with the fields, for a nested position."""
        text = self.describe()
        return text + (f" with {', '.join(sorted(self.props))}" if self.props else "")


def _bounds(a: dict[str, Any], b: dict[str, Any], *, tighter: bool) -> dict[str, Any]:
    """Both sets of bounds: the tighter of each (an intersection) or the looser (a union:
    a bound only one side states binds nothing)."""
    out: dict[str, Any] = {}
    for name in (*LOWER_BOUNDS, *UPPER_BOUNDS):
        x, y = a.get(name), b.get(name)
        if x is None or y is None:
            if tighter and (x is not None or y is not None):
                out[name] = x if x is not None else y
            continue
        pick_max = (name in LOWER_BOUNDS) == tighter
        out[name] = max(x, y) if pick_max else min(x, y)
    return out


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
    return View(
        types,
        props,
        a.required | b.required,
        items,
        enum,
        a.patterns + b.patterns,
        _bounds(a.bounds, b.bounds, tighter=True),
        a.sources + b.sources,
    )


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
    bounds = views[0].bounds
    for v in views[1:]:
        bounds = _bounds(bounds, v.bounds, tighter=False)
    sources = tuple(x for v in views for x in v.sources)
    return View(
        types, merged_props, required or set(), merged_items, enum, patterns, bounds, sources
    )


def _local(schema: Mapping[str, Any], resolver: Resolver[Any]) -> View:
    """The constraints a schema object states itself (no composition followed)."""
    view = View(sources=(id(schema),))
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
    view.bounds = {
        name: schema[name]
        for name in (*LOWER_BOUNDS, *UPPER_BOUNDS)
        if isinstance(schema.get(name), int | float) and not isinstance(schema.get(name), bool)
    }
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
