"""The mock through Flask's test client: gateway, backend, wire format, admin, configuration."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
import types
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask

from mockserver import create_app
from mockserver.config import FIELDS
from pivotkit.client import demo_key
from pivotkit.contract import default_schemas_dir, load_contract
from pivotkit.errors import ConfigError
from pivotkit.fixtures import Exchange
from tests.helpers import (
    BASIC,
    CONTRACT,
    CONVENTIONS,
    FULL,
    KEY_HEADER,
    example_params,
    key_headers,
    path_of,
)

FULL_2 = demo_key("full", "secondary").reveal()
MISSING = CONVENTIONS.messages.missing_key
INVALID = CONVENTIONS.messages.invalid_key
NOT_FOUND = CONVENTIONS.messages.body(404, CONVENTIONS.messages.not_found)
BUNDLED_7488 = Path(__file__).resolve().parent.parent / "fixtures" / "getContent" / "7488.json"
PROVIDER = dict(CONVENTIONS.provider_headers)
CONTENT = path_of("getContent", id=7488)
CHANNELS = path_of("listChannels")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*FIELDS, "CONFIG"):
        monkeypatch.delenv(f"PIVOT_{name}", raising=False)


def _fixture(
    root: Path, op: str, name: str, path: str, body: Any, query: dict[str, str] | None = None
) -> None:
    target = root / op / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    request: dict[str, Any] = {"method": "GET", "path": path}
    if query:
        request["query"] = query
    target.write_text(
        json.dumps(
            {
                "request": request,
                "response": {"status": 200, "body": body},
                "meta": {
                    "operationId": op,
                    "source": "synthetic",
                    "recorded": "2024-11-05",
                    "account": "full",
                },
            }
        ),
        encoding="utf-8",
    )


@pytest.fixture
def fixtures_dir(tmp_path: Path) -> Path:
    """A small fixture set: the bundled 7488, its English twin, one channel list."""
    root = tmp_path / "fixtures"
    (root / "getContent").mkdir(parents=True)
    shutil.copy(BUNDLED_7488, root / "getContent" / "7488.json")
    english = json.loads(BUNDLED_7488.read_text(encoding="utf-8"))
    english["response"]["body"]["data"]["title"] = "Blade Runner (EN)"
    english["request"]["query"] = {"lang": "en"}
    (root / "getContent" / "7488-en.json").write_text(json.dumps(english), encoding="utf-8")
    _fixture(
        root,
        "listChannels",
        "all",
        CHANNELS,
        {
            "version": "v1",
            "statusCode": 200,
            "data": [{"id": 1, "name": "TF1", "logo": "https://img.plurimedia.fr/1.png"}],
        },
    )
    return root


@pytest.fixture
def make_app(tmp_path: Path, fixtures_dir: Path) -> Callable[..., Flask]:
    """Build an app on the small fixture set with its own state file."""

    def make(**config: Any) -> Flask:
        settings = {
            "PIVOT_FIXTURES": str(fixtures_dir),
            "PIVOT_STATE": str(tmp_path / "state.sqlite"),
            "PIVOT_ADMIN_TOKEN": "admin-token-for-tests",
            **config,
        }
        return create_app(settings)

    return make


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> Any:
    return make_app().test_client()


def _get(client: Any, url: str, key: str | None = FULL, **headers: str) -> Any:
    if key is not None:
        headers[KEY_HEADER] = key
    return client.get(url, headers=headers)


def _accounts(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(body, encoding="utf-8")
    return path


ONE_ACCOUNT = """
[[accounts]]
name = "t"
primary_key = "0123456789abcdef0123456789abcdef"
secondary_key = "fedcba9876543210fedcba9876543210"
"""
T_KEY = "0123456789abcdef0123456789abcdef"


# -- routes ---------------------------------------------------------------------------------


def test_every_contract_operation_is_routed(client: Any) -> None:
    """Each operation of openapi.yaml answers at its path (no 404), none written by hand."""
    contract = load_contract()
    for op in contract.operations.values():
        path = op.expand(**example_params(op))
        response = _get(client, path)
        assert response.status_code == 200, (op.operation_id, path, response.data)


def test_a_path_changed_in_the_contract_changes_the_route(
    tmp_path: Path, make_app: Callable[..., Flask]
) -> None:
    """Renaming a path in openapi.yaml moves the mock's route with it."""
    schemas = tmp_path / "schemas"
    shutil.copytree(default_schemas_dir(), schemas)
    template = CONTRACT.operation("getPerson").path
    text = (schemas / "openapi.yaml").read_text(encoding="utf-8")
    (schemas / "openapi.yaml").write_text(
        text.replace(f"  {template}:\n", f"  {template.replace('/persons/', '/people/')}:\n"),
        encoding="utf-8",
    )
    client = make_app(PIVOT_SCHEMAS=str(schemas)).test_client()
    moved = load_contract(schemas).operation("getPerson").expand(id=5)
    assert _get(client, moved).status_code == 200
    assert _get(client, path_of("getPerson", id=5)).status_code == 404


