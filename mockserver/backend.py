"""The backend layer: fixtures loaded and matched, prepared answers, empty-200, generated."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver.corpus import Refused
from mockserver.generator import BodyGenerator
from mockserver.index import IndexedFixtures
from mockserver.routing import Call, Router
from mockserver.store import Fixture
from mockserver.wire import Prepared, dumps, prepare_backend, provider_headers
from pivotkit.accounts import Account
from pivotkit.cache import BoundedCache
from pivotkit.check import INVALID
from pivotkit.contract import Contract
from pivotkit.errors import FixtureError
from pivotkit.fixtures import Exchange
from pivotkit.operations import Operation

MOCK_HEADER = "x-pivot-mock"
DYNAMIC_CACHE_BYTES = 32 * 1024 * 1024  # generated answers kept (dynamic mode)
#: Bytes of prepared fixture answers a worker keeps by default (PIVOT_FIXTURE_CACHE).
FIXTURE_CACHE_BYTES = 64 * 1024 * 1024

#: Bytes of the request -> fixture answers matching remembers (per worker).
MATCH_CACHE_BYTES = 16 * 1024 * 1024

log = logging.getLogger("pivotkit.mock")
_UNKNOWN = object()
Specific = tuple[tuple[tuple[str, str], ...], str, "Fixture"]


def _head_size(found: Fixture | None) -> int:
    """About what a fixture known by its index line holds."""
    return 64 if found is None else 1024


#: A fixture's answer: its file's stat (unfiltered), or that and a restricted account's name.
PreparedKey = tuple[str, int, int, int, int] | tuple[tuple[str, int, int, int, int], str]


def _size(prepared: Prepared | None) -> int:
    """The bytes a prepared answer holds: both bodies and the headers."""
    if prepared is None:
        return 0
    headers = sum(len(k) + len(v) + 64 for k, v in prepared.gzip_headers)
    return len(prepared.identity) + len(prepared.gzipped or b"") + 2 * headers


def prepared_cache(max_bytes: int = FIXTURE_CACHE_BYTES) -> BoundedCache[PreparedKey, Prepared]:
    """The cache of prepared fixture answers of one worker: bounded in bytes, least recently
    used dropped first; an answer over a quarter of the bound is prepared on each use."""
    return BoundedCache(max_bytes, max_entry=max(1, max_bytes // 4), sizer=_size, lru=True)


@dataclass
class CacheStats:
    """What the prepared-answer cache did in this worker."""

    hits: int = 0
    prepared: int = 0  # fixtures read from disk, checked and prepared
    broken: list[Refused] = field(default_factory=list)  # found broken on first use


class Backend:
    """Prepared answers: fixtures (read, checked and prepared on first use), empty-200, 400,
    generated.

    A fixture's answer is prepared (serialised, gzipped, headers) when it is first asked for,
    per account when the account is restricted, into ``cache`` (bounded in bytes, shared by
    the backends a worker builds across reloads: an answer is keyed by its file's stat).
    A fixture whose file no longer passes its checks on first use answers as if absent, and
    is listed in ``stats.broken``.
    """

    def __init__(
        self,
        contract: Contract,
        fixtures: IndexedFixtures,
        *,
        request_context: str,
        empty_body: Any = None,
        dynamic: bool = False,
        cache: BoundedCache[PreparedKey, Prepared] | None = None,
    ) -> None:
        self.contract = contract
        self.conventions = conv = contract.conventions
        self.fixtures = fixtures
        self.cache = cache if cache is not None else prepared_cache()
        self.stats = CacheStats()
        # Matching asks the index; what it found (a fixture, or none) is remembered per
        # request key, within a bound.
        self._plain: BoundedCache[tuple[str, str, str], Fixture | None] = BoundedCache(
            MATCH_CACHE_BYTES, sizer=_head_size
        )
        self._specific: BoundedCache[tuple[str, str], tuple[Specific, ...]] = BoundedCache(
            MATCH_CACHE_BYTES // 4, sizer=lambda found: 256 + 1024 * len(found)
        )
        self._broken: set[str] = set()
        self._plain_get, self._specific_get = self._plain.reader(), self._specific.reader()
        self._prepared_now = self.cache.keys()  # a live view: membership at C speed
        self.router = Router(contract)
        self.dynamic = dynamic
        self.request_context = request_context
        self._base_headers = tuple(provider_headers(conv, None, request_context))
        self.empty = prepare_backend(
            200, dumps({} if empty_body is None else empty_body), self._base_headers
        )
        self.invalid_request = prepare_backend(
            400, dumps(dict(conv.invalid_request_body)), self._base_headers
        )
        self.server_error = prepare_backend(
            500, dumps(dict(conv.server_error_body)), self._base_headers
        )
        self._eager: dict[tuple[int, str | None], Prepared] = {}
        self._generator = BodyGenerator(contract)
        self._dynamic: BoundedCache[tuple[str, str, str, str | None], Prepared | None] = (
            BoundedCache(DYNAMIC_CACHE_BYTES, max_entry=DYNAMIC_CACHE_BYTES // 8, sizer=_size)
        )

    def filter_body(self, body: Any, account: Account | None) -> Any:
        """The body with the payload's fields outside the account's rights removed."""
        payload = self.conventions.envelope.payload_field
        if (
            account is None
            or not account.restricted
            or not isinstance(body, dict)
            or payload not in body
        ):
            return body
        return {**body, payload: account.rights.filter(body[payload])}

    def prepare_exchange(
        self, exchange: Exchange, account: Account | None, extra: Iterable[tuple[str, str]] = ()
    ) -> Prepared:
        """An exchange's answer for an account (uncached: for recorded or generated ones)."""
        body = self.filter_body(exchange.response.body, account)
        headers = provider_headers(
            self.conventions, exchange.response.headers, self.request_context, extra
        )
        return prepare_backend(exchange.response.status, dumps(body), headers)

    def prepared(self, exchange: Exchange, account: Account | None) -> Prepared:
        """The cached answer of a fixture for an account (None: unfiltered); the empty-200
        when an indexed fixture's file no longer passes its checks (it is then dropped)."""
        name = account.name if account is not None and account.restricted else None
        if not isinstance(exchange, Fixture):  # a timeline step's, held by this backend's scenarios
            eager = self._eager.get((id(exchange), name))
            if eager is None:
                eager = self._eager[id(exchange), name] = self.prepare_exchange(
                    exchange, account if name else None
                )
            return eager
        key: PreparedKey = exchange.sig if name is None else (exchange.sig, name)
        found = self.cache.get(key, None)
        if found is not None:
            self.stats.hits += 1
            return found
        full = self._full(exchange)
        if full is None:
            return self.empty
        self.stats.prepared += 1
        return self.cache.put(key, self.prepare_exchange(full, account if name else None))

    def _full(self, exchange: Fixture) -> Exchange | None:
        """The whole exchange: an indexed fixture read and checked again (None, and dropped
        from matching, when it no longer passes)."""
        try:
            return exchange.origin.read(exchange)
        except FixtureError as exc:
            self._drop(exchange, exc)
            return None

    def _drop(self, fixture: Fixture, error: FixtureError) -> None:
        self._broken.add(fixture.sig[0])
        self._plain.clear()
        self._specific.clear()
        reason = error.reason if error.line is None else f"line {error.line}: {error.reason}"
        refused = Refused(fixture.file, INVALID, f"{reason} (found on first use)")
        if all(r.path != refused.path for r in self.stats.broken):
            self.stats.broken.append(refused)
        log.warning("fixture refused on first use, answered as absent: %s", refused)

    def _ready(self, exchange: Fixture) -> bool:
        """Whether a matched fixture can be served (its unfiltered answer prepared)."""
        if exchange.sig in self.cache:
            return True
        return self.prepared(exchange, None) is not self.empty

    def match(self, call: Call) -> Exchange | None:
        """The recorded exchange for a call (``lang`` falls back to the default).

        A fixture recorded with extra query parameters wins when the request has them all;
        query parameters no fixture mentions are ignored. A fixture found broken on first use
        is not matched (the next candidate is).
        """
        while True:
            found = self._match(call)
            if found is None or found.sig in self._prepared_now or self._ready(found):
                return found

    def _match(self, call: Call) -> Fixture | None:
        default = self.fixtures.default_lang
        specific = self._specific_of(call.method, call.path)
        if specific:
            for lang in dict.fromkeys((call.lang, default)):
                for extra, fixture_lang, fixture in specific:
                    if fixture_lang == lang and all(call.query.get(k) == v for k, v in extra):
                        return fixture
        lang = call.lang or default
        method = call.method.upper()
        found = self._plain_of(method, call.path, lang)
        if found is None and lang != default:
            found = self._plain_of(method, call.path, default)
        return found

    def _plain_of(self, method: str, path: str, lang: str) -> Fixture | None:
        key = (method, path, lang)
        found = self._plain_get(key, _UNKNOWN)
        if found is _UNKNOWN:
            row = self.fixtures.index.plain(method, path, lang)
            fixture = None if row is None else self.fixtures.fixture(row)
            if fixture is not None and fixture.sig[0] in self._broken:
                fixture = None
            return self._plain.put(key, fixture)
        return found  # type: ignore[return-value]

    def _specific_of(self, method: str, path: str) -> tuple[Specific, ...]:
        key = (method, path)
        found = self._specific_get(key, None)
        if found is None:
            lang = self.conventions.lang_parameter
            found = tuple(
                (tuple((k, v) for k, v in fx.request.query.items() if k != lang), row[9], fx)
                for row in self.fixtures.index.specific(method, path)
                if row[0] not in self._broken
                for fx in (self.fixtures.fixture(row),)
            )
            self._specific.put(key, found)
        return found

    def generated(
        self, operation: Operation, call: Call, params: Mapping[str, str], account: Account | None
    ) -> Prepared | None:
        """A schema-generated answer, deterministic per operation, path and lang (dynamic mode).

        None when no generated body validates (the caller then answers the empty-200).
        """
        name = account.name if account is not None and account.restricted else None
        key = (operation.operation_id, call.path, call.lang, name)
        if key in self._dynamic:
            return self._dynamic.get(key, None)
        typed = operation.coerce_path(params)
        payload_field = self.conventions.envelope.payload_field

        def fix(body: Any) -> Any:
            # A path parameter named like a field of the payload gives that field its value
            # (the content asked for by id is that id).
            data = body.get(payload_field) if isinstance(body, dict) else None
            if isinstance(data, dict):
                for pname, value in typed.items():
                    if pname in data and type(data[pname]) is type(value):
                        data[pname] = value
            return body

        body = self._generator.generate(
            operation.operation_id, f"{operation.operation_id}|{call.path}|{call.lang}", fix
        )
        prepared = None
        if body is not None:
            body = self.filter_body(body, account)
            headers = (*self._base_headers, (MOCK_HEADER, "dynamic"))
            prepared = prepare_backend(200, dumps(body), headers)
        return self._dynamic.put(key, prepared)

    def describe(self) -> list[dict[str, Any]]:
        """The fixtures served, as JSON-ready rows."""
        return [
            {
                "operationId": ex.operation_id,
                "name": ex.name,
                "method": ex.request.method,
                "path": ex.request.path,
                "lang": self.fixtures.lang_of(ex),
                "status": ex.response.status,
                "source": ex.source,
            }
            for ex in self.fixtures
        ]
