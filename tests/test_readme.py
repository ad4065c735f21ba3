"""The README is true: its snippets run, and CI runs its test command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pivotkit.client import demo_key

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _first_screen() -> tuple[str, str]:
    first = _blocks("sh")[0].splitlines()
    assert len(first) == 2, "the first screen holds two commands: serve, test"
    serve, test = (line.split("  #")[0].strip() for line in first)
    return serve, test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    """The first screen's two commands are dev.py's, with python3 (Debian has no `python`);
    .ci/run executes the test command as written, in a fresh virtual environment."""
    serve, test = _first_screen()
    assert (serve, test) == ("python3 dev.py serve", "python3 dev.py test")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci
    fresh = next(i for i, line in enumerate(ci) if 'PIVOTKIT_VENV="$(mktemp -d)/venv"' in line)
    assert "export PIVOTKIT_VENV" in ci[fresh + 1] and fresh < ci.index(test)


def _collected(*args: str) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"^(\d+)(?:/\d+)? tests? collected", result.stdout, flags=re.M)
    assert found, result.stdout[-2000:]
    return int(found.group(1))


def test_the_skipped_counts_the_readme_gives_are_true(tmp_path: Path) -> None:
    """The README says how many browser and peer-tool tests a machine without chromium (or
    node) skips; those are the counts, and without chromium the browser tests skip green."""
    browser = re.search(r"without it their (\d+) tests\s+are skipped", README)
    peers = re.search(r"as are the (\d+) tests of peer tools", README)
    assert browser and peers
    assert int(peers.group(1)) == _collected("-m", "peers")
    env = {k: v for k, v in os.environ.items() if k != "PIVOT_REQUIRE_BROWSER"}
    env["PIVOT_CHROMIUM"] = str(tmp_path / "no-chromium")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "browser", "-rs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert re.search(rf"^{browser.group(1)} skipped, \d+ deselected", run.stdout, flags=re.M)
    assert "apt-get install" in run.stdout


def test_plugin_snippet_runs_as_written(pytester: pytest.Pytester) -> None:
    """The unit-test example of the README passes in a fresh project using the plugin."""
    [snippet] = [b for b in _blocks("python") if "def test_title(pivot_respx)" in b]
    pytester.makepyfile(test_from_readme=snippet)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


TEST_SNIPPETS = [b for b in _blocks("python") if "def test_" in b and "test_title" not in b]


@pytest.mark.parametrize(
    "snippet", TEST_SNIPPETS, ids=[re.findall(r"def (test_\w+)", b)[0] for b in TEST_SNIPPETS]
)
def test_every_test_snippet_passes(pytester: pytest.Pytester, snippet: str) -> None:
    """Each test example (Prefer, the journal's assertions, sequences, timelines,
    pivot_responses) passes as written in a fresh project."""
    pytester.makepyfile(test_from_readme=snippet)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=snippet.count("\ndef test_"))


def test_there_is_a_snippet_per_capability() -> None:
    """Prefer, assert_called, sequence, timeline and pivot_responses each have their example."""
    joined = "\n".join(TEST_SNIPPETS)
    for word in ('"Prefer"', "assert_called", ".sequence(", ".timeline(", "pivot_responses"):
        assert word in joined, word


def test_the_scenarios_example_plays(tmp_path: Path) -> None:
    """The scenarios file of the README is valid, and the mock plays it: two 503s, then the
    fixture; a 429 with Retry-After 2, then the ordinary answers."""
    from mockserver import create_app
    from pivotkit.contract import load_contract
    from pivotkit.fixtures import FixtureSet
    from pivotkit.scenarios import load_scenarios, sequence_problems

    [example] = [b for b in _blocks("json") if '"sequences"' in b]
    path = tmp_path / "scenarios.json"
    path.write_text(example, "utf-8")
    scenarios = load_scenarios(path)
    fixtures = FixtureSet.load(ROOT / "fixtures")
    for sequence in scenarios.sequences:
        assert sequence_problems(sequence, load_contract(), fixtures) == []
    app = create_app({"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_SCENARIOS": str(path)})
    client = app.test_client()
    key = {"Ocp-Apim-Subscription-Key": demo_key("full").reveal()}
    assert [client.get("/v1/api/v1/contents/7488", headers=key).status_code for _ in range(3)] == [
        503,
        503,
        200,
    ]
    limited = client.get("/v1/api/v1/updates/20241105060000", headers=key)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert client.get("/v1/api/v1/updates/20241105060000", headers=key).status_code == 200


def test_the_remote_mock_snippet_runs(tmp_path: Path) -> None:
    """The RemoteMock example works against a mock on a real socket."""
    from pivotkit.harness import MockServer, make_app

    [snippet] = [b for b in _blocks("python") if "RemoteMock(URL, TOKEN)" in b]
    token = "readme-admin-token"
    app = make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_ADMIN_TOKEN": token})
    with MockServer(app) as server:
        exec(compile(snippet, "README.md", "exec"), {"URL": server.url, "TOKEN": token})
        assert server.timeline("canal-plus-evening").step == 1
        assert [s["name"] for s in server.sequences()] == ["getContent-id-7488"]


def test_validation_snippet_runs_as_written() -> None:
    """The validation example of the README runs on the documented body."""
    import json

    [snippet] = [b for b in _blocks("python") if "load_contract" in b]
    body = json.loads((ROOT / "fixtures" / "getContent" / "7488.json").read_text("utf-8"))
    namespace = {"body": body["response"]["body"]}
    exec(compile(snippet, "README.md", "exec"), namespace)  # the snippet as a user runs it
    assert namespace["contract"].validate("getContent", 200, namespace["body"]) == []


def test_respx_router_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The respx_router example of the README passes as written (its state in a temporary
    folder), and fails on leaving when its route is not called."""
    [snippet] = [b for b in _blocks("python") if "respx_router" in b]
    monkeypatch.setenv("PIVOT_STATE", str(tmp_path / "state.sqlite"))
    exec(compile(snippet, "README.md", "exec"), {})  # the snippet as a user runs it
    uncalled = "\n".join(
        line for line in snippet.splitlines() if not line.startswith("    assert httpx.get(")
    )
    with pytest.raises(AssertionError, match="not called"):
        exec(compile(uncalled, "README.md", "exec"), {})


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n#", start + len(title))
    return README[start : end if end > 0 else None]