# -- recorded answers and the wire format --------------------------------------------------


def test_recorded_answer_has_the_provider_headers(client: Any) -> None:
    """A fixture is served with the provider's header set, a current date, no mock header."""
    response = _get(client, CONTENT)
    assert response.status_code == 200
    for name, value in PROVIDER.items():
        assert response.headers[name] == value
    assert re.fullmatch(r"appId=cid-v1:[0-9a-f-]{36}", response.headers["request-context"])
    assert parsedate_to_datetime(response.headers["date"]).year >= 2024
    assert "x-pivot-mock" not in response.headers
    recorded = json.loads(BUNDLED_7488.read_text(encoding="utf-8"))["response"]["body"]
    assert response.get_json() == recorded
    assert int(response.headers["content-length"]) == len(response.data)


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br, gzip;q=0.5", True),
        ("*", True),
        ("GZIP;Q=1.0", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("*;q=0", False),
        ("gzip;q=0, *;q=1", False),
        ("identity", False),
        ("deflate", False),
        ("", False),
        (None, False),
        ("gzip;q=bogus", False),
        ("x-gzip", True),
        ("gzip ; q=0 , deflate", False),
        ("br, *;q=0.1", True),
        ("identity, *;q=0", False),
        ("notgzip", False),
    ],
)
def test_gzip_only_when_accept_encoding_allows_it(
    client: Any, accept: str | None, gzipped: bool
) -> None:
    """q-values are honoured; content-length is the size of the bytes actually sent."""
    headers = {} if accept is None else {"Accept-Encoding": accept}
    response = _get(client, CONTENT, **headers)
    assert int(response.headers["content-length"]) == len(response.data)
    if gzipped:
        assert response.headers["content-encoding"] == "gzip"
        assert json.loads(gzip.decompress(response.data))["data"]["id"] == 7488
    else:
        assert "content-encoding" not in response.headers
        assert json.loads(response.data)["data"]["id"] == 7488


def test_lang_absent_means_fr_and_unknown_falls_back(client: Any) -> None:
    """``lang`` absent or unknown gives French; a recorded ``lang`` gives its own answer."""

    def title(query: str) -> str:
        return str(_get(client, CONTENT + query).get_json()["data"]["title"])

    assert title("") == "Blade Runner"
    assert title("?lang=fr") == "Blade Runner"
    assert title("?lang=en") == "Blade Runner (EN)"
    assert title("?lang=xx") == "Blade Runner"


def test_unknown_query_parameters_are_ignored(client: Any) -> None:
    """Extra query parameters change nothing."""
    plain = _get(client, CONTENT)
    extra = _get(client, CONTENT + "?foo=bar&page=2&lang=fr&x=")
    assert extra.status_code == 200 and extra.data == plain.data


def test_fixtures_recorded_with_a_query_match_by_query(
    fixtures_dir: Path, make_app: Callable[..., Flask]
) -> None:
    """A fixture recorded with ?page=2 answers requests that carry it; others get the plain one."""
    _fixture(
        fixtures_dir,
        "listChannels",
        "page2",
        CHANNELS,
        {"version": "v1", "statusCode": 200, "data": [{"id": 2, "name": "France 2"}]},
        query={"page": "2"},
    )
    client = make_app().test_client()

    def first_id(query: str) -> int:
        return int(_get(client, CHANNELS + query).get_json()["data"][0]["id"])

    assert first_id("?page=2") == 2
    assert first_id("?page=2&lang=en&other=1") == 2
    assert first_id("") == 1
    assert first_id("?page=3") == 1


@pytest.mark.parametrize(
    "path",
    [
        path_of("getContent", id="abc"),
        path_of("getContent", id=0),
        path_of("getContent", id=-1),
        path_of("getContent", id=2147483648),
        path_of("getContent", id=1.5),
        path_of("listUpdates", since=2024),
        path_of("listUpdates", since=20241305000000),
        path_of("listBroadcasts", channelId=1, start=20241301, end=20241105),
        path_of("listCollections", channelId="x", start=20241105, end=20241105),
    ],
)
def test_parameters_breaking_the_contract_get_aspnet_400(client: Any, path: str) -> None:
    """A path parameter outside its schema gets ASP.NET's 400 body."""
    response = _get(client, path)
    assert response.status_code == 400
    assert response.get_json() == CONVENTIONS.invalid_request_body


