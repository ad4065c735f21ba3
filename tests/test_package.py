"""pivotkit as a user installs it (tools/package.py, `nox -s build`): the sdist and the wheel,
and the wheel in a fresh virtual environment of a consumer project that also has the pytest
plugins such projects often have (pytest-asyncio, pytest-randomly, pytest-xdist)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from tools import package

from .conftest import ROOT

pytestmark = pytest.mark.slow

#: Plugins common in consumer projects; each once broke or could break `pivotkit test`.
CONSUMER_PLUGINS = ("pytest-asyncio", "pytest-randomly", "pytest-xdist")
WORKFLOW = ROOT / "examples" / "github-workflow.yml"


def _consumer_env(**extra: str) -> dict[str, str]:
    """A consumer's environment: no PIVOT_ setting, no pytest options of ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIVOT_", "PYTEST_", "VIRTUAL_ENV", "COV_"))
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> package.Built:
    """The checkout built as `nox -s build` builds it."""
    return package.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(built: package.Built, tmp_path_factory: pytest.TempPathFactory) -> package.Installed:
    """The wheel (not editable) and the consumer plugins in a fresh venv, by its own pip."""
    where = tmp_path_factory.mktemp("consumer") / "venv"
    try:
        return package.fresh_venv(where, built.wheel, *CONSUMER_PLUGINS)
    except package.PackageError as exc:
        if "pip install" in str(exc) and os.environ.get("PIVOT_REQUIRE_PEERS") != "1":
            pytest.skip(f"cannot install from the package index: {exc}")
        raise


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory``: size and modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _pivotkit(
    installed: package.Installed, cwd: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.script("pivotkit")), *args],
        cwd=cwd,
        env=_consumer_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# -- the distributions ------------------------------------------------------------------------


def test_the_distributions_pass_twine_and_hold_the_contract_and_fixtures(
    built: package.Built,
) -> None:
    """`twine check --strict` passes; the wheel holds every file of schemas/ and fixtures/
    under pivotkit/_bundled/ (byte for byte) and of the three packages; so does the sdist."""
    package.twine_check(built)
    assert package.wheel_problems(built.wheel) == []
    assert package.sdist_problems(built.sdist) == []
    with zipfile.ZipFile(built.wheel) as archive:
        names = set(archive.namelist())
    assert "pivotkit/_bundled/schemas/openapi.yaml" in names
    assert "pivotkit/_bundled/fixtures/accounts.toml" in names
    assert "contract_tests/suite.ini" in names
    bundled = [n for n in names if n.startswith("pivotkit/_bundled/fixtures/")]
    assert len(bundled) == len([p for p in (ROOT / "fixtures").rglob("*") if p.is_file()])


def test_a_wheel_without_its_fixtures_is_caught(built: package.Built, tmp_path: Path) -> None:
    """The check fails on a wheel whose bundled fixtures are gone and whose contract differs
    from the checkout's: each file is named."""
    broken = tmp_path / built.wheel.name
    with zipfile.ZipFile(built.wheel) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            if info.filename.startswith("pivotkit/_bundled/fixtures/"):
                continue
            data = source.read(info)
            if info.filename == "pivotkit/_bundled/schemas/openapi.yaml":
                data += b"\n# edited\n"
            target.writestr(info, data)
    problems = package.wheel_problems(broken)
    assert any("pivotkit/_bundled/fixtures/accounts.toml is missing" in p for p in problems)
    assert any("pivotkit/_bundled/schemas/openapi.yaml differs" in p for p in problems)


# -- the wheel in a fresh venv ----------------------------------------------------------------


def test_the_installed_wheel_serves_the_public_path(
    installed: package.Installed, tmp_path: Path
) -> None:
    """`pivotkit serve` from the installed wheel answers the public path 200 with the demo
    key of its own bundled accounts file, from its bundled fixtures."""
    status, body = package.serve_check(installed, tmp_path)
    assert status == 200, body[:300]
    fixture_file = installed.package / "_bundled" / "fixtures" / "getContent" / "7488.json"
    fixture = json.loads(fixture_file.read_text(encoding="utf-8"))
    assert json.loads(body)["data"]["title"] == fixture["response"]["body"]["data"]["title"]
    log = next(tmp_path.glob("serve-*.log")).read_text(encoding="utf-8", errors="replace")
    assert str(installed.package / "_bundled" / "fixtures") in log


