"""``pivotkit diff OLD NEW``: a consumer's changelog of two contracts, by the same direction
rules as drift. Planted changes of every kind in a copy of schemas/, through the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from pivotkit.cli import main
from pivotkit.contract import Contract
from pivotkit.drift.changelog import compare_contracts
from pivotkit.drift.classifier import RULES
from pivotkit.drift.findings import CONTRACT_KINDS, KINDS

from .conftest import SCHEMAS

Key = tuple[str, int | None, str, str]


def _json(root: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / name
    data = json.loads(path.read_text("utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), "utf-8")


def _openapi(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / "openapi.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")


def _content(d: dict[str, Any]) -> None:
    props = d["properties"]
    del props["typographicTitle"]  # removed
    props["origTitle"] = props.pop("originalTitle")  # renamed
    props["duration"]["type"] = "string"  # type changed
    props["isFre"]["type"] = ["boolean", "null"]  # became nullable
    props["lastUpdate"] = {"$ref": "common.json#/$defs/date"}  # format changed
    props["csaRating"]["enum"] = [-10, -12, -14, -16, -18]  # new enum value
    props["productionYear"]["maximum"] = 2200  # constraint relaxed
    props["seasonNumber"]["minimum"] = 1  # constraint tightened
    props["countries"]["items"]["pattern"] = "^[A-Z]{3}$"  # pattern changed
    props["ageRating"] = {"type": "string"}  # new field
    d["required"] = ["id", "synopsis"]  # title optional, synopsis required


def _image(d: dict[str, Any]) -> None:
    d["properties"]["hierarchy"]["enum"] = [1, 2, 3]  # an enum value removed


def _operations(api: dict[str, Any]) -> None:
    paths = api["paths"]
    del paths["/v1/api/v1/days"]  # operation removed
    genres = json.loads(json.dumps(paths["/v1/api/v1/categories"]))
    genres["get"]["operationId"] = "listGenres"
    paths["/v1/api/v1/genres"] = genres  # operation added
    person = paths.pop("/v1/api/v1/persons/{id}")
    paths["/v1/api/v2/persons/{id}"] = person  # path changed
    content = paths["/v1/api/v1/contents/{id}"]["get"]
    content["responses"]["410"] = {"$ref": "#/components/responses/NotFound"}  # status added
    del person["get"]["responses"]["400"]  # a status no longer declared
    headers = content["responses"]["200"]["headers"]
    del headers["Request-Context"]  # header removed
    headers["X-Total-Count"] = {"schema": {"type": "integer"}}  # header added
    headers["Vary"] = {"schema": {"type": "string", "const": "Accept-Encoding"}}  # changed
    content["parameters"][0]["schema"]["maximum"] = 999999  # accepts less than before
    channels = paths["/v1/api/v1/channels"]["get"]
    channels["parameters"].append(
        {"name": "region", "in": "query", "required": True, "schema": {"type": "string"}}
    )  # a new required parameter
    categories = paths["/v1/api/v1/categories"]["get"]
    categories["parameters"].append(
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer"}}
    )  # a new optional parameter
    providers = paths["/v1/api/v1/channels/providers"]["get"]
    providers["parameters"] = []  # parameter removed
    collections = paths["/v1/api/v1/collections/{channelId}/{start}/{end}"]["get"]["responses"]
    collections["203"] = collections.pop("200")  # the success status changed
    categories_of = paths["/v1/api/v1/channels/{channelId}/categories"]["get"]
    categories_of["parameters"][0]["schema"]["minimum"] = 0  # accepts more than before


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of schemas/ with a change of every kind planted."""
    root = tmp_path_factory.mktemp("contract") / "schemas"
    shutil.copytree(SCHEMAS, root)
    _json(root, "content.json", _content)
    _json(root, "image.json", _image)
    _openapi(root, _operations)
    return root