def test_unrecorded_id_gets_the_empty_200(client: Any) -> None:
    """No fixture for a valid id: 200 with ``{}`` and the provider's headers."""
    response = _get(client, path_of("getContent", id=123456))
    assert response.status_code == 200
    assert response.get_json() == {}
    assert response.headers["content-type"] == PROVIDER["content-type"]
    assert "x-pivot-mock" not in response.headers


def test_empty_body_is_configurable_and_validated(make_app: Callable[..., Flask]) -> None:
    """PIVOT_EMPTY_BODY sets the empty-200; a body that is not an empty result is refused."""
    envelope = {"version": "v1", "statusCode": 200, "data": None}
    client = make_app(PIVOT_EMPTY_BODY=json.dumps(envelope)).test_client()
    assert _get(client, path_of("getContent", id=5)).get_json() == envelope
    with pytest.raises(ConfigError, match="PIVOT_EMPTY_BODY"):
        make_app(PIVOT_EMPTY_BODY='{"data": 1}')


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/"),
        ("GET", "/v1"),
        ("GET", CONTENT.replace("/contents/", "/contentz/")),
        ("GET", path_of("getContent", id="").rstrip("/")),
        ("GET", CONTENT + "/"),
        ("POST", CONTENT),
        ("DELETE", CONTENT),
        ("PUT", CHANNELS),
        ("PATCH", path_of("listDays")),
        ("OPTIONS", path_of("listDays")),
    ],
)
def test_unknown_path_or_method_gets_the_gateway_404(client: Any, method: str, path: str) -> None:
    """No operation fits: the gateway's 404 (there is no 405), plain application/json."""
    response = client.open(path, method=method, headers=key_headers(FULL))
    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND
    assert response.headers["content-type"] == "application/json"


# -- keys, rights, fields ----------------------------------------------------------------------


def test_key_in_header_or_in_query(client: Any) -> None:
    """Both transports of the key work, primary and secondary."""
    assert _get(client, CONTENT).status_code == 200
    assert _get(client, CONTENT, key=FULL_2).status_code == 200
    assert _get(client, f"{CONTENT}?subscription-key={FULL}", key=None).status_code == 200


@pytest.mark.parametrize(
    ("key", "query", "message"),
    [
        (None, "", MISSING),
        ("", "", MISSING),
        (None, "?subscription-key=", MISSING),
        ("0" * 32, "", INVALID),
        (FULL.upper(), "", INVALID),
        (FULL[:-1], "", INVALID),
        (None, "?subscription-key=nope", INVALID),
        ("é" * 4, "", INVALID),
    ],
)
def test_missing_and_invalid_keys_get_the_exact_401(
    client: Any, key: str | None, query: str, message: str
) -> None:
    """The gateway's exact 401 bodies, with application/json."""
    response = _get(client, CONTENT + query, key=key)
    assert response.status_code == 401
    assert response.get_json() == CONVENTIONS.messages.body(401, message)
    assert response.headers["content-type"] == "application/json"


def test_operation_outside_the_rights_gets_the_invalid_key_401(client: Any) -> None:
    """basic may call getContent but not getPerson."""
    assert _get(client, CONTENT, key=BASIC).status_code == 200
    response = _get(client, path_of("getPerson", id=5), key=BASIC)
    assert response.status_code == 401
    assert response.get_json()["message"] == INVALID


def test_withheld_fields_are_absent_not_null(client: Any) -> None:
    """basic sees no synopsis and no credits.character; everything else is kept."""
    full = _get(client, CONTENT).get_json()["data"]
    basic = _get(client, CONTENT, key=BASIC).get_json()["data"]
    assert "synopsis" in full and "synopsis" not in basic
    assert any("character" in c for c in full["credits"])
    assert all("character" not in c for c in basic["credits"])
    assert [c["name"] for c in basic["credits"]] == [c["name"] for c in full["credits"]]
    assert set(full) - set(basic) == {"synopsis"}


def test_allowed_fields_keep_only_those(tmp_path: Path, make_app: Callable[..., Flask]) -> None:
    """``fields`` lists what an account sees: pointers or dotted paths, through arrays."""
    path = _accounts(
        tmp_path, ONE_ACCOUNT + 'fields = ["/id", "title", "credits.name", "/images/url"]\n'
    )
    client = make_app(PIVOT_ACCOUNTS=str(path)).test_client()
    body = _get(client, CONTENT, key=T_KEY).get_json()
    assert body["version"] == "v1" and body["statusCode"] == 200
    data = body["data"]
    assert set(data) == {"id", "title", "credits", "images"}
    assert all(set(c) == {"name"} for c in data["credits"])
    assert data["images"] == [{"url": "https://img.plurimedia.fr/contents/7488/poster.jpg"}]
    listed = _get(client, CHANNELS, key=T_KEY).get_json()["data"]
    assert listed == [{"id": 1}]


# -- rate limit and quota --------------------------------------------------------------------


