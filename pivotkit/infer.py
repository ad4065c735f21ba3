"""Observed schemas: a mergeable accumulator of answers, and its diff with the contract."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivotkit.contract import Contract, escape_pointer_segment
from pivotkit.errors import PivotError
from pivotkit.fixtures import Exchange, FixtureSet, atomic_write_text

if TYPE_CHECKING:
    from referencing._core import Resolver

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Enum detection: at most this many distinct values ...
ENUM_MAX_VALUES = 6
#: ... seen over at least this many values, and at least three times as many as distinct ones.
ENUM_MIN_SAMPLES = 10
#: Distinct values remembered per position; past it the position is not enum-like.
_VALUE_CAP = 16
#: Strings longer than this are text, never enum values.
_ENUM_MAX_LENGTH = 40

ITEMS = "*"
"""The pointer segment that stands for "every item of the array"."""

# -- formats -------------------------------------------------------------------------------

_DAY = r"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])"
_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
_ZONE = r"(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)"

#: Format name -> (detection regex, readable name, a canonical example).
FORMATS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "yyyyMMdd": (re.compile(_DAY), "day as yyyyMMdd", "20241105"),
    "yyyy-MM-dd": (re.compile(_DATE), "date as yyyy-MM-dd", "2024-11-05"),
    "local-date-time": (
        re.compile(rf"{_DATE}T{_TIME}(\.(\d{{1,7}}))?"),
        "date-time without zone",
        "2024-11-05T21:10:00.123",
    ),
    "date-time": (
        re.compile(rf"{_DATE}T{_TIME}(\.(\d{{1,9}}))?{_ZONE}"),
        "date-time with zone",
        "2024-11-05T21:10:00.123+01:00",
    ),
    "url": (re.compile(r"https?://[^\s]+"), "URL", "https://img.example.org/a.jpg"),
}
_DATETIME_FORMATS = ("local-date-time", "date-time")


def string_format(value: str) -> str | None:
    """The format of a string (a key of :data:`FORMATS`), or None for free text."""
    if len(value) < 8:
        return None
    first = value[0]
    if first.isdigit():
        for name in ("yyyyMMdd", "yyyy-MM-dd", "local-date-time", "date-time"):
            if FORMATS[name][0].fullmatch(value):
                return name
        return None
    if first == "h" and FORMATS["url"][0].fullmatch(value):
        return "url"
    return None


def _fraction_digits(value: str) -> int:
    dot = value.find(".", 19)
    if dot < 0:
        return 0
    end = dot + 1
    while end < len(value) and value[end].isdigit():
        end += 1
    return end - dot - 1


def _format_pattern(name: str, fmin: int, fmax: int) -> str:
    """The pattern of a format; date-times carry the observed number of fraction digits."""
    if name in _DATETIME_FORMATS:
        if fmax == 0:
            frac = ""
        elif fmin == 0:
            frac = rf"(\.\d{{1,{fmax}}})?"
        else:
            frac = rf"\.\d{{{fmin},{fmax}}}"
        zone = _ZONE if name == "date-time" else ""
        return f"^{_DATE}T{_TIME}{frac}{zone}$"
    return f"^{FORMATS[name][0].pattern}$"


def describe_format(name: str | None, fmin: int | None = None, fmax: int | None = None) -> str:
    """A readable name of a format, with the fraction digits of a date-time when given."""
    if name is None:
        return "free text"
    label = FORMATS[name][1]
    if name in _DATETIME_FORMATS and fmin is not None and fmax is not None and fmax >= 0:
        label += (
            f", {fmin} fraction digits" if fmin == fmax else f", {fmin} to {fmax} fraction digits"
        )
    return label


# -- the observer --------------------------------------------------------------------------

_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


class Node:
    """What was observed at one position (a JSON pointer, ``*`` for array items)."""

    __slots__ = (
        "answers",
        "count",
        "empty_arrays",
        "fmax",
        "fmin",
        "formats",
        "items",
        "last",
        "overflow",
        "pointer",
        "props",
        "types",
        "values",
    )

    def __init__(self, pointer: str) -> None:
        self.pointer = pointer
        self.count = 0  # values seen here
        self.answers = 0  # answers (bodies) in which this position appeared
        self.last = -1  # id of the last answer seen, to count answers once
        self.types: dict[str, int] = {}
        self.formats: dict[str | None, int] = {}
        self.fmin = 99
        self.fmax = -1
        self.values: dict[Any, int] = {}
        self.overflow = False
        self.props: dict[str, Node] = {}
        self.items: Node | None = None
        self.empty_arrays = 0

    # -- queries --

    @property
    def objects(self) -> int:
        """How many objects were seen here."""
        return self.types.get("object", 0)

    def child(self, key: str) -> Node:
        """The node of property ``key`` (created empty if never seen)."""
        node = self.props.get(key)
        if node is None:
            node = self.props[key] = Node(f"{self.pointer}/{escape_pointer_segment(key)}")
        return node

    def item_node(self) -> Node:
        """The node that merges every item of the arrays seen here."""
        if self.items is None:
            self.items = Node(f"{self.pointer}/{ITEMS}")
        return self.items

    def single_format(self) -> str | None:
        """The one format every string here has, or None."""
        if len(self.formats) == 1:
            (name,) = self.formats
            return name
        return None

    def enum_values(self) -> list[Any] | None:
        """The observed values when they look like a small enum, else None."""
        kinds = set(self.types) - {"null"}
        if self.overflow or len(kinds) != 1 or kinds.pop() not in ("string", "integer"):
            return None
        samples = sum(self.values.values())
        distinct = len(self.values)
        if (
            not distinct
            or distinct > ENUM_MAX_VALUES
            or samples < ENUM_MIN_SAMPLES
            or samples < 3 * distinct
        ):
            return None
        return sorted(self.values, key=lambda v: (str(type(v)), v))

    def walk(self) -> Iterator[Node]:
        """This node and every node below it."""
        yield self
        for sub in self.props.values():
            yield from sub.walk()
        if self.items is not None:
            yield from self.items.walk()

    # -- accumulation --

    def merge(self, other: Node) -> None:
        """Add what ``other`` (same position, other answers) observed."""
        self.count += other.count
        self.answers += other.answers
        for k, n in other.types.items():
            self.types[k] = self.types.get(k, 0) + n
        for f, n in other.formats.items():
            self.formats[f] = self.formats.get(f, 0) + n
        self.fmin = min(self.fmin, other.fmin)
        self.fmax = max(self.fmax, other.fmax)
        self.overflow = self.overflow or other.overflow
        if not self.overflow:
            for v, n in other.values.items():
                self.values[v] = self.values.get(v, 0) + n
            if len(self.values) > _VALUE_CAP:
                self.overflow = True
                self.values.clear()
        self.empty_arrays += other.empty_arrays
        for key, sub in other.props.items():
            self.child(key).merge(sub)
        if other.items is not None:
            self.item_node().merge(other.items)


def _visit(node: Node, value: Any, sid: int, seen: list[Node] | None) -> None:
    node.count += 1
    if node.last != sid:
        node.last = sid
        node.answers += 1
        if seen is not None:
            seen.append(node)
    kind = _TYPE_NAMES.get(type(value), "unknown")
    types = node.types
    types[kind] = types.get(kind, 0) + 1
    if kind == "object":
        props = node.props
        for key, sub in value.items():
            child = props.get(key)
            if child is None:
                child = node.child(key)
            _visit(child, sub, sid, seen)
    elif kind == "array":
        if not value:
            node.empty_arrays += 1
            return
        items = node.items if node.items is not None else node.item_node()
        for sub in value:
            _visit(items, sub, sid, seen)
    elif kind == "string":
        fmt = string_format(value)
        node.formats[fmt] = node.formats.get(fmt, 0) + 1
        if fmt in _DATETIME_FORMATS:
            digits = _fraction_digits(value)
            node.fmin = min(node.fmin, digits)
            node.fmax = max(node.fmax, digits)
        if not node.overflow:
            if len(value) > _ENUM_MAX_LENGTH:
                node.overflow = True
                node.values.clear()
            else:
                _count_value(node, value)
    elif kind == "integer" and not node.overflow:
        _count_value(node, value)


def _count_value(node: Node, value: Any) -> None:
    values = node.values
    values[value] = values.get(value, 0) + 1
    if len(values) > _VALUE_CAP:
        node.overflow = True
        values.clear()


class Observer:
    """An observed schema built incrementally: :meth:`add` bodies, :meth:`merge` observers.

    Cheap enough for tens of thousands of answers: one walk per body, counters per position.
    """

    def __init__(self, title: str = "") -> None:
        self.title = title
        self.root = Node("")
        self.samples = 0

    def add(self, body: Any, *, seen: list[Node] | None = None) -> None:
        """Observe one body; ``seen`` (if given) receives every node the body touched."""
        self.samples += 1
        _visit(self.root, body, self.samples, seen)

    def merge(self, other: Observer) -> Observer:
        """Add everything ``other`` observed (its answers are other answers); returns self."""
        self.samples += other.samples
        self.root.merge(other.root)
        # Answer ids of the two observers overlap: stop counting answers on the old ids.
        for node in self.root.walk():
            node.last = -1
        return self

    def node(self, pointer: str) -> Node | None:
        """The node at a pointer (``*`` for items), or None if nothing was seen there."""
        node: Node | None = self.root
        for part in _split(pointer):
            if node is None:
                return None
            node = node.items if part == ITEMS else node.props.get(part)
        return node

    def to_schema(self) -> dict[str, Any]:
        """A JSON Schema 2020-12 that accepts every observed body."""
        schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT}
        if self.title:
            schema["title"] = self.title
        schema["description"] = (
            f"Observed over {self.samples} answers by pivotkit infer; "
            "a proposal for a person to review, not the contract."
        )
        if self.samples:
            schema.update(_node_schema(self.root, self.samples))
        return schema


def _split(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _node_schema(node: Node, total: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kinds = set(node.types)
    if "integer" in kinds and "number" in kinds:
        kinds.discard("integer")
    kinds.discard("unknown")
    ordered = sorted(kinds)
    if len(ordered) == 1:
        out["type"] = ordered[0]
    elif ordered:
        out["type"] = ordered
    fmt = node.single_format() if "string" in kinds else None
    if fmt is not None:
        out["pattern"] = _format_pattern(fmt, node.fmin, node.fmax)
    values = node.enum_values()
    if values is not None:
        out["enum"] = values + ([None] if "null" in kinds else [])
    if "object" in kinds:
        objects = node.objects
        out["properties"] = {k: _node_schema(sub, total) for k, sub in sorted(node.props.items())}
        required = sorted(k for k, sub in node.props.items() if sub.count == objects)
        if required:
            out["required"] = required
    if "array" in kinds and node.items is not None:
        out["items"] = _node_schema(node.items, total)
    out["$comment"] = f"seen {node.count} times in {node.answers} of {total} answers"
    if fmt is not None:
        out["$comment"] += f"; {describe_format(fmt, node.fmin, node.fmax)}"
    return out


# -- the contract side -----------------------------------------------------------------------

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
            return {_TYPE_NAMES.get(type(v), "unknown") for v in self.enum}
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


def view_of(schema: Any, resolver: Resolver[Any]) -> View:
    """The flattened :class:`View` of ``schema`` resolved through ``resolver``."""
    if schema is True or not isinstance(schema, Mapping):
        return View() if schema is not False else View(types=set())
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
    """The :class:`View` of the contract's response schema for an operation and status."""
    uri = contract.schema_ref(operation_id, status)
    resolved = contract.registry.resolver().lookup(uri)
    return view_of(resolved.contents, resolved.resolver)


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
    observed = [t for t in _observed_types(node) if t != "null"]
    contract_types = view.effective_types()
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
    extra = [t for t in observed if not view.allows_type(t)]
    if extra:
        out.append(
            Difference(
                node.pointer,
                "type-differs",
                view.describe(),
                "|".join(_observed_types(node)),
                node.answers,
            )
        )
        return
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
    if "string" in node.types:
        _diff_format(node, view, out)
    _diff_enum(node, view, out)
    if "object" in node.types and view.allows_type("object"):
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
    if (
        "array" in node.types
        and node.items is not None
        and view.items is not None
        and view.allows_type("array")
    ):
        _diff_node(node.items, view.items(), out)


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


