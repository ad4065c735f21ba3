"""A test's hold on the mock: requests, assert_called and assert_not_called (their failure
messages), sequence() and timeline() on the pytest fixtures (pytester), per-test reset, and
RemoteMock's errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pivotkit.control import RemoteMock
from pivotkit.errors import CallMismatch, MockAdminError, UnknownOperation
from pivotkit.harness import MockServer, make_app

from .helpers import FULL, free_port, key_headers, path_of


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    state = tmp_path_factory.mktemp("control") / "state.sqlite"
    with MockServer(make_app({"PIVOT_STATE": str(state)})) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(mock: MockServer) -> Iterator[None]:
    yield
    mock.reset()


def _call(mock: MockServer, path: str, **kw: object) -> None:
    httpx.get(mock.url + path, headers=key_headers(), params=kw)  # type: ignore[arg-type]


def test_assert_called_counts_what_matches(mock: MockServer) -> None:
    """By operation, parameters (path or query, any type written as text), status and
    account; times= exactly, else at least once; the matching records are returned."""
    _call(mock, path_of("getContent", id=7488))
    _call(mock, path_of("getContent", id=7488), lang="en")
    _call(mock, path_of("getContent", id=7520))
    found = mock.assert_called("getContent", times=2, params={"id": 7488})
    assert [r.query.get("lang") for r in found] == [None, "en"]
    mock.assert_called("getContent", params={"id": "7488", "lang": "en"}, times=1)
    mock.assert_called("getContent", status=200, account="full", times=3)
    mock.assert_called(times=3)
    mock.assert_not_called("getPerson")
    mock.assert_not_called("getContent", params={"id": 1})
    mock.assert_not_called(account="basic")


def test_a_failed_assert_called_lists_what_was_called(mock: MockServer) -> None:
    """The message says what was expected and got, then every request the mock answered."""
    _call(mock, path_of("getContent", id=7520))
    _call(mock, path_of("listChannels"), lang="en")
    with pytest.raises(CallMismatch) as caught:
        mock.assert_called("getContent", times=2, params={"id": 7488})
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0] == (
        "expected getContent with id=7488 to be called 2 times, it was called 0 times"
    )
    assert lines[1] == "what the mock answered since the last reset (2 requests):"
    assert lines[2].endswith(
        f"GET {path_of('getContent', id=7520)} -> 200 (getContent, full, fixture 7520)"
    )
    assert lines[3].endswith(
        f"GET {path_of('listChannels')}?lang=en -> 200 (listChannels, full, fixture en)"
    )
    assert isinstance(caught.value, AssertionError)


def test_a_failed_assert_not_called_lists_the_calls(mock: MockServer) -> None:
    """assert_not_called lists only the offending requests."""
    _call(mock, path_of("getContent", id=7488))
    _call(mock, path_of("listDays"))
    with pytest.raises(CallMismatch) as caught:
        mock.assert_not_called("listDays")
    lines = str(caught.value).splitlines()
    assert lines[0] == "expected listDays not to be called, it was called 1 time"
    assert lines[1] == "the calls (1 request):" and "listDays" in lines[2] and len(lines) == 3


def test_a_long_listing_is_cut(mock: MockServer) -> None:
    """Past thirty requests the message says how many more there were."""
    for _ in range(35):
        _call(mock, path_of("getContent", id=7520))
    with pytest.raises(CallMismatch) as caught:
        mock.assert_called("getContent", params={"id": 7488})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 + 30 + 1 and lines[-1] == "  ... and 5 more"


def test_an_unknown_operation_is_not_an_assertion(mock: MockServer) -> None:
    """A misspelt operation raises UnknownOperation listing the known ones (never passes)."""
    with pytest.raises(
        UnknownOperation, match=r"unknown operation 'getContnet'; known: .*getContent"
    ):
        mock.assert_not_called("getContnet")


def test_the_records_read_back(mock: MockServer) -> None:
    """A record carries what the journal says, typed: time zone-aware, the status an int."""
    _call(mock, path_of("getContent", id=7488), lang="en")
    [record] = mock.requests
    assert record.time.tzinfo is not None and record.status == 200
    assert dict(record.values) == {"id": "7488", "lang": "en"}
    assert record.line().endswith(
        f"GET {path_of('getContent', id=7488)}?lang=en -> 200 (getContent, full, fixture 7488-en)"
    )


def test_remote_mock_errors_are_clear(tmp_path: Path) -> None:
    """A wrong admin token or an unreachable mock: MockAdminError with what was asked and
    what the mock (or the network) said."""
    app = make_app(
        {"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_ADMIN_TOKEN": "the-right-token"}
    )
    wrong = "the journal: the mock answered 401: admin token required"
    with (
        MockServer(app) as server,
        RemoteMock(server.url, "a-wrong-token") as remote,
        pytest.raises(MockAdminError, match=wrong),
    ):
        remote.requests  # noqa: B018
    with (
        RemoteMock(f"http://127.0.0.1:{free_port()}", "x" * 10) as gone,
        pytest.raises(MockAdminError, match="is unreachable"),
    ):
        gone.reset()


def test_the_journal_switched_off_says_so(tmp_path: Path) -> None:
    """With PIVOT_JOURNAL=false, requests raises MockAdminError saying the journal is off."""
    app = make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_JOURNAL": False})
    with MockServer(app) as server, pytest.raises(MockAdminError, match="the journal is off"):
        server.assert_called("getContent")


def test_every_fixture_resets_between_tests(pytester: pytest.Pytester, no_key: None) -> None:
    """pivot_mock, pivot_respx and pivot_responses start each test with an empty journal, no
    sequence of the previous test and every timeline not started."""
    pytester.makepyfile(
        f"""
        import httpx
        import pytest
        import requests

        KEY = {{"Ocp-Apim-Subscription-Key": "{FULL}"}}
        LIVE = "https://api.plurimedia.fr/v1/api/v1/contents/7488"

        @pytest.fixture(params=["pivot_mock", "pivot_respx", "pivot_responses"])
        def mock(request):
            return request.getfixturevalue(request.param)

        def get(mock, path="/v1/api/v1/contents/7488"):
            if hasattr(mock, "url"):
                return httpx.get(mock.url + path, headers=KEY)
            if hasattr(mock, "add_passthru"):
                return requests.get("https://api.plurimedia.fr" + path, headers=KEY)
            return httpx.get("https://api.plurimedia.fr" + path, headers=KEY)

        def test_before(pivot_client):  # calls the same app, through another fixture
            assert pivot_client.call("getContent", id=7520).status_code == 200

        def test_one(mock):
            assert mock.requests == []
            mock.sequence("getContent", [503], params={{"id": 7488}})
            mock.timeline("canal-plus-evening").advance()
            assert get(mock).status_code == 503
            mock.assert_called("getContent", times=1)

        def test_two(mock):
            assert mock.requests == [] and mock.sequences() == []
            assert mock.timeline("canal-plus-evening").step == 0
            assert get(mock).status_code == 200
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


def test_a_failed_assertion_reads_well_in_pytest(pytester: pytest.Pytester, no_key: None) -> None:
    """The CallMismatch of assert_called is what pytest shows, with the requests listed."""
    pytester.makepyfile(
        f"""
        import httpx

        def test_calls(pivot_respx):
            httpx.get(
                "https://api.plurimedia.fr/v1/api/v1/contents/7520",
                headers={{"Ocp-Apim-Subscription-Key": "{FULL}"}},
            )
            pivot_respx.assert_called("getContent", times=2, params={{"id": "7488"}})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*CallMismatch: expected getContent with id=7488 to be called 2 times, "
            "it was called 0 times",
            "*what the mock answered since the last reset (1 request):",
            "*GET /v1/api/v1/contents/7520 -> 200 (getContent, full, fixture 7520)",
        ]
    )
