"""pivot_respx and pivot_responses as users meet them (pytester): the same gateway rules for
httpx and requests, the test's own routes first, every other request refused before the
network, and pivot_contract checking a requests.Response."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .helpers import FULL

HEADER = f'KEY = {{"Ocp-Apim-Subscription-Key": "{FULL}"}}\nBASE = "https://api.plurimedia.fr/v1/api/v1"\n'


def test_requests_and_httpx_get_the_same_answers(pytester: pytest.Pytester, no_key: None) -> None:
    """For a fixture, the empty-200, a missing key, an unknown path, another lang, identity
    encoding, a 503 fault: status, headers that matter and bodies are the same."""
    pytester.makepyfile(
        HEADER
        + """
import httpx
import requests

CASES = [
    ("/contents/7488", KEY),
    ("/contents/999999999", KEY),
    ("/contents/7488", {}),
    ("/nothing/here", KEY),
    ("/contents/7488?lang=en", KEY),
    ("/contents/7488?lang=xx", KEY),
    ("/contents/7488", {**KEY, "Accept-Encoding": "identity"}),
    ("/contents/7488", {**KEY, "x-pivot-fault": "status=503"}),
    ("/contents/abc", KEY),
]

def test_same(pivot_respx, pivot_responses):
    for path, headers in CASES:
        a = httpx.get(BASE + path, headers=headers)
        b = requests.get(BASE + path, headers=headers)
        assert a.status_code == b.status_code, path
        assert a.json() == b.json(), path
        for name in ("content-type", "content-encoding", "cache-control", "retry-after"):
            assert a.headers.get(name) == b.headers.get(name), (path, name)
    assert b.status_code == 400
    assert len(pivot_respx.requests) == 2 * len(CASES)  # one app, one journal
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_pivot_responses_serves_requests(pytester: pytest.Pytester, no_key: None) -> None:
    """gzip decoded by requests, the gateway's exact 401, a dropped connection as requests'
    ConnectionError, and a Session with retries of its own."""
    pytester.makepyfile(
        HEADER
        + """
import pytest
import requests

def test_rules(pivot_responses):
    ok = requests.get(BASE + "/contents/7488", headers=KEY)
    assert ok.status_code == 200 and ok.headers["content-encoding"] == "gzip"
    assert ok.json()["data"]["title"] == "Blade Runner"
    denied = requests.get(BASE + "/contents/7488", params={"subscription-key": "0" * 32})
    assert denied.status_code == 401 and "invalid subscription key" in denied.json()["message"]
    with pytest.raises(requests.ConnectionError):
        requests.get(BASE + "/contents/7488", headers={**KEY, "x-pivot-fault": "drop"})
    with requests.Session() as session:
        session.headers.update(KEY)
        assert session.get(BASE + "/channels").json()["data"][0]["name"] == "TF1"
    as_bytes = {name: value.encode("ascii") for name, value in KEY.items()}  # requests allows it
    assert requests.get(BASE + "/contents/7488", headers=as_bytes).status_code == 200
    pivot_responses.assert_called("getContent", times=4)
    pivot_responses.assert_called("listChannels", account="full")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_routes_a_test_adds_win(pytester: pytest.Pytester, no_key: None) -> None:
    """pivot_responses.add(...) and pivot_respx.get(...) answer before the mock, for the live
    URL too; add_passthru lets a test reach a server of its own."""
    pytester.makepyfile(
        HEADER
        + """
import httpx
import requests

def test_mine(pivot_responses, pivot_respx, pivot_mock):
    pivot_responses.add("GET", BASE + "/contents/7488", json={"mine": "requests"})
    pivot_respx.get("/v1/api/v1/contents/7488").respond(json={"mine": "httpx"})
    assert requests.get(BASE + "/contents/7488").json() == {"mine": "requests"}
    assert httpx.get(BASE + "/contents/7488").json() == {"mine": "httpx"}
    assert requests.get(BASE + "/contents/7520", headers=KEY).json()["data"]["title"] == "Gladiator"
    pivot_responses.add_passthru(pivot_mock.url)
    assert requests.get(pivot_mock.url + "/v1/api/v1/contents/7488", headers=KEY).status_code == 200
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_unmocked_requests_are_refused_before_the_network(
    pytester: pytest.Pytester, no_key: None
) -> None:
    """Another host under either fixture raises UnmockedRequest (an AssertionError a retry
    loop catching the library's errors does not swallow), naming what is served; the other
    library is refused too (with the fixture to use), loopback aside."""
    pytester.makepyfile(
        HEADER
        + """
import asyncio

import httpx
import pytest
import requests
from pivotkit.errors import UnmockedRequest

def retrying_get(get, url):
    for _ in range(3):
        try:
            return get(url)
        except (requests.RequestException, httpx.HTTPError):
            continue

def test_responses(pivot_responses):
    with pytest.raises(UnmockedRequest, match="pivot_responses answers https://api.plurimedia.fr"):
        retrying_get(requests.get, "https://example.org/v1/api/v1/contents/7488")
    with pytest.raises(UnmockedRequest, match="made with httpx: use pivot_respx"):
        httpx.get("https://example.org/")

def test_respx(pivot_respx, pivot_mock):
    with pytest.raises(UnmockedRequest, match="GET https://example.org/x is not mocked"):
        retrying_get(httpx.get, "https://example.org/x")
    with pytest.raises(UnmockedRequest, match="pivot_respx answers"):
        asyncio.run(httpx.AsyncClient().get("http://example.org/"))
    urllib3 = "made with requests \\\\(urllib3\\\\): use pivot_responses"
    with pytest.raises(UnmockedRequest, match=urllib3):
        requests.get("https://example.org/", timeout=5)
    loopback = requests.get(pivot_mock.url + "/v1/api/v1/contents/7488", headers=KEY)
    assert loopback.status_code == 200
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_pivot_contract_checks_a_requests_response(pytester: pytest.Pytester, no_key: None) -> None:
    """check() takes what requests returns: the body when it keeps the contract, else an
    AssertionError naming operation, pointer and value; its encoding and length checked."""
    pytester.makepyfile(
        HEADER
        + """
import pytest
import requests

def test_check(pivot_responses, pivot_contract, pivot_mock):
    body = pivot_contract.check(requests.get(BASE + "/contents/7488", headers=KEY))
    assert body["data"]["title"] == "Blade Runner"
    plain = requests.get(BASE + "/contents/7488", headers={**KEY, "Accept-Encoding": "identity"})
    pivot_contract.check(plain)
    pivot_contract.check(requests.get(BASE + "/contents/7488"), expect=401)
    pivot_responses.add_passthru(pivot_mock.url)
    pivot_contract.check(requests.get(pivot_mock.url + "/v1/api/v1/contents/7520", headers=KEY))
    pivot_responses.add(
        "GET", BASE + "/contents/1",
        json={"version": "v1", "statusCode": 200, "data": {"id": 1, "title": 42}},
        headers={"content-type": "application/json; charset=utf-8"},
    )
    with pytest.raises(AssertionError) as caught:
        pivot_contract.check(requests.get(BASE + "/contents/1"), headers=False)
    assert "getContent at /data/title: 42 is not of type 'string' (value: 42)" in str(caught.value)
    with pytest.raises(TypeError, match="an httpx.Response or a requests.Response"):
        pivot_contract.check({"not": "a response"})
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_responses_the_fixture_says_what_to_install(
    pytester: pytest.Pytester, no_key: None
) -> None:
    """When responses is not installed, pivot_responses errors with the pip command."""
    pytester.makeconftest("import sys\nsys.modules['responses'] = None\n")
    pytester.makepyfile("def test_x(pivot_responses):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*pivot_responses needs the responses library: pip install 'pivotkit[[]requests[]]'"]
    )
    assert "During handling" not in result.stdout.str()


def test_the_plugin_imports_neither_library_until_asked() -> None:
    """Loading the plugin imports neither responses nor requests nor respx."""
    code = (
        "import sys, pivotkit.pytest_plugin; "
        "print(sorted(m for m in ('responses', 'requests', 'respx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
