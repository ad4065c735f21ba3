"""pivotkit.harness: the mock on a loopback thread server (MockServer) and behind respx."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import flask
import httpx
import pytest

from pivotkit.client import PivotClient, demo_key
from pivotkit.harness import LOG_APP, MOCK_LOGGER, MockServer, make_app, respx_router
from tests.helpers import CONVENTIONS, FULL, key_headers, path_of

CONTENT = path_of("getContent", id=7488)
LIVE = CONVENTIONS.live_url


@pytest.fixture
def app(tmp_path: Path) -> flask.Flask:
    """A mock app with the bundled fixtures and its own state file."""
    return make_app({"PIVOT_STATE": str(tmp_path / "state.sqlite")})


def _refused(url: str) -> bool:
    """Whether nothing listens at ``url`` any more."""
    try:
        httpx.get(f"{url}/__pivot/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False


# -- MockServer ----------------------------------------------------------------------------------


def test_url_before_start_says_to_start_first(app: flask.Flask) -> None:
    """A server not started (or stopped) has no URL: RuntimeError saying to call start()."""
    server = MockServer(app)
    with pytest.raises(RuntimeError, match=r"not started; call start\(\) first"):
        _ = server.url
    server.stop()  # stopping a server that never started is harmless
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url


def test_start_serves_on_a_free_loopback_port_and_stop_releases_it(app: flask.Flask) -> None:
    """start() binds a free port of 127.0.0.1 and serves the mock; stop() closes it."""
    server = MockServer(app)
    assert server.start() is server
    try:
        assert server.port != 0 and server.url == f"http://127.0.0.1:{server.port}"
        response = httpx.get(server.url + CONTENT, headers=key_headers(FULL))
        assert response.status_code == 200 and response.json()["data"]["id"] == 7488
    finally:
        server.stop()
    url = f"http://127.0.0.1:{server.port}"
    assert _refused(url)
    with pytest.raises(RuntimeError):
        _ = server.url


def test_the_context_manager_starts_and_stops(app: flask.Flask) -> None:
    """``with MockServer(app) as server`` is started inside and stopped after."""
    with MockServer(app) as server:
        url = server.url
        assert httpx.get(f"{url}/__pivot/health").status_code == 200
    assert _refused(url)


def test_key_and_client_use_the_demo_accounts(app: flask.Flask) -> None:
    """key(account, slot) is the account's demo key; client(account) a PivotClient on the
    server with it, client(None) one without a key."""
    with MockServer(app) as server:
        assert server.key().reveal() == FULL
        assert server.key("basic", "secondary") == demo_key("basic", "secondary")
        with server.client() as client:
            assert isinstance(client, PivotClient)
            assert str(client.base_url).rstrip("/") == server.url
            assert client.call("getContent", id=7488).status_code == 200
        with server.client("basic") as basic:
            assert basic.call("getPerson", id=1001).status_code == 401  # outside its rights
        with server.client(None) as anonymous:
            response = anonymous.call("getContent", id=7488)
        assert response.json()["message"] == CONVENTIONS.messages.missing_key


def test_reset_brings_the_keys_back(app: flask.Flask) -> None:
    """reset(): a regenerated key is forgotten, the demo key works again."""
    with MockServer(app) as server:
        app.extensions["pivot"].regenerate_key("full", "primary")
        with server.client() as client:
            assert client.call("getContent", id=7488).status_code == 401
            server.reset()
            assert client.call("getContent", id=7488).status_code == 200


def test_reset_leaves_an_app_that_is_not_the_mock_alone() -> None:
    """reset_app() on a plain Flask app (no mock state) changes nothing; a MockServer of it
    is refused with a message naming what it serves."""
    from pivotkit.harness import reset_app

    plain = flask.Flask("plain")
    reset_app(plain)
    assert "pivot" not in plain.extensions
    with pytest.raises(TypeError, match="make_app"):
        MockServer(plain)


def test_an_exception_raised_in_a_flask_view_is_reraised(tmp_path: Path) -> None:
    """An exception raised by a view of the app (it answers 500) is re-raised by
    check_errors, once."""
    app = make_app({"PIVOT_STATE": str(tmp_path / "state.sqlite")})

    def explode() -> str:
        raise ZeroDivisionError("in a view")

    app.add_url_rule("/__pivot/explode", "explode", explode)
    with MockServer(app) as server:
        assert httpx.get(f"{server.url}/__pivot/explode").status_code == 500
        with pytest.raises(ZeroDivisionError, match="in a view"):
            server.check_errors()
        server.check_errors()


def test_an_exception_raised_answering_the_api_is_reraised(
    app: flask.Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mock answers its own unexpected exceptions with ASP.NET's 500 and logs them; the
    server keeps them and check_errors re-raises the first."""

    def broken() -> None:
        raise LookupError("state file gone")

    monkeypatch.setattr(app.extensions["pivot"], "sync", broken)
    with MockServer(app) as server:
        response = httpx.get(server.url + CONTENT, headers=key_headers(FULL))
        assert response.status_code == 500
        assert response.json() == CONVENTIONS.server_error_body
        with pytest.raises(LookupError, match="state file gone"):
            server.check_errors()


