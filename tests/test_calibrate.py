"""`pivotkit calibrate` against a differently-shaped upstream (tests/truth.py) on a socket:
the guessed contract meets the truth, and one command turns it into the truth.

Everything runs through the real interface: `pivotkit serve` subprocesses for the truth and for
the calibrated mock, `pivotkit calibrate|check|docs|drift|test|record` subprocesses, `git apply`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pivotkit.calibrate.definition import map_operations, read_export
from pivotkit.calibrate.job import find_key, key_forms
from pivotkit.contract import Contract
from pivotkit.fixtures import FixtureSet
from tests import truth as T
from tests.conftest import FIXTURES, SCHEMAS
from tests.helpers import (
    CONTRACT,
    FULL,
    KEY_HEADER,
    clean_env,
    free_port,
    pivotkit_command,
    serve_process,
)


@dataclass
class Upstream:
    truth: T.Truth
    url: str

    @property
    def key(self) -> str:
        return self.truth.key


@dataclass
class Run:
    out: Path
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out / "calibration.json").read_text("utf-8"))
        return data

    def operations(self) -> dict[str, dict[str, Any]]:
        return {o["operationId"]: o for o in self.report["operations"]}

    def changes(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.report["changes"] if kind is None or c["kind"] == kind]


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def pivotkit(
    *args: str, key: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = clean_env(**({"PIVOT_API_KEY": key} if key else {}))
    return subprocess.run(
        pivotkit_command(*args),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def inputs_digest() -> str:
    return _tree_digest(SCHEMAS) + _tree_digest(FIXTURES)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    root = tmp_path_factory.mktemp("truth")
    truth = T.build(root / "truth", secrets.token_hex(16))
    with serve_process(
        root, "--schemas", str(truth.schemas), "--fixtures", str(truth.fixtures)
    ) as (url, _proc, _log):
        T.write_har(truth, url)
        yield Upstream(truth, url)


def _calibrate(up: Upstream, out: Path, *extra: str) -> Run:
    done = pivotkit("calibrate", "--upstream", up.url, "--out", str(out), "-q", *extra, key=up.key)
    return Run(out, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def calibrated(
    upstream: Upstream, tmp_path_factory: pytest.TempPathFactory, inputs_digest: str
) -> Run:
    """Calibrated with the provider's export and a browser session."""
    out = tmp_path_factory.mktemp("calibrated") / "DIR"
    return _calibrate(
        upstream, out, "--apim-export", str(upstream.truth.export), "--har", str(upstream.truth.har)
    )


