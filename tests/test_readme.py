"""The README is true: its snippets run, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pivotkit.client import demo_key

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
