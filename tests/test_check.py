"""Tests of `pivotkit check` (pivotkit.check and the CLI command)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pivotkit.check import check_directory
from pivotkit.cli import main
from pivotkit.contract import load_contract

from .conftest import FIXTURES


def _corpus_copy(tmp_path: Path) -> Path:
    target = tmp_path / "fixtures"
    (target / "getContent").mkdir(parents=True)
    shutil.copy(FIXTURES / "getContent" / "7488.json", target / "getContent" / "7488.json")
    return target


def test_bundled_fixtures_all_pass() -> None:
    """Every bundled fixture validates (format, path, status and body)."""
    results = check_directory(load_contract(), FIXTURES)
    assert results, "no fixtures found"
    assert [line for r in results if not r.ok for line in r.lines()] == []


def test_cli_reports_each_file_and_exits_1_on_failure(tmp_path: Path) -> None:
    """A bad body is reported as file, pointer and message, and the exit code is 1."""
    root = _corpus_copy(tmp_path)
    bad = json.loads((root / "getContent" / "7488.json").read_text())
    bad["response"]["body"]["data"]["productionYear"] = "1982"
    (root / "getContent" / "bad.json").write_text(json.dumps(bad))
    result = CliRunner().invoke(main, ["check", "--fixtures", str(root)])
    assert result.exit_code == 1
    assert (
        f"FAIL  {root / 'getContent' / 'bad.json'} /data/productionYear: '1982' is not of "
        "type 'integer'" in result.output
    )
    assert f"ok    {root / 'getContent' / '7488.json'}" in result.output
    assert "1 passed, 1 failed (2 fixtures)" in result.output


def test_cli_reports_unreadable_file_with_line(tmp_path: Path) -> None:
    """Invalid JSON in a fixture gives file and line, not a traceback."""
    root = _corpus_copy(tmp_path)
    (root / "getContent" / "broken.json").write_text('{"request":\n  nope}\n')
    result = CliRunner().invoke(main, ["check", "--fixtures", str(root)])
    assert result.exit_code == 1
    assert "broken.json: line 2: invalid JSON" in result.output
    assert "Traceback" not in result.output


def test_cli_flags_path_and_status_mismatches(tmp_path: Path) -> None:
    """A fixture filed under the wrong operation, or with an undeclared status, fails."""
    root = _corpus_copy(tmp_path)
    data = json.loads((root / "getContent" / "7488.json").read_text())
    data["request"]["path"] = "/v1/api/v1/persons/7488"
    data["response"]["status"] = 418
    (root / "getContent" / "wrong.json").write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["check", "--fixtures", str(root), "-q"])
    assert result.exit_code == 1
    assert (
        "/request/path: '/v1/api/v1/persons/7488' does not fit /v1/api/v1/contents/{id}"
        in result.output
    )
    assert "/response/status: 418 is not declared" in result.output
    assert "ok    " not in result.output


def test_broken_schema_is_a_clean_cli_error(tmp_path: Path, schemas_copy: Path) -> None:
    """A broken contract file makes check exit 2 (configuration) with the file and line."""
    (schemas_copy / "award.json").write_text('{\n  "$id": ,\n}')
    result = CliRunner().invoke(main, ["check", "--schemas", str(schemas_copy)])
    assert result.exit_code == 2
    assert f"Error: {schemas_copy / 'award.json'}:2:" in result.output


def test_check_runs_as_a_real_command(tmp_path: Path) -> None:
    """The installed console script exits 0 on the bundled corpus and 1 on an empty dir."""
    exe = Path(sys.executable).with_name("pivotkit")
    ok = subprocess.run([str(exe), "check", "-q"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert " 0 failed" in ok.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = subprocess.run(
        [str(exe), "check", "--fixtures", str(empty)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and "no fixture files" in bad.stderr


def test_duplicates_and_refused_kinds_are_listed(tmp_path: Path) -> None:
    """Every kind the mock refuses at start is a FAIL line here, the duplicate included
    (naming the file served instead)."""
    from tests.helpers import broken_fixtures

    root = _corpus_copy(tmp_path)
    made = broken_fixtures(root)
    results = {r.path: r for r in check_directory(load_contract(), root)}
    assert results[root / "getContent" / "7488.json"].ok
    assert {k: results[p].kind for k, p in made.items()} == {
        "truncated": "invalid file",
        "deep": "invalid file",
        "crlf": "invalid file",
        "breaks": "body breaks the contract",
        "duplicate": "duplicate",
    }
    assert "7488.json, which is served instead" in results[made["duplicate"]].problems[0]
