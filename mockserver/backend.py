"""The backend layer: routes from the contract, fixture matching, empty-200, generated bodies."""

from __future__ import annotations

import gc
import json
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from jsonschema import Draft202012Validator

from mockserver.gateway import Account
from mockserver.wire import Prepared, dumps, prepare_backend, provider_headers
from pivotkit.contract import OPENAPI_URI, SCHEMA_BASE, Contract, Operation
from pivotkit.errors import FixtureError
from pivotkit.fixtures import (
    DEFAULT_LANG,
    FIXTURE_SCHEMA_PATH,
    Exchange,
    FixtureSet,
    Request,
    Response,
    iter_fixture_files,
    read_exchange,
)

INVALID_REQUEST_BODY = {"Message": "The request is invalid."}
MOCK_HEADER = "x-pivot-mock"

# -- the matching vocabulary --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """What the matchers see of a request: method, decoded path, query, lower-case headers."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        """The ``lang`` asked for; absent means French."""
        return self.query.get("lang") or DEFAULT_LANG


class Pattern:
    """A predicate over a :class:`Call`; patterns compose with ``&``, ``|`` and ``~``."""

    def __call__(self, call: Call) -> bool:
        raise NotImplementedError

    def __and__(self, other: Pattern) -> Pattern:
        return _Combined(all, (self, other))

    def __or__(self, other: Pattern) -> Pattern:
        return _Combined(any, (self, other))

    def __invert__(self) -> Pattern:
        return _Not(self)


@dataclass(frozen=True)
class _Combined(Pattern):
    how: Callable[[Iterable[bool]], bool]
    parts: tuple[Pattern, ...]

    def __call__(self, call: Call) -> bool:
        return self.how(p(call) for p in self.parts)


@dataclass(frozen=True)
class _Not(Pattern):
    inner: Pattern

    def __call__(self, call: Call) -> bool:
        return not self.inner(call)


@dataclass(frozen=True)
class Method(Pattern):
    """The request's method is ``method``."""

    method: str

    def __call__(self, call: Call) -> bool:
        return call.method == self.method.upper()


@dataclass(frozen=True)
class PathTemplate(Pattern):
    """The request's path fits an operation's path template."""

    operation: Operation

    def __call__(self, call: Call) -> bool:
        return self.operation.match(call.path) is not None


@dataclass(frozen=True)
class PathIs(Pattern):
    """The request's path is exactly ``path`` (decoded)."""

    path: str

    def __call__(self, call: Call) -> bool:
        return call.path == self.path


@dataclass(frozen=True)
class QueryParam(Pattern):
    """The query has ``name`` (equal to ``value`` unless None)."""

    name: str
    value: str | None = None

    def __call__(self, call: Call) -> bool:
        got = call.query.get(self.name)
        return got is not None and (self.value is None or got == self.value)


@dataclass(frozen=True)
class Header(Pattern):
    """The request has header ``name`` (equal to ``value`` unless None)."""

    name: str
    value: str | None = None

    def __call__(self, call: Call) -> bool:
        got = call.headers.get(self.name.lower())
        return got is not None and (self.value is None or got == self.value)


@dataclass(frozen=True)
class Route:
    """An operation of the contract and the pattern that selects it."""

    operation: Operation
    pattern: Pattern


class Router:
    """The route table, one route per contract operation (never written by hand).

    Matching is cached per (method, path): a repeated request costs one dictionary lookup.
    """

    _CACHE_LIMIT = 20_000

    def __init__(self, contract: Contract) -> None:
        self.routes = tuple(
            Route(op, Method(op.method) & PathTemplate(op)) for op in contract.operations.values()
        )
        self._cache: dict[tuple[str, str], tuple[Operation, dict[str, str]] | None] = {}

    def find(self, call: Call) -> tuple[Operation, dict[str, str]] | None:
        """The operation for this call with its raw path parameters, or None (gateway 404)."""
        key = (call.method, call.path)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = None
        for route in self.routes:
            if route.pattern(call):
                params = route.operation.match(call.path)
                found = (route.operation, params or {})
                break
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found