GET_CONTENT: set[Key] = {
    ("getContent", 200, "/data/typographicTitle", "field-removed"),
    ("getContent", 200, "/data/originalTitle", "field-removed"),
    ("getContent", 200, "/data/origTitle", "new-field"),
    ("getContent", 200, "/data/duration", "type-changed"),
    ("getContent", 200, "/data/isFre", "became-nullable"),
    ("getContent", 200, "/data/lastUpdate", "format-changed"),
    ("getContent", 200, "/data/csaRating", "new-enum-value"),
    ("getContent", 200, "/data/productionYear", "constraint-relaxed"),
    ("getContent", 200, "/data/seasonNumber", "constraint-tightened"),
    ("getContent", 200, "/data/countries/*", "pattern-changed"),
    ("getContent", 200, "/data/ageRating", "new-field"),
    ("getContent", 200, "/data/title", "required-missing"),
    ("getContent", 200, "/data/synopsis", "became-required"),
    ("getContent", 200, "/data/images/*/hierarchy", "enum-value-removed"),
    ("getContent", 410, "", "status-added"),
    ("getContent", 200, "headers/request-context", "header-removed"),
    ("getContent", 200, "headers/x-total-count", "header-added"),
    ("getContent", 200, "headers/vary", "new-enum-value"),
    ("getContent", 200, "headers/vary", "enum-value-removed"),
    ("getContent", None, "parameters/path/id", "parameter-changed"),
}
ELSEWHERE: set[Key] = {
    ("listDays", None, "", "operation-gone"),
    ("listGenres", None, "", "operation-added"),
    ("getPerson", None, "", "path-changed"),
    ("getPerson", 400, "", "status-removed"),
    ("listChannels", None, "parameters/query/region", "parameter-required"),
    ("listCategories", None, "parameters/query/page", "parameter-added"),
    ("listProviderChannels", None, "parameters/query/lang", "parameter-removed"),
    ("getChannelCategories", None, "parameters/path/channelId", "parameter-relaxed"),
    ("listCollections", 200, "", "status-changed"),
    ("listCollections", 203, "", "status-added"),
    ("listBroadcasts", 200, "/data/*/content/typographicTitle", "field-removed"),
}


def _keys(changes: list[dict[str, Any]]) -> set[Key]:
    return {(c["operation"], c["status"], c["pointer"], c["kind"]) for c in changes}


