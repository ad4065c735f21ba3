"""Sequences over real sockets: scripted series of answers per request pattern, from tests
(``sequence()``, ``POST /__pivot/sequences``) and from the scenarios file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pivotkit.errors import ScenarioError
from pivotkit.harness import MockServer

from .conftest import FIXTURES
from .helpers import BASIC, CONVENTIONS, key_headers, mock_servers, path_of

TOKEN = "admin-token-for-sequence-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BLADE_RUNNER = path_of("getContent", id=7488)
GLADIATOR = path_of("getContent", id=7520)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., MockServer]]:
    """Start the mock on a free loopback port with extra settings; stopped afterwards."""
    with mock_servers(tmp_path, TOKEN) as start:
        yield start


@pytest.fixture
def mock(serve: Callable[..., MockServer]) -> MockServer:
    return serve()


def _get(
    mock: MockServer, path: str = BLADE_RUNNER, key: str | None = None, **kw: Any
) -> httpx.Response:
    headers = key_headers(key) if key else key_headers()
    return httpx.get(mock.url + path, headers={**headers, **kw.pop("headers", {})}, **kw)


def test_503_503_then_the_fixture(mock: MockServer) -> None:
    """Two gateway 503s, then the fixture, and the fixture again after (then: last)."""
    handle = mock.sequence("getContent", [503, 503, "fixture"], params={"id": 7488})
    answers = [_get(mock) for _ in range(5)]
    assert [r.status_code for r in answers] == [503, 503, 200, 200, 200]
    assert answers[0].json() == CONVENTIONS.messages.body(503, "Service Unavailable")
    assert answers[2].json()["data"]["title"] == "Blade Runner"
    assert handle.answered == 5 and handle.length == 3
    assert _get(mock, GLADIATOR).status_code == 200  # another id: not this sequence
    vias = [r.answer for r in mock.find_requests(status=503)]
    assert vias == ["sequence getContent-id-7488 #1", "sequence getContent-id-7488 #2"]


def test_429_with_retry_after_2_then_200(mock: MockServer) -> None:
    """The gateway's own 429 (its message and Retry-After say 2 seconds), then the fixture."""
    mock.sequence("getContent", [{"status": 429, "retry_after": 2}, 200], params={"id": 7488})
    limited, ok = _get(mock), _get(mock)
    assert limited.status_code == 429
    assert limited.headers[CONVENTIONS.retry_after_header] == "2"
    assert limited.json() == CONVENTIONS.messages.body(429, CONVENTIONS.messages.rate_limited(2))
    assert ok.status_code == 200 and ok.json()["data"]["id"] == 7488


def test_the_fixture_then_the_empty_200(mock: MockServer) -> None:
    """The fixture once, then the empty-200 for ever: the content disappeared."""
    mock.sequence("getContent", ["fixture", "empty"], params={"id": 7488})
    bodies = [_get(mock).json() for _ in range(3)]
    assert bodies[0]["data"]["title"] == "Blade Runner"
    assert bodies[1:] == [{}, {}]


@pytest.mark.parametrize(
    ("then", "statuses"),
    [
        ("last", [503, 500, 500, 500]),
        ("cycle", [503, 500, 503, 500]),
        ("fixture", [503, 500, 200, 200]),
    ],
)
def test_what_follows_the_last_answer(mock: MockServer, then: str, statuses: list[int]) -> None:
    """then=last repeats the last answer, cycle starts again, fixture answers as usual."""
    mock.sequence("getContent", [503, 500], params={"id": 7488}, then=then)
    assert [_get(mock).status_code for _ in range(4)] == statuses


