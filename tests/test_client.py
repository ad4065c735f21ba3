"""PivotClient: the key redacted and sent, targets parsed, the budget, 429 retries, quota."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import httpx
import pytest

from pivotkit.client import (
    ApiKey,
    CallBudget,
    PivotClient,
    demo_key,
    parse_target,
)
from pivotkit.errors import BudgetExhausted, ConfigError, QuotaExhausted
from tests.helpers import CONVENTIONS, KEY_HEADER

LIVE_URL = CONVENTIONS.live_url

SECRET = "0123456789abcdef0123456789abcdef"
QUOTA = "Out of call volume quota. Quota will be replenished in 03:30:56."


def _client(handler: httpx.MockTransport, **kwargs: object) -> PivotClient:
    return PivotClient("https://pivot.test", SECRET, transport=handler, **kwargs)  # type: ignore[arg-type]


def test_api_key_never_shows_itself() -> None:
    """repr, str and format of an ApiKey hide it; reveal() and scrub() are the only ways."""
    key = ApiKey(SECRET)
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
        assert SECRET not in shown
    assert key.reveal() == SECRET
    assert key.scrub(f"header {SECRET} sent") == "header *** sent"
    assert key.scrub(f"'{SECRET[:12]}...{SECRET[-12:].upper()}'") == "'***...***'"  # in parts
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_api_key_from_env_ignores_blank() -> None:
    """A blank PIVOT_API_KEY counts as unset."""
    assert ApiKey.from_env({"PIVOT_API_KEY": "  "}) is None
    assert ApiKey.from_env({}) is None
    assert ApiKey.from_env({"PIVOT_API_KEY": SECRET}) == ApiKey(SECRET)


def test_demo_key_matches_the_accounts_file() -> None:
    """The demo key is sha256("pivotkit-demo-<account>-<slot>")[:32], as in accounts.toml."""
    assert demo_key("full").reveal() == "acf7a7c2d48e4a01098e3feabc0ecb24"
    assert demo_key("basic", "secondary").reveal() == "12496a37544e7fdb108b359568b3b527"


@pytest.mark.parametrize(
    ("spec", "kind", "url"),
    [
        ("mock", "mock", "http://pivot.mock"),
        ("mock-server", "mock", "http://pivot.mock"),
        ("live", "live", LIVE_URL),
        (LIVE_URL + "/", "live", LIVE_URL),
        ("http://127.0.0.1:8080/", "url", "http://127.0.0.1:8080"),
    ],
)
def test_parse_target(spec: str, kind: str, url: str) -> None:
    """mock, live and base URLs are targets; a trailing slash is dropped."""
    target = parse_target(spec)
    assert (target.kind, target.base_url) == (kind, url)
    assert target.needs_key is (kind != "mock")


def test_parse_target_rejects_other_words() -> None:
    """Anything else is a ConfigError naming the option."""
    with pytest.raises(ConfigError, match="--pivot-target"):
        parse_target("staging")


def test_key_sent_in_header_unless_told_otherwise() -> None:
    """The key goes in Ocp-Apim-Subscription-Key; extensions choose none or another."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(KEY_HEADER))
        return httpx.Response(200, json={})

    with _client(httpx.MockTransport(handler)) as client:
        client.get("/a")
        client.call("getContent", id=7488, key=None)
        client.call("getContent", id=7488, key="ffffffffffffffffffffffffffffffff")
        client.get("/b", params={CONVENTIONS.key_query: "x"})
        assert SECRET not in repr(client)
    assert seen == [SECRET, None, "ffffffffffffffffffffffffffffffff", None]


def test_lang_added_when_absent() -> None:
    """The client's lang goes in the query of requests that have none."""
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={})

    with _client(httpx.MockTransport(handler), lang="en") as client:
        client.get("/a")
        client.get("/a", params={"lang": "fr"})
    assert urls == ["https://pivot.test/a?lang=en", "https://pivot.test/a?lang=fr"]


def _sequence(*responses: httpx.Response) -> Iterator[httpx.Response]:
    yield from responses


def test_429_retried_after_retry_after() -> None:
    """A 429 waits Retry-After seconds, then retries; every attempt counts in the budget."""
    answers = _sequence(
        httpx.Response(
            429,
            headers={"Retry-After": "7"},
            json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."},
        ),
        httpx.Response(200, json={"ok": True}),
    )
    waits: list[float] = []
    budget = CallBudget(5)
    with _client(
        httpx.MockTransport(lambda request: next(answers)), budget=budget, sleep=waits.append
    ) as client:
        response = client.get("/a")
    assert response.status_code == 200
    assert waits == [7.0]
    assert budget.used == 2


def test_429_given_back_when_the_wait_is_too_long() -> None:
    """A Retry-After above max_wait is not slept: the 429 is the answer."""
    waits: list[float] = []
    with _client(
        httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "600"}, json={})),
        sleep=waits.append,
        max_wait=60,
    ) as client:
        assert client.get("/a").status_code == 429
    assert waits == []


def test_budget_refuses_the_request_past_the_limit() -> None:
    """With a budget of 2 the third request raises BudgetExhausted before being sent."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={})

    budget = CallBudget(2, option="--pivot-budget")
    with _client(httpx.MockTransport(handler), budget=budget) as client:
        client.get("/1")
        client.get("/2")
        with pytest.raises(BudgetExhausted, match="--pivot-budget"):
            client.get("/3")
    assert sent == ["/1", "/2"]


def test_quota_answer_stops_every_later_call() -> None:
    """A 403 quota answer raises QuotaExhausted, and the budget refuses every later request
    without sending it."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(
            403, headers={"Retry-After": "12656"}, json={"statusCode": 403, "message": QUOTA}
        )

    budget = CallBudget()
    with _client(httpx.MockTransport(handler), budget=budget) as client:
        with pytest.raises(QuotaExhausted, match="replenished") as caught:
            client.get("/1")
        assert caught.value.retry_after == "12656"
        with pytest.raises(QuotaExhausted):
            client.get("/2")
    assert sent == ["/1"]


def test_other_403_is_an_ordinary_answer() -> None:
    """A 403 that is not the quota message is returned like any answer."""
    with _client(httpx.MockTransport(lambda r: httpx.Response(403, json={"x": 1}))) as client:
        assert client.get("/a").status_code == 403


def test_negative_budget_is_a_config_error() -> None:
    """--pivot-budget must be 0 or more."""
    with pytest.raises(ConfigError):
        CallBudget(-1)
