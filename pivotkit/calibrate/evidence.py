"""Evidence: every observed value, placed on the schema object that declares it.

An answer is walked together with its response schema (``$ref``, ``allOf`` followed; of an
``anyOf`` the alternative the value fits best). Each schema object (a *site*) collects what
reached it: types, string formats, values, ranges, the keys of objects, and the values of keys
no schema declares (on the object's site). The site a value is reached *through* first (the
schema under ``properties``/``items``, or the response schema) is its *holder*; a shared
definition (``common.json#/$defs/id``) is reached through many holders, and collects which
holder saw what, so a change is made where every holder agrees, and only on the others where
they do not.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pivotkit.calibrate.draft import Draft, Site
from pivotkit.observer import TYPE_NAMES, string_format
from pivotkit.pointers import escape_pointer_segment

#: Distinct values remembered per site (for enums and consts); beyond it: "many".
VALUE_CAP = 64
#: Values of an undeclared key kept to infer its schema.
EXTRA_CAP = 400
#: Example values kept per site.
EXAMPLE_CAP = 2

_SCALAR_CHECKS = (
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "enum",
    "const",
    "minItems",
    "maxItems",
    "multipleOf",
)


@dataclass
class Evidence:
    """What reached one site."""

    count: int = 0
    answers: int = 0
    _last: int = -1
    types: Counter[str] = field(default_factory=Counter)
    formats: Counter[str | None] = field(default_factory=Counter)
    fraction: tuple[int, int] = (99, -1)
    values: Counter[tuple[str, Any]] = field(default_factory=Counter)  # (type, value)
    many: bool = False
    low: float = math.inf
    high: float = -math.inf
    shortest: int = 2**31
    longest: int = -1
    objects: int = 0
    present: Counter[str] = field(default_factory=Counter)
    extra: dict[str, list[Any]] = field(default_factory=dict)
    extra_seen: Counter[str] = field(default_factory=Counter)
    by_holder: dict[Site, Counter[str]] = field(default_factory=dict)
    broken_by_holder: dict[Site, Counter[str]] = field(default_factory=dict)
    examples: list[Any] = field(default_factory=list)
    operations: set[str] = field(default_factory=set)
    broken: Counter[str] = field(default_factory=Counter)  # keyword -> values that break it
    breaking: dict[str, Any] = field(default_factory=dict)  # keyword -> the first of them

    def see(self, value: Any, kind: str, holder: Site, answer: int, operation: str) -> None:
        self.count += 1
        if self._last != answer:
            self._last, self.answers = answer, self.answers + 1
        self.types[kind] += 1
        self.by_holder.setdefault(holder, Counter())[kind] += 1
        self.operations.add(operation)
        if value is not None and len(self.examples) < EXAMPLE_CAP and value not in self.examples:
            self.examples.append(value)
        if kind == "string":
            self._string(value)
        elif kind in ("integer", "number"):
            self.low, self.high = min(self.low, value), max(self.high, value)
        elif kind == "array":
            self.shortest, self.longest = (
                min(self.shortest, len(value)),
                max(self.longest, len(value)),
            )
        elif kind == "object":
            self.objects += 1
            self.present.update(value.keys())
        if kind in ("string", "integer", "boolean", "null") and not self.many:
            self.values[kind, value] += 1
            if len(self.values) > VALUE_CAP:
                self.many = True
                self.values.clear()

    def _string(self, value: str) -> None:
        fmt = string_format(value)
        self.formats[fmt] += 1
        if fmt in ("local-date-time", "date-time"):
            match = re.search(r"T\d\d:\d\d:\d\d(?:\.(\d+))?", value)
            digits = len(match.group(1) or "") if match else 0
            self.fraction = (min(self.fraction[0], digits), max(self.fraction[1], digits))
        self.shortest, self.longest = min(self.shortest, len(value)), max(self.longest, len(value))

    def observed_values(self) -> list[Any]:
        """The distinct values seen besides null (empty when there were too many)."""
        return [v for k, v in self.values if k != "null"]

    def observed_types(self) -> set[str]:
        """The JSON types seen besides null."""
        return {t for t in self.types if t not in ("null", "unknown")}


def _types_of(schema: Any) -> set[str] | None:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    return None


def allows(types: set[str] | None, kind: str) -> bool:
    """Whether a declared type set admits a value of JSON type ``kind``."""
    return types is None or kind in types or (kind == "integer" and "number" in types)


def breaks(schema: dict[str, Any], keyword: str, value: Any, kind: str) -> bool:
    """Whether ``value`` breaks one scalar keyword of ``schema`` (the ones calibrate fixes)."""
    rule = schema[keyword]
    if keyword == "enum":
        return isinstance(rule, list) and not any(_same(value, v) for v in rule)
    if keyword == "const":
        return not _same(value, rule)
    if kind == "string":
        return _string_breaks(keyword, rule, value)
    if kind in ("integer", "number") and isinstance(rule, int | float):
        return _number_breaks(keyword, rule, value)
    if kind == "array" and isinstance(rule, int):
        return (keyword == "minItems" and len(value) < rule) or (
            keyword == "maxItems" and len(value) > rule
        )
    return False


def _string_breaks(keyword: str, rule: Any, value: str) -> bool:
    if keyword == "pattern" and isinstance(rule, str):
        try:
            return re.search(rule, value) is None
        except re.error:
            return False
    if keyword == "minLength" and isinstance(rule, int):
        return len(value) < rule
    if keyword == "maxLength" and isinstance(rule, int):
        return len(value) > rule
    return False


def _number_breaks(keyword: str, rule: float, value: float) -> bool:
    checks = {
        "minimum": value < rule,
        "maximum": value > rule,
        "exclusiveMinimum": value <= rule,
        "exclusiveMaximum": value >= rule,
        "multipleOf": bool(rule) and (value / rule) != int(value / rule),
    }
    return checks.get(keyword, False)


def _same(a: Any, b: Any) -> bool:
    """JSON equality (1 and True differ; 1 and 1.0 do not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


class Collector:
    """Walks answers against the draft's schemas; :attr:`sites` maps each site to its
    :class:`Evidence`, :attr:`holders` lists the sites values were reached through."""

    def __init__(self, draft: Draft) -> None:
        self.draft = draft
        self.sites: dict[Site, Evidence] = {}
        self.holders: dict[Site, Evidence] = {}
        self._answer = 0
        self._summary: dict[Site, tuple[set[str] | None, set[str]]] = {}

    def evidence(self, site: Site) -> Evidence:
        found = self.sites.get(site)
        if found is None:
            found = self.sites[site] = Evidence()
        return found

    def add(self, operation_id: str, site: Site, body: Any) -> None:
        """Walk one answer from the response schema at ``site``."""
        self._answer += 1
        self._visit(site, body, operation_id, 0)

    # -- composition ----------------------------------------------------------------------

    def _summary_of(self, site: Site, depth: int = 0) -> tuple[set[str] | None, set[str]]:
        """(declared types, declared property names) of a site, composition followed."""
        if site in self._summary:
            return self._summary[site]
        schema = self.draft.node(site)
        types, props = _types_of(schema), set()
        if isinstance(schema, dict) and depth < 40:
            props = set(schema.get("properties") or {})
            for sub in self._composed(site, schema):
                sub_types, sub_props = self._summary_of(sub, depth + 1)
                props |= sub_props
                if sub_types is not None:
                    types = sub_types if types is None else types & sub_types
            for key in ("anyOf", "oneOf"):
                branches = [
                    self._summary_of((site[0], f"{site[1]}/{key}/{i}"), depth + 1)
                    for i in range(len(schema.get(key) or []))
                ]
                if branches:
                    union: set[str] | None = set()
                    for sub_types, sub_props in branches:
                        props |= sub_props
                        union = None if union is None or sub_types is None else union | sub_types
                    if union is not None:
                        types = union if types is None else types & union
        self._summary[site] = (types, props)
        return types, props

    def _composed(self, site: Site, schema: dict[str, Any]) -> Iterator[Site]:
        if isinstance(schema.get("$ref"), str):
            yield self.draft.ref(site, schema["$ref"])
        for i in range(len(schema.get("allOf") or [])):
            yield site[0], f"{site[1]}/allOf/{i}"

    def _branch(self, site: Site, key: str, count: int, value: Any) -> Site | None:
        kind = TYPE_NAMES.get(type(value), "unknown")
        best, best_score = None, (-1, -1)
        for i in range(count):
            branch = (site[0], f"{site[1]}/{key}/{i}")
            types, props = self._summary_of(branch)
            fits = allows(types, kind)
            overlap = len(set(value) & props) if isinstance(value, dict) else 0
            score = (1 if fits else 0, overlap)
            if score > best_score:
                best, best_score = branch, score
        return best

    def chain(self, site: Site, value: Any) -> list[Site]:
        """The sites that apply to ``value`` at ``site``: itself, what it references, its
        allOf members, the alternative it fits (recursively)."""
        out: list[Site] = []
        todo = [site]
        while todo and len(out) < 64:
            current = todo.pop(0)
            if current in out:
                continue
            schema = self.draft.node(current)
            if not isinstance(schema, dict):
                continue
            out.append(current)
            todo.extend(self._composed(current, schema))
            for key in ("anyOf", "oneOf"):
                branches = schema.get(key)
                if isinstance(branches, list) and branches:
                    chosen = self._branch(current, key, len(branches), value)
                    if chosen is not None:
                        todo.append(chosen)
        return out

    # -- the walk -------------------------------------------------------------------------

    def _visit(self, holder: Site, value: Any, operation: str, depth: int) -> None:
        if depth > 64:
            return
        kind = TYPE_NAMES.get(type(value), "unknown")
        chain = self.chain(holder, value)
        if not chain:
            return
        for site in chain:
            evidence = self.evidence(site)
            evidence.see(value, kind, holder, self._answer, operation)
            self._check(site, evidence, holder, value, kind)
        self.holders[holder] = self.sites[chain[0]]
        if kind == "object":
            self._object(chain, value, operation, depth)
        elif kind == "array":
            items = next((s for s in chain if "items" in self.draft.node(s)), None)
            if items is not None:
                for item in value:
                    self._visit((items[0], f"{items[1]}/items"), item, operation, depth + 1)

    def _check(self, site: Site, evidence: Evidence, holder: Site, value: Any, kind: str) -> None:
        schema = self.draft.node(site)
        for keyword in _SCALAR_CHECKS:
            if keyword in schema and kind != "null" and breaks(schema, keyword, value, kind):
                evidence.broken[keyword] += 1
                evidence.breaking.setdefault(keyword, value)
                evidence.broken_by_holder.setdefault(holder, Counter())[keyword] += 1

    def _object(self, chain: list[Site], value: dict[str, Any], operation: str, depth: int) -> None:
        owner = next((s for s in chain if "properties" in self.draft.node(s)), chain[0])
        for key, sub in value.items():
            declaring = next(
                (s for s in chain if key in (self.draft.node(s).get("properties") or {})), None
            )
            if declaring is not None:
                child = (declaring[0], f"{declaring[1]}/properties/{escape_pointer_segment(key)}")
                self._visit(child, sub, operation, depth + 1)
                continue
            evidence = self.evidence(owner)
            evidence.extra_seen[key] += 1
            kept = evidence.extra.setdefault(key, [])
            if len(kept) < EXTRA_CAP:
                kept.append(sub)
