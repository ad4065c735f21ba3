"""The Prefer header over a real socket, as Prism users write it: code=, example=, dynamic=."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pivotkit.conformance import Conformance
from pivotkit.harness import MockServer, make_app

from .helpers import BASIC, CONVENTIONS, key_headers, path_of

BLADE_RUNNER = path_of("getContent", id=7488)
MESSAGES = CONVENTIONS.messages


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    """One mock for the module (reset after each test), with --dynamic."""
    state = tmp_path_factory.mktemp("prefer") / "state.sqlite"
    with MockServer(make_app({"PIVOT_STATE": str(state), "PIVOT_DYNAMIC": True})) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(mock: MockServer) -> Iterator[None]:
    yield
    mock.reset()


def _get(
    mock: MockServer,
    prefer: str | None,
    path: str = BLADE_RUNNER,
    key: str | None = None,
    **kw: Any,
) -> httpx.Response:
    headers = key_headers(key) if key else key_headers()
    if prefer is not None:
        headers["Prefer"] = prefer
    return httpx.get(mock.url + path, headers=headers, **kw)


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (404, MESSAGES.body(404, MESSAGES.not_found)),
        (401, MESSAGES.body(401, MESSAGES.invalid_key)),
        (429, MESSAGES.body(429, MESSAGES.rate_limited(60))),
        (403, MESSAGES.body(403, MESSAGES.quota_exhausted(60))),
        (400, dict(CONVENTIONS.invalid_request_body)),
        (500, dict(CONVENTIONS.server_error_body)),
        (503, MESSAGES.body(503, "Service Unavailable")),
    ],
)
def test_code_answers_the_mocks_own_body_for_that_status(
    mock: MockServer, code: int, body: dict[str, Any]
) -> None:
    """code=N gives the answer the mock writes for N (the gateway's, or ASP.NET's), and says
    so in Preference-Applied."""
    response = _get(mock, f"code={code}")
    assert response.status_code == code
    assert response.json() == body
    assert response.headers["preference-applied"] == f"code={code}"
    if code in (429, 403):
        assert response.headers[CONVENTIONS.retry_after_header] == "60"


def test_code_200_is_the_ordinary_answer(mock: MockServer) -> None:
    """code=200 changes nothing but the Preference-Applied header."""
    response = _get(mock, "code=200")
    assert response.json()["data"]["title"] == "Blade Runner"
    assert response.headers["preference-applied"] == "code=200"


def test_example_answers_a_named_fixture_of_the_operation(mock: MockServer) -> None:
    """example=7520 answers Gladiator's fixture whatever id the path asks, with the provider's
    headers and gzip; an error fixture answers its recorded status."""
    response = _get(mock, "example=7520")
    assert response.status_code == 200 and response.json()["data"]["title"] == "Gladiator"
    assert response.headers["content-encoding"] == "gzip"
    Conformance().check(response)
    english = _get(mock, 'example="7488-en"')
    assert english.json()["data"]["title"] == "Blade Runner"
    missing = _get(mock, "code=401, example=401-missing-key")
    assert missing.status_code == 401 and missing.json()["message"] == MESSAGES.missing_key
    assert mock.requests[0].fixture == "7520" and mock.requests[0].answer == "prefer"


def test_dynamic_true_generates_a_body_even_when_a_fixture_exists(mock: MockServer) -> None:
    """dynamic=true: a body generated from the schema (x-pivot-mock: dynamic) that the
    contract accepts, the path's id in it; dynamic=false: the fixture or the empty-200."""
    generated = _get(mock, "dynamic=true")
    assert generated.headers["x-pivot-mock"] == "dynamic"
    assert generated.json()["data"]["id"] == 7488
    assert generated.json()["data"]["title"] != "Blade Runner"
    Conformance().check(generated)
    unknown = path_of("getContent", id=424242)
    assert _get(mock, None, unknown).headers.get("x-pivot-mock") == "dynamic"  # --dynamic
    static = _get(mock, "dynamic=false", unknown)
    assert static.json() == {} and "x-pivot-mock" not in static.headers
    assert _get(mock, "dynamic=false").json()["data"]["title"] == "Blade Runner"


