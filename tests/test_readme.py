"""The README is true: its snippets run, and CI runs its test command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    """The first screen's test command is the one .ci/run executes."""
    first = _blocks("sh")[0].splitlines()
    assert len(first) == 2, "the first screen holds two commands: serve, test"
    serve, test = (line.split("  #")[0].strip() for line in first)
    assert serve.endswith("pivotkit serve")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci


def test_plugin_snippet_runs_as_written(pytester: pytest.Pytester) -> None:
    """The unit-test example of the README passes in a fresh project using the plugin."""
    [snippet] = [b for b in _blocks("python") if "pivot_respx" in b]
    pytester.makepyfile(test_from_readme=snippet)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


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
