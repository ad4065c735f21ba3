"""Routing: the matching vocabulary over a request (:class:`Call`) and the route table.

Patterns compose with ``&``, ``|`` and ``~``; the router has one route per operation of the
contract (never written by hand), so a path changed in openapi.yaml moves the route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pivotkit.cache import BoundedCache
from pivotkit.contract import Contract
from pivotkit.operations import Operation

_MISS = object()


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

    Matching is cached per (method, path) in a cache bounded in bytes (:data:`CACHE_BYTES`);
    a path longer than :data:`CACHED_PATH` characters is matched every time and never stored,
    so unknown long paths cannot fill memory. A repeated request costs one dictionary lookup.
    """

    CACHE_BYTES = 4 * 1024 * 1024
    CACHED_PATH = 512

    def __init__(self, contract: Contract) -> None:
        self.routes = tuple(
            Route(op, Method(op.method) & PathTemplate(op)) for op in contract.operations.values()
        )
        self._cache: BoundedCache[tuple[str, str], tuple[Operation, dict[str, str]] | None] = (
            BoundedCache(self.CACHE_BYTES, max_entry=4 * self.CACHED_PATH, sizer=_found_size)
        )

    def find(self, call: Call) -> tuple[Operation, dict[str, str]] | None:
        """The operation for this call with its raw path parameters, or None (gateway 404)."""
        key = (call.method, call.path)
        found = self._cache.get(key, _MISS)
        if found is not _MISS:
            return found  # type: ignore[return-value]
        result = None
        for route in self.routes:
            if route.pattern(call):
                params = route.operation.match(call.path)
                result = (route.operation, params or {})
                break
        if len(call.path) <= self.CACHED_PATH:
            self._cache.put(key, result)
        return result


def _found_size(found: tuple[Operation, dict[str, str]] | None) -> int:
    """The bytes a cached match holds of its own (the operation is shared by every entry)."""
    return 16 if found is None else 64 + sum(len(k) + len(v) + 100 for k, v in found[1].items())