def _commands(section: str) -> list[list[str]]:
    """The shell commands of a section's sh blocks, continuation lines joined, comments cut,
    environment variables expanded, as argv lists."""
    import os
    import shlex

    out = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line:
                out.append(shlex.split(os.path.expandvars(line)))
    return out


def _run(argv: list[str], cwd: object, env: dict[str, str], target: str | None = None) -> Any:
    import subprocess

    from .helpers import pivotkit_command

    words = [w for w in argv if not w.startswith("PIVOT_API_KEY=")]
    assert words[0] == "pivotkit", words
    args = words[1:]
    if target is not None and "--target" in args:
        args[args.index("--target") + 1] = target
    return subprocess.run(
        pivotkit_command(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_drift_history_snippets_run_as_written(tmp_path: Any, monkeypatch: Any) -> None:
    """The nightly-job commands of the README, against a loopback upstream standing in for
    live (the webhook variable set), in a fresh folder: each exits 0, the history lands in
    ./.pivotkit/, `drift history` lists the run."""
    import shutil

    from .conftest import FIXTURES
    from .drifting import DriftingUpstream
    from .helpers import clean_env

    key = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
    server = DriftingUpstream(FIXTURES, key=key)
    monkeypatch.setenv("SLACK_WEBHOOK", "http://127.0.0.1:9/hook")  # never called: no alert
    few = tmp_path / "fixtures"  # three requests instead of the corpus: the rate is 5/s
    for name in ("getContent/7488.json", "getPerson/1001.json", "listDays/all.json"):
        (few / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, few / name)
    env = clean_env(PIVOT_API_KEY=key, PIVOT_FIXTURES=str(few))
    try:
        commands = _commands(_section("### A nightly job: the history"))
        heads = [[w for w in c if not w.startswith("PIVOT_API_KEY=")][:3] for c in commands]
        assert heads == [["pivotkit", "drift", "--target"]] + [["pivotkit", "drift", "history"]] * 3
        results = [_run(c, tmp_path, env, target=server.url) for c in commands]
    finally:
        server.close()
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert (tmp_path / ".pivotkit" / "drift-history.sqlite").is_file()
    assert (tmp_path / "drift.html").is_file()
    assert results[1].stdout.splitlines()[1].split()[0] == "1"
    assert '"properties"' in results[3].stdout


def test_contract_diff_snippets_run_as_written(tmp_path: Any) -> None:
    """The `pivotkit diff` commands of the README, in a git repository holding schemas/ and
    an old copy: both run and find no change (exit 0); the JSON file is written."""
    import shutil
    import subprocess

    from .conftest import SCHEMAS
    from .helpers import clean_env

    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    shutil.copytree(SCHEMAS, tmp_path / "old-schemas")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "contract"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
    for command in _commands(_section("### What a new contract changes for consumers")):
        result = _run(command, tmp_path, clean_env())
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert json.loads((tmp_path / "contract-changes.json").read_text("utf-8"))["changes"] == []


def test_mock_config_snippet_runs_as_written(pytester: pytest.Pytester) -> None:
    """The README's pivot_mock_config override and pivot_contract calls pass in a fresh
    project using the plugin."""
    [snippet] = [b for b in _blocks("python") if "def pivot_mock_config" in b]
    pytester.makepyfile(test_from_readme=snippet)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def _table(heading: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after ``heading``."""
    table = README[README.index(heading) :].split("\n\n")[0]
    rows = re.findall(r"^\|(.*)\|$", table, flags=re.M)
    return [[c.strip() for c in row.split("|")] for row in rows[2:]]


def test_the_mock_config_keys_are_the_mocks_settings() -> None:
    """The README's table of pivot_mock_config keys is exactly the mock's settings, each with
    its own description."""
    from mockserver.config import FIELDS

    rows = _table("| key | what it sets |")
    assert rows == [[f"`PIVOT_{name}`", spec[2]] for name, spec in FIELDS.items()]


def test_the_pivot_contract_methods_are_documented() -> None:
    """The README's table of pivot_contract names every public method of Conformance with its
    parameters as they are, and its `contract` attribute."""
    import inspect

    from pivotkit.conformance import Conformance

    def shown(name: str) -> str:
        parameters = []
        star = False
        for p in list(inspect.signature(getattr(Conformance, name)).parameters.values())[1:]:
            if p.kind is p.KEYWORD_ONLY and not star:
                parameters.append("*")
                star = True
            default = "" if p.default is p.empty else f"={p.default!r}"
            parameters.append(p.name + default)
        return f"`{name}({', '.join(parameters)})`"

    methods = sorted(n for n, v in vars(Conformance).items() if callable(v) and n[0] != "_")
    documented = [row[0] for row in _table("| method | what it gives |")]
    assert sorted(documented) == sorted([*(shown(n) for n in methods), "`contract`"])
    assert hasattr(Conformance(), "contract")


def test_the_accounts_snippet_runs_as_written(tmp_path: Path) -> None:
    """Each `pivotkit accounts` line of the README runs as written (password on stdin) and
    the file it builds is one the mock loads."""
    import shlex

    from pivotkit.accounts import load_accounts

    [block] = [b for b in _blocks("sh") if "pivotkit accounts add" in b]
    script = Path(sys.executable).parent / "pivotkit"
    for line in block.splitlines():
        words = shlex.split(line.split("  #")[0])
        assert words[:2] == ["pivotkit", "accounts"]
        result = subprocess.run(
            [str(script), *words[1:]],
            cwd=tmp_path,
            input="partner-pass\n",
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    [partner] = load_accounts(tmp_path / "my-accounts.toml").accounts
    assert partner.name == "partner" and partner.operations == frozenset({"getContent"})


EXAMPLE_DEVIATIONS = ROOT / "examples" / "known-deviations.yaml"


def test_the_example_known_deviations_file_is_valid(tmp_path: Path) -> None:
    """examples/known-deviations.yaml loads; each entry names operations and kinds that exist
    and has not expired; `pivotkit drift` accepts it (exit 0 against the mock); the same
    entries as a bare list, without the `deviations:` key, are refused (exit 2)."""
    import datetime as dt
    import fnmatch

    import yaml

    from pivotkit.drift import load_deviations
    from pivotkit.drift.findings import KINDS

    from .helpers import CONTRACT, FULL, serve_process

    entries = load_deviations(EXAMPLE_DEVIATIONS)
    assert len(entries) == 3
    for entry in entries:
        assert fnmatch.filter(CONTRACT.operations, entry.operation)
        assert fnmatch.filter(KINDS, entry.kind)
        assert entry.expires > dt.date.today()
    command = [
        str(Path(sys.executable).parent / "pivotkit"),
        "drift",
        "--sample",
        "3",
        "--seed",
        "1",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOT_")}
    env["PIVOT_API_KEY"] = FULL
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(yaml.safe_load(EXAMPLE_DEVIATIONS.read_text())["deviations"]))
    with serve_process(tmp_path) as (url, _, _):
        for file, code in ((EXAMPLE_DEVIATIONS, 0), (bare, 2)):
            result = subprocess.run(
                [*command, "--target", url, "--known-deviations", str(file)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == code, result.stdout + result.stderr
    assert "bare.yaml" in result.stderr
