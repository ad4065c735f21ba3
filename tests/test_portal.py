"""The developer portal of the mock, through Flask's test client: login, keys, Try it, Reports."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient

from mockserver import create_app
from mockserver.portal import charts, i18n, tryit
from mockserver.portal.security import LoginThrottle
from mockserver.state import State
from tests.helpers import CONVENTIONS, KEY_HEADER, key_headers, path_of

INVALID_KEY = CONVENTIONS.messages.invalid_key
CONTENT = path_of("getContent", id=7488)

PORTAL = "/portal"
PASSWORDS = {"full": "full-demo", "basic": "basic-demo", "limited": "limited-demo"}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _make_app(state: Path, **extra: Any) -> Flask:
    return create_app({"PIVOT_STATE": str(state), "PIVOT_USAGE_FLUSH": 0, **extra})


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    """A fresh SQLite state file per test."""
    return tmp_path / "state.sqlite"


@pytest.fixture
def app(state_file: Path) -> Flask:
    """A mock app on its own state file."""
    return _make_app(state_file)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the mock (no one signed in)."""
    return app.test_client()


def _token(client: FlaskClient, path: str = f"{PORTAL}/login") -> str:
    page = client.get(path)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match is not None, f"no CSRF token on {path}"
    return match.group(1)


def _login(
    client: FlaskClient,
    name: str = "full",
    password: str | None = None,
    next_page: str | None = None,
    **environ: Any,
) -> Any:
    """Post the login form (its CSRF token first), with ``next`` when given."""
    data = {
        "account": name,
        "password": PASSWORDS[name] if password is None else password,
        "csrf_token": _token(client),
    }
    if next_page is not None:
        data["next"] = next_page
    return client.post(f"{PORTAL}/login", data=data, environ_base=environ)


@pytest.fixture
def signed_in(client: FlaskClient) -> FlaskClient:
    """The client signed in as the ``full`` account."""
    response = _login(client)
    assert response.status_code == 302
    return client


def _keys(app: Flask, name: str = "full") -> tuple[str, str]:
    keys: tuple[str, str] = app.extensions["pivot"].current_keys(name)
    return keys


def _api(client: FlaskClient, key: str | None, path: str = CONTENT) -> Any:
    headers = {} if key is None else key_headers(key)
    return client.get(path, headers=headers)


def _try(client: FlaskClient, operation: str = "getContent", **form: str) -> Any:
    page = f"{PORTAL}/apis/v1/{operation}"
    data = {"csrf_token": _token(client, page), "slot": "primary"}
    data.update(form)
    return client.post(page, data=data)


def _usage_total(app: Flask, name: str = "full") -> int:
    return sum(row.count for row in app.extensions["pivot"].usage(name))


# -- pages and accessibility -------------------------------------------------------------------


def test_login_page_has_landmarks_labels_and_language(client: FlaskClient) -> None:
    """The login page is served under the portal prefix with lang, landmarks and labels."""
    page = client.get(f"{PORTAL}/login")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="en">' in text
    for landmark in ("<header", "<main", "<footer"):
        assert landmark in text
    assert '<label for="account">' in text and '<label for="password">' in text
    assert 'href="#main"' in text  # skip link