# -- fixtures ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _fast_format_check() -> Callable[[Any], bool] | None:
    """A compiled check of the fixture file format (jsonschema-rs), if installed."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    schema = json.loads(FIXTURE_SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema_rs.validator_for(schema)
    return cast(Callable[[Any], bool], validator.is_valid)


def _read_fixture(path: Path) -> Exchange:
    """One fixture file. With jsonschema-rs, a valid file skips the slower checked reader;
    anything doubtful goes through :func:`read_exchange`, which names the file and pointer."""
    check = _fast_format_check()
    if check is not None:
        try:
            data = _loads(path.read_bytes())
        except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError included
            data = None
        if data is not None and check(data) and data["meta"].get("operationId") == path.parent.name:
            req, resp = data["request"], data["response"]
            return Exchange(
                operation_id=path.parent.name,
                name=path.stem,
                request=Request(
                    req["method"],
                    req["path"],
                    MappingProxyType(dict(req.get("query") or {})),
                    MappingProxyType(dict(req.get("headers") or {})),
                ),
                response=Response(
                    resp["status"], resp["body"], MappingProxyType(dict(resp.get("headers") or {}))
                ),
                meta=MappingProxyType(dict(data["meta"])),
                file=path,
            )
    return read_exchange(path)


try:  # orjson parses fixtures 3-4 times faster; the stdlib gives the same objects
    from orjson import loads as _orjson_loads

    def _loads(raw: bytes) -> Any:
        return _orjson_loads(raw)
except ImportError:  # pragma: no cover - depends on the environment

    def _loads(raw: bytes) -> Any:
        return json.loads(raw.decode("utf-8"))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk load, then freeze what was loaded.

    Loading builds many long-lived objects and no cycles: each collection pass would rescan
    the growing heap (half the start-up time with 10,000 fixtures). Freezing afterwards keeps
    those objects out of later collections, so they do not lengthen request-time pauses.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


def load_fixtures(
    root: Path, contract: Contract, *, strict: bool = False
) -> tuple[FixtureSet, list[str]]:
    """Every usable fixture under root, and one line per file that was left out (and why)."""
    with _gc_paused():
        return _load_fixtures(root, contract, strict=strict)


def _load_fixtures(root: Path, contract: Contract, *, strict: bool) -> tuple[FixtureSet, list[str]]:
    exchanges: list[Exchange] = []
    problems: list[str] = []
    for path in iter_fixture_files(root):
        try:
            exchange = _read_fixture(path)
        except FixtureError as exc:
            if strict:
                raise
            problems.append(str(exc))
            continue
        op = contract.operations.get(exchange.operation_id)
        reason = None
        if op is None:
            reason = f"unknown operation {exchange.operation_id!r}"
        elif exchange.request.method != op.method or op.match(exchange.request.path) is None:
            reason = (
                f"{exchange.request.method} {exchange.request.path} does not fit "
                f"{op.method} {op.path}"
            )
        if reason is not None:
            if strict:
                raise FixtureError(path, reason, "/request")
            problems.append(f"{path}: {reason}")
            continue
        exchanges.append(exchange)
    return FixtureSet(exchanges, root), problems


# -- generated bodies (dynamic mode) ----------------------------------------------------------


_WARM_SYNC = 200  # fixtures prepared before the server starts; the rest in the background


def _regex_sample(pattern: str, rng: random.Random) -> str:
    """A string matching a simple regular expression (classes, groups, repeats, branches)."""
    import re._constants as c  # type: ignore[import-not-found]
    import re._parser as sre  # type: ignore[import-not-found]

    def emit(items: Any) -> Iterator[str]:
        for op, av in items:
            if op is c.LITERAL:
                yield chr(av)
            elif op is c.NOT_LITERAL:
                yield "a" if av != ord("a") else "b"
            elif op is c.ANY:
                yield "x"
            elif op is c.IN:
                yield in_class(av)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                low, high, sub = av
                top = low + 3 if high is c.MAXREPEAT else min(high, low + 3)
                for _ in range(rng.randint(low, top)):
                    yield from emit(sub)
            elif op is c.SUBPATTERN:
                yield from emit(av[-1])
            elif op is c.BRANCH:
                yield from emit(rng.choice(av[1]))
            elif op is c.AT:
                continue
            elif op is c.CATEGORY:
                yield category(av)
            else:
                raise ValueError(f"unsupported regex construct {op}")

    def category(av: Any) -> str:
        if av is c.CATEGORY_DIGIT:
            return str(rng.randint(0, 9))
        if av is c.CATEGORY_SPACE:
            return " "
        return rng.choice("abcdefghij")

    def in_class(items: Any) -> str:
        choices: list[str] = []
        for op, av in items:
            if op is c.NEGATE:
                raise ValueError("negated classes are not supported")
            if op is c.LITERAL:
                choices.append(chr(av))
            elif op is c.RANGE:
                choices.extend(chr(x) for x in range(av[0], min(av[1], av[0] + 25) + 1))
            elif op is c.CATEGORY:
                choices.append(category(av))
        return rng.choice(choices)

    return "".join(emit(sre.parse(pattern)))


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

    A small generator over the resolved schemas (``$ref`` through the contract's registry,
    ``allOf``, the ``else`` branch of if/else, one ``anyOf``/``oneOf`` branch, ``const``,
    ``enum``, ``examples``, simple ``pattern``), seeded per request so a given id always gets
    the same body; every body is validated against the contract before it is served.
    """

    def __init__(self, contract: Contract, max_depth: int = 4) -> None:
        self.contract = contract
        self.max_depth = max_depth
        self._root = contract.registry.resolver(base_uri=OPENAPI_URI)

    def _parts(self, nodes: list[_Node], seen: int = 0) -> list[_Node]:
        """The schema objects that all apply: $ref and allOf followed, ``else`` of if/else."""
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
            if "else" in schema:
                out += self._parts([(schema["else"], resolver)], seen + 1)
        return out

    def generate(
        self, operation_id: str, seed: str, fix: Callable[[Any], Any] | None = None
    ) -> Any | None:
        """A valid 200 body of the operation for this seed (None if none validates)."""
        schema = {"$ref": self.contract.schema_ref(operation_id, 200)}
        for attempt in range(8):
            rng = random.Random(f"{seed}#{attempt}")
            body = self._value([(schema, self._root)], rng, 0, "")
            if fix is not None:
                body = fix(body)
            if self.contract.is_valid(operation_id, 200, body) and not _is_empty(body):
                return body
        return None

    def _value(self, nodes: list[_Node], rng: random.Random, depth: int, name: str) -> Any:
        parts = self._parts(nodes)
        for part, _ in parts:
            if "const" in part:
                return part["const"]
        for part, _ in parts:
            if isinstance(part.get("enum"), list) and part["enum"]:
                return rng.choice(part["enum"])
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
                    return self._value(
                        [*local, (rng.choice(part[key]), resolver)], rng, depth, name
                    )
        schemas = [p for p, _ in parts]
        kind = self._type(schemas)
        if kind == "object":
            return self._object(parts, rng, depth)
        if kind == "array":
            return self._array(parts, rng, depth, name)
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
            return _regex_sample(patterns[0], rng)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))
        low = max([int(p.get("minLength", 0)) for p in parts] or [0])
        text = words.capitalize() if name else words
        while len(text) < low:
            text += " " + rng.choice(_WORDS)
        high = min([int(p["maxLength"]) for p in parts if "maxLength" in p] or [len(text)])
        return text[:high]


