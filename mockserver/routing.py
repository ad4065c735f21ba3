"""Routing: the matching vocabulary over a request (:class:`Call`) and the route table.

Patterns compose with ``&``, ``|`` and ``~``; the router has one route per operation of the
contract (never written by hand), so a path changed in openapi.yaml moves the route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pivotkit.contract import Contract
from pivotkit.operations import Operation


@dataclass(frozen=True, slots=True)
class Call:
    """What the matchers see of a request: method, decoded path, query, lower-case headers,
    and the ``lang`` it asks for (the contract's default when absent: the builder sets it)."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    lang: str = ""


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