def test_rate_limit_gives_429_with_retry_after(
    tmp_path: Path, make_app: Callable[..., Flask]
) -> None:
    """Over the rate limit: 429, the exact message with the wait, Retry-After."""
    path = _accounts(tmp_path, ONE_ACCOUNT + "rate_limit = { calls = 2, period = 3600 }\n")
    client = make_app(PIVOT_ACCOUNTS=str(path)).test_client()
    assert [_get(client, CONTENT, key=T_KEY).status_code for _ in range(2)] == [
        200,
        200,
    ]
    response = _get(client, CONTENT, key=T_KEY)
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 0 < wait <= 3600
    assert response.get_json() == CONVENTIONS.messages.body(
        429, CONVENTIONS.messages.rate_limited(wait)
    )


def test_quota_gives_403_with_a_timespan(tmp_path: Path, make_app: Callable[..., Flask]) -> None:
    """Out of quota: 403 with the TimeSpan message (d.hh:mm:ss past a day) and Retry-After."""
    path = _accounts(tmp_path, ONE_ACCOUNT + "quota = { calls = 1, period = 259200 }\n")
    client = make_app(PIVOT_ACCOUNTS=str(path)).test_client()
    assert _get(client, CONTENT, key=T_KEY).status_code == 200
    response = _get(client, CONTENT, key=T_KEY)
    assert response.status_code == 403
    wait = int(response.headers["Retry-After"])
    m = re.fullmatch(
        r"Out of call volume quota\. Quota will be replenished in "
        r"(?:(\d+)\.)?(\d{2}):(\d{2}):(\d{2})\.",
        response.get_json()["message"],
    )
    assert m is not None
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    assert days * 86400 + hours * 3600 + minutes * 60 + seconds == wait
    assert load_contract().is_valid("getContent", 403, response.get_json())


def test_limits_are_off_by_default(client: Any) -> None:
    """The full account has no rate limit or quota."""
    statuses = {_get(client, CONTENT).status_code for _ in range(40)}
    assert statuses == {200}


def test_the_limited_demo_account_is_limited(
    tmp_path: Path, make_app: Callable[..., Flask]
) -> None:
    """The bundled 'limited' account hits its rate limit after a few calls."""
    client = make_app().test_client()
    key = client.application.extensions["pivot"].current_keys("limited")[0]
    statuses = [_get(client, CONTENT, key=key).status_code for _ in range(8)]
    assert statuses[0] == 200 and 429 in statuses


# -- dynamic mode and record-through ----------------------------------------------------------


def test_dynamic_mode_generates_valid_deterministic_bodies(make_app: Callable[..., Flask]) -> None:
    """Unrecorded ids get a schema-valid body, the same for the same id, marked dynamic."""
    contract = load_contract()
    first = make_app(PIVOT_DYNAMIC=True).test_client()
    second = make_app(PIVOT_DYNAMIC="true").test_client()
    for op in contract.operations.values():
        if op.operation_id == "listChannels":  # recorded in the small fixture set
            continue
        params = example_params(op)
        if "id" in params:
            params["id"] = "4242"
        path = op.expand(**params)
        response = _get(first, path)
        assert response.status_code == 200
        assert response.headers["x-pivot-mock"] == "dynamic", op.operation_id
        body = response.get_json()
        assert body["data"] not in ({}, [], None)
        assert contract.validate(op.operation_id, 200, body) == [], op.operation_id
        assert _get(second, path).data == response.data
        if op.operation_id == "getContent":
            assert body["data"]["id"] == 4242
    other = _get(first, path_of("getContent", id=4243)).get_json()
    assert other != _get(first, path_of("getContent", id=4242)).get_json()


def test_dynamic_mode_keeps_fixtures_and_rights(make_app: Callable[..., Flask]) -> None:
    """Recorded ids still get their fixture (no header); generated bodies are filtered too."""
    client = make_app(PIVOT_DYNAMIC=True).test_client()
    recorded = _get(client, CONTENT)
    assert "x-pivot-mock" not in recorded.headers
    assert recorded.get_json()["data"]["title"] == "Blade Runner"
    for n in range(20):
        data = _get(client, path_of("getContent", id=900 + n), key=BASIC).get_json()["data"]
        assert "synopsis" not in data
        assert all("character" not in c for c in data.get("credits", []))