# -- infer over fixtures ---------------------------------------------------------------------


class NoSamples(PivotError, LookupError):
    """No fixture of the operation has a non-empty 200 body to infer from."""

    def __init__(self, operation_id: str, root: Path | None) -> None:
        self.operation_id = operation_id
        where = f" under {root}" if root is not None else ""
        super().__init__(
            f"no fixture of {operation_id}{where} has status 200 and a non-empty "
            "body; record some with `pivotkit record` first"
        )


def is_empty_result(body: Any) -> bool:
    """Whether a body carries no payload: ``{}``, or an object whose every value is a scalar,
    null or an empty container (the envelope of an empty result)."""
    if isinstance(body, dict):
        return all(not isinstance(v, dict | list) or not v for v in body.values())
    return body is None or body == []


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
    exchanges: Iterable[Exchange], operation_id: str, status: int = 200
) -> tuple[Observer, list[Exchange]]:
    """An observer over the non-empty bodies of the exchanges with ``status``."""
    observer = Observer(f"{operation_id} {status} (observed)")
    used = []
    for ex in exchanges:
        if ex.operation_id != operation_id or ex.response.status != status:
            continue
        if is_empty_result(ex.response.body):
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
    observer, used = observe_exchanges(fixtures.for_operation(operation_id), operation_id, status)
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
        guard = schemas_dir.resolve()
        if target == guard or guard in target.parents:
            raise ProposalInContract(target, guard)
    atomic_write_text(target, json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    return target


class ProposalInContract(PivotError, ValueError):
    """A proposal would be written into schemas/: the contract changes only by review."""

    def __init__(self, path: Path, schemas_dir: Path) -> None:
        self.path = path
        self.schemas_dir = schemas_dir
        super().__init__(
            f"{path} is inside the contract ({schemas_dir}); write proposals "
            "elsewhere (default proposals/) and copy what you accept by hand"
        )


__all__ = [
    "DIFF_KINDS",
    "ENUM_MAX_VALUES",
    "ENUM_MIN_SAMPLES",
    "FORMATS",
    "ITEMS",
    "Difference",
    "Inference",
    "NoSamples",
    "Node",
    "Observer",
    "ProposalInContract",
    "View",
    "contract_view",
    "describe_format",
    "diff",
    "infer",
    "is_empty_result",
    "observe_exchanges",
    "string_format",
    "view_of",
    "write_proposal",
]
