"""The pytest plugin as users meet it: options, pivot_* fixtures, budget, quota, secrets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pivotkit.client import demo_key
from pivotkit.harness import MockServer, make_app

KEY = demo_key("full").reveal()
QUOTA = "Out of call volume quota. Quota will be replenished in 03:30:56."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    """A mock on a free port, playing a URL target for the inner runs."""
    app = make_app({"PIVOT_STATE": str(tmp_path_factory.mktemp("st") / "s.sqlite3")})
    with MockServer(app) as server:
        yield server


def _serve(wsgi: Callable[[dict[str, Any], Any], Iterable[bytes]]) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def quota_target() -> Iterator[str]:
    """A target whose every answer is the gateway's 403 quota message; counts its calls."""
    calls: list[str] = []

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response(
            "403 Forbidden", [("content-type", "application/json"), ("retry-after", "12656")]
        )
        return [json.dumps({"statusCode": 403, "message": QUOTA}).encode()]

    yield from _serve(wsgi)


def test_options_are_in_help(pytester: pytest.Pytester) -> None:
    """--pivot-target and --pivot-budget are listed in pytest --help."""
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*--pivot-target=TARGET*", "*--pivot-budget=N*", "*--pivot-junit=PATH*"]
    )


def test_bad_target_is_a_usage_error(pytester: pytest.Pytester, no_key: None) -> None:
    """An unknown --pivot-target stops pytest with a usage error naming the option."""
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--pivot-target=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pivot-target*'staging'*"])


