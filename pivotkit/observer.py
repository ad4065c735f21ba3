"""Observed schemas: a mergeable accumulator of answers (types, formats, presence, enums)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pivotkit.pointers import ITEMS, escape_pointer_segment, split_pointer

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Enum detection: at most this many distinct values ...
ENUM_MAX_VALUES = 6
#: ... seen over at least this many values, and at least three times as many as distinct ones.
ENUM_MIN_SAMPLES = 10
#: Distinct values remembered per position; past it the position is not enum-like.
_VALUE_CAP = 16
#: Strings longer than this are text, never enum values.
_ENUM_MAX_LENGTH = 40

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


def format_pattern(name: str, fmin: int, fmax: int) -> str:
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

TYPE_NAMES: dict[type, str] = {
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
        "integral",
        "integral_answers",
        "integral_last",
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
        self.integral = 0  # floats with an integral value (117.0)
        self.integral_answers = 0  # answers that had one here
        self.integral_last = -1

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

    # -- as a producer's shape (pivotkit.difference.Shape) --

    declared = False

    def type_counts(self) -> dict[str, int]:
        """JSON type -> how many values of it were seen."""
        return self.types

    def integral_floats(self) -> int:
        """Answers that had an integral float (``117.0``) here, when every number seen here
        was integral (else 0)."""
        numbers = self.types.get("number", 0)
        return self.integral_answers if numbers > 0 and self.integral == numbers else 0

    def string_formats(self) -> dict[str | None, int]:
        """Format of the strings seen -> count (None: free text)."""
        return self.formats

    def format_text(self) -> str:
        """The formats seen and their counts."""
        return ", ".join(
            f"{describe_format(f, self.fmin, self.fmax)} ({n})"
            for f, n in sorted(self.formats.items(), key=lambda kv: str(kv[0]))
        )

    def patterns_given(self) -> list[str]:
        """An observation states no pattern."""
        return []

    def enum_given(self) -> list[Any] | None:
        """The distinct values seen, unless there were too many to keep."""
        return None if self.overflow else list(self.values)

    def enum_like(self) -> list[Any] | None:
        """The values seen when they look like a small enum."""
        return self.enum_values()

    def declared_bounds(self) -> dict[str, Any]:
        """An observation states no constraint (each answer is checked against them)."""
        return {}

    def null_text(self) -> str:
        """How often null was seen."""
        return f"null in {self.types.get('null', 0)} of {self.count} values"

    def fields(self) -> dict[str, tuple[Node, bool, str]]:
        """Field -> (its node, present in every object, how often it was there)."""
        objects = self.objects
        out = {}
        for key, sub in self.props.items():
            always = sub.count == objects
            text = (
                f"present in all {objects} objects"
                if always
                else f"missing in {objects - sub.count} of {objects} objects"
            )
            out[key] = (sub, always, text)
        return out

    def item_shape(self) -> Node | None:
        """The node of the array items seen here."""
        return self.items

    def identity(self) -> object:
        """Each node is a position of its own."""
        return id(self)

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
        self.integral += other.integral
        self.integral_answers += other.integral_answers
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
    kind = TYPE_NAMES.get(type(value), "unknown")
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
    elif kind == "number" and value.is_integer():
        node.integral += 1
        if node.integral_last != sid:
            node.integral_last = sid
            node.integral_answers += 1


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
            node.last = node.integral_last = -1
        return self

    def steady(self) -> frozenset[str]:
        """Pointers of the fields present in every object seen at their place, at any depth
        (inside arrays: in every item): what a later answer missing them has lost."""
        out: set[str] = set()
        for node in self.root.walk():
            objects = node.objects
            out.update(sub.pointer for sub in node.props.values() if sub.count == objects)
        return frozenset(out)

    def node(self, pointer: str) -> Node | None:
        """The node at a pointer (``*`` for items), or None if nothing was seen there."""
        node: Node | None = self.root
        for part in split_pointer(pointer):
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
        out["pattern"] = format_pattern(fmt, node.fmin, node.fmax)
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


def steady_pointers(body: Any) -> frozenset[str]:
    """:meth:`Observer.steady` of one body."""
    observer = Observer()
    observer.add(body)
    return observer.steady()


__all__ = [
    "Observer",
]