def test_record_through_hook(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With PIVOT_RECORD_FROM and a recorder, unrecorded requests are served from it; when it
    records nothing the answer is the gateway's 502, marked x-pivot-mock, not an empty 200."""
    monkeypatch.setenv("PIVOT_API_KEY", "0123456789abcdef0123456789abcdef")
    app = make_app(PIVOT_RECORD_FROM="http://127.0.0.1:9")
    mock = app.extensions["pivot"]
    assert callable(mock.record_through)  # create_app built it from the settings
    seen: list[tuple[str, str]] = []
    recorded = Exchange.from_dict(json.loads(BUNDLED_7488.read_text(encoding="utf-8")))

    def recorder(operation: Any, request: Any) -> Exchange | None:
        seen.append((operation.operation_id, request.path))
        return recorded if request.path.endswith("/55") else None

    mock.record_through = recorder
    client = app.test_client()
    assert _get(client, "/v1/api/v1/contents/55").get_json()["data"]["title"] == "Blade Runner"
    failed = _get(client, "/v1/api/v1/contents/56")
    assert failed.status_code == 502 and failed.headers["x-pivot-mock"] == "record-through-failed"
    assert failed.get_json() == {
        "statusCode": 502,
        "message": "record-through failed: nothing recorded",
    }
    assert _get(client, "/v1/api/v1/contents/7488").status_code == 200
    assert seen == [
        ("getContent", path_of("getContent", id=55)),
        ("getContent", path_of("getContent", id=56)),
    ]


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "status", "body"),
    [
        ("status=500", 500, {"Message": "An error has occurred."}),
        ("status=503", 503, {"statusCode": 503, "message": "Service Unavailable"}),
        (
            "status=429,retry-after=7",
            429,
            {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."},
        ),
        (
            "status=403, retry-after=90061",
            403,
            {
                "statusCode": 403,
                "message": "Out of call volume quota. Quota will be replenished in 1.01:01:01.",
            },
        ),
        ("latency=1ms", 200, None),
        ("latency=0..2ms", 200, None),
        ("status=500,p=0", 200, None),
    ],
)
def test_fault_header(client: Any, spec: str, status: int, body: Any) -> None:
    """x-pivot-fault injects statuses (with the gateway's bodies) and latency."""
    response = _get(client, CONTENT, **{"x-pivot-fault": spec})
    assert response.status_code == status
    if body is not None:
        assert response.get_json() == body
    if status in (429, 403):
        assert response.headers["Retry-After"] == spec.rsplit("=", 1)[1]


def test_invalid_json_fault(client: Any) -> None:
    """invalid-json: a 200 whose body does not parse."""
    response = _get(client, CONTENT, **{"x-pivot-fault": "invalid-json"})
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.data)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.data)


def test_bad_fault_spec_is_a_clear_400(client: Any) -> None:
    """An unparsable x-pivot-fault says what is allowed."""
    response = _get(client, CONTENT, **{"x-pivot-fault": "explode"})
    assert response.status_code == 400
    assert "unknown fault 'explode'" in response.get_json()["message"]


def test_configured_faults_and_header_switch(make_app: Callable[..., Flask]) -> None:
    """PIVOT_FAULTS applies to every call; PIVOT_FAULT_HEADER=false ignores the header."""
    client = make_app(PIVOT_FAULTS="status=503").test_client()
    assert _get(client, CONTENT).status_code == 503
    assert _get(client, CONTENT, key=None).status_code == 401
    quiet = make_app(PIVOT_FAULT_HEADER=False).test_client()
    assert _get(quiet, CONTENT, **{"x-pivot-fault": "status=500"}).status_code == 200


# -- admin, state and the portal's API -----------------------------------------------------------