def _extra_query(exchange: Exchange) -> dict[str, str]:
    return {k: v for k, v in exchange.request.query.items() if k != "lang"}


def _is_empty(body: Any) -> bool:
    if body == {}:
        return True
    return isinstance(body, dict) and body.get("data") in (None, [], {})


# -- the backend ------------------------------------------------------------------------------


class Backend:
    """Prepared answers: fixtures (serialised and gzipped at load), empty-200, 400, generated.

    Answers filtered for a restricted account are prepared on first use and cached per
    (fixture, account).
    """

    def __init__(
        self,
        contract: Contract,
        fixtures: FixtureSet,
        *,
        request_context: str,
        empty_body: Any = None,
        dynamic: bool = False,
    ) -> None:
        self.contract = contract
        self.fixtures = fixtures
        # Fixtures recorded with query parameters besides ``lang`` match only requests that
        # carry them (Method & PathIs & QueryParam...); the others are one dictionary lookup.
        self._plain = FixtureSet([ex for ex in fixtures if not _extra_query(ex)], fixtures.root)
        self._by_query: dict[tuple[str, str], list[tuple[Pattern, Exchange]]] = {}
        for exchange in fixtures:
            extra = _extra_query(exchange)
            if extra:
                pattern: Pattern = Method(exchange.request.method) & PathIs(exchange.request.path)
                for name, value in sorted(extra.items()):
                    pattern = pattern & QueryParam(name, value)
                self._by_query.setdefault(
                    (exchange.request.method, exchange.request.path), []
                ).append((pattern, exchange))
        self.router = Router(contract)
        self.dynamic = dynamic
        self.request_context = request_context
        self._base_headers = tuple(provider_headers(None, request_context))
        self.empty = prepare_backend(
            200, dumps({} if empty_body is None else empty_body), self._base_headers
        )
        self.invalid_request = prepare_backend(400, dumps(INVALID_REQUEST_BODY), self._base_headers)
        self.server_error = prepare_backend(
            500, dumps({"Message": "An error has occurred."}), self._base_headers
        )
        self._prepared: dict[tuple[int, str | None], Prepared] = {}
        self._generator = BodyGenerator(contract)
        self._dynamic: dict[tuple[str, str, str, str | None], Prepared | None] = {}
        # Every fixture is serialised and gzipped once, here at load; a large corpus finishes
        # in a background thread so the server answers at once (a fixture asked for before
        # its turn is prepared on that request, once; two threads preparing the same one
        # store equal values, so no lock is needed).
        self.warmed = threading.Event()
        first = list(fixtures)[:_WARM_SYNC]
        for exchange in first:
            self.prepared(exchange, None)
        rest = list(fixtures)[_WARM_SYNC:]
        if rest:
            threading.Thread(
                target=self._warm, args=(rest,), name="pivot-warm-up", daemon=True
            ).start()
        else:
            self.warmed.set()

    def _warm(self, exchanges: list[Exchange]) -> None:
        try:
            for exchange in exchanges:
                self.prepared(exchange, None)
        finally:
            self.warmed.set()

    def prepare_exchange(
        self, exchange: Exchange, account: Account | None, extra: Iterable[tuple[str, str]] = ()
    ) -> Prepared:
        """An exchange's answer for an account (uncached: for recorded or generated ones)."""
        body = exchange.response.body
        if account is not None:
            body = account.filter_body(body)
        headers = provider_headers(exchange.response.headers, self.request_context, extra)
        return prepare_backend(exchange.response.status, dumps(body), headers)

    def prepared(self, exchange: Exchange, account: Account | None) -> Prepared:
        """The cached answer of a fixture for an account (None: unfiltered)."""
        name = account.name if account is not None and account.restricted else None
        key = (id(exchange), name)
        found = self._prepared.get(key)
        if found is None:
            found = self.prepare_exchange(exchange, account if name else None)
            self._prepared[key] = found
        return found

    def match(self, call: Call) -> Exchange | None:
        """The recorded exchange for a call (``lang`` falls back to French).

        A fixture recorded with extra query parameters wins when the request has them all;
        query parameters no fixture mentions are ignored.
        """
        specific = self._by_query.get((call.method, call.path))
        if specific:
            for lang in dict.fromkeys((call.lang, DEFAULT_LANG)):
                for pattern, exchange in specific:
                    if exchange.request.lang == lang and pattern(call):
                        return exchange
        return self._plain.match(call.method, call.path, call.lang)

    def generated(
        self, operation: Operation, call: Call, params: Mapping[str, str], account: Account | None
    ) -> Prepared | None:
        """A schema-generated answer, deterministic per operation, path and lang (dynamic mode).

        None when no generated body validates (the caller then answers the empty-200).
        """
        name = account.name if account is not None and account.restricted else None
        key = (operation.operation_id, call.path, call.lang, name)
        if key in self._dynamic:
            return self._dynamic[key]
        typed = operation.coerce_path(params)

        def fix(body: Any) -> Any:
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, dict) and isinstance(typed.get("id"), int) and "id" in data:
                data["id"] = typed["id"]
            return body

        body = self._generator.generate(
            operation.operation_id, f"{operation.operation_id}|{call.path}|{call.lang}", fix
        )
        prepared = None
        if body is not None:
            if name is not None and account is not None:
                body = account.filter_body(body)
            headers = (*self._base_headers, (MOCK_HEADER, "dynamic"))
            prepared = prepare_backend(200, dumps(body), headers)
        if len(self._dynamic) >= 4096:
            self._dynamic.clear()
        self._dynamic[key] = prepared
        return prepared

    def describe(self) -> list[dict[str, Any]]:
        """The fixtures served, as JSON-ready rows."""
        return [
            {
                "operationId": ex.operation_id,
                "name": ex.name,
                "method": ex.request.method,
                "path": ex.request.path,
                "lang": ex.request.lang,
                "status": ex.response.status,
                "source": ex.source,
            }
            for ex in self.fixtures
        ]


def empty_result_validator(contract: Contract) -> Draft202012Validator:
    """The validator of the empty-200 body (``empty-result.json``)."""
    return Draft202012Validator(
        {"$ref": SCHEMA_BASE + "empty-result.json"}, registry=contract.registry
    )


__all__ = [
    "INVALID_REQUEST_BODY",
    "MOCK_HEADER",
    "Backend",
    "BodyGenerator",
    "Call",
    "Header",
    "Method",
    "PathIs",
    "PathTemplate",
    "Pattern",
    "QueryParam",
    "Route",
    "Router",
    "empty_result_validator",
    "load_fixtures",
]