@pytest.fixture(scope="module")
def without_export(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("no-export") / "DIR"
    return _calibrate(upstream, out)


# -- the calibrated contract is the truth -----------------------------------------------------


def test_every_operation_is_calibrated_and_paths_come_from_the_export(calibrated: Run) -> None:
    assert calibrated.code == 0, calibrated.stderr + calibrated.stdout
    ops = calibrated.operations()
    assert set(ops) == set(CONTRACT.operations)
    contract = Contract.load(calibrated.out / "schemas")
    for op_id, op in ops.items():
        assert op["answers"] > 0, op
        expected = T.MOVED.get(op_id, CONTRACT.operation(op_id).path)
        assert op["path"] == expected == contract.operation(op_id).path
        source = contract.operation(op_id).path_source
        assert source == ("provider-export" if op_id in T.MOVED else "confirmed"), op_id
    mapping = {m["operationId"]: m for m in calibrated.report["export"]["mapping"]}
    assert mapping["getPersonBiography"]["renamedParameters"] == {"id": "personId"}
    assert "format" in mapping["getContent"]["addedParameters"]
    assert calibrated.report["calls"] <= 300


def test_every_planted_change_is_found_where_it_belongs(calibrated: Run) -> None:
    """Each class of difference the truth plants is one change on the right schema object."""
    found = {(c["file"], c["pointer"], c["kind"]) for c in calibrated.changes()}
    expected = {
        ("content.json", "/properties/summary", "added"),
        ("content.json", "/properties/ageRating", "added"),
        ("openapi.yaml", "/components/schemas/ChannelListEnvelope/properties/count", "added"),
        ("person.json", "/properties/birthPlace", "nullable"),
        ("provider-channel.json", "/properties/channelNumber", "type"),
        ("category.json", "/properties/kind", "enum"),
        ("broadcast.json", "/properties/contentId", "optional"),
        ("common.json", "/$defs/localDateTime", "pattern"),
        ("openapi.yaml", "/components/headers/X-AspNet-Version/schema/const", "const"),
        ("invalid-request.json", "", "const"),
    }
    assert expected <= found, expected - found
    never = {(c["file"], c["pointer"]) for c in calibrated.report["neverObserved"]}
    assert ("content.json", "/properties/shortSynopsis") in never  # kept, reported
    content = json.loads((calibrated.out / "schemas" / "content.json").read_text("utf-8"))
    assert "shortSynopsis" in content["properties"]
    assert "ageRating" in content["required"]
    assert content["properties"]["id"] == {"$ref": "common.json#/$defs/id"}  # structure kept
    for change in calibrated.changes():
        assert change["answers"] >= 1 and change["summary"], change


def test_check_docs_and_drift_pass_on_the_calibrated_contract(
    calibrated: Run, upstream: Upstream
) -> None:
    schemas, fixtures = str(calibrated.out / "schemas"), str(calibrated.out / "fixtures")
    check = pivotkit("check", "-q", "--schemas", schemas, "--fixtures", fixtures)
    assert check.returncode == 0, check.stdout + check.stderr
    docs = pivotkit(
        "docs",
        "--check",
        "--schemas",
        schemas,
        "--out",
        str(calibrated.out / "docs" / "reference.md"),
    )
    assert docs.returncode == 0, docs.stderr
    drift = pivotkit(
        "drift",
        "--target",
        upstream.url,
        "--schemas",
        schemas,
        "--fixtures",
        fixtures,
        "--budget",
        "2000",
        "--json",
        str(calibrated.out.parent / "drift.json"),
        key=upstream.key,
    )
    assert drift.returncode == 0, drift.stdout + drift.stderr
    report = json.loads((calibrated.out.parent / "drift.json").read_text("utf-8"))
    breaking = [f for f in report.get("findings", []) if f.get("severity") == "breaking"]
    assert not breaking


def test_the_contract_suite_passes_against_the_upstream(
    calibrated: Run, upstream: Upstream
) -> None:
    reports = calibrated.out.parent / "suite"
    done = pivotkit(
        "test",
        "--target",
        upstream.url,
        "--schemas",
        str(calibrated.out / "schemas"),
        "--fixtures",
        str(calibrated.out / "fixtures"),
        "--budget",
        "3000",
        "--junit",
        str(reports / "j.xml"),
        "--markdown",
        str(reports / "r.md"),
        "--",
        "-q",
        key=upstream.key,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


def test_the_guessed_contract_fails_the_same_suite(upstream: Upstream, tmp_path: Path) -> None:
    """Without calibration the truth breaks the bundled contract: the test above can fail."""
    done = pivotkit(
        "test",
        "--target",
        upstream.url,
        "--budget",
        "3000",
        "--junit",
        str(tmp_path / "j.xml"),
        "--markdown",
        str(tmp_path / "r.md"),
        "--",
        "-q",
        "-x",
        key=upstream.key,
    )
    assert done.returncode == 1, done.stdout[-2000:]


def test_the_calibrated_mock_answers_every_recorded_request_like_the_upstream(
    calibrated: Run, upstream: Upstream, tmp_path: Path
) -> None:
    fixtures = FixtureSet.load(calibrated.out / "fixtures")
    assert len(fixtures) > 40
    wrong_key = secrets.token_hex(16)
    with (
        serve_process(
            tmp_path,
            "--schemas",
            str(calibrated.out / "schemas"),
            "--fixtures",
            str(calibrated.out / "fixtures"),
        ) as (mock, _proc, _log),
        httpx.Client(timeout=30) as http,
    ):
        for exchange in fixtures:
            sent = {k.lower(): v for k, v in exchange.request.headers.items()}
            if KEY_HEADER.lower() not in sent:
                theirs: dict[str, str] = {}
                ours: dict[str, str] = {}
            elif "invalid-key" in exchange.name:
                theirs = ours = {KEY_HEADER: wrong_key}
            else:
                theirs, ours = {KEY_HEADER: upstream.key}, {KEY_HEADER: FULL}
            query = dict(exchange.request.query)
            real = http.get(upstream.url + exchange.request.path, params=query, headers=theirs)
            mocked = http.get(mock + exchange.request.path, params=query, headers=ours)
            where = f"{exchange.operation_id}/{exchange.name}"
            assert mocked.status_code == real.status_code == exchange.response.status, where
            assert mocked.json() == real.json() == exchange.response.body, where
            if real.status_code == 200:
                assert mocked.headers["x-aspnet-version"] == T.ASPNET_VERSION, where


def test_no_form_of_the_key_under_dir_and_inputs_untouched(
    calibrated: Run, without_export: Run, upstream: Upstream, inputs_digest: str
) -> None:
    for run in (calibrated, without_export):
        assert find_key(run.out, upstream.key) == []
        text = "".join(p.read_text("utf-8", "replace") for p in run.out.rglob("*") if p.is_file())
        for form in key_forms(upstream.key):
            assert form not in text
        assert upstream.key not in run.stdout + run.stderr
    assert _tree_digest(SCHEMAS) + _tree_digest(FIXTURES) == inputs_digest


def test_the_patch_applies_to_the_repository_with_git(calibrated: Run, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SCHEMAS, repo / "schemas")
    shutil.copytree(SCHEMAS.parent / "docs", repo / "docs")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    patch = calibrated.out / "contract.patch"
    check = subprocess.run(
        ["git", "-C", str(repo), "apply", "--check", str(patch)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    subprocess.run(["git", "-C", str(repo), "apply", str(patch)], check=True)
    for path in sorted((calibrated.out / "schemas").iterdir()):
        assert (repo / "schemas" / path.name).read_text("utf-8") == path.read_text("utf-8")
    assert (repo / "docs" / "reference.md").read_text("utf-8") == (
        calibrated.out / "docs" / "reference.md"
    ).read_text("utf-8")


def test_har_answers_are_evidence_and_fixtures(calibrated: Run, upstream: Upstream) -> None:
    """The session's API calls are imported (the portal page left out); each is a fixture,
    re-recorded live when the crawl sent the same request; none holds the key or a cookie."""
    har = calibrated.report["har"]
    assert har == ["portal-session.har: 4 API exchanges; left out 1 not a path of the contract"]
    session = json.loads(upstream.truth.har.read_text("utf-8"))["log"]["entries"]
    api_paths = {httpx.URL(e["request"]["url"]).path for e in session[1:]}
    fixtures = FixtureSet.load(calibrated.out / "fixtures")
    assert api_paths <= {e.request.path for e in fixtures}
    for exchange in fixtures:
        assert "cookie" not in {k.lower() for k in exchange.request.headers}
        assert set(exchange.request.headers.get(KEY_HEADER, "x")) == {"x"}


# -- without the export ------------------------------------------------------------------------


def test_without_the_export_wrong_paths_are_named_and_the_rest_calibrated(
    without_export: Run,
) -> None:
    assert without_export.code == 1
    ops = without_export.operations()
    wrong = {o for o, r in ops.items() if r["result"] == "path wrong"}
    assert wrong == set(T.MOVED)
    for op_id in wrong:
        assert "--apim-export" in ops[op_id]["notes"][0]
        assert f"not calibrated: {op_id}: path wrong" in without_export.stderr
    assert all(ops[o]["answers"] > 0 for o in ops if o not in wrong)
    md = (without_export.out / "CALIBRATION.md").read_text("utf-8")
    assert "path wrong" in md and "--apim-export" in md
    assert {("content.json", "/properties/ageRating")} <= {
        (c["file"], c["pointer"]) for c in without_export.changes("added")
    }
    check = pivotkit(
        "check",
        "-q",
        "--schemas",
        str(without_export.out / "schemas"),
        "--fixtures",
        str(without_export.out / "fixtures"),
    )
    assert check.returncode == 0, check.stdout


def test_budget_stops_the_crawl_with_the_partial_result_written(
    upstream: Upstream, tmp_path: Path
) -> None:
    run = _calibrate(upstream, tmp_path / "DIR", "--budget", "12")
    assert run.code == 1, run.stderr
    report = run.report
    assert report["calls"] <= 12
    assert "budget of 12" in (report["stopped"] or "")
    assert any(o["result"] == "not reached" for o in report["operations"])
    assert (run.out / "CALIBRATION.md").is_file() and (run.out / "contract.patch").is_file()
    Contract.load(run.out / "schemas")  # what was written is a loadable contract


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        ("quota = { calls = 40, period = 3600 }\n", 3),
        ("rate_limit = { calls = 30, period = 1 }\n", 0),
    ],
    ids=["quota", "rate-limit"],
)
def test_quota_stops_cleanly_and_rate_limits_are_waited_out(
    limits: str, code: int, tmp_path: Path
) -> None:
    """Out of quota (the gateway's 403): exit 3, what was learnt written. Rate limited (429
    with Retry-After): waited out, every operation still calibrated."""
    truth = T.build(tmp_path / "truth", secrets.token_hex(16), limits)
    with serve_process(
        tmp_path, "--schemas", str(truth.schemas), "--fixtures", str(truth.fixtures)
    ) as (url, _proc, _log):
        run = _calibrate(
            Upstream(truth, url),
            tmp_path / "DIR",
            "--apim-export",
            str(truth.export),
        )
    assert run.code == code, run.stderr + run.stdout
    report = run.report
    if code == 3:
        assert "quota" in report["stopped"].lower()
        assert report["calls"] <= 42  # 40 answers, the 403, the unknown path (not counted)
        assert any(o["answers"] for o in report["operations"])
    else:
        assert all(o["answers"] for o in report["operations"])
    Contract.load(run.out / "schemas")
    assert find_key(run.out, truth.key) == []


def test_an_unreachable_upstream_is_exit_3_with_what_was_learnt_written(tmp_path: Path) -> None:
    run = pivotkit(
        "calibrate",
        "--upstream",
        f"http://127.0.0.1:{free_port()}",
        "--out",
        str(tmp_path / "DIR"),
        "-q",
        key=secrets.token_hex(16),
    )
    assert run.returncode == 3, run.stderr
    assert (tmp_path / "DIR" / "CALIBRATION.md").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{schemas}/x"], "--out"),
        (["--apim-export", "{tmp}/missing.json"], "no such file"),
        (["--apim-export", "{tmp}/bad.json"], "not an OpenAPI export"),
        (["--har", "{tmp}/bad.json"], "not a HAR file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"hello": 1}', "utf-8")
    given = [a.format(schemas=SCHEMAS, tmp=tmp_path) for a in args]
    if "--out" not in given:
        given += ["--out", str(tmp_path / "DIR")]
    run = pivotkit(
        "calibrate",
        "--upstream",
        f"http://127.0.0.1:{free_port()}",
        *given,
        key=secrets.token_hex(16),
    )
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # one line, no traceback
    assert not (SCHEMAS / "x").exists()


def test_no_key_is_exit_2(tmp_path: Path) -> None:
    run = pivotkit("calibrate", "--upstream", "http://127.0.0.1:9", "--out", str(tmp_path))
    assert run.returncode == 2 and "PIVOT_API_KEY" in run.stderr


# -- the export mapping, alone -------------------------------------------------------------------


def test_the_export_maps_each_operation_to_the_right_one(upstream: Upstream) -> None:
    exported = read_export(upstream.truth.export)
    matches, left = map_operations(CONTRACT, exported)
    assert {m.operation_id: m.exported.path for m in matches} == {
        op_id: T.MOVED.get(op_id, op.path) for op_id, op in CONTRACT.operations.items()
    }
    assert left == []


def test_record_from_har_writes_redacted_fixtures(upstream: Upstream, tmp_path: Path) -> None:
    out = tmp_path / "fx"
    done = pivotkit("record", "--from-har", str(upstream.truth.har), "--out", str(out))
    assert done.returncode == 0, done.stderr
    files = sorted(out.rglob("*.json"))
    assert files and all(upstream.key not in f.read_text("utf-8") for f in files)
    assert "left out" in done.stdout


def test_the_readme_first_day_runs_as_written(upstream: Upstream, tmp_path: Path) -> None:
    """The README's "first day" commands, in a checkout (schemas/, docs/, fixtures/ under git),
    with the upstream and the export file pointed at the truth."""
    import re
    import shlex

    readme = (SCHEMAS.parent / "README.md").read_text("utf-8")
    section = readme.split("## Your first day with a key", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block is not None
    repo = tmp_path / "repo"
    for name in ("schemas", "docs", "fixtures"):
        shutil.copytree(SCHEMAS.parent / name, repo / name)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(upstream.truth.export, repo / "pivot-api.json")
    ran = 0
    for line in block.group(1).splitlines():
        command = shlex.split(line.split("  #")[0], comments=True)
        if not command or command[0] == "export":
            continue
        command = [upstream.url if arg == "https://api.plurimedia.fr" else arg for arg in command]
        if command[0] == "pivotkit":
            command = pivotkit_command(*command[1:])
            command += ["--schemas", str(repo / "schemas")] if "check" in command else []
        done = subprocess.run(
            command,
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            env=clean_env(PIVOT_API_KEY=upstream.key),
            timeout=600,
        )
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
        ran += 1
    assert ran == 3
    paths = Contract.load(repo / "schemas")
    assert paths.operation("getPersonBiography").path == T.MOVED["getPersonBiography"]


def test_a_browser_session_corrects_a_wrong_path_without_the_export(
    upstream: Upstream, tmp_path: Path
) -> None:
    """No export, but a HAR whose API calls include the real biography path: that one wrong
    path is corrected from the session (same shape, one segment otherwise), crawled again and
    confirmed; the two the session does not show stay "path wrong"."""
    run = _calibrate(upstream, tmp_path / "DIR", "--har", str(upstream.truth.har))
    assert run.code == 1, run.stderr
    ops = run.operations()
    bio = ops["getPersonBiography"]
    assert bio["result"] == "confirmed" and bio["answers"] > 0, bio
    assert bio["path"] == "/v1/api/v1/persons/{id}/bio"  # the session's path, our parameter
    assert bio["previousPath"] == CONTRACT.operation("getPersonBiography").path
    assert any("browser session" in n for n in bio["notes"])
    assert {o for o, r in ops.items() if r["result"] == "path wrong"} == set(T.MOVED) - {
        "getPersonBiography"
    }
    contract = Contract.load(run.out / "schemas")
    assert contract.operation("getPersonBiography").path_source == "confirmed"


def test_a_swagger_2_export_with_controller_names_maps_by_shape(tmp_path: Path) -> None:
    """An OpenAPI 2 export in YAML, ``basePath`` /v1, ASP.NET controller-style names
    (``Persons_GetBio``), no summaries, other parameter names: every operation still maps to
    its own, and the renamed parameters are reported."""
    import yaml

    paths: dict[str, Any] = {}
    for op in CONTRACT.operations.values():
        template = T.MOVED.get(op.operation_id, op.path).removeprefix("/v1")
        template = template.replace("{id}", "{key}")
        segments = [s for s in template.split("/") if s and not s.startswith("{")][2:]
        name = "_".join(s.capitalize() for s in segments) or "Root"
        params = [
            {"name": p.strip("{}"), "in": "path", "required": True, "type": "string"}
            for p in template.split("/")
            if p.startswith("{")
        ]
        paths[template] = {
            "get": {
                "operationId": f"{name}_Get",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            }
        }
    export = tmp_path / "export.yaml"
    export.write_text(
        yaml.safe_dump({"swagger": "2.0", "basePath": "/v1", "paths": paths}), "utf-8"
    )
    matches, left = map_operations(CONTRACT, read_export(export))
    assert left == []
    got = {m.operation_id: m.exported.path for m in matches}
    assert got == {
        o: T.MOVED.get(o, op.path).replace("{id}", "{key}") for o, op in CONTRACT.operations.items()
    }
    from pivotkit.calibrate.definition import apply_matches
    from pivotkit.calibrate.draft import Draft

    draft = Draft(SCHEMAS)
    apply_matches(draft, matches)
    renamed = {m.operation_id: m.renamed for m in matches if m.renamed}
    assert renamed["getContent"] == {"id": "key"} and renamed["getPerson"] == {"id": "key"}
    draft.write(tmp_path / "schemas")
    calibrated = Contract.load(tmp_path / "schemas")  # links follow the renamed parameters
    assert [p.name for p in calibrated.operation("getContent").path_parameters] == ["key"]
    assert calibrated.operation("getPersonBiography").path == T.MOVED["getPersonBiography"]
