"""pivotkit.bundle, `pivotkit export openapi` and the mock's /__pivot/openapi.json: one
self-contained document that says exactly what the multi-file contract says."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from pivotkit.bundle import bundle
from pivotkit.contract import Contract
from pivotkit.fixtures import FixtureSet
from pivotkit.pointers import escape_pointer_segment
from tests.helpers import clean_env, pivotkit_command, serve_process

from .conftest import FIXTURES, SCHEMAS

CONTRACT = Contract.load(SCHEMAS)
CORPUS = FixtureSet.load(FIXTURES, contract=CONTRACT)
BUNDLE_URI = "https://pivotkit.invalid/bundle.json"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _mutations(body: Any) -> Iterator[Any]:
    """The body, and variants that break it in the ways drift cares about."""
    yield body
    if not isinstance(body, dict):
        return
    for key in list(body):
        changed = copy.deepcopy(body)
        del changed[key]
        yield changed
    yield {**body, "extra": 1}
    yield {**body, "version": 1}
    yield {**body, "statusCode": "200"}
    for value in (None, [], {}, "x"):
        yield {**body, "data": value}
    data = body.get("data")
    if isinstance(data, dict):
        for key in list(data):
            changed = copy.deepcopy(body)
            changed["data"][key] = {"unexpected": True}
            yield changed


def test_the_bundle_is_self_contained() -> None:
    """Every $ref of the bundle points inside it, and resolves; no $id, no $schema is left."""
    document = bundle(CONTRACT)
    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    text = json.dumps(document)
    assert '"$id"' not in text and '"$schema"' not in text


def test_the_bundle_gives_the_verdicts_of_the_contract() -> None:
    """Every fixture body, and many broken variants of it, is valid against the bundle exactly
    when it is valid against the multi-file contract."""
    document = bundle(CONTRACT)
    registry: Registry[Any] = Registry().with_resource(
        BUNDLE_URI, DRAFT202012.create_resource(document)
    )
    checked = 0
    for ex in CORPUS:
        op = CONTRACT.operation(ex.operation_id)
        status = ex.response.status
        pointer = "/".join(
            escape_pointer_segment(p)
            for p in ("paths", op.path, op.method.lower(), "responses", str(status))
        )
        response: Any = document["paths"][op.path][op.method.lower()]["responses"][str(status)]
        if "$ref" in response:
            pointer = response["$ref"].lstrip("#/")
        validator = Draft202012Validator(
            {"$ref": f"{BUNDLE_URI}#/{pointer}/content/application~1json/schema"}, registry=registry
        )
        for body in _mutations(ex.response.body):
            expected = CONTRACT.is_valid(ex.operation_id, status, body)
            assert validator.is_valid(body) == expected, (ex.operation_id, ex.name, body)
            checked += 1
    assert checked > 500


def test_every_response_example_is_a_fixture_body() -> None:
    """The response examples of openapi.yaml (what Prism and Postman show) are fixture bodies,
    or the gateway's 404, which no fixture records; each validates against its response."""
    bodies = [ex.response.body for ex in CORPUS]
    messages = CONTRACT.conventions.messages
    not_found = messages.body(404, messages.not_found)
    count = 0
    for op in CONTRACT.operations.values():
        for status in op.statuses:
            media = CONTRACT.response_spec(op.operation_id, status)["content"]["application/json"]
            examples = media.get("examples") or {}
            assert examples, (op.operation_id, status)
            for name, example in examples.items():
                value = example["value"]
                assert value in bodies or value == not_found, (op.operation_id, status, name)
                assert CONTRACT.is_valid(op.operation_id, status, value), (op.operation_id, name)
                count += 1
    assert count >= 13 * 5


def test_export_writes_the_document(tmp_path: Path) -> None:
    """`pivotkit export openapi` prints the contract's document; --bundle --format json --out
    writes the self-contained one atomically; a broken contract is one line, exit 2."""
    as_is = subprocess.run(
        pivotkit_command("export", "openapi"),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    assert as_is.returncode == 0, as_is.stderr
    assert yaml.safe_load(as_is.stdout)["paths"] == CONTRACT.openapi["paths"]
    out = tmp_path / "api.json"
    result = subprocess.run(
        pivotkit_command("export", "openapi", "--bundle", "--format", "json", "--out", str(out)),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text("utf-8")) == bundle(CONTRACT)
    assert not list(tmp_path.glob(".*.tmp"))
    broken = tmp_path / "schemas"
    broken.mkdir()
    (broken / "openapi.yaml").write_text("paths: [\n", "utf-8")
    bad = subprocess.run(
        pivotkit_command("export", "openapi", "--schemas", str(broken)),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "openapi.yaml" in bad.stderr


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_the_mock_serves_the_bundle(tmp_path: Path, fmt: str) -> None:
    """GET /__pivot/openapi.json (or .yaml) with no key: the bundle, its first server the mock
    itself; an unknown API path is still the gateway's 404."""
    with serve_process(tmp_path) as (url, _, _):
        served = httpx.get(f"{url}/__pivot/openapi.{fmt}")
        assert served.status_code == 200
        document = served.json() if fmt == "json" else yaml.safe_load(served.text)
        assert document["servers"][0]["url"] == url
        assert document["paths"] == bundle(CONTRACT)["paths"]
        missing = httpx.get(f"{url}/v1/api/v1/openapi.json")
        assert missing.status_code == 404 and missing.json()["message"] == (
            CONTRACT.conventions.messages.not_found
        )
        assert httpx.get(f"{url}/__pivot/openapi.xml").status_code == 404
