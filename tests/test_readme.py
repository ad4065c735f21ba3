"""The README is true: its snippets run, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

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