def test_client_and_contract_against_the_mock(pytester: pytest.Pytester, no_key: None) -> None:
    """pivot_client reaches the in-process mock with the demo key; pivot_contract validates
    the answer and names operation, pointer and value when it breaks the contract."""
    pytester.makepyfile("""
        import httpx
        import pytest

        def test_call(pivot_client, pivot_contract):
            response = pivot_client.call("getContent", id=7488)
            body = pivot_contract.check(response)
            assert body["data"]["title"] == "Blade Runner"
            assert isinstance(pivot_client, httpx.Client)

        def test_contract_names_pointer(pivot_client, pivot_contract):
            response = pivot_client.call("getContent", id=7488)
            json_type = {"content-type": "application/json; charset=utf-8"}
            broken = httpx.Response(200, headers=json_type,
                                    json={"version": "v1", "statusCode": 200,
                                          "data": {"id": 7488, "title": 42}},
                                    request=response.request)
            with pytest.raises(AssertionError) as caught:
                pivot_contract.check(broken, headers=False)
            assert "getContent at /data/title: 42 is not of type 'string' (value: 42)" \\
                in str(caught.value)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["pivotkit: target mock *"])


def test_pivot_mock_runs_on_a_port_and_resets(pytester: pytest.Pytester, no_key: None) -> None:
    """pivot_mock serves on 127.0.0.1; a key regenerated in one test works again in the
    next (per-test reset), and the mock stays the same server for the session."""
    pytester.makepyfile("""
        import httpx

        PORTS = []

        def test_regenerate(pivot_mock):
            PORTS.append(pivot_mock.port)
            assert pivot_mock.url.startswith("http://127.0.0.1:")
            old = pivot_mock.key("full")
            pivot_mock.app.extensions["pivot"].regenerate_key("full", "primary")
            with pivot_mock.client() as client:
                response = client.call("getContent", id=7488)
            assert response.status_code == 401
            assert "invalid subscription key" in response.json()["message"]

        def test_key_back_after_reset(pivot_mock):
            PORTS.append(pivot_mock.port)
            with pivot_mock.client() as client:
                assert client.call("getContent", id=7488).status_code == 200
            assert len(set(PORTS)) == 1
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_pivot_respx_answers_like_the_gateway(pytester: pytest.Pytester, no_key: None) -> None:
    """pivot_respx serves https://api.plurimedia.fr from the fixtures without a server:
    exact 401s, empty-200, 404, lang fallback and gzip, for sync and async clients."""
    pytester.makepyfile(f"""
        import asyncio
        import httpx

        KEY = {{"Ocp-Apim-Subscription-Key": "{KEY}"}}
        BASE = "https://api.plurimedia.fr/v1/api/v1"

        def test_rules(pivot_respx):
            ok = httpx.get(BASE + "/contents/7488", headers=KEY)
            assert ok.status_code == 200 and ok.headers["content-encoding"] == "gzip"
            assert ok.json()["data"]["title"] == "Blade Runner"
            missing = httpx.get(BASE + "/contents/7488")
            assert missing.json() == {{"statusCode": 401, "message": "Access denied due to "
                "missing subscription key. Make sure to include subscription key when making "
                "requests to an API."}}
            wrong = httpx.get(BASE + "/contents/7488",
                              headers={{"Ocp-Apim-Subscription-Key": "f" * 32}})
            assert wrong.status_code == 401 and "invalid" in wrong.json()["message"]
            assert httpx.get(BASE + "/contents/999999999", headers=KEY).json() == {{}}
            assert httpx.get(BASE + "/nowhere", headers=KEY).status_code == 404
            xx = httpx.get(BASE + "/contents/7488", params={{"lang": "xx"}}, headers=KEY)
            assert xx.json() == ok.json()
            assert pivot_respx.calls.call_count == 6

        def test_own_route_wins(pivot_respx):
            pivot_respx.get("/v1/api/v1/contents/1").respond(json={{"mine": True}})
            assert httpx.get(BASE + "/contents/1").json() == {{"mine": True}}

        def test_async(pivot_respx):
            async def fetch():
                async with httpx.AsyncClient() as client:
                    return await client.get(BASE + "/contents/7488", headers=KEY)
            assert asyncio.run(fetch()).json()["data"]["id"] == 7488
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_url_target_without_key_skips(
    pytester: pytest.Pytester, no_key: None, served: MockServer
) -> None:
    """Against a URL target without PIVOT_API_KEY, pivot_client skips with the reason."""
    pytester.makepyfile("def test_x(pivot_client):\n    pivot_client.get('/')\n")
    result = pytester.runpytest(f"--pivot-target={served.url}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*PIVOT_API_KEY is not set*"])


def test_budget_bounds_the_whole_run(
    pytester: pytest.Pytester, served: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --pivot-budget=3 the fourth request of the run skips its test, saying why."""
    monkeypatch.setenv("PIVOT_API_KEY", KEY)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_call(pivot_client, n):
            assert pivot_client.call("getContent", id=7488).status_code == 200
    """)
    result = pytester.runpytest(f"--pivot-target={served.url}", "--pivot-budget=3", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*call budget of 3 requests is spent*"])


def test_quota_answer_stops_the_run(
    pytester: pytest.Pytester, quota_target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 403 quota answer ends the run at once with a clear message (exit code 3) instead of
    failing every remaining test."""
    monkeypatch.setenv("PIVOT_API_KEY", KEY)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.parametrize("n", range(5))
        def test_call(pivot_client, n):
            pivot_client.call("getContent", id=7488)
    """)
    result = pytester.runpytest(f"--pivot-target={quota_target}")
    assert result.ret == 3
    result.stdout.fnmatch_lines(["*stopping the run*call quota is exhausted*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0
    assert outcomes.get("passed", 0) == 0


def test_key_scrubbed_from_failures_and_junit(
    pytester: pytest.Pytester, served: MockServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A failure whose message, locals and output hold the key shows *** instead, in the
    terminal and in the JUnit XML."""
    monkeypatch.setenv("PIVOT_API_KEY", KEY)
    pytester.makepyfile("""
        def test_leaky(pivot_key):
            secret = pivot_key.reveal()
            print("debug", secret)
            assert secret == "something else", f"key was {secret}"
    """)
    junit = tmp_path / "j.xml"
    result = pytester.runpytest(f"--pivot-target={served.url}", "-l", f"--junitxml={junit}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str() + result.stderr.str()
    assert KEY not in out
    assert "key was ***" in out
    assert KEY not in junit.read_text(encoding="utf-8")


def test_live_without_key_is_skipped_not_failed(pytester: pytest.Pytester, no_key: None) -> None:
    """--pivot-target=live without a key skips with a reason; nothing is sent."""
    pytester.makepyfile("def test_x(pivot_client):\n    raise AssertionError('sent')\n")
    result = pytester.runpytest("--pivot-target=live", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*budget 50*", "*PIVOT_API_KEY is not set*"])


def test_hypothesis_profiles_dev_and_ci(pytester: pytest.Pytester, no_key: None) -> None:
    """--hypothesis-profile=ci selects the plugin's ci profile (derandomized, no deadline)."""
    pytester.makepyfile("""
        from hypothesis import settings

        def test_profile():
            current = settings()
            assert current.max_examples == 100
            assert current.derandomize and current.deadline is None
    """)
    result = pytester.runpytest_subprocess("--hypothesis-profile=ci", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_reports_per_operation_and_check(
    pytester: pytest.Pytester, no_key: None, tmp_path: Path
) -> None:
    """--pivot-junit and --pivot-markdown write one case per operation and check, with the
    failure message, for tests marked pivot_check."""
    pytester.makepyfile("""
        import pytest

        @pytest.mark.pivot_check(operation="getContent", check="body")
        def test_ok():
            pass

        @pytest.mark.pivot_check(operation="listDays", check="status")
        def test_bad():
            assert False, "listDays at /status: expected 200, got 500 (value: 500)"

        def test_unmarked():
            pass
    """)
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    result = pytester.runpytest(f"--pivot-junit={junit}", f"--pivot-markdown={markdown}")
    result.assert_outcomes(passed=2, failed=1)
    xml = junit.read_text(encoding="utf-8")
    assert 'classname="pivot.getContent" name="body"' in xml
    assert 'classname="pivot.listDays" name="status"' in xml
    assert "expected 200, got 500" in xml
    assert "test_unmarked" not in xml
    md = markdown.read_text(encoding="utf-8")
    assert "| `listDays` |" in md and "❌ 1" in md
    assert "- `listDays` status: listDays at /status: expected 200, got 500" in md


def test_mock_config_is_overridable(pytester: pytest.Pytester, no_key: None) -> None:
    """A user's own pivot_mock_config fixture (here: a fixtures directory of one exchange)
    configures the mock behind pivot_client, pivot_mock and pivot_respx."""
    fixtures = pytester.mkdir("my-fixtures")
    source = Path(__file__).resolve().parent.parent / "fixtures" / "getContent" / "7488.json"
    (fixtures / "getContent").mkdir()
    (fixtures / "getContent" / "7488.json").write_text(source.read_text("utf-8"), "utf-8")
    pytester.makeconftest(f"""
        import pytest

        @pytest.fixture(scope="session")
        def pivot_mock_config(tmp_path_factory):
            return {{"PIVOT_FIXTURES": {str(fixtures)!r},
                    "PIVOT_STATE": str(tmp_path_factory.mktemp("s") / "s.sqlite3")}}
    """)
    pytester.makepyfile("""
        def test_only_my_fixture(pivot_client):
            assert pivot_client.call("getContent", id=7488).json()["data"]["id"] == 7488
            assert pivot_client.call("getContent", id=7520).json() == {}
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_errors_inside_the_mock_are_reraised(tmp_path: Path) -> None:
    """An exception the mock logs while answering (it answers 500 itself) is kept and
    re-raised by check_errors, as pivot_mock does after each test."""
    import logging

    app = make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite3")})
    with MockServer(app) as server:
        try:
            raise KeyError("boom")
        except KeyError:
            logging.getLogger("pivotkit.mock").exception("unexpected error answering /x")
        with pytest.raises(KeyError, match="boom"):
            server.check_errors()
        server.check_errors()  # raised once, then forgotten


def test_mock_server_target_uses_a_real_socket(pytester: pytest.Pytester, no_key: None) -> None:
    """--pivot-target=mock-server sends the run's requests to the mock on a loopback port."""
    pytester.makepyfile("""
        def test_socket(pivot_client, pivot_mock):
            assert str(pivot_client.base_url).rstrip("/") == pivot_mock.url
            response = pivot_client.call("getContent", id=7488)
            assert response.status_code == 200
            assert int(response.headers["content-length"]) == response.num_bytes_downloaded
    """)
    result = pytester.runpytest("--pivot-target=mock-server", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pivotkit: target mock-server *"])
