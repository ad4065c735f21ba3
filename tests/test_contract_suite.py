"""The contract suite itself: same verdict on every copy of the mock, precise failures elsewhere."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pivotkit.client import demo_key
from pivotkit.harness import make_app
from pivotkit.report import suite_dir
from tests.helpers import (
    CONTRACT,
    KEY_HEADER,
    path_of,
    pivotkit_command,
    serve_process,
    thread_server,
)

SUITE = suite_dir()
KEY = demo_key("full").reveal()
PERSON = CONTRACT.operation("getPerson")
KEY_ENVIRON = "HTTP_" + KEY_HEADER.upper().replace("-", "_")  # the key header in a WSGI environ
StartResponse = Callable[..., Any]
RunSuite = Callable[..., pytest.RunResult]


@pytest.fixture
def run_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunSuite:
    """Run the suite in a subprocess (its own configuration), as `pivotkit test` runs it,
    with ``key`` as PIVOT_API_KEY (None: unset)."""

    def run(*args: str, key: str | None = KEY) -> pytest.RunResult:
        if key is None:
            monkeypatch.delenv("PIVOT_API_KEY", raising=False)
        else:
            monkeypatch.setenv("PIVOT_API_KEY", key)
        return pytester.runpytest_subprocess(
            str(SUITE),
            "-c",
            str(SUITE / "suite.ini"),
            "--rootdir",
            str(SUITE.parent),
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=1",
            *args,
        )

    return run


def _outcomes(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return out


@pytest.fixture
def served_mock(tmp_path: Path) -> Iterator[str]:
    """A second copy of the mock: `pivotkit serve --port N` in a subprocess."""
    with serve_process(tmp_path) as (url, _, _):
        yield url


def test_same_results_in_process_and_as_url_target(
    run_suite: RunSuite, served_mock: str, tmp_path: Path
) -> None:
    """The suite gives the same outcome for every operation and check against the in-process
    mock and against `pivotkit serve` used as a URL target (property tests left to the
    slow test below)."""
    first, second = tmp_path / "mock.xml", tmp_path / "url.xml"
    in_process = run_suite("-k", "not properties", f"--pivot-junit={first}")
    as_url = run_suite(
        "-k", "not properties", f"--pivot-target={served_mock}", f"--pivot-junit={second}"
    )
    assert in_process.ret == 0, in_process.stdout.str()[-3000:]
    assert as_url.ret == 0, as_url.stdout.str()[-3000:]
    mock, url = _outcomes(first), _outcomes(second)
    assert len(mock) > 150
    assert set(mock.values()) == {"passed"}
    assert mock == url


@pytest.mark.slow
def test_full_suite_same_results_with_properties(
    run_suite: RunSuite, served_mock: str, tmp_path: Path
) -> None:
    """The whole suite, property tests included (same seed), passes on both copies."""
    first, second = tmp_path / "mock.xml", tmp_path / "url.xml"
    in_process = run_suite(f"--pivot-junit={first}")
    as_url = run_suite(f"--pivot-target={served_mock}", f"--pivot-junit={second}")
    assert in_process.ret == 0, in_process.stdout.str()[-3000:]
    assert as_url.ret == 0, as_url.stdout.str()[-3000:]
    assert _outcomes(first) == _outcomes(second)


# -- a deliberately broken target ---------------------------------------------------------


def _broken(app: Any) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The mock, except: getContent 7488's title is a number, listChannels lost a provider
    header, getPerson answers 500 (and echoes the key it received)."""

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if PERSON.match(path) is not None:
            body = json.dumps(
                {
                    "Message": "An error has occurred.",
                    "Key": environ.get(KEY_ENVIRON, ""),
                }
            )
            start_response(
                "500 Internal Server Error", [("content-type", "application/json; charset=utf-8")]
            )
            return [body.encode()]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        raw = b"".join(app(environ, capture))
        status, headers = captured["status"], list(captured["headers"])
        names = {name.lower(): value for name, value in headers}
        if path == path_of("getContent", id=7488) and status.startswith("200"):
            zipped = names.get("content-encoding") == "gzip"
            body = json.loads(gzip.decompress(raw) if zipped else raw)
            body["data"]["title"] = 123
            raw = json.dumps(body).encode()
            raw = gzip.compress(raw) if zipped else raw
            headers = [
                (n, str(len(raw)) if n.lower() == "content-length" else v) for n, v in headers
            ]
        if path == path_of("listChannels"):
            headers = [(n, v) for n, v in headers if n.lower() != "x-powered-by"]
        start_response(status, headers)
        return [raw]

    return wsgi


@pytest.fixture
def broken_target(tmp_path: Path) -> Iterator[str]:
    """The broken mock on a free loopback port (a thread of this process)."""
    app = make_app({"PIVOT_STATE": str(tmp_path / "state.sqlite3")})
    with thread_server(_broken(app)) as url:
        yield url