def test_record_from_the_wheel_never_writes_into_the_package(
    installed: package.Installed, tmp_path: Path
) -> None:
    """Without --out, `pivotkit record` writes into the project's ./fixtures, or refuses in
    one line (exit 2) where there is none; the installed package is never written, not even
    when --out or $PIVOT_FIXTURES point into it."""
    before = _snapshot(installed.package)
    record = ("record", "--op", "getContent", "--param", "id=7488")
    bundled = installed.package / "_bundled" / "fixtures"
    with package.serving(installed, tmp_path) as upstream:
        key = {"PIVOT_API_KEY": installed.key}
        bare = tmp_path / "bare"
        bare.mkdir()
        refused = _pivotkit(installed, bare, *record, "--upstream", upstream, **key)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.splitlines() == [
            f"Error: --out: no ./fixtures directory in {bare}: say where to write the recorded "
            "fixtures with --out DIR (record never writes into the installed package)"
        ]
        assert refused.stdout == ""
        assert list(bare.iterdir()) == []
        into_package = [
            _pivotkit(
                installed, bare, *record, "--upstream", upstream, "--out", str(bundled), **key
            ),
            _pivotkit(
                installed, bare, *record, "--upstream", upstream, PIVOT_FIXTURES=str(bundled), **key
            ),
        ]
        for result in into_package:
            assert result.returncode == 2, result.stderr
            assert "inside the installed pivotkit package" in result.stderr
            assert len(result.stderr.splitlines()) == 1
        project = tmp_path / "project"
        (project / "fixtures").mkdir(parents=True)
        recorded = _pivotkit(installed, project, *record, "--upstream", upstream, **key)
        assert recorded.returncode == 0, recorded.stderr
    written = project / "fixtures" / "getContent" / "7488.json"
    assert json.loads(written.read_text(encoding="utf-8"))["meta"]["source"] == "live"
    assert _snapshot(installed.package) == before


def _junit_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    return {k: int(root.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")}


def test_pivotkit_test_passes_beside_common_pytest_plugins(
    installed: package.Installed, tmp_path: Path
) -> None:
    """With pytest-asyncio, pytest-randomly and pytest-xdist installed, `pivotkit test`
    passes and writes both reports (pytest-asyncio's start-up warning is not ours, hence
    not an error); under xdist (`-- -n 2`) the reports count the same tests."""
    plain = _pivotkit(installed, tmp_path, "test")
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert "INTERNALERROR" not in plain.stdout + plain.stderr
    header = next(line for line in plain.stdout.splitlines() if line.startswith("plugins:"))
    for plugin in ("asyncio", "randomly", "xdist"):
        assert plugin in header
    junit, markdown = tmp_path / "reports" / "pivot-contract.xml", tmp_path / "reports"
    counts = _junit_counts(junit)
    assert counts["tests"] > 300 and counts["failures"] == counts["errors"] == 0
    summary = (markdown / "pivot-contract.md").read_text(encoding="utf-8")
    assert summary.startswith("### Pivot contract against `mock`: ✅ passed")
    assert f"{counts['tests']} passed" in summary

    (tmp_path / "reports").rename(tmp_path / "reports-plain")
    parallel = _pivotkit(installed, tmp_path, "test", "--", "-n", "2")
    assert parallel.returncode == 0, parallel.stdout[-3000:] + parallel.stderr[-3000:]
    assert "2 workers" in parallel.stdout
    assert _junit_counts(junit) == counts
    assert f"{counts['tests']} passed" in (markdown / "pivot-contract.md").read_text("utf-8")


# -- the example workflow installs pivotkit from its repository --------------------------------


def _workflow() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def test_the_example_workflow_installs_pivotkit_from_its_repository(tmp_path: Path) -> None:
    """pivotkit is not on PyPI: every install step of the example workflow installs the
    workflow's $PIVOTKIT, a direct reference to pivotkit's repository at a tag; the same
    reference to this checkout's repository builds a wheel with the bundled data."""
    from packaging.requirements import Requirement

    workflow = _workflow()
    spec = workflow["env"]["PIVOTKIT"]  # type: ignore[index]
    requirement = Requirement(spec)
    assert requirement.name == "pivotkit"
    assert requirement.url is not None and requirement.url.startswith("git+https://")
    repository, _, tag = requirement.url.removeprefix("git+").rpartition("@")
    assert tag.startswith("v") and repository.endswith("/pivotkit")
    installs = [
        shlex.split(step["run"])
        for job in workflow["jobs"].values()  # type: ignore[attr-defined]
        for step in job["steps"]
        if "pip install" in step.get("run", "")
    ]
    assert installs and all(words == ["pip", "install", "$PIVOTKIT"] for words in installs)

    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        pytest.skip("not a git checkout: nothing to install from")
    local = f"pivotkit @ git+file://localhost{ROOT}@{head.stdout.strip()}"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), local],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("pivotkit-*.whl")
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", "HEAD", "schemas", "fixtures"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert tracked and all(f"pivotkit/_bundled/{name}" in names for name in tracked)