@pytest.mark.parametrize(
    ("prefer", "words"),
    [
        ("code=418", "getContent does not answer 418"),
        ("code=2OO", "code=2OO is not an HTTP status"),
        ("code=4040", "is not an HTTP status"),
        ("example=7489", "example=7489: getContent has no fixture '7489'"),
        ("code=404, example=7520", "fixture '7520' answers 200, not 404"),
        ("dynamic=yes", "dynamic=yes is not true or false"),
        ("dynamic=true, example=7520", "dynamic=true generates a 200 body"),
        ("dynamic=true, code=404", "dynamic=true generates a 200 body"),
        ("code=404, " + "x" * 400, "at most 400 characters"),
    ],
)
def test_a_preference_the_mock_cannot_honour_is_a_400(
    mock: MockServer, prefer: str, words: str
) -> None:
    """Like a bad x-pivot-fault: a 400 in the gateway's shape, x-pivot-mock: prefer-error,
    one line saying what is wrong."""
    response = _get(mock, prefer)
    assert response.status_code == 400
    assert response.headers["x-pivot-mock"] == "prefer-error"
    message = response.json()[MESSAGES.message_field]
    assert message.startswith("Prefer: ") and words in message and "\n" not in message
    assert "preference-applied" not in response.headers


def test_other_preferences_are_ignored(mock: MockServer) -> None:
    """return=minimal, respond-async, wait=5 (RFC 7240) change nothing; several Prefer
    headers are read together."""
    plain = _get(mock, "return=minimal, respond-async; wait=5")
    assert plain.status_code == 200 and "preference-applied" not in plain.headers
    both = httpx.get(
        mock.url + BLADE_RUNNER,
        headers=[*key_headers().items(), ("Prefer", "return=minimal"), ("Prefer", "code=404")],
    )
    assert both.status_code == 404 and both.headers["preference-applied"] == "code=404"


def test_the_gateway_checks_come_first(mock: MockServer) -> None:
    """No key, or an operation outside the account's rights: the gateway's 401, whatever the
    preference."""
    no_key = httpx.get(mock.url + BLADE_RUNNER, headers={"Prefer": "code=200"})
    assert no_key.status_code == 401 and no_key.json()["message"] == MESSAGES.missing_key
    person = _get(mock, "example=1001", path_of("getPerson", id=1001), key=BASIC)
    assert person.status_code == 401 and person.json()["message"] == MESSAGES.invalid_key
    bad = _get(mock, "code=404", path_of("getContent", id="abc"))
    assert bad.status_code == 400 and bad.json() == dict(CONVENTIONS.invalid_request_body)


def test_an_example_keeps_the_accounts_rights(mock: MockServer) -> None:
    """The basic account does not see synopsis: not in a fixture chosen by example= either."""
    data = _get(mock, "example=7520", key=BASIC).json()["data"]
    assert data["title"] == "Gladiator" and "synopsis" not in data


def test_a_preference_wins_over_a_sequence_and_leaves_it_alone(mock: MockServer) -> None:
    """The request's own Prefer answers it; the sequence is not consumed."""
    handle = mock.sequence("getContent", [503], params={"id": 7488})
    assert _get(mock, "code=404").status_code == 404
    assert handle.answered == 0
    assert _get(mock, None).status_code == 503


def test_the_fault_header_combines_with_a_preference(mock: MockServer, tmp_path: Path) -> None:
    """x-pivot-fault's latency applies to the answer Prefer chose (the journal names both)."""
    response = httpx.get(
        mock.url + BLADE_RUNNER,
        headers={**key_headers(), "Prefer": "example=7520", "x-pivot-fault": "latency=10ms"},
    )
    assert response.json()["data"]["title"] == "Gladiator"
    [record] = mock.requests
    assert (record.answer, record.fixture, record.fault) == ("prefer", "7520", "latency=10ms")
