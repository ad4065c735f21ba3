"""The backend layer: fixtures loaded and matched, prepared answers, empty-200, generated."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from mockserver.generator import BodyGenerator
from mockserver.routing import Call, Method, PathIs, Pattern, QueryParam, Router
from mockserver.wire import Prepared, dumps, prepare_backend, provider_headers
from pivotkit.accounts import Account
from pivotkit.cache import BoundedCache
from pivotkit.contract import Contract
from pivotkit.fixtures import Exchange, FixtureSet, lang_settings
from pivotkit.operations import Operation

MOCK_HEADER = "x-pivot-mock"
DYNAMIC_CACHE_BYTES = 32 * 1024 * 1024  # generated answers kept (dynamic mode)
_WARM_SYNC = 200  # fixtures prepared before the server starts; the rest in the background


def _size(prepared: Prepared | None) -> int:
    """The bytes a prepared answer holds: both bodies and the headers."""
    if prepared is None:
        return 0
    headers = sum(len(k) + len(v) + 64 for k, v in prepared.gzip_headers)
    return len(prepared.identity) + len(prepared.gzipped or b"") + 2 * headers


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
        self.conventions = conv = contract.conventions
        self.fixtures = fixtures
        # Fixtures recorded with query parameters besides ``lang`` match only requests that
        # carry them (Method & PathIs & QueryParam...); the others are one dictionary lookup.
        plain = [ex for ex in fixtures if not self._extra_query(ex)]
        self._plain = FixtureSet(plain, fixtures.root, **lang_settings(contract))
        self._by_query: dict[tuple[str, str], list[tuple[Pattern, Exchange]]] = {}
        for exchange in fixtures:
            extra = self._extra_query(exchange)
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
        self._prepared: dict[tuple[int, str | None], Prepared] = {}
        self._generator = BodyGenerator(contract)
        self._dynamic: BoundedCache[tuple[str, str, str, str | None], Prepared | None] = (
            BoundedCache(DYNAMIC_CACHE_BYTES, max_entry=DYNAMIC_CACHE_BYTES // 8, sizer=_size)
        )
        # Every fixture is serialised and gzipped once, here at load; a large corpus finishes
        # in a background thread so the server answers at once (a fixture asked for before
        # its turn is prepared on that request, once; two threads preparing the same one
        # store equal values, so no lock is needed).
        self.warmed = threading.Event()
        for exchange in list(fixtures)[:_WARM_SYNC]:
            self.prepared(exchange, None)
        rest = list(fixtures)[_WARM_SYNC:]
        if rest:
            threading.Thread(
                target=self._warm, args=(rest,), name="pivot-warm-up", daemon=True
            ).start()
        else:
            self.warmed.set()

    def _extra_query(self, exchange: Exchange) -> dict[str, str]:
        lang = self.conventions.lang_parameter
        return {k: v for k, v in exchange.request.query.items() if k != lang}

    def _warm(self, exchanges: list[Exchange]) -> None:
        try:
            for exchange in exchanges:
                self.prepared(exchange, None)
        finally:
            self.warmed.set()

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
        """The cached answer of a fixture for an account (None: unfiltered)."""
        name = account.name if account is not None and account.restricted else None
        key = (id(exchange), name)
        found = self._prepared.get(key)
        if found is None:
            found = self.prepare_exchange(exchange, account if name else None)
            self._prepared[key] = found
        return found

    def match(self, call: Call) -> Exchange | None:
        """The recorded exchange for a call (``lang`` falls back to the default).

        A fixture recorded with extra query parameters wins when the request has them all;
        query parameters no fixture mentions are ignored.
        """
        specific = self._by_query.get((call.method, call.path))
        if specific:
            for lang in dict.fromkeys((call.lang, self.fixtures.default_lang)):
                for pattern, exchange in specific:
                    if self.fixtures.lang_of(exchange) == lang and pattern(call):
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