def test_every_planted_change_is_in_the_changelog_with_its_severity(planted: Path) -> None:
    """`pivotkit diff schemas/ planted/ --format json`: getContent's changes are exactly the
    planted ones, the other planted ones are there, untouched operations have none, each
    change carries its kind's severity, and the exit is 1 (breaking changes)."""
    result = CliRunner().invoke(main, ["diff", str(SCHEMAS), str(planted), "--format", "json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["format"] == "pivotkit-contract-diff/1"
    changes = report["changes"]
    found = _keys(changes)
    assert {k for k in found if k[0] == "getContent"} == GET_CONTENT
    assert found >= ELSEWHERE
    assert not {k for k in found if k[0] in ("getPersonAwards", "listUpdates")}
    assert all(c["severity"] == KINDS[c["kind"]] for c in changes)
    assert report["summary"]["breaking"] == sum(c["severity"] == "breaking" for c in changes)


def test_the_planted_changes_cover_every_kind_a_diff_gives(planted: Path) -> None:
    """Every kind the direction rules give two contracts (bodies, requests, statuses,
    headers, media types, parameters, operations), and every contract-only kind, is planted
    here or in the two tests below (the bundled contract has no union type and one media
    type per response)."""
    kinds = {k[3] for k in GET_CONTENT | ELSEWHERE} | {"type-narrowed", "header-changed"}
    ruled = {
        kind
        for position, rules in RULES.items()
        if position != "answer"
        for difference, kind in rules.items()
        if difference not in ("differs", "gateway-not-found")  # what only an answer shows
    }
    assert (ruled | CONTRACT_KINDS) - kinds == set()


def test_a_content_type_no_longer_declared_is_breaking(tmp_path: Path) -> None:
    """A response that declared text/json beside application/json and no longer does:
    header-changed at headers/content-type, breaking."""
    old = tmp_path / "old"
    shutil.copytree(SCHEMAS, old)

    def also_text(api: dict[str, Any]) -> None:
        content = api["paths"]["/v1/api/v1/persons/{id}"]["get"]["responses"]["200"]["content"]
        content["text/json"] = content["application/json"]

    _openapi(old, also_text)
    changes = compare_contracts(Contract.load(old), Contract.load(SCHEMAS))
    assert [(c.operation, c.status, c.pointer, c.kind, c.severity) for c in changes] == [
        ("getPerson", 200, "headers/content-type", "header-changed", "breaking")
    ]


def test_a_narrower_type_is_info(tmp_path: Path) -> None:
    """A field that was integer or string and is now string only: type-narrowed, info."""
    old = tmp_path / "old"
    shutil.copytree(SCHEMAS, old)
    _json(
        old, "person.json", lambda d: d["properties"]["gender"].update(type=["integer", "string"])
    )
    changes = compare_contracts(Contract.load(old), Contract.load(SCHEMAS))
    assert [(c.operation, c.pointer, c.kind, c.severity) for c in changes] == [
        ("getPerson", "/data/gender", "type-narrowed", "info")
    ]


def test_the_markdown_changelog_groups_by_operation(planted: Path, tmp_path: Path) -> None:
    """The default output is Markdown: counts, then one table per operation; --out writes
    it atomically."""
    out = tmp_path / "CHANGES.md"
    result = CliRunner().invoke(main, ["diff", str(SCHEMAS), str(planted), "--out", str(out)])
    assert result.exit_code == 1
    text = out.read_text("utf-8")
    assert text.startswith(f"## Contract changes: {SCHEMAS} -> {planted}")
    assert "### getContent" in text and "### listDays" in text
    assert (
        "| breaking | 200 | `/data/typographicTitle` | field-removed | declared (optional) "
        "| not declared |" in text
    )


def test_the_same_contract_gives_no_change_and_exit_0() -> None:
    """A contract against itself: no change, exit 0."""
    result = CliRunner().invoke(main, ["diff", str(SCHEMAS), str(SCHEMAS)])
    assert result.exit_code == 0
    assert "No change for consumers." in result.output


def test_only_additions_exit_0(tmp_path: Path) -> None:
    """New optional fields and a new operation are info: the changelog lists them, exit 0."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    _json(root, "person.json", lambda d: d["properties"].update(nickname={"type": "string"}))
    result = CliRunner().invoke(main, ["diff", str(SCHEMAS), str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert ("getPerson", 200, "/data/nickname", "new-field") in _keys(
        json.loads(result.output)["changes"]
    )


def test_an_envelope_change_is_breaking_for_every_operation(tmp_path: Path) -> None:
    """The envelope's version const changed (in envelope.json and in every operation's flat
    envelope of openapi.yaml): envelope-changed at /version, for all 13."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    _json(root, "envelope.json", lambda d: d["properties"]["version"].update(const="v2"))
    doc = yaml.safe_load((root / "openapi.yaml").read_text("utf-8"))
    for schema in doc["components"]["schemas"].values():
        version = (schema.get("properties") or {}).get("version")
        if isinstance(version, dict) and "const" in version:
            version["const"] = "v2"
    (root / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    changes = compare_contracts(Contract.load(SCHEMAS), Contract.load(root))
    gone = {c.operation for c in changes if (c.pointer, c.kind) == ("/version", "envelope-changed")}
    assert gone == set(Contract.load(SCHEMAS).operations)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_git_revision_of_the_other_side(tmp_path: Path) -> None:
    """`pivotkit diff git:HEAD schemas/` compares the working copy with its last commit, in
    a real git repository, through the CLI in a subprocess."""
    from .helpers import pivotkit_command

    repo = tmp_path / "project"
    shutil.copytree(SCHEMAS, repo / "schemas")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "contract")
    _json(repo / "schemas", "person.json", lambda d: d["properties"].pop("birthPlace"))
    done = subprocess.run(
        pivotkit_command("diff", "git:HEAD", "schemas", "--format", "json"),
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    found = _keys(json.loads(done.stdout)["changes"])
    assert ("getPerson", 200, "/data/birthPlace", "field-removed") in found
    bad = subprocess.run(
        pivotkit_command("diff", "git:no-such-rev", "schemas"),
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: git:no-such-rev") and bad.stderr.count("\n") == 1


def test_a_side_that_is_no_contract_is_exit_2(tmp_path: Path) -> None:
    """A directory without openapi.yaml: one error line, exit 2."""
    result = CliRunner().invoke(main, ["diff", str(SCHEMAS), str(tmp_path)])
    assert result.exit_code == 2
    assert "openapi.yaml" in result.output
