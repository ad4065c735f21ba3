"""The API's conventions are data: read from the contract, and every part follows an edit.

One test anchors the bundled contract to the facts of the provider's documentation
(shared/API.md); the others edit a copy of schemas/ (key header, a gateway message, the
default lang, the envelope's payload field) and check that the mock, the contract suite and
drift follow with no Python change.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pivotkit.contract import Contract
from pivotkit.drift import DriftOptions, run_drift
from tests.helpers import FULL, clean_env, pivotkit_command, serve_process

from .conftest import FIXTURES, SCHEMAS

NEW_HEADER = "X-Pivot-Token"
NEW_NOT_FOUND = "No resource answers this path"
NEW_LANG = "de"
NEW_PAYLOAD = "payload"


def test_the_bundled_contract_states_the_documented_facts() -> None:
    """The facts API.md documents, as the bundled contract states them (the one place in the
    tests where they are written out)."""
    conv = Contract.load(SCHEMAS).conventions
    assert conv.key_header == "Ocp-Apim-Subscription-Key"
    assert conv.key_query == "subscription-key"
    assert conv.live_url == "https://api.plurimedia.fr"
    assert (conv.lang_parameter, conv.default_lang) == ("lang", "fr")
    envelope = conv.envelope
    assert (envelope.version_field, envelope.status_field, envelope.payload_field) == (
        "version",
        "statusCode",
        "data",
    )
    assert envelope.version == "v1"
    messages = conv.messages
    assert messages.missing_key.startswith("Access denied due to missing subscription key.")
    assert messages.invalid_key.startswith("Access denied due to invalid subscription key.")
    assert messages.not_found == "Resource not found"
    assert messages.rate_limited(60) == "Rate limit is exceeded. Try again in 60 seconds."
    assert messages.quota_exhausted(12656) == (
        "Out of call volume quota. Quota will be replenished in 03:30:56."
    )
    assert dict(conv.invalid_request_body) == {"Message": "The request is invalid."}
    assert dict(conv.provider_headers) == {
        "cache-control": "no-cache",
        "content-type": "application/json; charset=utf-8",
        "expires": "-1",
        "pragma": "no-cache",
        "vary": "Accept-Encoding,Origin",
        "x-aspnet-version": "4.0.30319",
        "x-powered-by": "ASP.NET",
    }
    assert conv.request_context("00000000-0000-0000-0000-000000000000").startswith("appId=cid-v1:")
    assert conv.retry_after_header == "Retry-After"
    assert conv.updates is not None
    assert (conv.updates.operation_id, conv.updates.since_parameter) == ("listUpdates", "since")
    assert conv.updates.key_fields == ("channelId", "day")


def _rename(node: Any, old: str, new: str) -> Any:
    """Every mapping key ``old`` renamed ``new``, and ``old`` in ``required`` lists."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "required" and isinstance(value, list):
                out[key] = [new if v == old else v for v in value]
            else:
                out[new if key == old else key] = _rename(value, old, new)
        return out
    if isinstance(node, list):
        return [_rename(v, old, new) for v in node]
    return node


def _edit_schemas(root: Path) -> None:
    openapi = yaml.safe_load((root / "openapi.yaml").read_text(encoding="utf-8"))
    openapi["components"]["securitySchemes"]["subscriptionKeyHeader"]["name"] = NEW_HEADER
    openapi["components"]["parameters"]["lang"]["schema"]["default"] = NEW_LANG
    openapi["components"]["schemas"] = _rename(
        openapi["components"]["schemas"], "data", NEW_PAYLOAD
    )
    (root / "openapi.yaml").write_text(yaml.safe_dump(openapi, sort_keys=False), "utf-8")
    for name in ("envelope.json", "empty-result.json"):
        schema = _rename(json.loads((root / name).read_text("utf-8")), "data", NEW_PAYLOAD)
        (root / name).write_text(json.dumps(schema, indent=2), "utf-8")
    errors = json.loads((root / "gateway-error.json").read_text("utf-8"))
    errors["$defs"]["notFound"]["const"] = NEW_NOT_FOUND
    (root / "gateway-error.json").write_text(json.dumps(errors, indent=2), "utf-8")


