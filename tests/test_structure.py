"""A malformed contract, deviations file or option is one clear line and exit 2, never a
traceback: tried through the real command on many broken copies of schemas/."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pivotkit.contract import Contract
from pivotkit.errors import ConfigError, ContractFileError, UnresolvableRef
from tests.helpers import clean_env, pivotkit_command

Edit = Callable[[dict[str, Any]], None]


def _openapi(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((root / "openapi.yaml").read_text("utf-8"))
    return data


def _get(doc: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"]["/v1/api/v1/contents/{id}"]["get"]
    return op


def _set_responses_key(doc: dict[str, Any], old: str, new: str) -> None:
    responses = _get(doc)["responses"]
    responses[new] = responses.pop(old)


# (what is broken, how, what the line must say)
def _mark_updates(doc: dict[str, Any], template: str, *, only: bool) -> None:
    if only:
        doc["paths"]["/v1/api/v1/updates/{since}"]["get"].pop("x-pivot-role")
    doc["paths"][template]["get"]["x-pivot-role"] = "updates"


OPENAPI_CASES: list[tuple[str, Edit, str]] = [
    ("paths as a list", lambda d: d.update(paths=[]), "paths is a mapping"),
    (
        "two updates operations",
        lambda d: _mark_updates(d, "/v1/api/v1/contents/{id}", only=False),
        "only one operation may have x-pivot-role: updates",
    ),
    (
        "an updates operation with three path parameters",
        lambda d: _mark_updates(d, "/v1/api/v1/broadcasts/{channelId}/{start}/{end}", only=True),
        "takes one path parameter: the date-time asked",
    ),
    ("no operationId", lambda d: _get(d).pop("operationId"), "operationId"),
    ("a default response", lambda d: _set_responses_key(d, "404", "default"), "'default'"),
    ("a status range", lambda d: _set_responses_key(d, "404", "4XX"), "2XX"),
    ("a parameter without in", lambda d: _get(d)["parameters"][0].pop("in"), "`in`"),
    (
        "a cookie parameter",
        lambda d: _get(d)["parameters"][0].update({"in": "cookie"}),
        "path, query or header",
    ),
    ("no responses", lambda d: _get(d).pop("responses"), "responses"),
    (
        "an operationId with a space",
        lambda d: _get(d).update(operationId="get content"),
        "operationId is a name",
    ),
    (
        "a duplicate operationId",
        lambda d: d["paths"]["/v1/api/v1/channels"]["get"].update(operationId="getContent"),
        "is also GET",
    ),
    (
        "a path parameter the template lacks",
        lambda d: _get(d)["parameters"][0].update(name="contentId"),
        "declare one `in: path`",
    ),
    ("OpenAPI 3.0", lambda d: d.update(openapi="3.0.3"), "OpenAPI 3.1"),
    (
        "no key header scheme",
        lambda d: d["components"].update(securitySchemes={}),
        "apiKey security scheme",
    ),
    (
        "no live server",
        lambda d: d.update(servers=[{"url": "http://127.0.0.1:{port}"}]),
        "x-pivot-role: live",
    ),
    (
        "an unknown path source",
        lambda d: _get(d).update({"x-pivot-path-source": "guessed"}),
        "doc, assumed",
    ),
    (
        "a response without content",
        lambda d: _get(d)["responses"].update({"404": {"description": "x"}}),
        "application/json",
    ),
    (
        "a $ref to nothing",
        lambda d: _get(d)["parameters"].append({"$ref": "#/components/parameters/nope"}),
        "resolves to no schema",
    ),
    (
        "no lang default",
        lambda d: d["components"]["parameters"]["lang"]["schema"].pop("default"),
        "default",
    ),
    ("the document is a list", lambda d: d.clear(), "not an OpenAPI document"),
]


def _broken_copy(schemas_copy: Path, edit: Edit) -> Path:
    doc = _openapi(schemas_copy)
    edit(doc)
    text = yaml.safe_dump(doc if doc else ["not", "a", "mapping"], sort_keys=False)
    (schemas_copy / "openapi.yaml").write_text(text, "utf-8")
    return schemas_copy


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.mark.parametrize(("case", "edit", "says"), OPENAPI_CASES, ids=[c[0] for c in OPENAPI_CASES])
def test_a_malformed_contract_is_one_line(
    schemas_copy: Path, case: str, edit: Edit, says: str
) -> None:
    """`pivotkit check` on a broken openapi.yaml: exit 2, one line naming the file, the JSON
    pointer (or line) and what to fix."""
    root = _broken_copy(schemas_copy, edit)
    with pytest.raises((ContractFileError, ConfigError, UnresolvableRef)):
        Contract.load(root)
    result = subprocess.run(
        pivotkit_command("check", "--schemas", str(root)),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    line = _one_line(result)
    assert result.returncode == 2, line
    assert says in line, line
    assert "openapi.yaml" in line


def _schema_case(schemas_copy: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    path = schemas_copy / name
    data = json.loads(path.read_text("utf-8"))
    edit(data)
    path.write_text(json.dumps(data), "utf-8")
    return schemas_copy


SCHEMA_CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    (
        "envelope without roles",
        "envelope.json",
        lambda d: d["properties"]["data"].pop("x-pivot-role"),
        "x-pivot-role",
    ),
    (
        "a 429 template its pattern refuses",
        "gateway-error.json",
        lambda d: d["$defs"]["rateLimited"].update({"x-pivot-template": "Slow down {seconds}"}),
        "pattern refuses",
    ),
    (
        "a gateway message without const",
        "gateway-error.json",
        lambda d: d["$defs"]["notFound"].pop("const"),
        "needs a const",
    ),
    (
        "a schema file whose $id names another file",
        "day.json",
        lambda d: d.update({"$id": "https://example.org/other.json"}),
        "$id",
    ),
    (
        "update items without the day role",
        "update-item.json",
        lambda d: d["properties"]["day"].pop("x-pivot-role"),
        "x-pivot-role channel, day (missing: day)",
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "edit", "says"), SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES]
)
def test_a_malformed_schema_file_is_one_line(
    schemas_copy: Path, case: str, name: str, edit: Callable[[dict[str, Any]], None], says: str
) -> None:
    """A schema file the conventions or the registry cannot read: exit 2, one line."""
    root = _schema_case(schemas_copy, name, edit)
    result = subprocess.run(
        pivotkit_command("docs", "--check", "--schemas", str(root)),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    line = _one_line(result)
    assert result.returncode == 2 and says in line, line


def test_a_200_of_another_shape_still_documents(schemas_copy: Path, tmp_path: Path) -> None:
    """A 200 that is neither the envelope nor the empty result loads, validates and renders
    in the reference (described as it is), with no traceback."""
    doc = _openapi(schemas_copy)
    _get(doc)["responses"]["200"] = {
        "description": "x",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    (schemas_copy / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    contract = Contract.load(schemas_copy)
    assert contract.validate("getContent", 200, {"anything": 1}) == []
    out = tmp_path / "ref.md"
    result = subprocess.run(
        pivotkit_command("docs", "--schemas", str(schemas_copy), "--out", str(out)),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "| 200 | object |" in out.read_text("utf-8")


def test_an_unknown_validator_engine_is_one_line() -> None:
    """PIVOT_VALIDATOR_ENGINE=java names the variable and the choices."""
    result = subprocess.run(
        pivotkit_command("check"),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(PIVOT_VALIDATOR_ENGINE="java"),
    )
    line = _one_line(result)
    assert result.returncode == 2 and "PIVOT_VALIDATOR_ENGINE" in line and "auto" in line


@pytest.mark.parametrize("expires", ["2024-02-30", "next week", "2024-13-01"])
def test_an_invalid_expiry_date_is_one_line(tmp_path: Path, expires: str) -> None:
    """A known-deviations entry whose expiry is no date: exit 2, one line naming the file."""
    known = tmp_path / "known.yaml"
    known.write_text(
        "deviations:\n  - operation: getContent\n    reason: r\n    owner: o\n"
        f"    expires: {expires}\n",
        "utf-8",
    )
    result = subprocess.run(
        pivotkit_command(
            "drift", "--target", "http://127.0.0.1:9", "--known-deviations", str(known)
        ),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    line = _one_line(result)
    assert result.returncode == 2 and "known.yaml" in line


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["drift", "--target", "http://127.0.0.1:9", "--budget", "-1"], "--budget"),
        (["drift", "--target", "http://127.0.0.1:9", "--sample", "0"], "--sample"),
        (["drift", "--target", "staging"], "--target"),
        (["test", "--target", "staging"], "--target"),
        (["record", "--upstream", "ftp://x", "--op", "listDays"], "--upstream"),
    ],
)
def test_errors_name_the_option_the_user_typed(args: list[str], option: str) -> None:
    """The message names the flag as typed (never another command's option)."""
    result = subprocess.run(
        pivotkit_command(*args),
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(PIVOT_API_KEY="0" * 32),
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert option in result.stderr and "--pivot-" not in result.stderr
