"""The portal's pages: login, Profile (keys), APIs (operations and Try it), Reports (usage)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from mockserver.portal import charts, tryit
from mockserver.portal.i18n import LANGUAGES, current_language, translate
from mockserver.portal.security import (
    CSRF_FIELD,
    LoginThrottle,
    csrf_token,
    csrf_valid,
    secure_headers,
)
from mockserver.state import SharedState
from pivotkit.accounts import SLOTS
from pivotkit.contract import Contract
from pivotkit.operations import Operation

_PUBLIC = frozenset(
    {"portal.login", "portal.language", "portal.static", "portal.index", "portal.not_found"}
)

bp = Blueprint(
    "portal",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


@dataclass(frozen=True)
class PortalSettings:
    """What ``init_app`` decided: the login throttle and where the secret came from."""

    throttle: LoginThrottle
    secret_source: str


# -- access to the mock's parts ------------------------------------------------------------


def _part(name: str) -> Any:
    """One part of the mock (``gateway``, ``contract``, ``fixtures``, ...) from the app."""
    pivot = current_app.extensions["pivot"]
    if isinstance(pivot, Mapping):
        return pivot.get(name)
    return getattr(pivot, name, None)


def _gateway() -> Any:
    return _part("gateway")


def _contract() -> Contract:
    contract = _part("contract")
    assert isinstance(contract, Contract)
    return contract


def _settings() -> PortalSettings:
    settings = current_app.extensions["pivot_portal"]
    assert isinstance(settings, PortalSettings)
    return settings


def _page(template: str, status: int = 200, **context: Any) -> Response:
    response = current_app.make_response((render_template(template, **context), status))
    return response


def _error_page(title_key: str, message: str, status: int) -> Response:
    return _page("portal/error.html", status, title=translate(title_key), message=message)


def _safe_next(target: str | None) -> str | None:
    """A local path to go back to after login, or None (no scheme, no host, no //, no
    control character or space: a CR/LF would split the Location header)."""
    if (
        not target
        or len(target) > 2048
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(c <= " " or c == "\x7f" for c in target)
    ):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def _state() -> SharedState | None:
    state = _part("state")
    return state if isinstance(state, SharedState) else None


def _session_valid(name: str) -> bool:
    """Whether this session of ``name`` is still open: it carries the stamp the shared state
    holds for the account (sign-out and key regeneration change it, in every worker)."""
    state = _state()
    return state is None or session.get("stamp") == state.session_stamp(name)


def _stamp_session(name: str) -> None:
    state = _state()
    if state is not None:
        session["stamp"] = state.session_stamp(name)


# -- every request ---------------------------------------------------------------------------


@bp.before_request
def _guard() -> Response | BaseResponse | None:
    """Load the signed-in account, refuse POSTs without the CSRF token, send guests to login."""
    if request.endpoint == "portal.static":
        return None
    name = session.get("account")
    g.account = None
    if isinstance(name, str):
        with contextlib.suppress(LookupError):
            g.account = _gateway().account(name) if _session_valid(name) else None
        if g.account is None:  # ended (sign-out elsewhere, regenerated key) or unknown
            session.pop("account", None)
            session.pop("stamp", None)
    if request.method == "POST" and not csrf_valid():
        return _error_page("csrf_title", translate("csrf"), 400)
    if g.account is None and request.endpoint not in _PUBLIC:
        flash(translate("login_needed"), "info")
        return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    if request.endpoint == "portal.static":
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    return secure_headers(response)


@bp.context_processor
def _context() -> dict[str, Any]:
    return {
        "t": translate,
        "ui_lang": current_language(),
        "languages": LANGUAGES,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token,
        "account": getattr(g, "account", None),
    }


# -- login, logout, language -----------------------------------------------------------------


@bp.get("/")
def index() -> BaseResponse:
    """The portal's home: Profile when signed in, else the login page."""
    if session.get("account"):
        return redirect(url_for("portal.profile"))
    return redirect(url_for("portal.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | BaseResponse:
    """Sign in with an account of the accounts file (throttled per account and address)."""
    next_url = _safe_next(request.values.get("next"))
    if request.method != "POST":  # GET, and HEAD (its headers only)
        return _page("portal/login.html", next_url=next_url, name="")
    name = request.form.get("account", "").strip()[:64]
    password = request.form.get("password", "")
    address = request.remote_addr or "-"
    throttle = _settings().throttle
    wait = throttle.attempt(name, address)
    if wait:
        response = _page(
            "portal/error.html",
            429,
            title=translate("too_many_title"),
            message=translate("too_many", seconds=wait),
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if not name or not _gateway().verify_password(name, password):
        # Only a known account's name is logged: people type passwords into the wrong field.
        known = {account.name for account in _gateway().accounts}
        current_app.logger.info(
            "portal: failed sign-in for %s", repr(name) if name in known else "an unknown account"
        )
        return _page(
            "portal/login.html", 401, next_url=next_url, name=name, error=translate("login_failed")
        )
    throttle.succeeded(name, address)
    ui = session.get("ui")
    session.clear()  # a fresh session: no fixation, a new CSRF token
    session["account"] = name
    _stamp_session(name)
    if ui in LANGUAGES:
        session["ui"] = ui
    csrf_token()
    return redirect(next_url or url_for("portal.profile"))


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign out: this account's sessions end in the shared state (a copy of the cookie no
    longer opens anything, in any worker), and this one is emptied."""
    state = _state()
    if state is not None and g.account is not None:
        state.end_sessions(g.account.name)
    ui = session.get("ui")
    session.clear()
    if ui in LANGUAGES:
        session["ui"] = ui
    flash(translate("logged_out"), "info")
    return redirect(url_for("portal.login"))


@bp.post("/language")
def language() -> BaseResponse:
    """Choose the portal's language (English or French), then go back to the same page."""
    chosen = request.form.get("ui", "")
    if chosen in LANGUAGES:
        session["ui"] = chosen
    return redirect(_safe_next(request.form.get("next")) or url_for("portal.index"))


# -- Profile -----------------------------------------------------------------------------------


@bp.get("/profile")
def profile() -> Response:
    """The account's two keys (masked, with reveal, copy and regenerate) and its rights."""
    keys = dict(zip(SLOTS, _gateway().current_keys(g.account.name), strict=True))
    return _page(
        "portal/profile.html",
        keys=keys,
        slots=SLOTS,
        rights=g.account.describe(),
        key_header=_contract().conventions.key_header,
    )


@bp.post("/profile/keys/<slot>/regenerate")
def regenerate(slot: str) -> Response | BaseResponse:
    """Replace one key; the old value stops working at once in every worker."""
    if slot not in SLOTS:
        return _error_page("not_found_title", translate("not_found"), 404)
    _gateway().regenerate_key(g.account.name, slot)  # ends the account's other sessions
    _stamp_session(g.account.name)  # this one goes on
    current_app.logger.info("portal: account %r regenerated its %s key", g.account.name, slot)
    flash(translate("regenerated", slot=translate(f"slot_{slot}").lower()), "success")
    return redirect(url_for("portal.profile") + f"#key-{slot}")


# -- APIs and Try it ---------------------------------------------------------------------------


def api_versions(contract: Contract) -> list[str]:
    """The API versions: the contract's ``info.version`` and each operation's first segment."""
    versions: list[str] = []
    declared = str(contract.openapi.get("info", {}).get("version", "")).strip()
    if declared:
        versions.append(declared)
    for op in contract.operations.values():
        first = op.path.strip("/").split("/", 1)[0]
        if first and first not in versions:
            versions.append(first)
    return versions


def operations_of(contract: Contract, version: str) -> list[Operation]:
    """The operations served under ``/<version>/``, in contract order."""
    return [op for op in contract.operations.values() if op.path.startswith(f"/{version}/")]


def _servers(contract: Contract) -> list[dict[str, str]]:
    servers = [
        {"url": str(s.get("url", "")), "description": str(s.get("description", ""))}
        for s in contract.openapi.get("servers", [])
        if isinstance(s, Mapping)
    ]
    here = request.host_url.rstrip("/")
    if all(s["url"] != here for s in servers):
        servers.append({"url": here, "description": "this mock"})
    return servers


@bp.get("/apis")
def apis_index() -> BaseResponse:
    """Go to the chosen (or first) API version."""
    versions = api_versions(_contract())
    chosen = request.args.get("version", "")
    return redirect(url_for("portal.apis", version=chosen if chosen in versions else versions[0]))


@bp.get("/apis/<version>")
def apis(version: str) -> Response:
    """Every operation of one API version: method, path, summary, path source, parameters."""
    contract = _contract()
    versions = api_versions(contract)
    if version not in versions:
        return _error_page("not_found_title", translate("not_found"), 404)
    return _page(
        "portal/apis.html",
        version=version,
        versions=versions,
        operations=operations_of(contract, version),
        servers=_servers(contract),
        allowed=g.account.may_call,
    )


_SOURCE_RANK = {"doc": 0, "live": 1}


def _fixture_set() -> Any:
    """The mock's fixtures (``backend.fixtures``), or None."""
    backend = _part("backend")
    fixtures = getattr(backend, "fixtures", None) if backend is not None else _part("fixtures")
    return fixtures if hasattr(fixtures, "for_operation") else None


def _prefill(op: Operation) -> dict[str, str]:
    """Starting values: a recorded 200's parameters (documented ones first), else the schema's
    default or first example."""
    values: dict[str, str] = {}
    fixtures = _fixture_set()
    exchanges = (
        []
        if fixtures is None
        else [ex for ex in fixtures.for_operation(op.operation_id) if ex.response.status == 200]
    )
    exchanges.sort(key=lambda ex: _SOURCE_RANK.get(ex.source, 2))
    for exchange in exchanges:
        matched = op.match(exchange.request.path)
        # The body last: an indexed fixture reads its file for it (one, not the corpus).
        if matched is not None and exchange.response.body not in ({}, [], None):
            values.update(matched)
            values.update(
                {
                    k: v
                    for k, v in exchange.request.query.items()
                    if k in {p.name for p in op.query_parameters}
                }
            )
            break
    for param in op.parameters:
        if param.name in values:
            continue
        examples = param.schema.get("examples")
        if "default" in param.schema:
            values[param.name] = str(param.schema["default"])
        elif isinstance(examples, list) and examples:
            values[param.name] = str(examples[0])
    return values


def _sample_request(op: Operation, values: Mapping[str, str]) -> tryit.TryRequest:
    form = {f"param-{k}": v for k, v in values.items()}
    built, _ = tryit.build_request(op, form, _contract().conventions.lang_parameter)
    if built is not None:
        return built
    return tryit.TryRequest(
        op,
        op.path,
        tuple((p.name, values[p.name]) for p in op.query_parameters if values.get(p.name)),
    )


@bp.route("/apis/<version>/<operation_id>", methods=["GET", "POST"])
def operation(version: str, operation_id: str) -> Response:
    """One operation: its parameters and the Try it form; a POST sends the request."""
    contract = _contract()
    op = contract.operations.get(operation_id)
    if (
        version not in api_versions(contract)
        or op is None
        or op not in operations_of(contract, version)
    ):
        return _error_page("not_found_title", translate("not_found"), 404)
    result: tryit.TryResult | None = None
    problems: list[tryit.FormProblem] = []
    slot = "primary"
    status = 200
    if request.method == "POST":
        values = {p.name: request.form.get(f"param-{p.name}", "").strip() for p in op.parameters}
        slot = request.form.get("slot", "primary")
        if slot not in SLOTS:
            slot = "primary"
        built, problems = tryit.build_request(
            op, request.form, _contract().conventions.lang_parameter
        )
        if built is None:
            status = 400
            sample = _sample_request(op, values)
        else:
            key = dict(zip(SLOTS, _gateway().current_keys(g.account.name), strict=True))[slot]
            try:
                result = tryit.send(current_app, built, key, _contract().conventions)
            except (ConnectionError, OSError) as exc:  # a drop or truncate fault of the mock
                problems = [tryit.FormProblem(type(exc).__name__, "no_response")]
                status = 502
            sample = built
        sent = {p.name for p in op.parameters if values.get(p.name)}
    else:
        values = _prefill(op)
        sample = _sample_request(op, values)
        sent = set(values)
    base = request.host_url.rstrip("/")
    return _page(
        "portal/operation.html",
        status,
        version=version,
        versions=api_versions(contract),
        op=op,
        values=values,
        sent=sent,
        slot=slot,
        slots=SLOTS,
        result=result,
        problems=problems,
        problem_names={p.name for p in problems},
        request_line=sample.target,
        curl=tryit.curl_sample(base, sample, _contract().conventions),
        python=tryit.httpx_sample(base, sample, _contract().conventions),
        key_header=_contract().conventions.key_header,
        allowed=g.account.may_call(op.operation_id),
    )


# -- Reports -----------------------------------------------------------------------------------


@bp.get("/reports")
def reports() -> Response:
    """Calls per day, operation and key, with a server-side SVG chart."""
    rows = [
        charts.Usage(r.day, r.operation_id, r.slot, int(r.count))
        for r in _gateway().usage(g.account.name)
    ]
    labels = {slot: translate(f"short_{slot}") for slot in SLOTS}
    days = charts.per_day(rows)
    chart = charts.day_chart(
        days, title=translate("per_day"), desc=translate("chart_desc"), labels=labels
    )
    by_operation = charts.per_operation(rows)
    op_chart = charts.operation_chart(
        by_operation,
        title=translate("per_operation"),
        desc=translate("op_chart_desc"),
        labels=labels,
    )
    total = sum(r.count for r in rows)
    return _page(
        "portal/reports.html",
        rows=rows,
        chart=chart,
        op_chart=op_chart,
        by_operation=by_operation,
        total=total,
        labels=labels,
        slots=SLOTS,
    )


@bp.route("/<path:rest>", methods=["GET", "POST"])
def not_found(rest: str) -> Response:
    """Any other path under the portal: the portal's own 404 page."""
    return _error_page("not_found_title", translate("not_found"), 404)


def register(app: Flask, prefix: str, settings: PortalSettings) -> None:
    """Mount the blueprint at ``prefix`` ("" for the site's root)."""
    app.extensions["pivot_portal"] = settings
    app.register_blueprint(bp, url_prefix=prefix or None)