def test_browser_language_french_then_switch_to_english(client: FlaskClient) -> None:
    """Accept-Language fr gives a French page; the language form switches it to English."""
    page = client.get(f"{PORTAL}/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    text = page.get_data(as_text=True)
    assert '<html lang="fr">' in text and "Connexion" in text
    token = _TOKEN.search(text)
    assert token is not None
    switched = client.post(
        f"{PORTAL}/language",
        data={"ui": "en", "next": f"{PORTAL}/login", "csrf_token": token.group(1)},
        headers={"Accept-Language": "fr"},
    )
    assert switched.status_code == 302 and switched.location == f"{PORTAL}/login"
    again = client.get(f"{PORTAL}/login", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in again.get_data(as_text=True)


def test_every_string_has_both_languages() -> None:
    """Each portal string exists in English and in French."""
    for key in i18n.string_keys():
        assert set(i18n.entry(key)) == set(i18n.LANGUAGES), key


def test_guest_is_sent_to_login_and_back(client: FlaskClient) -> None:
    """A guest asking for Reports signs in first, then lands on Reports."""
    first = client.get(f"{PORTAL}/reports")
    assert first.status_code == 302
    assert first.location.startswith(f"{PORTAL}/login?next=")
    done = _login(client, next_page=f"{PORTAL}/reports")
    assert done.status_code == 302 and done.location == f"{PORTAL}/reports"


def test_login_ignores_an_external_next(client: FlaskClient) -> None:
    """A ``next`` pointing off-site is ignored: no open redirect."""
    done = _login(client, next_page="//evil.example/x")
    assert done.status_code == 302 and done.location == f"{PORTAL}/profile"


def test_portal_root_without_slash_redirects(client: FlaskClient) -> None:
    """``/portal`` leads to ``/portal/``, which leads to the login page."""
    first = client.get(PORTAL)
    assert first.status_code == 308 and first.location.endswith(f"{PORTAL}/")
    assert client.get(f"{PORTAL}/").location == f"{PORTAL}/login"


def test_portal_follows_the_configured_prefix(tmp_path: Path) -> None:
    """``PIVOT_PORTAL_PREFIX`` moves every page and asset of the portal."""
    app = _make_app(tmp_path / "state.sqlite", PIVOT_PORTAL_PREFIX="/dev-portal")
    client = app.test_client()
    page = client.get("/dev-portal/login")
    assert page.status_code == 200
    assert 'href="/dev-portal/assets/portal.css"' in page.get_data(as_text=True)
    assert client.get(f"{PORTAL}/login").status_code == 404


def test_a_password_typed_as_account_name_is_not_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed sign-in logs a known account's name, never an unknown one (often a password)."""
    caplog.set_level(logging.INFO)
    _login(client, "full", "wrong")
    token = _token(client)
    client.post(
        f"{PORTAL}/login", data={"account": "full-demo", "password": "", "csrf_token": token}
    )
    messages = [record.getMessage() for record in caplog.records]
    assert "portal: failed sign-in for 'full'" in messages
    assert "portal: failed sign-in for an unknown account" in messages
    assert not any("full-demo" in message for message in messages)


def test_api_paths_are_not_the_portals(client: FlaskClient) -> None:
    """API paths still get the gateway's answers and never a portal cookie."""
    response = _api(client, None)
    assert response.status_code == 401
    assert response.get_json()["statusCode"] == 401
    assert "Set-Cookie" not in response.headers


# -- login and sessions ------------------------------------------------------------------------


def test_right_password_opens_profile_with_masked_keys(app: Flask, signed_in: FlaskClient) -> None:
    """After login the Profile shows both keys in password inputs, with reveal and copy."""
    text = signed_in.get(f"{PORTAL}/profile").get_data(as_text=True)
    primary, secondary = _keys(app)
    for slot, key in (("primary", primary), ("secondary", secondary)):
        assert re.search(
            rf'id="key-value-{slot}" class="key" type="password" readonly '
            rf'value="{key}"',
            text,
        )
        assert f'aria-controls="key-value-{slot}"' in text
        assert f'data-copy-from="key-value-{slot}"' in text
        assert f'action="{PORTAL}/profile/keys/{slot}/regenerate"' in text


def test_profile_shows_the_accounts_rights(app: Flask) -> None:
    """The Profile lists the account's operations, withheld fields and limits."""
    basic, limited = app.test_client(), app.test_client()
    _login(basic, "basic")
    text = basic.get(f"{PORTAL}/profile").get_data(as_text=True)
    assert "<code>listBroadcasts</code>" in text and "<code>getPerson</code>" not in text
    assert "<code>credits.character</code>" in text
    _login(limited, "limited")
    text = limited.get(f"{PORTAL}/profile").get_data(as_text=True)
    assert "<dd>5 / 10 s</dd>" in text and "<dd>30 / 3600 s</dd>" in text


@pytest.mark.parametrize(
    ("name", "password"), [("full", "wrong"), ("ghost", "full-demo"), ("full", ""), ("", "")]
)
def test_wrong_credentials_are_refused(client: FlaskClient, name: str, password: str) -> None:
    """A wrong password or an unknown account gets 401, one message, and no session."""
    token = _token(client)
    response = client.post(
        f"{PORTAL}/login", data={"account": name, "password": password, "csrf_token": token}
    )
    assert response.status_code == 401
    assert "Wrong account or password." in response.get_data(as_text=True)
    assert client.get(f"{PORTAL}/profile").status_code == 302


def test_login_without_csrf_token_is_refused(client: FlaskClient) -> None:
    """A login form without the CSRF token is refused even with the right password."""
    client.get(f"{PORTAL}/login")
    response = client.post(f"{PORTAL}/login", data={"account": "full", "password": "full-demo"})
    assert response.status_code == 400
    assert client.get(f"{PORTAL}/profile").status_code == 302


def test_login_with_a_foreign_csrf_token_is_refused(app: Flask) -> None:
    """A CSRF token taken from another session does not open this one."""
    attacker, victim = app.test_client(), app.test_client()
    token = _token(attacker)
    victim.get(f"{PORTAL}/login")
    response = victim.post(
        f"{PORTAL}/login", data={"account": "full", "password": "full-demo", "csrf_token": token}
    )
    assert response.status_code == 400


def test_cross_origin_post_is_refused(signed_in: FlaskClient, app: Flask) -> None:
    """A POST whose Origin is another site is refused even with the right token."""
    before = _keys(app)
    token = _token(signed_in, f"{PORTAL}/profile")
    response = signed_in.post(
        f"{PORTAL}/profile/keys/primary/regenerate",
        data={"csrf_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 400
    assert _keys(app) == before


@pytest.mark.parametrize(
    "path", ["/profile/keys/primary/regenerate", "/logout", "/apis/v1/getContent", "/language"]
)
def test_every_state_change_needs_the_csrf_token(
    signed_in: FlaskClient, app: Flask, path: str
) -> None:
    """Regenerate, logout, Try it and language POSTs without the token change nothing."""
    keys, calls = _keys(app), _usage_total(app)
    response = signed_in.post(PORTAL + path, data={"param-id": "7488", "ui": "fr"})
    assert response.status_code == 400
    assert "This form expired" in response.get_data(as_text=True)
    assert _keys(app) == keys
    assert _usage_total(app) == calls
    assert signed_in.get(f"{PORTAL}/profile").status_code == 200


def test_logout_ends_the_session(signed_in: FlaskClient) -> None:
    """Signing out (with the token) sends the next page back to login."""
    token = _token(signed_in, f"{PORTAL}/profile")
    response = signed_in.post(f"{PORTAL}/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert signed_in.get(f"{PORTAL}/profile").status_code == 302


def _cookie(client: FlaskClient, app: Flask, value: str) -> None:
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], value, domain="localhost")


def test_session_signed_with_another_secret_is_refused(app: Flask, state_file: Path) -> None:
    """A session cookie forged with another secret key opens nothing."""
    forger = Flask("forger")
    forger.secret_key = "not-the-mock-secret"
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    client = app.test_client()
    _cookie(client, app, serializer.dumps({"account": "full", "csrf": "x"}))
    response = client.get(f"{PORTAL}/profile")
    assert response.status_code == 302 and "/login" in response.location


def test_tampered_session_is_refused(app: Flask) -> None:
    """Changing the payload of a genuine session cookie breaks its signature."""
    client = app.test_client()
    _login(client, "limited")
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    _, stamp, signature = cookie.value.rsplit(".", 2)
    forged_payload = serializer.dumps({"account": "full"}).rsplit(".", 2)[0]
    _cookie(client, app, f"{forged_payload}.{stamp}.{signature}")
    response = client.get(f"{PORTAL}/profile")
    assert response.status_code == 302 and "/login" in response.location


def test_session_of_an_unknown_account_is_dropped(app: Flask) -> None:
    """A validly signed session naming an account that no longer exists opens nothing."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    client = app.test_client()
    _cookie(client, app, serializer.dumps({"account": "ghost"}))
    assert client.get(f"{PORTAL}/profile").status_code == 302


def test_session_cookie_is_httponly_samesite_and_holds_no_key(
    app: Flask, client: FlaskClient
) -> None:
    """The session cookie is HttpOnly and SameSite=Lax, and carries no key."""
    response = _login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    session = serializer.loads(value)
    assert session["account"] == "full"
    for key in _keys(app):
        assert key not in str(session)


def test_portal_pages_are_not_cached_and_carry_a_csp(signed_in: FlaskClient) -> None:
    """Pages holding keys are never cached; scripts and styles come from the portal only."""
    response = signed_in.get(f"{PORTAL}/profile")
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_static_assets_are_served(client: FlaskClient) -> None:
    """The CSS and JavaScript come from the portal itself (no CDN)."""
    for name in ("portal.css", "portal.js"):
        response = client.get(f"{PORTAL}/assets/{name}")
        assert response.status_code == 200
        response.close()


# -- login throttling --------------------------------------------------------------------------


def test_login_is_throttled_per_account_and_address(app: Flask) -> None:
    """Five failures in a minute give a 429 page, even for the right password; other
    accounts and other addresses are not affected."""
    client = app.test_client()
    for _ in range(5):
        assert _login(client, "full", "wrong").status_code == 401
    blocked = _login(client, "full")
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)
    assert _login(app.test_client(), "basic").status_code == 302
    assert _login(app.test_client(), "full", REMOTE_ADDR="127.0.0.2").status_code == 302


@pytest.mark.parametrize("on_disk", [True, False], ids=["sqlite", "memory"])
def test_throttle_window_slides(tmp_path: Path, on_disk: bool) -> None:
    """Attempts older than the window stop counting; a success forgets them."""
    now = [1000.0]
    state = State(tmp_path / "t.sqlite") if on_disk else None
    throttle = LoginThrottle(state, limit=2, window=60, clock=lambda: now[0])
    assert throttle.attempt("full", "1.2.3.4") == 0
    now[0] += 30
    assert throttle.attempt("full", "1.2.3.4") == 0
    assert throttle.attempt("full", "1.2.3.4") == 30  # refused: the first leaves in 30 s
    now[0] += 31
    assert throttle.attempt("full", "1.2.3.4") == 0
    throttle.succeeded("full", "1.2.3.4")
    assert throttle.attempt("full", "1.2.3.4") == 0
    assert throttle.attempt("full", "1.2.3.4") == 0
    assert throttle.attempt("full", "1.2.3.4") > 0


def test_throttle_is_shared_by_workers(tmp_path: Path) -> None:
    """Two throttles on the same state file (two workers) count attempts together."""
    one = LoginThrottle(State(tmp_path / "s.sqlite"), limit=2)
    two = LoginThrottle(State(tmp_path / "s.sqlite"), limit=2)
    assert one.attempt("Full ", "10.0.0.1") == 0
    assert two.attempt("full", "10.0.0.1") == 0
    assert one.attempt("full", "10.0.0.1") > 0
    assert one.attempt("full", "10.0.0.2") == 0  # another address


@pytest.mark.parametrize("on_disk", [True, False], ids=["sqlite", "memory"])
def test_concurrent_attempts_are_reserved_one_by_one(tmp_path: Path, on_disk: bool) -> None:
    """40 attempts at once from 8 threads: exactly the limit of them may check a password."""
    state = State(tmp_path / "t.sqlite") if on_disk else None
    throttle = LoginThrottle(state, limit=5, window=60)
    allowed: list[int] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        for _ in range(5):
            allowed.append(throttle.attempt("full", "10.9.9.9"))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(0) == 5 and len(allowed) == 40


# -- keys --------------------------------------------------------------------------------------


def test_regenerate_primary_rejects_the_old_key_at_once(app: Flask, signed_in: FlaskClient) -> None:
    """Regenerating the primary key: the old one gets the invalid-key 401, the new one works,
    the secondary is untouched."""
    old_primary, secondary = _keys(app)
    assert _api(signed_in, old_primary).status_code == 200
    token = _token(signed_in, f"{PORTAL}/profile")
    response = signed_in.post(
        f"{PORTAL}/profile/keys/primary/regenerate", data={"csrf_token": token}
    )
    assert response.status_code == 302
    assert response.location == f"{PORTAL}/profile#key-primary"
    new_primary, same_secondary = _keys(app)
    assert new_primary != old_primary and re.fullmatch(r"[0-9a-f]{32}", new_primary)
    assert same_secondary == secondary
    rejected = _api(signed_in, old_primary)
    assert rejected.status_code == 401
    assert rejected.get_json() == CONVENTIONS.messages.body(401, INVALID_KEY)
    assert _api(signed_in, new_primary).status_code == 200
    page = signed_in.get(f"{PORTAL}/profile").get_data(as_text=True)
    assert new_primary in page and old_primary not in page
    assert "regenerated" in page


def test_regenerated_key_is_seen_by_another_worker(
    app: Flask, state_file: Path, signed_in: FlaskClient
) -> None:
    """A second app on the same state (another worker) rejects the old key and accepts the
    first worker's session cookie."""
    other = _make_app(state_file)
    old = _keys(app)[1]
    token = _token(signed_in, f"{PORTAL}/profile")
    signed_in.post(f"{PORTAL}/profile/keys/secondary/regenerate", data={"csrf_token": token})
    worker2 = other.test_client()
    assert _api(worker2, old).status_code == 401
    assert _api(worker2, _keys(app)[1]).status_code == 200
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = signed_in.get_cookie(name)
    assert cookie is not None
    worker2.set_cookie(name, cookie.value, domain="localhost")
    assert worker2.get(f"{PORTAL}/profile").status_code == 200


def test_session_secret_lives_in_the_state(state_file: Path, tmp_path: Path) -> None:
    """Apps on one state share a session secret; another state gets another; config wins."""
    one, two = _make_app(state_file), _make_app(state_file)
    assert one.secret_key == two.secret_key
    assert one.extensions["pivot_portal"].secret_source == "state"
    assert _make_app(tmp_path / "other.sqlite").secret_key != one.secret_key
    configured = _make_app(tmp_path / "third.sqlite", PORTAL_SECRET_KEY="s3cret-for-tests")
    assert configured.secret_key == "s3cret-for-tests"


def test_unknown_slot_cannot_be_regenerated(app: Flask, signed_in: FlaskClient) -> None:
    """Only the primary and secondary slots exist."""
    keys = _keys(app)
    token = _token(signed_in, f"{PORTAL}/profile")
    response = signed_in.post(
        f"{PORTAL}/profile/keys/tertiary/regenerate", data={"csrf_token": token}
    )
    assert response.status_code == 404
    assert _keys(app) == keys


# -- APIs and Try it ---------------------------------------------------------------------------


def test_apis_list_every_operation_of_the_contract(app: Flask, signed_in: FlaskClient) -> None:
    """APIs v1 lists each operation with its path, summary and path source."""
    assert signed_in.get(f"{PORTAL}/apis").location == f"{PORTAL}/apis/v1"
    text = signed_in.get(f"{PORTAL}/apis/v1").get_data(as_text=True)
    contract = app.extensions["pivot"].contract
    for op in contract.operations.values():
        assert f'id="op-{op.operation_id}"' in text
        assert op.path in text
    assert '<option value="v1" selected>v1</option>' in text
    assert text.count("source-doc") == 1  # only getContent's path is documented
    assert "https://api.plurimedia.fr" in text


def test_unknown_version_or_operation_is_a_portal_404(signed_in: FlaskClient) -> None:
    """Unknown versions, operations and pages get the portal's own 404 page."""
    for path in ("/apis/v9", "/apis/v1/deleteEverything", "/apis/v9/getContent", "/nope/x"):
        response = signed_in.get(PORTAL + path)
        assert response.status_code == 404
        assert "Page not found" in response.get_data(as_text=True)


def test_try_it_form_marks_mandatory_and_optional(signed_in: FlaskClient) -> None:
    """The id is required and prefilled from the fixture; lang is optional and removable."""
    text = signed_in.get(f"{PORTAL}/apis/v1/getContent").get_data(as_text=True)
    assert re.search(r'id="param-id" name="param-id" value="7488"\s+required', text)
    assert 'class="secondary js-remove" data-param="lang"' in text
    assert 'data-param="id"' in text and 'js-remove" data-param="id"' not in text


def test_try_it_get_content_shows_blade_runner(app: Flask, signed_in: FlaskClient) -> None:
    """Try it on getContent 7488 shows status 200, the provider's headers and the JSON."""
    response = _try(signed_in, **{"param-id": "7488", "param-lang": "fr"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="response-status" class="status-2xx">200 OK' in text
    assert "x-powered-by: ASP.NET" in text
    assert "&#34;title&#34;: &#34;Blade Runner&#34;" in text
    assert f"GET {CONTENT}?lang=fr" in text


def test_try_it_never_puts_the_key_in_page_url_or_logs(
    app: Flask, signed_in: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The key is neither in the result page, the samples, a Location, nor any log record."""
    caplog.set_level(logging.DEBUG)
    primary, secondary = _keys(app)
    response = _try(signed_in, **{"param-id": "7488"})
    text = response.get_data(as_text=True)
    assert primary not in text and secondary not in text
    assert "$PIVOT_API_KEY" in text and "os.environ[&#34;PIVOT_API_KEY&#34;]" in text
    assert all(primary not in record.getMessage() for record in caplog.records)
    assert "subscription-key" not in text


def test_try_it_code_samples_are_valid(app: Flask) -> None:
    """The httpx sample compiles; the curl sample quotes the URL; neither holds a key."""
    op = app.extensions["pivot"].contract.operation("getContent")
    built, problems = tryit.build_request(op, {"param-id": "7488", "param-lang": "en"})
    assert built is not None and not problems
    python = tryit.httpx_sample("http://127.0.0.1:8080", built, CONVENTIONS)
    compile(python, "<sample>", "exec")
    assert 'params={"lang": "en"}' in python
    curl = tryit.curl_sample("http://127.0.0.1:8080", built, CONVENTIONS)
    assert curl.endswith(f"'http://127.0.0.1:8080{CONTENT}?lang=en'")
    assert f'"{KEY_HEADER}: $PIVOT_API_KEY"' in curl


def test_try_it_leaves_out_a_removed_optional_parameter(signed_in: FlaskClient) -> None:
    """Without lang the request goes out without any query string."""
    text = _try(signed_in, **{"param-id": "7488"}).get_data(as_text=True)
    assert f'id="request-line">GET {CONTENT}</code>' in text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "id is required."),
        ("../../__pivot/x", "id cannot hold"),
        ("7488%2F..", "id cannot hold"),
    ],
)
def test_try_it_refuses_a_bad_path_value_without_calling(
    app: Flask, signed_in: FlaskClient, value: str, message: str
) -> None:
    """A missing or path-escaping value is refused by the form; no API call is made."""
    before = _usage_total(app)
    response = _try(signed_in, **{"param-id": value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _usage_total(app) == before


def test_try_it_shows_the_gateway_401_outside_the_rights(app: Flask) -> None:
    """The basic account may not call getPerson: Try it shows the invalid-key 401."""
    client = app.test_client()
    _login(client, "basic")
    listing = client.get(f"{PORTAL}/apis/v1").get_data(as_text=True)
    assert listing.count("outside your rights: 401") == 8  # 13 operations, 5 allowed
    text = _try(client, "getPerson", **{"param-id": "1"}).get_data(as_text=True)
    assert 'class="status-4xx">401' in text
    assert "Access denied due to invalid subscription key" in text


def test_try_it_reports_a_dropped_connection(tmp_path: Path) -> None:
    """With a drop fault configured, Try it says the mock closed the connection (502 page)."""
    app = _make_app(tmp_path / "state.sqlite", PIVOT_FAULTS="drop")
    client = app.test_client()
    _login(client)
    response = _try(client, **{"param-id": "7488"})
    assert response.status_code == 502
    assert "closed the connection" in response.get_data(as_text=True)


def test_try_it_with_the_secondary_key(app: Flask, signed_in: FlaskClient) -> None:
    """Choosing the secondary key counts the call under the secondary slot."""
    _try(signed_in, **{"param-id": "7488", "slot": "secondary"})
    rows = app.extensions["pivot"].usage("full")
    assert [(r.operation_id, r.slot, r.count) for r in rows] == [("getContent", "secondary", 1)]


# -- Reports -----------------------------------------------------------------------------------


def _reported(client: FlaskClient) -> tuple[int, str]:
    text = client.get(f"{PORTAL}/reports").get_data(as_text=True)
    total = re.search(r'id="total-calls">(\d+)<', text)
    assert total is not None
    return int(total.group(1)), text


def test_reports_count_rises_after_try_it(signed_in: FlaskClient) -> None:
    """Reports start at zero and count each call, per operation and per key."""
    total, text = _reported(signed_in)
    assert total == 0 and "No call yet" in text
    _try(signed_in, **{"param-id": "7488"})
    _try(signed_in, **{"param-id": "7520", "param-lang": "en"})
    total, text = _reported(signed_in)
    assert total == 2
    row = re.search(r'<tr id="usage-getContent">.*?</tr>', text, re.S)
    assert row is not None
    assert 'data-slot="primary">2<' in row.group(0)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert f'data-day="{today}" data-slot="primary" data-count="2"' in text
    assert 'data-operation="getContent" data-slot="primary" data-count="2"' in text


def test_reports_show_only_the_signed_in_account(app: Flask, signed_in: FlaskClient) -> None:
    """Another account's calls do not appear in this account's Reports."""
    assert _api(signed_in, _keys(app, "basic")[0]).status_code == 200
    total, _ = _reported(signed_in)
    assert total == 0


def test_day_series_spans_two_weeks_and_axis_is_even() -> None:
    """The daily series covers 14 days ending today (or at the latest day used)."""
    rows = [
        charts.Usage("2030-01-20", "getContent", "primary", 3),
        charts.Usage("2030-01-20", "getContent", "secondary", 2),
        charts.Usage("2029-12-01", "listDays", "primary", 9),
    ]
    series = charts.per_day(rows, today=dt.date(2030, 1, 10))
    assert len(series) == 14
    assert series[-1] == ("2030-01-20", {"primary": 3, "secondary": 2})
    svg = charts.day_chart(series, title="t", desc="d", labels={})
    assert 'data-count="3"' in svg and 'data-count="9"' not in svg
    assert ">10</text>" in svg and ">5</text>" in svg  # axis 0, 5, 10
    assert charts.per_operation(rows)[0][0] == "listDays"


def test_site_root_opens_the_portal_without_touching_api_answers(client: FlaskClient) -> None:
    """GET / leads to the portal; any other method on / stays the gateway's 404."""
    home = client.get("/")
    assert home.status_code == 302 and home.headers["Location"] == f"{PORTAL}/"
    assert client.get("/", follow_redirects=True).status_code == 200
    post = client.post("/")
    assert post.status_code == 404
    assert post.get_json() == {"statusCode": 404, "message": "Resource not found"}


# -- sessions end on the server; HEAD; injection through next; Secure behind a proxy -----------


def _cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("pivot_portal")
    assert cookie is not None
    return cookie.value


def test_logout_ends_the_session_for_a_copied_cookie(app: Flask) -> None:
    """A cookie copied before sign-out no longer opens the Profile (nor its keys) after it,
    in this worker or any other on the state; signing in again works."""
    browser = app.test_client()
    assert _login(browser).status_code == 302
    copied = _cookie_of(browser)
    stolen = app.test_client()
    stolen.set_cookie("pivot_portal", copied)
    assert _keys(app)[0] in stolen.get(f"{PORTAL}/profile").get_data(as_text=True)
    token = _TOKEN.search(browser.get(f"{PORTAL}/profile").get_data(as_text=True))
    assert token is not None
    assert browser.post(f"{PORTAL}/logout", data={"csrf_token": token.group(1)}).status_code == 302
    replayed = stolen.get(f"{PORTAL}/profile")
    assert replayed.status_code == 302 and "/portal/login" in replayed.headers["Location"]
    other_worker = create_app({"PIVOT_STATE": app.config["PIVOT_STATE"], "PIVOT_USAGE_FLUSH": 0})
    again = other_worker.test_client()
    again.set_cookie("pivot_portal", copied)
    assert again.get(f"{PORTAL}/profile").status_code == 302
    assert _login(browser).status_code == 302
    assert browser.get(f"{PORTAL}/profile").status_code == 200


def test_regenerating_a_key_ends_the_accounts_other_sessions(app: Flask) -> None:
    """Regenerate (portal or admin): the signed-in session goes on and sees the new key; a
    copy of an older session cookie is signed out, so a stolen session never shows it."""
    mine = app.test_client()
    assert _login(mine).status_code == 302
    thief = app.test_client()
    thief.set_cookie("pivot_portal", _cookie_of(mine))
    token = _TOKEN.search(mine.get(f"{PORTAL}/profile").get_data(as_text=True))
    assert token is not None
    done = mine.post(
        f"{PORTAL}/profile/keys/primary/regenerate", data={"csrf_token": token.group(1)}
    )
    assert done.status_code == 302
    assert _keys(app)[0] in mine.get(f"{PORTAL}/profile").get_data(as_text=True)
    assert thief.get(f"{PORTAL}/profile").status_code == 302
    other = app.test_client()
    assert _login(other).status_code == 302
    app.extensions["pivot"].regenerate_key("full", "secondary")  # as the admin endpoint does
    assert other.get(f"{PORTAL}/profile").status_code == 302


def test_head_of_the_login_page_is_no_sign_in(app: Flask) -> None:
    """HEAD /portal/login answers the page's headers (200) and counts no failed sign-in."""
    client = app.test_client()
    for _ in range(10):
        head = client.head(f"{PORTAL}/login")
        assert head.status_code == 200 and head.get_data() == b""
    assert _login(client).status_code == 302


@pytest.mark.parametrize(
    "target",
    ["/\r\nX: y", "/\nX: y", "/profile\rX", "/ x", "/\x00", "/\x7f", "//evil.example", "/" * 3000],
)
def test_next_with_control_characters_is_a_safe_redirect(app: Flask, target: str) -> None:
    """Login and language with a next holding CR/LF, NUL, DEL, a space, //, or 3,000
    characters: a redirect to the portal's own page, never a 5xx, never a second header."""
    client = app.test_client()
    token = _token(client)
    login = client.post(
        f"{PORTAL}/login",
        data={"account": "full", "password": "full-demo", "csrf_token": token, "next": target},
    )
    assert login.status_code == 302 and login.headers["Location"].endswith("/portal/profile")
    assert "X" not in login.headers
    token = _token(client, f"{PORTAL}/profile")
    switched = client.post(
        f"{PORTAL}/language", data={"ui": "fr", "next": target, "csrf_token": token}
    )
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/portal/")
    assert client.get(f"{PORTAL}/login", query_string={"next": target}).status_code < 500


@pytest.mark.parametrize(
    ("trust", "forwarded", "secure"),
    [(0, "https", False), (1, "https", True), (1, "http", False), (0, None, False)],
)
def test_secure_cookie_behind_a_trusted_proxy_only(
    state_file: Path, trust: int, forwarded: str | None, secure: bool
) -> None:
    """The session cookie is Secure when the request came over HTTPS: X-Forwarded-Proto says
    so only when PIVOT_TRUST_PROXY names a proxy in front (a client cannot claim it)."""
    app = _make_app(state_file, PIVOT_TRUST_PROXY=trust)
    client = app.test_client()
    headers = (
        {"X-Forwarded-Proto": forwarded, "X-Forwarded-For": "203.0.113.9"} if forwarded else {}
    )
    page = client.get(f"{PORTAL}/login", headers=headers)
    cookie = page.headers.get("Set-Cookie", "")
    assert "pivot_portal=" in cookie and ("; Secure" in cookie) is secure
    assert "HttpOnly" in cookie