def test_answers_of_every_kind(serve: Callable[..., MockServer]) -> None:
    """A named fixture, a dynamic body, static (never generated) and the quota 403."""
    mock = serve(PIVOT_DYNAMIC=True)
    unknown = path_of("getContent", id=123456)
    mock.sequence(
        "getContent",
        [{"fixture": "7520"}, "static", "dynamic", {"status": 403, "retryAfter": 90}],
        params={"id": 123456},
    )
    named, static, dynamic, quota = (_get(mock, unknown) for _ in range(4))
    assert named.json()["data"]["title"] == "Gladiator"
    assert static.json() == {}  # the mock is --dynamic, but static never generates
    assert dynamic.headers["x-pivot-mock"] == "dynamic" and dynamic.json()["data"]["id"] == 123456
    assert quota.status_code == 403 and quota.headers[CONVENTIONS.retry_after_header] == "90"
    assert quota.json()["message"] == CONVENTIONS.messages.quota_exhausted(90)
    assert [r.fixture for r in mock.requests] == ["7520", None, None, None]


def test_fault_answers(mock: MockServer) -> None:
    """A fault spec as an answer: a dropped connection, a body that is not JSON, a latency
    the journal names (then the fixture)."""
    mock.sequence("getContent", ["drop", "invalid-json", "latency=20ms"], params={"id": 7488})
    with pytest.raises(httpx.RemoteProtocolError):
        _get(mock)
    broken = _get(mock)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert _get(mock).json()["data"]["id"] == 7488
    assert [r.fault for r in mock.requests] == ["drop", "invalid-json", "latency=20ms"]


def test_matching_by_query_and_account(mock: MockServer) -> None:
    """params match query values too (lang=en); account= matches one account only."""
    mock.sequence("getContent", [503], params={"id": 7488, "lang": "en"})
    mock.sequence("getContent", [500], params={"id": 7520}, account="basic")
    assert _get(mock, params={"lang": "en"}).status_code == 503
    assert _get(mock).status_code == 200 and _get(mock, params={"lang": "fr"}).status_code == 200
    assert _get(mock, GLADIATOR).status_code == 200
    assert _get(mock, GLADIATOR, key=BASIC).status_code == 500


def test_the_newest_wins_and_a_name_replaces(mock: MockServer) -> None:
    """Two sequences that match: the one added last answers (a specific one after a general
    one); adding one of the same name replaces it, newest again, from its first answer."""
    mock.sequence("getContent", [500], name="general")
    mock.sequence("getContent", [503], params={"id": 7488}, name="specific")
    assert _get(mock).status_code == 503 and _get(mock, GLADIATOR).status_code == 500
    mock.sequence("getContent", [502, 504], name="general")
    assert [_get(mock).status_code for _ in range(3)] == [502, 504, 504]
    assert [s["name"] for s in mock.sequences()] == ["general", "specific"]


def test_only_requests_past_the_gateway_count(mock: MockServer) -> None:
    """A request without a key, or outside the account's rights, gets the gateway's 401 and
    leaves the sequence where it was."""
    mock.sequence("getPerson", [503, "fixture"])
    assert httpx.get(mock.url + path_of("getPerson", id=1001)).status_code == 401
    assert _get(mock, path_of("getPerson", id=1001), key=BASIC).status_code == 401
    assert _get(mock, path_of("getPerson", id=1001)).status_code == 503
    assert _get(mock, path_of("getPerson", id=1001)).status_code == 200


def test_removing_and_listing(mock: MockServer) -> None:
    """GET /__pivot/sequences says how many requests each answered; removing one stops it."""
    handle = mock.sequence("getContent", [503], params={"id": 7488})
    _get(mock)
    [row] = httpx.get(f"{mock.url}/__pivot/sequences", headers=AUTH).json()["sequences"]
    assert (row["name"], row["answered"], row["length"], row["origin"]) == (
        handle.name,
        1,
        1,
        "test",
    )
    handle.remove()
    assert _get(mock).status_code == 200
    gone = httpx.delete(f"{mock.url}/__pivot/sequences/{handle.name}", headers=AUTH)
    assert gone.status_code == 404
    with pytest.raises(ScenarioError, match="no longer played"):
        handle.state()


