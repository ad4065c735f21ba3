"""`pivotkit calibrate` against an upstream pivotkit did not write: a small hand-made WSGI API
(on a loopback socket) that differs from the Pivot gateway in ways the mock never does.

- unknown paths get an HTML 404 page (a web server's, not the gateway's JSON);
- the 401s carry other messages; the backend's 400 is another body;
- only some operations exist; one is outside the account's rights (401 with the key); the only
  ids that exist are the public one (7488) and another the contract gives as an example;
- date-times end in ``Z``; ids are strings in one entity; one field is an object where the
  contract says string; the list envelope has an extra ``total``;
- every fifteenth request is rate limited (429, ``Retry-After: 1``).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request

from pivotkit.calibrate.job import find_key
from pivotkit.contract import Contract
from tests.helpers import KEY_HEADER, thread_server
from tests.test_calibrate import pivotkit

KEY = secrets.token_hex(16)
MISSING = "No subscription key in the request."
INVALID = "This subscription key is not valid."
BAD_REQUEST = {"error": "bad_request", "detail": "id must be a number"}
NOT_FOUND_PAGE = "<html><head><title>404 - File or directory not found.</title></head></html>"

CHANNELS = [
    {"id": 11, "name": "Canal Onze", "logo": "https://img.example.org/11.png"},
    {"id": 12, "name": "Canal Douze", "logo": "https://img.example.org/12.png"},
]
CONTENTS = {
    7488: {
        "id": 7488,
        "title": "Blade Runner",
        "lastUpdate": "2026-11-30T10:00:00Z",
        "format": {"id": 1, "name": "Film"},
        "credits": [{"personId": "p-7", "name": "A. B."}],
    },
    7520: {
        "id": 7520,
        "title": "Gladiator",
        "lastUpdate": "2026-11-29T08:30:00.25Z",
        "format": {"id": 2, "name": "Série"},
        "credits": [],
    },
}
DAY = "20261130"


def _envelope(data: Any, **extra: Any) -> dict[str, Any]:
    return {"version": "v1", "statusCode": 200, "data": data, **extra}


def other_upstream() -> Flask:
    app = Flask("other-upstream")
    calls = {"n": 0}
    lock = threading.Lock()

    @app.before_request
    def gate() -> Response | None:
        with lock:
            calls["n"] += 1
            limited = calls["n"] % 15 == 0
        key = request.headers.get(KEY_HEADER)
        if key is None:
            return _json({"statusCode": 401, "message": MISSING}, 401)
        if key != KEY:
            return _json({"statusCode": 401, "message": INVALID}, 401)
        if limited:
            response = _json({"statusCode": 429, "message": "Slow down."}, 429)
            response.headers["Retry-After"] = "1"
            return response
        return None

    @app.get("/v1/api/v1/channels")
    def channels() -> Response:
        return _json(_envelope(CHANNELS, total=len(CHANNELS)))

    @app.get("/v1/api/v1/days")
    def days() -> Response:
        return _json(_envelope([{"day": DAY, "channelIds": [11, 12]}], total=1))

    @app.get("/v1/api/v1/contents/<raw>")
    def content(raw: str) -> Response:
        if not raw.isdigit():
            return _json(BAD_REQUEST, 400)
        found = CONTENTS.get(int(raw))
        return _json(_envelope(found) if found else {})

    @app.get("/v1/api/v1/persons/<raw>")
    def person(raw: str) -> Response:  # outside this account's rights
        return _json({"statusCode": 401, "message": INVALID}, 401)

    @app.get("/v1/api/v1/schedule/<int:channel>/<start>/<end>")
    def schedule(channel: int, start: str, end: str) -> Response:
        return _json(
            _envelope(
                [
                    {
                        "id": 9,
                        "channelId": channel,
                        "contentId": 7488,
                        "start": "2026-11-30T20:00:00Z",
                    }
                ]
            )
        )

    @app.errorhandler(404)
    def not_found(_: Exception) -> tuple[str, int, dict[str, str]]:
        return NOT_FOUND_PAGE, 404, {"Content-Type": "text/html"}

    return app


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


@pytest.fixture(scope="module")
def other() -> Iterator[str]:
    with thread_server(other_upstream()) as url:
        yield url


@pytest.fixture(scope="module")
def run(other: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("other") / "DIR"
    done = pivotkit(
        "calibrate",
        "--upstream",
        other,
        "--out",
        str(out),
        "-q",
        "--budget",
        "120",
        "--max-wait",
        "2",
        key=KEY,
    )
    return out, done


def test_what_exists_is_calibrated_and_the_rest_named(run: tuple[Path, Any]) -> None:
    out, done = run
    assert done.returncode == 1, done.stderr
    report = json.loads((out / "calibration.json").read_text("utf-8"))
    result = {o["operationId"]: o["result"] for o in report["operations"]}
    for op in ("listChannels", "listDays", "getContent"):
        assert result[op] == "confirmed", (op, report["operations"])
    assert result["getPerson"] == "refused (401)"
    assert result["listBroadcasts"] == "path wrong"  # it lives under /schedule here
    assert result["listCategories"] == "path wrong"
    for op in result:
        if result[op] != "confirmed":
            assert f"not calibrated: {op}" in done.stderr


def test_the_gateway_and_backend_answers_are_learnt(run: tuple[Path, Any]) -> None:
    out, _ = run
    contract = Contract.load(out / "schemas")
    messages = contract.conventions.messages
    assert (messages.missing_key, messages.invalid_key) == (MISSING, INVALID)
    assert dict(contract.conventions.invalid_request_body) == BAD_REQUEST
    report = json.loads((out / "calibration.json").read_text("utf-8"))
    notes = [c["summary"] for c in report["neverObserved"]]
    assert any("unknown-path" in n for n in notes)  # an HTML page: the message is kept


def test_the_answers_reshape_the_schemas(run: tuple[Path, Any]) -> None:
    out, _ = run
    report = json.loads((out / "calibration.json").read_text("utf-8"))
    found = {(c["file"], c["pointer"], c["kind"]) for c in report["changes"]}
    assert ("common.json", "/$defs/localDateTime", "pattern") in found
    assert ("content.json", "/properties/format", "type") in found
    assert ("person-credit.json", "/properties/personId", "type") in found
    assert any(p.endswith("/properties/total") and k == "added" for _, p, k in found)
    check = pivotkit(
        "check", "-q", "--schemas", str(out / "schemas"), "--fixtures", str(out / "fixtures")
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert find_key(out, KEY) == []