def _edit_fixtures(root: Path) -> None:
    """Every exchange under ``root``: the operations' folders and the timelines' steps."""
    for path in root.rglob("*.json"):
        data = json.loads(path.read_text("utf-8"))
        if not (isinstance(data, dict) and "response" in data and "meta" in data):
            continue  # scenarios.json and other files that are not exchanges
        body = data["response"]["body"]
        if isinstance(body, dict) and "data" in body:
            data["response"]["body"] = {
                (NEW_PAYLOAD if k == "data" else k): v for k, v in body.items()
            }
        meta = data["meta"]
        for key in ("synthetic", "assumed"):
            if key in meta:
                meta[key] = [p.replace("/data", f"/{NEW_PAYLOAD}", 1) for p in meta[key]]
        if data["response"]["status"] == 404:
            data["response"]["body"]["message"] = NEW_NOT_FOUND
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), "utf-8")


@pytest.fixture(scope="module")
def edited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of schemas/ and fixtures/ with four conventions edited (as data only)."""
    base = tmp_path_factory.mktemp("edited")
    schemas, fixtures = base / "schemas", base / "fixtures"
    shutil.copytree(SCHEMAS, schemas)
    shutil.copytree(FIXTURES, fixtures)
    _edit_schemas(schemas)
    _edit_fixtures(fixtures)
    return schemas, fixtures


def test_the_contract_reads_the_edited_conventions(edited: tuple[Path, Path]) -> None:
    """The edited copy loads, and says what was edited."""
    conv = Contract.load(edited[0]).conventions
    assert conv.key_header == NEW_HEADER
    assert conv.messages.not_found == NEW_NOT_FOUND
    assert conv.default_lang == NEW_LANG
    assert conv.envelope.payload_field == NEW_PAYLOAD


def test_the_mock_follows_the_edited_contract(edited: tuple[Path, Path], tmp_path: Path) -> None:
    """`pivotkit serve` over the edited copy: the key in the new header, the new 404 message,
    the new payload field (rights still applied to it)."""
    schemas, fixtures = edited
    args = ("--schemas", str(schemas), "--fixtures", str(fixtures))
    with serve_process(tmp_path, *args) as (url, _, _):
        content = f"{url}/v1/api/v1/contents/7488"
        ok = httpx.get(content, headers={NEW_HEADER: FULL})
        assert ok.status_code == 200 and ok.json()[NEW_PAYLOAD]["title"] == "Blade Runner"
        old_header = httpx.get(content, headers={"Ocp-Apim-Subscription-Key": FULL})
        assert old_header.status_code == 401
        missing = httpx.get(f"{url}/v1/api/v1/nothing-here", headers={NEW_HEADER: FULL})
        assert missing.status_code == 404 and missing.json()["message"] == NEW_NOT_FOUND
        from pivotkit.client import demo_key

        basic = httpx.get(content, headers={NEW_HEADER: demo_key("basic").reveal()})
        assert "synopsis" not in basic.json()[NEW_PAYLOAD]
        assert "title" in basic.json()[NEW_PAYLOAD]


def test_the_suite_follows_the_edited_contract(edited: tuple[Path, Path], tmp_path: Path) -> None:
    """`pivotkit test` with PIVOT_SCHEMAS and PIVOT_FIXTURES on the edited copy passes: the
    suite's expectations come from the contract, not from the code."""
    schemas, fixtures = edited
    env = clean_env(PIVOT_SCHEMAS=str(schemas), PIVOT_FIXTURES=str(fixtures))
    result = subprocess.run(
        pivotkit_command(
            "test",
            "--junit",
            str(tmp_path / "r.xml"),
            "--markdown",
            str(tmp_path / "r.md"),
            "--",
            "-q",
            "-p",
            "no:randomly",
        ),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout.splitlines()[-1]


def test_drift_follows_the_edited_contract(edited: tuple[Path, Path], tmp_path: Path) -> None:
    """drift over the edited copy, against the mock of the same copy: the key goes in the new
    header (no 401) and the unchanged answers give no finding."""
    schemas, fixtures = edited
    args = ("--schemas", str(schemas), "--fixtures", str(fixtures))
    with serve_process(tmp_path, *args) as (url, _, _):
        out = tmp_path / "drift.json"
        code = run_drift(
            DriftOptions(
                target=url, schemas_dir=schemas, fixtures_dir=fixtures, rate=1000.0, json_out=out
            ),
            environ={"PIVOT_API_KEY": FULL},
            echo=lambda _: None,
        )
    report = json.loads(out.read_text("utf-8"))
    assert report["summary"]["answers"] > 20
    assert report["findings"] == [] and code == 0
