"""The contract suite itself: same verdict on every copy of the mock, precise failures elsewhere."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
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


def _workflow_commands() -> list[tuple[dict[str, str], list[str]]]:
    """Each `pivotkit test` step of the example workflow: its job's environment (a secret
    stands for itself) and its words."""
    import shlex

    import yaml

    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    return [
        (
            {k: _secret_stand_in(v) for k, v in job.get("env", {}).items()},
            shlex.split(step["run"]),
        )
        for job in jobs.values()
        for step in job["steps"]
        if step.get("run", "").startswith("pivotkit test")
    ]


def _secret_stand_in(value: str) -> str:
    """A workflow value, with `${{ secrets.X }}` replaced by a key-shaped stand-in."""
    return re.sub(r"\$\{\{\s*secrets\.\w+\s*\}\}", "0" * 32, value)


def test_workflow_commands_are_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every `pivotkit test` line of the example workflow parses, with its job's environment,
    and becomes the pytest command this suite is tested with (target, budget, profile,
    reports); the live one without its secret is refused (exit 2), not skipped."""
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
    monkeypatch.delenv("PIVOT_API_KEY", raising=False)
    commands = _workflow_commands()
    assert len(commands) == 2
    for env, words in commands:
        args = [
            str(tmp_path / "summary.md") if w == "$GITHUB_STEP_SUMMARY" else w for w in words[1:]
        ]
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
        if "PIVOT_API_KEY" in env:
            refused = CliRunner().invoke(main, args)
            assert refused.exit_code == 2 and "PIVOT_API_KEY is not set" in refused.output
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


def _pivotkit_test(
    cwd: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`pivotkit test ARGS` in a subprocess, with or without PIVOT_API_KEY."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOT_")}
    if key is not None:
        env["PIVOT_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-c", "from pivotkit.cli import main; main()", "test", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("target", ["live", "https://staging.example.org", "http://127.0.0.1:9"])
def test_pivotkit_test_refuses_a_keyed_target_without_the_key(tmp_path: Path, target: str) -> None:
    """A live or URL target with PIVOT_API_KEY unset or blank: one line naming the variable,
    exit 2, nothing run, no report (a CI job whose secret is missing goes red)."""
    for key in (None, "", "   "):
        result = _pivotkit_test(tmp_path, "--target", target, key=key)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith("Error: PIVOT_API_KEY is not set: --target ")
        assert "--allow-no-key" in line
        assert not (tmp_path / "reports").exists()


def test_pivotkit_test_allow_no_key_skips_with_the_reason(tmp_path: Path) -> None:
    """--allow-no-key: the run goes on, every test needing the live target is skipped with
    the reason, the reports say so, exit 0; the mock targets never need a key."""
    result = _pivotkit_test(
        tmp_path, "--target", "live", "--allow-no-key", "--", "-k", "getContent"
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "warning: PIVOT_API_KEY is not set" in result.stderr
    outcomes = _outcomes(tmp_path / "reports" / "pivot-contract.xml")
    assert outcomes and set(outcomes.values()) == {"skipped"}
    assert "PIVOT_API_KEY is not set" in (tmp_path / "reports" / "pivot-contract.md").read_text()
    mock = _pivotkit_test(tmp_path, "--target", "mock-server", "--", "-q", "-k", "getContent-7488")
    assert mock.returncode == 0, mock.stdout[-2000:]


def test_only_pivotkits_own_warnings_are_errors_in_the_suite(pytester: pytest.Pytester) -> None:
    """Under the suite's configuration (suite.ini) a warning attributed to pivotkit, its mock
    or the suite fails the test; another package's warning (a plugin's deprecation) is only
    shown."""
    pytester.makepyfile(
        test_warnings="""
        import warnings

        import pytest

        OURS = ["pivotkit.contract", "mockserver", "contract_tests.cases"]

        @pytest.mark.parametrize("module", OURS)
        def test_ours(module):
            warnings.warn_explicit("ours", DeprecationWarning, "x.py", 1, module=module)

        @pytest.mark.parametrize("module", ["pytest_asyncio.plugin", "pivotkitten", "hypothesis"])
        def test_theirs(module):
            warnings.warn_explicit("theirs", DeprecationWarning, "x.py", 1, module=module)
        """
    )
    result = pytester.runpytest_subprocess(
        "-c", str(SUITE / "suite.ini"), "--rootdir", str(pytester.path), "-p", "no:pivotkit"
    )
    result.assert_outcomes(passed=3, failed=3, warnings=3)
    failed = set(re.findall(r"^FAILED \S+::(test_\w+\[[^\]]+\])", result.stdout.str(), flags=re.M))
    assert failed == {
        "test_ours[pivotkit.contract]",
        "test_ours[mockserver]",
        "test_ours[contract_tests.cases]",
    }
