"""Schema changes, by evidence: what the answers show, written into the draft's schemas.

The rules (each change is kept with its evidence, for the report):

- an undeclared key becomes a property (its schema observed), required only when present in
  every object that reached the schema, and in at least two;
- a required property missing from some objects becomes optional;
- a declared type the values do not have is corrected: on the schema that declares it when
  every place reaching it agrees, else only where it differs (the ``$ref`` replaced there);
- a pattern, an enum, a const, a range or a length the values break is widened to what was
  seen (a pattern becomes the observed formats', or goes when the strings are free text);
- ``null`` is admitted where it was seen, on the property itself (never on a shared definition);
- a declared property never seen is kept, and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pivotkit.calibrate.draft import Draft, Site
from pivotkit.calibrate.evidence import VALUE_CAP, Collector, Evidence, allows
from pivotkit.observer import Observer, format_pattern
from pivotkit.pointers import split_pointer
from pivotkit.redact import example_of

#: An undeclared key present in every object becomes required only past this many objects.
REQUIRED_MIN_OBJECTS = 2
_META = ("$comment", "$schema", "title", "description", "enum")


@dataclass
class Change:
    """One edit of the contract and the evidence for it."""

    file: str
    pointer: str
    kind: str  # added, optional, type, nullable, pattern, enum, const, range, never-observed...
    summary: str
    answers: int = 0
    example: Any = None
    operations: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.file}#{self.pointer}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "pointer": self.pointer,
            "kind": self.kind,
            "summary": self.summary,
            "answers": self.answers,
            "example": self.example,
            "operations": self.operations,
        }


Edit = Callable[[], None]


def _types_of(node: dict[str, Any]) -> set[str] | None:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    return None


def _type_value(types: set[str]) -> str | list[str]:
    if "integer" in types and "number" in types:
        types = types - {"integer"}
    ordered = sorted(types)
    return ordered[0] if len(ordered) == 1 else ordered


def _clean(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _clean(v) for k, v in schema.items() if k not in _META}
    if isinstance(schema, list):
        return [_clean(v) for v in schema]
    return schema


def observed_schema(values: list[Any]) -> dict[str, Any]:
    """The schema of a list of values, as infer's observer sees them (no enums, no notes)."""
    observer = Observer()
    for value in values:
        observer.add(value)
    schema = _clean(observer.to_schema())
    return dict(schema) if isinstance(schema, dict) else {}


def strings_pattern(evidence: Evidence) -> str | None:
    """One pattern that accepts every string seen (None: free text, no pattern fits)."""
    if None in evidence.formats or not evidence.formats:
        return None
    fmin, fmax = evidence.fraction
    patterns = [
        format_pattern(str(f), max(fmin, 0), max(fmax, 0))
        for f in sorted(evidence.formats, key=str)
    ]
    return patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns)