def test_broken_target_fails_the_right_checks(
    run_suite: RunSuite, broken_target: str, tmp_path: Path
) -> None:
    """Against a target with a field of the wrong type, a missing header and a 500, exactly
    the checks that see them fail, and each message names operation, pointer and value;
    the key the target echoes never reaches the output or the reports."""
    junit, markdown = tmp_path / "broken.xml", tmp_path / "broken.md"
    result = run_suite(
        f"--pivot-target={broken_target}",
        "-k",
        "(getContent or listChannels or getPerson) and not properties",
        f"--pivot-junit={junit}",
        f"--pivot-markdown={markdown}",
        "-rf",
    )
    out = result.stdout.str()
    assert result.ret == 1
    failed = {
        name.split("contract_tests/", 1)[-1]
        for name in re.findall(r"^FAILED (\S+)", out, flags=re.M)
    }
    assert "test_responses.py::test_body_fits_contract[getContent-7488]" in failed
    assert "test_responses.py::test_provider_headers[listChannels-fr]" in failed
    assert "test_responses.py::test_status_and_content_type[getPerson-1001]" in failed
    # Exactly what was broken fails: other getContent cases and the headers of others pass.
    assert "test_responses.py::test_body_fits_contract[getContent-7520]" not in failed
    assert not any("test_provider_headers[getContent" in name for name in failed)
    assert "getContent at /data/title: 123 is not of type 'string' (value: 123)" in out
    assert "listChannels at /headers/x-powered-by: header missing" in out
    assert re.search(r"getPerson at /status: expected 200, got 500", out)
    assert KEY not in out
    assert "***" in out
    for report in (junit, markdown):
        text = report.read_text(encoding="utf-8")
        assert KEY not in text
        assert "/data/title" in text


def test_live_without_key_skips_everything_with_a_reason(run_suite: RunSuite) -> None:
    """With --pivot-target=live and no PIVOT_API_KEY nothing is sent: every test that needs
    the target is skipped and says why; none fails, none passes silently."""
    result = run_suite("--pivot-target=live", "-k", "getContent", key=None)
    outcomes = result.parseoutcomes()
    assert result.ret == 0
    assert outcomes.get("skipped", 0) > 10
    assert outcomes.get("failed", 0) == 0
    assert outcomes.get("passed", 0) == 0
    assert "PIVOT_API_KEY is not set" in result.stdout.str()


# -- `pivotkit test` and the example workflow ---------------------------------------------

WORKFLOW = Path(__file__).resolve().parent.parent / "examples" / "github-workflow.yml"


def _workflow_commands() -> list[list[str]]:
    import shlex

    import yaml

    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    runs = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    return [shlex.split(run) for run in runs if run.startswith("pivotkit test")]


def test_workflow_commands_are_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every `pivotkit test` line of the example workflow parses, and becomes the pytest
    command this suite is tested with (target, budget, profile, reports)."""
    from click.testing import CliRunner

    from pivotkit import report
    from pivotkit.cli import main

    seen: list[list[str]] = []
    monkeypatch.setattr(
        report,
        "run_suite",
        lambda target, **kw: seen.append(report.suite_command(target, **kw)) or 0,
    )
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    commands = _workflow_commands()
    assert len(commands) == 2
    for words in commands:
        args = [
            str(tmp_path / "summary.md") if w == "$GITHUB_STEP_SUMMARY" else w for w in words[1:]
        ]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    mock, live = seen
    assert "--pivot-target=mock" in mock and "--hypothesis-profile=ci" in mock
    assert "--pivot-target=live" in live and "--pivot-budget=50" in live
    assert f"--pivot-markdown={tmp_path / 'summary.md'}" in live


def test_pivotkit_test_runs_the_suite_and_writes_reports(tmp_path: Path) -> None:
    """`pivotkit test --target mock` runs the suite (here a slice of it) and writes the JUnit
    XML and the Markdown summary; its exit code is pytest's."""
    junit, markdown = tmp_path / "out" / "c.xml", tmp_path / "out" / "c.md"
    code = subprocess.call(
        pivotkit_command(
            "test",
            "--junit",
            str(junit),
            "--markdown",
            str(markdown),
            "--",
            "-q",
            "-k",
            "gateway",
        ),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert code == 0
    assert set(_outcomes(junit).values()) == {"passed"}
    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("### Pivot contract against `mock`: ✅ passed")
    assert "| `getContent` |" in text


def test_pivotkit_test_rejects_a_bad_target() -> None:
    """A target that is not mock, live or a URL is a usage error before pytest starts."""
    from click.testing import CliRunner

    from pivotkit.cli import main

    result = CliRunner().invoke(main, ["test", "--target", "staging"])
    assert result.exit_code == 2
    assert "--target" in result.output