def test_admin_needs_the_token_except_health(client: Any) -> None:
    """/__pivot/ answers 401 without the bearer token; health is open."""
    health = client.get("/__pivot/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    for url in ("/__pivot/fixtures", "/__pivot/usage", "/__pivot/accounts"):
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert client.post("/__pivot/reload").status_code == 401
    assert client.post("/__pivot/accounts/full/keys/primary").status_code == 401
    assert _get(client, CONTENT).status_code == 200  # key unchanged


AUTH = {"Authorization": "Bearer admin-token-for-tests"}


def test_unknown_admin_and_unmounted_portal_paths(
    client: Any, monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    """/__pivot/nothing is a JSON 404; without a portal, /portal/ is an API path (gateway 404)."""
    response = client.get("/__pivot/nothing", headers=AUTH)
    assert response.status_code == 404 and "error" in response.get_json()
    monkeypatch.setitem(sys.modules, "mockserver.portal", types.ModuleType("mockserver.portal"))
    bare = make_app().test_client()
    assert bare.get("/portal/").get_json() == NOT_FOUND


def test_admin_regenerates_a_key(client: Any) -> None:
    """Regeneration through /__pivot/: old key 401 at once, new key 200."""
    response = client.post("/__pivot/accounts/full/keys/primary", headers=AUTH)
    new = response.get_json()["key"]
    assert re.fullmatch(r"[0-9a-f]{32}", new) and new != FULL
    assert _get(client, CONTENT).get_json()["message"] == INVALID
    assert _get(client, CONTENT, key=new).status_code == 200
    assert _get(client, CONTENT, key=FULL_2).status_code == 200
    accounts = client.get("/__pivot/accounts", headers=AUTH).get_json()["accounts"]
    assert next(a for a in accounts if a["name"] == "full")["primaryKey"] == new
    assert client.post("/__pivot/accounts/nobody/keys/primary", headers=AUTH).status_code == 404
    assert client.post("/__pivot/accounts/full/keys/tertiary", headers=AUTH).status_code == 400


def test_admin_usage_and_fixtures_and_reload(client: Any, fixtures_dir: Path) -> None:
    """Usage counts per operation and slot; reload picks up a new fixture file."""
    for _ in range(3):
        _get(client, CONTENT)
    _get(client, CHANNELS, key=FULL_2)
    _get(client, CONTENT, key="0" * 32)  # refused: not counted
    rows = client.get("/__pivot/usage?account=full", headers=AUTH).get_json()["usage"]
    counts = {(r["operationId"], r["slot"]): r["count"] for r in rows}
    assert counts == {("getContent", "primary"): 3, ("listChannels", "secondary"): 1}
    listed = client.get("/__pivot/fixtures", headers=AUTH).get_json()
    assert {f["name"] for f in listed["fixtures"]} == {"7488", "7488-en", "all"}
    _fixture(
        fixtures_dir,
        "getPerson",
        "5",
        "/v1/api/v1/persons/5",
        {
            "version": "v1",
            "statusCode": 200,
            "data": {
                "id": 5,
                "fullName": "Ridley Scott",
                "firstName": "Ridley",
                "lastName": "Scott",
            },
        },
    )
    assert _get(client, path_of("getPerson", id=5)).get_json() == {}
    assert client.post("/__pivot/reload", headers=AUTH).get_json()["fixtures"] == 4
    assert _get(client, path_of("getPerson", id=5)).get_json()["data"]["id"] == 5


def test_explain_names_operation_fixture_or_closest(client: Any) -> None:
    """/__pivot/explain says which operation, fixture or fallback a request would get."""

    def explain(query: str) -> Any:
        return client.get(f"/__pivot/explain?{query}", headers=AUTH).get_json()

    hit = explain(f"path={CONTENT}&lang=xx")
    assert hit["answer"] == "fixture" and hit["fixture"]["name"] == "7488"
    assert explain(f"path={CONTENT}&lang=en")["fixture"]["name"] == "7488-en"
    miss = explain(f"path={path_of('getContent', id=7489)}")
    assert miss["answer"] == "empty-200" and CONTENT in miss["closest"]
    assert explain(f"path={path_of('getContent', id='x')}")["problems"]
    wrong = explain(f"path={CONTENT}&method=POST")
    assert wrong["operation"] is None
    assert wrong["sameWithOtherMethod"] == [f"GET {CONTRACT.operation('getContent').path}"]


def test_bad_fixture_files_are_left_out_and_listed(
    fixtures_dir: Path, make_app: Callable[..., Flask]
) -> None:
    """A broken fixture does not stop the mock (unless PIVOT_STRICT_FIXTURES); it is listed."""
    (fixtures_dir / "getContent" / "broken.json").write_text("{", encoding="utf-8")
    client = make_app().test_client()
    listed = client.get("/__pivot/fixtures", headers=AUTH).get_json()
    problems = listed["problems"]
    assert len(problems) == 1 and "broken.json" in problems[0]
    assert listed["refused"] == "1 fixture refused (invalid file: 1)"
    assert _get(client, "/v1/api/v1/contents/7488").status_code == 200
    with pytest.raises(ConfigError, match=r"--strict.*broken\.json.*pivotkit check"):
        make_app(PIVOT_STRICT_FIXTURES=True)


def test_python_api_for_the_portal(make_app: Callable[..., Flask]) -> None:
    """accounts, verify_password, current_keys, regenerate_key and usage, from the app."""
    app = make_app()
    mock = app.extensions["pivot"]
    assert [a.name for a in mock.gateway.accounts] == ["full", "basic", "limited"]
    assert mock.accounts_file.demo_keys is True
    assert mock.accounts == mock.gateway.accounts and len(mock.fixtures) == 3
    assert mock.verify_password("full", "full-demo")
    assert not mock.verify_password("full", "basic-demo")
    assert not mock.verify_password("nobody", "x")
    assert mock.current_keys("basic") == (BASIC, demo_key("basic", "secondary").reveal())
    new = mock.regenerate_key("basic", "secondary")
    assert mock.current_keys("basic") == (BASIC, new)
    client = app.test_client()
    _get(client, CONTENT, key=new)
    rows = mock.usage("basic")
    assert [(r.operation_id, r.slot, r.count) for r in rows] == [("getContent", "secondary", 1)]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rows[0].day)
    with pytest.raises(LookupError):
        mock.current_keys("nobody")


def test_portal_is_mounted_when_the_module_exists(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    """mockserver.portal.init_app(app) is called; its pages live beside the API, not in it."""
    portal = types.ModuleType("mockserver.portal")

    def init_app(app: Flask) -> None:
        bp = Blueprint("portal", __name__)
        bp.add_url_rule("/", "home", lambda: "portal home")
        app.register_blueprint(bp, url_prefix=app.config["PIVOT_PORTAL_PREFIX"])

    portal.init_app = init_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mockserver.portal", portal)
    client = make_app().test_client()
    assert client.get("/portal/").data == b"portal home"
    assert _get(client, CONTENT).status_code == 200


# -- configuration -------------------------------------------------------------------------------


def test_configuration_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    """defaults < file < environment < flags, and each value says where it came from."""
    config = tmp_path / "pivot.toml"
    config.write_text('dynamic = true\nfaults = "latency=1ms"\nusage_flush = 0\n', encoding="utf-8")
    app = make_app(PIVOT_CONFIG=str(config))
    settings = app.extensions["pivot"].settings
    assert settings.dynamic is True and settings.sources["DYNAMIC"].startswith("config file")
    assert settings.portal_prefix == "/portal" and settings.sources["PORTAL_PREFIX"] == "default"
    monkeypatch.setenv("PIVOT_DYNAMIC", "false")
    monkeypatch.setenv("PIVOT_FAULTS", "latency=2ms")
    settings = make_app(PIVOT_CONFIG=str(config)).extensions["pivot"].settings
    assert settings.dynamic is False and settings.sources["DYNAMIC"] == "environment PIVOT_DYNAMIC"
    assert settings.faults.latency_ms == (2.0, 2.0)
    settings = make_app(PIVOT_CONFIG=str(config), PIVOT_DYNAMIC=True).extensions["pivot"].settings
    assert settings.dynamic is True and settings.sources["DYNAMIC"] == "flags"
    assert app.config["PIVOT_DYNAMIC"] is True
    passed = make_app(PIVOT_RECORD_OUT="/x", PIVOT_RECORD_KEY_ENV="K", TESTING=True)
    record = passed.extensions["pivot"].settings
    assert record.record_out == Path("/x") and record.record_key_env == "K"
    assert passed.config["TESTING"] is True


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"PIVOT_FAULTS": "explode"}, "PIVOT_FAULTS"),
        ({"PIVOT_DYNAMIC": "perhaps"}, "PIVOT_DYNAMIC.*not a boolean"),
        ({"PIVOT_RECORD_FROM": "ftp://x"}, "PIVOT_RECORD_FROM"),
        ({"PIVOT_ADMIN_TOKEN": "short"}, "8\\+ characters"),
        ({"PIVOT_PORTAL_PREFIX": "/__pivot/portal"}, "PIVOT_PORTAL_PREFIX"),
        ({"PIVOT_NOPE": 1}, "unknown"),
        ({"PIVOT_FIXTURES": "/no/such/dir"}, "no such directory"),
        ({"PIVOT_ACCOUNTS": "/no/such/file.toml"}, "cannot read the accounts file"),
        ({"PIVOT_STATE": "/proc/no/state.sqlite"}, "cannot open the state"),
    ],
)
def test_invalid_settings_are_clear_errors(
    make_app: Callable[..., Flask], config: dict[str, Any], match: str
) -> None:
    """A bad value fails at start with the setting's name and what is wrong."""
    with pytest.raises(ConfigError, match=match):
        make_app(**config)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("[[accounts]]\nname = 'x'\nprimary_key = 'ABC'\n", "primary_key: must be 32 lowercase"),
        (ONE_ACCOUNT + "operations = ['getContnet']\n", "unknown getContnet"),
        (ONE_ACCOUNT + "rate_limit = { calls = 0, period = 1 }\n", "rate_limit"),
        (ONE_ACCOUNT + "colour = 'blue'\n", "unknown setting"),
        (ONE_ACCOUNT + "fields = ['a..b']\n", "not a field path"),
        (ONE_ACCOUNT + ONE_ACCOUNT, "duplicate account"),
        ("demo_keys = true\n", "no \\[\\[accounts\\]\\]"),
        ("accounts = [", "invalid TOML"),
    ],
)
def test_invalid_accounts_files_are_clear_errors(
    tmp_path: Path, make_app: Callable[..., Flask], body: str, match: str
) -> None:
    """The accounts file is validated at start; the error names the file and the setting."""
    path = _accounts(tmp_path, body)
    with pytest.raises(ConfigError, match=match) as info:
        make_app(PIVOT_ACCOUNTS=str(path))
    assert str(path) in str(info.value)