class Reviser:
    """Decides every change from a collector's evidence, then applies them deepest first."""

    def __init__(self, draft: Draft, collector: Collector, secrets: tuple[str, ...] = ()) -> None:
        self.draft = draft
        self.collector = collector
        self.secrets = secrets
        self.changes: list[Change] = []
        self.notes: list[Change] = []  # never observed: reported, not edited
        self._edits: list[tuple[Site, Edit]] = []
        self._inlined: set[Site] = set()

    def _change(
        self, site: Site, kind: str, summary: str, evidence: Evidence | None, example: Any = None
    ) -> Change:
        if example is None and evidence is not None and evidence.examples:
            example = evidence.examples[0]
        change = Change(
            site[0],
            site[1],
            kind,
            summary,
            answers=evidence.answers if evidence else 0,
            example=example_of(example, self.secrets),
            operations=sorted(evidence.operations) if evidence else [],
        )
        return change

    def _edit(self, site: Site, change: Change, edit: Edit) -> None:
        self.changes.append(change)
        self._edits.append((site, edit))

    # -- decisions ------------------------------------------------------------------------

    def run(self) -> list[Change]:
        """Decide and apply every change; returns them (the draft is edited in place)."""
        for site, evidence in list(self.collector.sites.items()):
            node = self.draft.node(site)
            if not isinstance(node, dict):
                continue
            self._types(site, node, evidence)
            self._keywords(site, node, evidence)
            self._required(site, node, evidence)
            self._extras(site, node, evidence)
            self._unseen(site, node, evidence)
        for holder, evidence in self.collector.holders.items():
            node = self.draft.node(holder)
            if isinstance(node, dict) and holder not in self._inlined:
                self._nullable(holder, node, evidence)
        for _, edit in sorted(self._edits, key=lambda e: -len(split_pointer(e[0][1]))):
            edit()
        return self.changes

    def _types(self, site: Site, node: dict[str, Any], evidence: Evidence) -> None:
        declared = _types_of(node)
        if declared is None:
            return
        observed = evidence.observed_types()
        if all(allows(declared, k) for k in observed):
            return
        differing = [
            h
            for h, seen in evidence.by_holder.items()
            if any(not allows(declared, k) for k in seen if k not in ("null", "unknown"))
        ]
        if set(differing) == set(evidence.by_holder) or list(evidence.by_holder) == [site]:
            kinds = observed | ({"null"} & declared)
            change = self._change(
                site,
                "type",
                f"type {_type_value(declared)} -> {_type_value(kinds)} (seen: {_seen(evidence)})",
                evidence,
            )

            def retype() -> None:
                node["type"] = _type_value(kinds)

            self._edit(site, change, retype)
            return
        for holder in differing:
            self._inline(holder, self.collector.holders[holder], declared)

    def _inline(self, holder: Site, evidence: Evidence, declared: set[str]) -> None:
        """Replace a holder's schema by the observed one (it differs from a shared one)."""
        if holder in self._inlined:
            return
        self._inlined.add(holder)
        node = self.draft.node(holder)
        schema: dict[str, Any] = {}
        if isinstance(node, dict) and "description" in node:
            schema["description"] = node["description"]
        kinds = set(evidence.types) - {"unknown"}
        schema["type"] = _type_value(kinds)
        pattern = strings_pattern(evidence) if "string" in kinds else None
        if pattern:
            schema["pattern"] = pattern
        change = self._change(
            holder,
            "type",
            f"type {_type_value(declared)} -> "
            f"{schema['type']} here only (seen: {_seen(evidence)}); the shared "
            "schema it referenced is kept for the others",
            evidence,
        )
        self._edit(holder, change, lambda: self.draft.set(holder, schema))

    def _keywords(self, site: Site, node: dict[str, Any], evidence: Evidence) -> None:
        for keyword in sorted(evidence.broken):
            fix = getattr(self, f"_fix_{_KEYWORD_FIXES.get(keyword, '')}", None)
            if fix is not None and site not in self._inlined:
                fix(site, node, evidence, keyword)

    def _keyword_edit(
        self,
        site: Site,
        node: dict[str, Any],
        evidence: Evidence,
        keyword: str,
        kind: str,
        summary: str,
        edit: Edit,
    ) -> None:
        example = _breaking_example(node, evidence, keyword)
        self._edit(site, self._change(site, kind, summary, evidence, example), edit)

    def _fix_pattern(
        self, site: Site, node: dict[str, Any], evidence: Evidence, keyword: str
    ) -> None:
        old = node[keyword]
        new = strings_pattern(evidence)
        count = evidence.broken[keyword]
        if new is None:
            summary = f"pattern {old} refused {count} value(s) (free text): removed"

            def edit() -> None:
                node.pop("pattern", None)
        else:
            summary = f"pattern {old} refused {count} value(s): now {new} ({_formats(evidence)})"

            def edit() -> None:
                node["pattern"] = new

        self._keyword_edit(site, node, evidence, keyword, "pattern", summary, edit)

    def _fix_values(
        self, site: Site, node: dict[str, Any], evidence: Evidence, keyword: str
    ) -> None:
        values = evidence.observed_values()
        if evidence.many:
            summary = f"{keyword} refused more than {VALUE_CAP} distinct values: removed"

            def edit() -> None:
                node.pop(keyword, None)
        elif keyword == "const" and node["const"] not in values and len(values) == 1:
            summary = f"const {node['const']!r} -> {values[0]!r} (every value)"

            def edit() -> None:
                node["const"] = values[0]
        else:
            known = [node["const"]] if keyword == "const" else list(node["enum"])
            new = [v for v in values if v not in known]
            summary = f"{keyword}: also {', '.join(repr(v) for v in new)}"

            def edit() -> None:
                node.pop("const", None)
                node["enum"] = known + new

        self._keyword_edit(site, node, evidence, keyword, "enum", summary, edit)

    def _fix_range(
        self, site: Site, node: dict[str, Any], evidence: Evidence, keyword: str
    ) -> None:
        bound: Any
        if keyword in ("minimum", "exclusiveMinimum"):
            bound, target = evidence.low, "minimum"
        elif keyword in ("maximum", "exclusiveMaximum"):
            bound, target = evidence.high, "maximum"
        elif keyword in ("minLength", "minItems"):
            bound, target = evidence.shortest, keyword
        elif keyword in ("maxLength", "maxItems"):
            bound, target = evidence.longest, keyword
        else:
            bound, target = None, keyword
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        summary = f"{keyword} {node[keyword]} refused {evidence.broken[keyword]} value(s): " + (
            f"{target} {bound}" if bound is not None else "removed"
        )

        def edit() -> None:
            node.pop(keyword, None)
            if bound is not None:
                node[target] = bound

        self._keyword_edit(site, node, evidence, keyword, "range", summary, edit)

    def _required(self, site: Site, node: dict[str, Any], evidence: Evidence) -> None:
        required = node.get("required")
        if not isinstance(required, list) or not evidence.objects:
            return
        missing = [r for r in required if evidence.present[r] < evidence.objects]
        for name in missing:
            absent = evidence.objects - evidence.present[name]
            change = self._change(
                (site[0], f"{site[1]}/properties/{name}"),
                "optional",
                f"{name} was required; missing in {absent} of {evidence.objects} objects",
                evidence,
            )

            def edit(name: str = name) -> None:
                node["required"] = [r for r in node["required"] if r != name]
                if not node["required"]:
                    del node["required"]

            self._edit(site, change, edit)

    def _extras(self, site: Site, node: dict[str, Any], evidence: Evidence) -> None:
        for key in sorted(evidence.extra):
            values = evidence.extra[key]
            schema = observed_schema(values)
            seen = evidence.extra_seen[key]
            required = seen == evidence.objects and evidence.objects >= REQUIRED_MIN_OBJECTS
            schema = {
                "description": f"Observed by pivotkit calibrate in {seen} of "
                f"{evidence.objects} objects [observed].",
                **schema,
            }
            label = "required" if required else "optional"
            change = Change(
                site[0],
                f"{site[1]}/properties/{key}",
                "added",
                f"{key} ({label}, {_type_text(schema)}): in {seen} of {evidence.objects} objects",
                answers=evidence.answers,
                example=example_of(values[0], self.secrets),
                operations=sorted(evidence.operations),
            )

            def edit(
                key: str = key, schema: dict[str, Any] = schema, required: bool = required
            ) -> None:
                node.setdefault("properties", {})[key] = schema
                if required:
                    node.setdefault("required", []).append(key)

            self._edit(site, change, edit)

    def _unseen(self, site: Site, node: dict[str, Any], evidence: Evidence) -> None:
        props = node.get("properties")
        if not isinstance(props, dict) or not evidence.objects:
            return
        for key in props:
            if not evidence.present[key]:
                self.notes.append(
                    Change(
                        site[0],
                        f"{site[1]}/properties/{key}",
                        "never-observed",
                        f"{key}: declared, absent from all {evidence.objects} objects (kept)",
                        answers=evidence.answers,
                        operations=sorted(evidence.operations),
                    )
                )

    def _nullable(self, holder: Site, node: dict[str, Any], evidence: Evidence) -> None:
        if not evidence.types.get("null"):
            return
        types, _ = self.collector._summary_of(holder)
        if allows(types, "null"):
            return
        summary = f"null in {evidence.types['null']} of {evidence.count} values: now nullable"
        change = self._change(holder, "nullable", summary, evidence)
        self._edit(holder, change, lambda: _make_nullable(self.draft, holder, node))