def test_errors_inside_the_mock_are_reraised(tmp_path: Path) -> None:
    """An exception the mock logs while answering (it answers 500 itself, and names its app
    on the record) is kept and re-raised by check_errors, as pivot_mock does after each test."""
    app = make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite3")})
    with MockServer(app) as server:
        try:
            raise KeyError("boom")
        except KeyError:
            logging.getLogger(MOCK_LOGGER).exception("unexpected error", extra={LOG_APP: app})
        with pytest.raises(KeyError, match="boom"):
            server.check_errors()
        server.check_errors()  # raised once, then forgotten


def test_clear_errors_forgets_and_plain_error_logs_are_not_errors(app: flask.Flask) -> None:
    """clear_errors() drops what was kept; an error logged without an exception is not kept,
    nor anything logged once the server is stopped."""
    mock_log = logging.getLogger(MOCK_LOGGER)
    mine = {LOG_APP: app}
    with MockServer(app) as server:
        try:
            raise ValueError("kept")
        except ValueError:
            mock_log.exception("answering /x", extra=mine)
        assert len(server.errors) == 1
        server.clear_errors()
        server.check_errors()
        mock_log.error("cannot answer /x: a fixture is broken", extra=mine)
        server.check_errors()
    try:
        raise ValueError("after stop")
    except ValueError:
        mock_log.exception("answering /y", extra=mine)
    server.check_errors()


def test_exceptions_logged_for_no_app_or_another_are_not_kept(
    app: flask.Flask, tmp_path: Path
) -> None:
    """An exception on the mock's logger that names no app (a test's or a library's own log)
    or another app is not this server's: check_errors does not raise it."""
    other = make_app({"PIVOT_STATE": str(tmp_path / "other.sqlite")})
    mock_log = logging.getLogger(MOCK_LOGGER)
    with MockServer(app) as server:
        for extra in ({}, {LOG_APP: other}, {LOG_APP: None}):
            try:
                raise ValueError("not mine")
            except ValueError:
                mock_log.exception("answering /x", extra=extra)
        server.check_errors()
        assert server.errors == []


def test_a_server_keeps_only_its_own_apps_exceptions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two servers: an exception answering on one is re-raised by that one only."""
    failing = make_app({"PIVOT_STATE": str(tmp_path / "a.sqlite")})
    healthy = make_app({"PIVOT_STATE": str(tmp_path / "b.sqlite")})

    def broken() -> None:
        raise LookupError("only in the first")

    monkeypatch.setattr(failing.extensions["pivot"], "sync", broken)
    with MockServer(failing) as first, MockServer(healthy) as second:
        assert httpx.get(first.url + CONTENT, headers=key_headers(FULL)).status_code == 500
        with pytest.raises(LookupError):
            first.check_errors()
        second.check_errors()


def test_two_failing_servers_each_reraise_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two apps failing at once, one answering the API and one in a Flask view: each server
    re-raises exactly its own app's exception, once."""
    api = make_app({"PIVOT_STATE": str(tmp_path / "a.sqlite")})
    view = make_app({"PIVOT_STATE": str(tmp_path / "b.sqlite")})

    def broken() -> None:
        raise LookupError("the API's")

    def explode() -> str:
        raise ZeroDivisionError("the view's")

    monkeypatch.setattr(api.extensions["pivot"], "sync", broken)
    view.add_url_rule("/__pivot/explode", "explode", explode)
    with MockServer(api) as first, MockServer(view) as second:
        assert httpx.get(first.url + CONTENT, headers=key_headers(FULL)).status_code == 500
        assert httpx.get(f"{second.url}/__pivot/explode").status_code == 500
        assert [type(e) for e in first.errors] == [LookupError]
        assert [type(e) for e in second.errors] == [ZeroDivisionError]
        with pytest.raises(ZeroDivisionError):
            second.check_errors()
        with pytest.raises(LookupError):
            first.check_errors()
        first.check_errors()
        second.check_errors()


# -- respx_router --------------------------------------------------------------------------------


def test_the_router_answers_the_live_url_from_the_app(app: flask.Flask) -> None:
    """Without a base URL the router serves the contract's live URL from the app: the key
    check, gzip and the provider's headers, as on a socket."""
    with respx_router(app) as router:
        ok = httpx.get(LIVE + CONTENT, headers=key_headers(FULL))
        missing = httpx.get(LIVE + CONTENT)
        assert router.calls.call_count == 2
    assert ok.status_code == 200 and ok.headers["content-encoding"] == "gzip"
    assert ok.json()["data"]["title"] == "Blade Runner"
    for name, value in CONVENTIONS.provider_headers:
        assert ok.headers[name] == value
    assert missing.status_code == 401
    assert missing.json() == CONVENTIONS.messages.body(401, CONVENTIONS.messages.missing_key)