@pytest.mark.parametrize(
    ("answers", "kwargs", "words"),
    [
        ([418], {}, "getContent does not answer 418"),
        (["jitter"], {}, "unknown fault 'jitter'"),
        ([{"fixture": "7489"}], {}, "getContent has no fixture '7489'"),
        ([503], {"params": {"idd": 1}}, "has no parameter 'idd'"),
        ([{"status": 503, "answer": "empty"}], {}, "give answer or status"),
        ([], {}, "1 to 1000"),
        ([503], {"then": "again"}, "then='again'"),
    ],
)
def test_refused_sequences_say_why(
    mock: MockServer, answers: list[Any], kwargs: dict[str, Any], words: str
) -> None:
    """What the mock refuses raises ScenarioError (one line, the pointer), and plays nothing."""
    with pytest.raises(ScenarioError, match=words) as caught:
        mock.sequence("getContent", answers, **kwargs)
    assert "\n" not in str(caught.value)
    assert mock.sequences() == []


def test_the_endpoint_refuses_bad_bodies(mock: MockServer) -> None:
    """POST /__pivot/sequences with no JSON, or the wrong shape: a 400 with the pointer."""
    for body in (
        b"not json",
        b"[]",
        json.dumps({"name": "x", "match": {}, "answers": [503]}).encode(),
    ):
        response = httpx.post(
            f"{mock.url}/__pivot/sequences",
            content=body,
            headers={**AUTH, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["reason"]
    assert httpx.post(f"{mock.url}/__pivot/sequences", json={}).status_code == 401  # token


def _fixtures_with(tmp_path: Path, scenarios: dict[str, Any]) -> Path:
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, root)
    (root / "scenarios.json").write_text(json.dumps(scenarios), "utf-8")
    return root


def test_sequences_declared_in_the_scenarios_file(
    serve: Callable[..., MockServer], tmp_path: Path
) -> None:
    """A sequence of <fixtures>/scenarios.json plays from the start; the reset brings it back
    to its first answer (and a removed one back)."""
    declared = {
        "sequences": [
            {
                "name": "flaky-blade-runner",
                "match": {"operation": "getContent", "params": {"id": "7488"}},
                "answers": [{"status": 503, "times": 2}, {"answer": "fixture"}],
            }
        ]
    }
    mock = serve(PIVOT_FIXTURES=str(_fixtures_with(tmp_path, declared)))
    assert [_get(mock).status_code for _ in range(3)] == [503, 503, 200]
    [row] = mock.sequences()
    assert row["origin"] == "file" and row["answered"] == 3
    httpx.post(f"{mock.url}/__pivot/reset", headers=AUTH)
    assert _get(mock).status_code == 503
    httpx.delete(f"{mock.url}/__pivot/sequences/flaky-blade-runner", headers=AUTH)
    assert _get(mock).status_code == 200
    httpx.post(f"{mock.url}/__pivot/reset", headers=AUTH)
    assert _get(mock).status_code == 503


def test_a_scenarios_file_named_by_the_setting(
    serve: Callable[..., MockServer], tmp_path: Path
) -> None:
    """PIVOT_SCENARIOS names a file elsewhere; a broken one stops the start with its line."""
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "sequences": [
                    {"name": "s", "match": {"operation": "listDays"}, "answers": [{"status": 500}]}
                ]
            }
        ),
        "utf-8",
    )
    mock = serve(PIVOT_SCENARIOS=str(path))
    assert _get(mock, path_of("listDays")).status_code == 500
    path.write_text(
        json.dumps(
            {
                "sequences": [
                    {"name": "s", "match": {"operation": "listDays"}, "answers": [{"status": 418}]}
                ]
            }
        ),
        "utf-8",
    )
    with pytest.raises(
        ScenarioError,
        match=r"at /sequences/0/answers/0/status: sequence 's': listDays does not answer 418",
    ):
        serve(PIVOT_SCENARIOS=str(path))