def _make_nullable(draft: Draft, holder: Site, node: dict[str, Any]) -> None:
    if "type" in node:
        kinds = _types_of(node) or set()
        node["type"] = _type_value(kinds | {"null"})
        if isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"].append(None)
        if "const" in node:
            node["enum"] = [node.pop("const"), None]
        return
    rest = {k: v for k, v in node.items() if k != "description"}
    wrapped: dict[str, Any] = {}
    if "description" in node:
        wrapped["description"] = node["description"]
    wrapped["anyOf"] = [rest, {"type": "null"}]
    draft.set(holder, wrapped)


_KEYWORD_FIXES = {
    "pattern": "pattern",
    "enum": "values",
    "const": "values",
    "minimum": "range",
    "maximum": "range",
    "exclusiveMinimum": "range",
    "exclusiveMaximum": "range",
    "minLength": "range",
    "maxLength": "range",
    "minItems": "range",
    "maxItems": "range",
    "multipleOf": "range",
}


def _seen(evidence: Evidence) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(evidence.types.items()))


def _formats(evidence: Evidence) -> str:
    return ", ".join(
        f"{f or 'free text'} {n}"
        for f, n in sorted(evidence.formats.items(), key=lambda kv: str(kv[0]))
    )


def _type_text(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    return "|".join(kind) if isinstance(kind, list) else str(kind)


def _breaking_example(node: dict[str, Any], evidence: Evidence, keyword: str) -> Any:
    """A seen value that breaks ``keyword`` (else the first seen)."""
    if keyword in evidence.breaking:
        return evidence.breaking[keyword]
    return evidence.examples[0] if evidence.examples else None