def test_a_route_added_after_the_mock_wins(app: flask.Flask) -> None:
    """A route of the user's, added after the router's own, answers what it matches; the
    app still answers the rest."""
    mine = path_of("getContent", id=1)
    with respx_router(app) as router:
        route = router.get(mine).respond(json={"mine": True})
        assert httpx.get(LIVE + mine).json() == {"mine": True}
        assert httpx.get(LIVE + CONTENT, headers=key_headers(FULL)).status_code == 200
    assert route.call_count == 1


def test_a_request_to_another_host_is_refused(app: flask.Flask) -> None:
    """Only the base URL is served: any other host fails the request (nothing leaves)."""
    with respx_router(app), pytest.raises(AssertionError, match="not mocked"):
        httpx.get("https://example.org" + CONTENT, headers=key_headers(FULL))


def test_a_given_base_url_replaces_the_live_one(app: flask.Flask) -> None:
    """respx_router(app, base_url) serves that URL and refuses the live one."""
    with respx_router(app, "http://pivot.test"):
        assert httpx.get("http://pivot.test" + CONTENT, headers=key_headers(FULL)).is_success
        with pytest.raises(AssertionError, match="not mocked"):
            httpx.get(LIVE + CONTENT, headers=key_headers(FULL))


def test_sync_and_async_clients_are_both_answered(app: flask.Flask) -> None:
    """httpx.Client and httpx.AsyncClient get the same answer from the app."""

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(LIVE + CONTENT, headers=key_headers(FULL))

    with respx_router(app):
        with httpx.Client() as client:
            synchronous = client.get(LIVE + CONTENT, headers=key_headers(FULL))
        asynchronous = asyncio.run(fetch())
    assert synchronous.status_code == asynchronous.status_code == 200
    assert asynchronous.headers["content-encoding"] == "gzip"
    assert asynchronous.json() == synchronous.json()


def test_assert_all_called_fails_for_a_route_never_called(app: flask.Flask) -> None:
    """assert_all_called=True: leaving the router with a route nobody called fails; with
    every route called it does not."""
    never = pytest.raises(AssertionError, match="not called")
    with never, respx_router(app, assert_all_called=True) as router:
        router.get(path_of("getContent", id=1)).respond(json={})
        httpx.get(LIVE + CONTENT, headers=key_headers(FULL))
    with respx_router(app, assert_all_called=True) as router:
        router.get(path_of("getContent", id=1)).respond(json={})
        httpx.get(LIVE + path_of("getContent", id=1))
        httpx.get(LIVE + CONTENT, headers=key_headers(FULL))


def test_assert_all_called_is_about_the_users_routes(app: flask.Flask) -> None:
    """assert_all_called=True with every route of the user's called passes, even when the
    app itself answered nothing."""
    with respx_router(app, assert_all_called=True) as router:
        router.get(path_of("getContent", id=1)).respond(json={})
        httpx.get(LIVE + path_of("getContent", id=1))


def test_assert_all_called_ignores_the_route_into_the_app(app: flask.Flask) -> None:
    """With no route of the user's, assert_all_called=True passes whether the app answered
    every request or none; an explicit router.assert_all_called() agrees."""
    with respx_router(app, assert_all_called=True):
        pass
    with respx_router(app, assert_all_called=True) as router:
        assert httpx.get(LIVE + CONTENT, headers=key_headers(FULL)).status_code == 200
        router.assert_all_called()
    with respx_router(app, assert_all_called=True) as router:
        router.get(path_of("getContent", id=1)).respond(json={})
        with pytest.raises(AssertionError, match="not called"):
            router.assert_all_called()
        httpx.get(LIVE + path_of("getContent", id=1))
        router.assert_all_called()


def test_a_route_not_called_is_named_and_the_default_does_not_check(app: flask.Flask) -> None:
    """The failure names the user's routes that were not called, not the router's own; by
    default (assert_all_called=False) an uncalled route is no failure."""
    with pytest.raises(AssertionError) as failure, respx_router(app, assert_all_called=True) as r:
        r.get(path_of("getContent", id=1), name="mine").respond(json={})
        r.get(path_of("getContent", id=2)).respond(json={})
        httpx.get(LIVE + path_of("getContent", id=2))
        httpx.get(LIVE + CONTENT, headers=key_headers(FULL))
    assert "name='mine'" in str(failure.value) and "pivot-mock" not in str(failure.value)
    with respx_router(app) as router:
        router.get(path_of("getContent", id=1)).respond(json={})
