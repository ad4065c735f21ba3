"""Generated bodies (dynamic mode): deterministic, from the contract's response schemas."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import rstr

from pivotkit.contract import Contract

_Node = tuple[Any, Any]  # a schema and the referencing resolver it is read with
_COMPOSITE = frozenset({"$ref", "allOf", "anyOf", "oneOf", "if", "then", "else"})
_WORDS = (
    "soleil",
    "nuit",
    "ville",
    "mer",
    "histoire",
    "voyage",
    "secret",
    "retour",
    "jardin",
    "horizon",
    "lumière",
    "rivière",
    "été",
    "promesse",
    "étoile",
)


class BodyGenerator:
    """Deterministic bodies from the contract's response schemas, validated before use.

    A small generator over the resolved schemas of the 200's envelope alternative (``$ref``
    through the contract's registry, ``allOf``, one ``anyOf``/``oneOf`` branch, ``const``,
    ``enum``, ``examples``, ``pattern`` through rstr), seeded per request so a given id always
    gets the same body; every body is validated against the contract before it is served.
    """

    def __init__(self, contract: Contract, max_depth: int = 4) -> None:
        self.contract = contract
        self.max_depth = max_depth
        self._root = contract.registry.resolver(base_uri=contract.openapi_uri)

    def _parts(self, nodes: list[_Node], seen: int = 0) -> list[_Node]:
        """The schema objects that all apply: $ref and allOf followed."""
        out: list[_Node] = []
        for schema, resolver in nodes:
            if not isinstance(schema, dict) or seen > 30:
                continue
            out.append((schema, resolver))
            ref = schema.get("$ref")
            if isinstance(ref, str):
                resolved = resolver.lookup(ref)
                out += self._parts([(resolved.contents, resolved.resolver)], seen + 1)
            for sub in schema.get("allOf", []):
                out += self._parts([(sub, resolver)], seen + 1)
        return out

    def generate(
        self, operation_id: str, seed: str, fix: Callable[[Any], Any] | None = None
    ) -> Any | None:
        """A valid 200 body of the operation for this seed (None if none validates)."""
        root = self.contract.envelope_ref(operation_id, 200) or self.contract.schema_ref(
            operation_id, 200
        )
        schema = {"$ref": root}
        for attempt in range(8):
            rng = random.Random(f"{seed}#{attempt}")
            body = self._value([(schema, self._root)], rng, 0, "")
            if fix is not None:
                body = fix(body)
            if self.contract.is_valid(
                operation_id, 200, body
            ) and not self.contract.is_empty_result(body):
                return body
        return None

    def _value(self, nodes: list[_Node], rng: random.Random, depth: int, name: str) -> Any:
        parts = self._parts(nodes)
        fixed = self._fixed(parts, rng)
        if fixed is not None:
            return fixed[0]
        branch = self._branch(parts, rng)
        if branch is not None:
            return self._value(branch, rng, depth, name)
        schemas = [p for p, _ in parts]
        kind = self._type(schemas)
        if kind == "object":
            return self._object(parts, rng, depth)
        if kind == "array":
            return self._array(parts, rng, depth, name)
        return self._scalar(kind, schemas, rng, name)

    @staticmethod
    def _fixed(parts: list[_Node], rng: random.Random) -> tuple[Any] | None:
        """The value a ``const`` or an ``enum`` pins, as a 1-tuple (None when none does)."""
        for part, _ in parts:
            if "const" in part:
                return (part["const"],)
        for part, _ in parts:
            if isinstance(part.get("enum"), list) and part["enum"]:
                return (rng.choice(part["enum"]),)
        return None

    @staticmethod
    def _branch(parts: list[_Node], rng: random.Random) -> list[_Node] | None:
        """The parts with one ``anyOf``/``oneOf`` alternative chosen (None: no alternative)."""
        for part, resolver in parts:
            for key in ("anyOf", "oneOf"):
                if isinstance(part.get(key), list) and part[key]:
                    local: list[_Node] = [
                        (
                            {
                                k: v
                                for k, v in p.items()
                                if k not in _COMPOSITE
                                or (k in ("anyOf", "oneOf") and p is not part)
                            },
                            r,
                        )
                        for p, r in parts
                    ]
                    return [*local, (rng.choice(part[key]), resolver)]
        return None

    def _scalar(
        self, kind: str, schemas: list[dict[str, Any]], rng: random.Random, name: str
    ) -> Any:
        if kind == "integer":
            return int(self._number(schemas, rng))
        if kind == "number":
            return round(self._number(schemas, rng), 2)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schemas, rng, name)

    @staticmethod
    def _type(parts: list[dict[str, Any]]) -> str:
        for part in parts:
            kind = part.get("type")
            if isinstance(kind, list):
                kind = next((k for k in kind if k != "null"), "null")
            if isinstance(kind, str):
                return kind
        for part in parts:
            if "properties" in part or "required" in part:
                return "object"
            if "items" in part or "prefixItems" in part:
                return "array"
        return "string"

    def _object(self, parts: list[_Node], rng: random.Random, depth: int) -> Any:
        props: dict[str, list[_Node]] = {}
        required: set[str] = set()
        for part, resolver in reversed(parts):  # the base schema's order first
            for key, sub in part.get("properties", {}).items():
                props.setdefault(key, []).append((sub, resolver))
            required.update(part.get("required", []))
        out: dict[str, Any] = {}
        for key, subs in props.items():
            if key not in required and (depth >= self.max_depth or rng.random() < 0.25):
                continue
            out[key] = self._value(subs, rng, depth + 1, key)
        return out

    def _array(self, parts: list[_Node], rng: random.Random, depth: int, name: str) -> list[Any]:
        items = [(p["items"], r) for p, r in parts if isinstance(p.get("items"), dict)]
        low = max([int(p.get("minItems", 0)) for p, _ in parts] or [0])
        high = min([int(p.get("maxItems", 3)) for p, _ in parts] + [3])
        count = low if depth >= self.max_depth else rng.randint(max(low, 1), max(high, low, 1))
        return [self._value(items, rng, depth + 1, name) for _ in range(count)]

    @staticmethod
    def _number(parts: list[dict[str, Any]], rng: random.Random) -> float:
        low = max([p["minimum"] for p in parts if "minimum" in p] or [0])
        high = min([p["maximum"] for p in parts if "maximum" in p] or [low + 1000])
        high = min(high, low + 100_000)
        return rng.randint(int(low), int(max(high, low)))

    def _string(self, parts: list[dict[str, Any]], rng: random.Random, name: str) -> str:
        examples = [e for p in parts for e in p.get("examples", []) if isinstance(e, str)]
        patterns = [p["pattern"] for p in parts if isinstance(p.get("pattern"), str)]
        if examples:
            return str(rng.choice(examples))
        if patterns:
            return str(rstr.Rstr(rng).xeger(patterns[0]))
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))
        low = max([int(p.get("minLength", 0)) for p in parts] or [0])
        text = words.capitalize() if name else words
        while len(text) < low:
            text += " " + rng.choice(_WORDS)
        high = min([int(p["maxLength"]) for p in parts if "maxLength" in p] or [len(text)])
        return text[:high]
