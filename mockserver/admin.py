"""Admin endpoints under /__pivot/: health, ready, fixtures, explain, reload, accounts, usage, keys.

Every endpoint but ``health``, ``ready`` and ``openapi`` needs ``Authorization: Bearer <admin
token>`` (the token is
``PIVOT_ADMIN_TOKEN``, or generated and printed by ``pivotkit serve``).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from mockserver import control, readiness
from mockserver.routing import Call
from pivotkit.accounts import SLOTS
from pivotkit.errors import PivotError, ReloadRefused, UnknownAccount

admin = Blueprint("pivot_admin", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def _mock() -> Any:
    return current_app.extensions["pivot"]


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def _authorized() -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = str(_mock().admin_token)
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode("utf-8", "replace"), expected.encode("utf-8")
    )


def _protected(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _authorized():
            response, status = _error(401, "admin token required: Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="pivotkit"'
            return response, status
        return view(*args, **kwargs)

    return cast(F, wrapper)


@admin.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    return _error(exc.code or 500, exc.description or exc.name)


@admin.get("/health")
def health() -> Response:
    """Liveness: open to everyone (no secrets); readiness is ``/ready``."""
    mock = _mock()
    return jsonify(
        {
            "status": "ok",
            "pid": os.getpid(),
            "fixtures": len(mock.backend.fixtures),
            "operations": len(mock.contract.operations),
            "fixtureCache": _cache_stats(mock),
        }
    )


@admin.get("/ready")
def ready() -> Any:
    """Readiness for a load balancer (see mockserver.readiness): 200 ready, 503 state
    unreachable or draining after SIGTERM. Open to everyone (no secrets)."""
    status, body = readiness.report(_mock())
    return jsonify(body), status


def _cache_stats(mock: Any) -> dict[str, int]:
    """This worker's prepared-answer cache: bytes held and their bound, entries, hits,
    fixtures read and prepared, fixtures found broken on first use."""
    backend = mock.backend
    return {
        "bytes": backend.cache.nbytes,
        "maxBytes": backend.cache.max_bytes,
        "entries": len(backend.cache),
        "hits": backend.stats.hits,
        "prepared": backend.stats.prepared,
        "broken": len(backend.stats.broken),
    }


@admin.get("/openapi.<fmt>")
def openapi(fmt: str) -> Any:
    """The contract as one self-contained file (JSON or YAML), open to everyone like the
    provider's portal's definition download; its first server is this mock."""
    from pivotkit.bundle import bundle, dumps

    if fmt not in ("json", "yaml"):
        return _error(404, f"no admin endpoint {request.path}")
    mock = _mock()
    cache = mock.app.extensions.setdefault("pivot_openapi", {})
    base = request.host_url.rstrip("/")
    key = (fmt, base)
    if key not in cache:
        servers = [
            {"url": base, "description": "this pivotkit mock"},
            *(
                s
                for s in mock.contract.openapi.get("servers", [])
                if "{" not in str(s.get("url", ""))
            ),
        ]
        if len(cache) > 8:
            cache.clear()
        cache[key] = dumps(bundle(mock.contract, servers=servers), fmt)
    mimetype = "application/json" if fmt == "json" else "application/yaml"
    return Response(cache[key], mimetype=mimetype)


@admin.get("/fixtures")
@_protected
def fixtures() -> Response:
    """The fixtures served, and the files left out with the reason."""
    mock = _mock()
    return jsonify(
        {
            "root": str(mock.fixtures_dir),
            "fixtures": mock.backend.describe(),
            "refused": mock.refused_line,
            "problems": mock.fixture_problems,
            "index": {**mock.corpus.walk.as_dict(), "file": str(mock.corpus.index.path)},
            "cache": _cache_stats(mock),
        }
    )


@admin.post("/reload")
@_protected
def reload() -> Any:
    """Re-read fixtures and accounts, validated once, then served by every worker; 409 with
    every reason when the reload is refused (nothing changed anywhere)."""
    try:
        return jsonify(_mock().reload())
    except ReloadRefused as exc:
        return jsonify({"error": str(exc), "problems": exc.reasons, "changed": False}), 409
    except PivotError as exc:
        return _error(400, str(exc))


@admin.get("/accounts")
@_protected
def accounts() -> Response:
    """Accounts with their rights, limits and current keys."""
    mock = _mock()
    rows = []
    for account in mock.gateway.accounts:
        primary, secondary = mock.current_keys(account.name)
        rows.append({**account.describe(), "primaryKey": primary, "secondaryKey": secondary})
    return jsonify({"accounts": rows})


@admin.post("/accounts/<name>/keys/<slot>")
@_protected
def regenerate(name: str, slot: str) -> Any:
    """Regenerate one key of an account; the old key stops working in every worker."""
    if slot not in SLOTS:
        return _error(400, f"slot must be one of {', '.join(SLOTS)}")
    try:
        key = _mock().regenerate_key(name, slot)
    except UnknownAccount as exc:
        return _error(404, str(exc))
    return jsonify({"account": name, "slot": slot, "key": key})


@admin.get("/explain")
@_protected
def explain() -> Response:
    """How a request would be answered: ``?path=...&method=GET&lang=en`` (no key needed).

    Names the operation and its raw parameters, the parameter problems (-> 400), the fixture
    that matches, and otherwise the closest recorded paths.
    """
    mock = _mock()
    method = request.args.get("method", "GET").upper()
    path = request.args.get("path", "")
    lang = request.args.get("lang")
    conv = mock.contract.conventions
    query = {conv.lang_parameter: lang} if lang else {}
    call = Call(method, path, query, lang=conv.lang_of(query))
    closest = mock.backend.fixtures.closest(path)
    found = mock.backend.router.find(call)
    if found is None:
        others = [f"{op.method} {op.path}" for op in mock.contract.path_matches(path)]
        return jsonify(
            {
                "answer": "gateway 404 (no operation)",
                "operation": None,
                "sameWithOtherMethod": others,
                "closest": closest,
            }
        )
    operation, params = found
    problems = operation.parameter_problems(params)
    exchange = None if problems else mock.backend.match(call)
    if problems:
        answer = "400 (parameters break the contract)"
    elif exchange is not None:
        answer = "fixture"
    elif mock.settings.dynamic:
        answer = "dynamic (generated from the schema)"
    else:
        answer = "empty-200"
    return jsonify(
        {
            "answer": answer,
            "operation": operation.operation_id,
            "parameters": params,
            "problems": problems,
            "fixture": None
            if exchange is None
            else {
                "name": exchange.name,
                "lang": mock.backend.fixtures.lang_of(exchange),
                "file": None if exchange.file is None else str(exchange.file),
            },
            "closest": [] if exchange is not None else closest,
        }
    )


@admin.get("/usage")
@_protected
def usage() -> Any:
    """Calls per day, account, operation and key slot (``?account=`` for one account)."""
    mock = _mock()
    name = request.args.get("account")
    if name:
        try:
            rows = [(name, row) for row in mock.usage(name)]
        except UnknownAccount as exc:
            return _error(404, str(exc))
    else:
        rows = mock.state.all_usage()
    return jsonify(
        {
            "usage": [
                {
                    "account": account,
                    "day": row.day,
                    "operationId": row.operation_id,
                    "slot": row.slot,
                    "count": row.count,
                }
                for account, row in rows
            ]
        }
    )


# The endpoints a consumer's tests drive (journal, sequences, timelines, reset) live in
# mockserver/control.py, behind the same token.
control.register(admin, _protected)