def test_bundled_accounts_file_keys_are_derived_demo_keys() -> None:
    """The shipped keys are sha256("pivotkit-demo-<name>-<slot>")[:32], flagged demo_keys."""
    import hashlib
    import tomllib

    path = BUNDLED_7488.parent.parent / "accounts.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["demo_keys"] is True
    names = [a["name"] for a in data["accounts"]]
    assert {"full", "basic", "limited"} <= set(names)
    for account in data["accounts"]:
        for slot in ("primary", "secondary"):
            seed = f"pivotkit-demo-{account['name']}-{slot}".encode()
            assert account[f"{slot}_key"] == hashlib.sha256(seed).hexdigest()[:32]


# -- loading a large corpus ------------------------------------------------------------------


def test_fast_and_standard_json_loaders_read_the_same(
    fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The orjson path and the standard library path build identical exchanges."""
    import pivotkit.fixtures as fixtures_module
    from pivotkit.fixtures import iter_fixture_files, read_exchange

    files = list(iter_fixture_files(fixtures_dir))
    fast = [read_exchange(path) for path in files]
    monkeypatch.setattr(fixtures_module, "_fast_loads", lambda raw: json.loads(raw.decode("utf-8")))
    slow = [read_exchange(path) for path in files]
    assert [ex.to_dict() for ex in fast] == [ex.to_dict() for ex in slow]
    assert len(fast) == 3


def test_reset_restores_keys_and_forgets_counters_and_usage(make_app: Callable[..., Flask]) -> None:
    """reset() puts keys back to the accounts file and clears usage, in every app on the state."""
    app, other = make_app(PIVOT_USAGE_FLUSH=0), make_app(PIVOT_USAGE_FLUSH=0)
    mock = app.extensions["pivot"]
    new_key = mock.regenerate_key("full", "primary")
    url = CONTENT
    assert _get(other.test_client(), url).status_code == 401
    assert _get(app.test_client(), url, key=new_key).status_code == 200
    assert mock.usage("full")
    mock.reset()
    assert _get(other.test_client(), url).status_code == 200  # the original key again
    assert _get(other.test_client(), url, key=new_key).status_code == 401
    assert mock.current_keys("full")[0] == FULL
    assert [(r.operation_id, r.count) for r in mock.usage("full")] == [("getContent", 1)]


# -- reload: validated once, all or nothing ------------------------------------------------------


def test_reload_keeps_serving_and_says_why(
    client: Any, fixtures_dir: Path, make_app: Callable[..., Flask]
) -> None:
    """New broken files (truncated, 100,000 deep, a CR/LF header, breaking the contract, a
    duplicate) are refused and listed and the reload goes through; a served fixture that no
    longer loads makes the reload refused (409) and its prepared answer is still served; with
    strict, any refused file refuses the reload."""
    from tests.helpers import broken_fixtures

    made = broken_fixtures(fixtures_dir)
    done = client.post("/__pivot/reload", headers=AUTH)
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["fixtures"] == 3
    assert body["refused"] == (
        "5 fixtures refused (invalid file: 3, body breaks the contract: 1, duplicate: 1)"
    )
    assert {Path(p.split(": ", 1)[0]) for p in body["problems"]} == set(made.values())
    served = fixtures_dir / "getContent" / "7488.json"
    assert _get(client, "/v1/api/v1/contents/7488").status_code == 200  # prepared now
    served.write_text(served.read_text("utf-8")[:100], "utf-8")
    refused = client.post("/__pivot/reload", headers=AUTH)
    assert refused.status_code == 409 and refused.get_json()["changed"] is False
    assert "7488.json" in refused.get_json()["problems"][0]
    assert _get(client, "/v1/api/v1/contents/7488").get_json()["data"]["title"] == "Blade Runner"
    for path in made.values():
        path.unlink()
    shutil.copy(BUNDLED_7488, served)
    strict = make_app(PIVOT_STRICT_FIXTURES=True).test_client()
    (fixtures_dir / "getContent" / "late.json").write_text("{", "utf-8")
    late = strict.post("/__pivot/reload", headers=AUTH)
    assert late.status_code == 409 and "--strict" in late.get_json()["error"]


def test_a_crlf_header_is_never_served(fixtures_dir: Path, make_app: Callable[..., Flask]) -> None:
    """The fixture with a CR/LF header value is refused at load: the request gets the
    empty-200 like any unrecorded one, and no header of the fixture reaches the wire."""
    from tests.helpers import broken_fixtures

    made = broken_fixtures(fixtures_dir)
    data = json.loads(made["crlf"].read_text("utf-8"))
    data["request"]["path"] = "/v1/api/v1/contents/4242"
    made["crlf"].write_text(json.dumps(data), "utf-8")
    answer = _get(make_app().test_client(), "/v1/api/v1/contents/4242")
    assert answer.status_code == 200 and answer.get_json() == {}
    assert "x-note" not in answer.headers and "evil" not in str(answer.headers)
