"""The mock's developer portal: Profile (keys), APIs (Try it) and Reports, mounted by init_app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

from mockserver.portal.security import SECRET_META_NAME, LoginThrottle, new_secret
from mockserver.portal.views import PortalSettings, register
from mockserver.state import SharedState

DEFAULT_PREFIX = "/portal"


def _pivot_part(app: Flask, name: str) -> Any:
    pivot = app.extensions.get("pivot")
    if isinstance(pivot, Mapping):
        return pivot.get(name)
    return getattr(pivot, name, None)


def _session_secret(app: Flask) -> tuple[str, str]:
    """The session secret and where it came from.

    Order: ``PORTAL_SECRET_KEY`` or ``SECRET_KEY`` in the app's config; else a random secret
    stored once in the shared SQLite state, so every worker signs sessions alike and sessions
    survive a restart on the same state file; else (no state) a random secret per app.
    """
    configured = app.config.get("PORTAL_SECRET_KEY") or app.config.get("SECRET_KEY")
    if configured:
        return str(configured), "config"
    state = _pivot_part(app, "state")
    if state is not None and hasattr(state, "meta"):
        return str(state.meta(SECRET_META_NAME, new_secret())), "state"
    return new_secret(), "generated"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with ``Secure`` whenever the request came over HTTPS.

    The scheme is the socket's, or ``X-Forwarded-Proto`` only when ``PIVOT_TRUST_PROXY``
    says a proxy is in front (a client cannot switch it on for itself otherwise).
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        secure = bool(super().get_cookie_secure(app))
        return secure or (has_request_context() and request.is_secure)


def init_app(app: Flask) -> None:
    """Mount the portal on ``app`` (after the mock's parts are in ``app.extensions["pivot"]``).

    The prefix is ``PIVOT_PORTAL_PREFIX`` (default ``/portal``). Flask settings read here (pass
    them in ``create_app(config)``): ``PORTAL_SECRET_KEY`` (else one stored in the state),
    ``PORTAL_COOKIE_SECURE`` (Secure on every cookie; it is set anyway on a request that came
    over HTTPS, see :class:`_SessionInterface`), ``PORTAL_LOGIN_LIMIT``
    failures (default 5) per ``PORTAL_LOGIN_WINDOW`` seconds (default 60), per account and
    client address. Session cookies are HttpOnly and SameSite=Lax.
    """
    secret, source = _session_secret(app)
    app.secret_key = secret
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("SESSION_COOKIE_SAMESITE") not in ("Lax", "Strict"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if app.config.get("SESSION_COOKIE_NAME") in (None, "session"):
        app.config["SESSION_COOKIE_NAME"] = "pivot_portal"
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config.get("PORTAL_COOKIE_SECURE"))
    app.session_interface = _SessionInterface()
    state = _pivot_part(app, "state")
    throttle = LoginThrottle(
        state if isinstance(state, SharedState) else None,
        limit=int(app.config.get("PORTAL_LOGIN_LIMIT", 5)),
        window=float(app.config.get("PORTAL_LOGIN_WINDOW", 60.0)),
    )
    prefix = str(app.config.get("PIVOT_PORTAL_PREFIX", DEFAULT_PREFIX) or "").rstrip("/")
    register(app, prefix, PortalSettings(throttle=throttle, secret_source=source))
