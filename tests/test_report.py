"""pivotkit.report: JUnit XML and Markdown of a run of pivot_check tests; the suite command."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pivotkit.errors import ConfigError
from pivotkit.report import LABEL_PROPERTY, SuiteReport, run_suite, suite_command, suite_dir

#: One test of each outcome, marked as the contract suite marks its checks.
CHECKS = """
import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("no target")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown failed")


@pytest.mark.pivot_check(operation="getContent", check="body")
@pytest.mark.parametrize("case", ["7488", "7520", "999"])
def test_body(case):
    assert case != "999", "getContent at /data: 999 is not an object"


@pytest.mark.pivot_check("listDays", "status")
def test_status():
    assert False, "listDays at /status: expected 200, got 500 | value 500"


@pytest.mark.pivot_check(operation="getPerson", check="setup")
def test_setup_error(broken_setup):
    pass


@pytest.mark.pivot_check(operation="getPerson", check="teardown")
def test_teardown_error(broken_teardown):
    pass


@pytest.mark.pivot_check(operation="getPerson", check="both")
def test_failure_then_teardown_error(broken_teardown):
    assert False, "getPerson at /data/id: 'x' is not of type 'integer'"


@pytest.mark.pivot_check(operation="listDays", check="skip")
def test_skipped():
    pytest.skip("PIVOT_API_KEY is not set")


@pytest.mark.pivot_check(operation="listDays", check="known")
@pytest.mark.xfail(reason="known gap: lang=xx", strict=False)
def test_xfailed():
    assert False


@pytest.mark.pivot_check(operation="listDays", check="notrun")
@pytest.mark.xfail(run=False, reason="hangs the target")
def test_xfailed_not_run():
    pass


@pytest.mark.pivot_check(operation="listDays", check="fixed")
@pytest.mark.xfail(reason="was a gap", strict=False)
def test_xpassed():
    pass


@pytest.mark.pivot_check(operation="listChannels")
def test_check_named_after_the_test():
    pass


def test_unmarked():
    pass
"""

PASSING = """
import pytest


@pytest.mark.pivot_check(operation="getContent", check="body")
def test_body():
    pass


def test_unmarked():
    pass
"""


def _run(pytester: pytest.Pytester, source: str, *args: str) -> tuple[pytest.RunResult, Path, Path]:
    """Run ``source`` with both reports asked for; (result, JUnit path, Markdown path)."""
    pytester.makepyfile(test_checks=source)
    junit, markdown = pytester.path / "out" / "report.xml", pytester.path / "out" / "report.md"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--pivot-junit={junit}", f"--pivot-markdown={markdown}", *args
    )
    return result, junit, markdown


def _cases(junit: Path) -> dict[str, ET.Element]:
    """``classname::name`` -> testcase element."""
    root = ET.parse(junit).getroot()
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def _message(junit: Path, name: str, tag: str) -> str | None:
    """The message of the ``tag`` element (failure, error, skipped) of one testcase."""
    element = _cases(junit)[name].find(tag)
    assert element is not None, f"{name} has no <{tag}>"
    return element.get("message")


def _kind(case: ET.Element) -> str:
    kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
    return kinds[0] if kinds else "passed"


@pytest.fixture
def every_outcome(pytester: pytest.Pytester, no_key: None) -> tuple[pytest.RunResult, Path, Path]:
    """The run of CHECKS: (result, JUnit path, Markdown path)."""
    return _run(pytester, CHECKS)


# -- JUnit XML -----------------------------------------------------------------------------------


def test_junit_has_a_suite_per_operation_and_a_case_per_check(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """One testsuite per operation (sorted), the target as a property, one testcase per
    check and case named ``check[case]``; a marker without check names it after the test;
    unmarked tests are left out."""
    result, junit, _ = every_outcome
    result.assert_outcomes(passed=5, failed=3, errors=3, skipped=1, xfailed=2, xpassed=1)
    root = ET.parse(junit).getroot()
    assert root.get("name") == "pivot contract (mock)"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "getContent",
        "getPerson",
        "listChannels",
        "listDays",
    ]
    for suite in suites:
        assert [(p.get("name"), p.get("value")) for p in suite.iter("property")] == [
            ("target", "mock")
        ]
    assert sorted(_cases(junit)) == [
        "pivot.getContent::body[7488]",
        "pivot.getContent::body[7520]",
        "pivot.getContent::body[999]",
        "pivot.getPerson::both",
        "pivot.getPerson::setup",
        "pivot.getPerson::teardown",
        "pivot.listChannels::test_check_named_after_the_test",
        "pivot.listDays::fixed",
        "pivot.listDays::known",
        "pivot.listDays::notrun",
        "pivot.listDays::skip",
        "pivot.listDays::status",
    ]
    assert "test_unmarked" not in junit.read_text(encoding="utf-8")


def test_junit_counts_and_marks_every_outcome(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """failed and xpassed are failures, setup and teardown errors are errors, skipped and
    xfailed (run or not) are skips; the totals add up per operation and for the run."""
    _, junit, _ = every_outcome
    kinds = {name: _kind(case) for name, case in _cases(junit).items()}
    assert kinds == {
        "pivot.getContent::body[7488]": "passed",
        "pivot.getContent::body[7520]": "passed",
        "pivot.getContent::body[999]": "failure",
        "pivot.getPerson::both": "failure",
        "pivot.getPerson::setup": "error",
        "pivot.getPerson::teardown": "error",
        "pivot.listChannels::test_check_named_after_the_test": "passed",
        "pivot.listDays::fixed": "failure",
        "pivot.listDays::known": "skipped",
        "pivot.listDays::notrun": "skipped",
        "pivot.listDays::skip": "skipped",
        "pivot.listDays::status": "failure",
    }
    root = ET.parse(junit).getroot()
    counts = ("tests", "failures", "errors", "skipped")
    assert [root.get(c) for c in counts] == ["12", "4", "2", "3"]
    by_suite = {s.get("name"): [s.get(c) for c in counts] for s in root.iter("testsuite")}
    assert by_suite == {
        "getContent": ["3", "1", "0", "0"],
        "getPerson": ["3", "1", "2", "0"],
        "listChannels": ["1", "0", "0", "0"],
        "listDays": ["5", "2", "0", "3"],
    }
    assert float(root.get("time") or "-1") >= 0


def test_junit_messages_are_the_crash_line_and_the_text_the_traceback(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """A failure's message is its assertion message, without "AssertionError: " or the
    "assert ..." explanation; the element's text is the whole report."""
    _, junit, _ = every_outcome
    failure = _cases(junit)["pivot.listDays::status"].find("failure")
    assert failure is not None
    assert failure.get("message") == "listDays at /status: expected 200, got 500 | value 500"
    assert "assert False" in (failure.text or "") and "def test_status" in (failure.text or "")


def test_errors_in_setup_and_teardown_are_errors_a_failure_stays_a_failure(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """A fixture failing in setup, or in teardown after a pass, is an error with the
    exception as message; a test that failed keeps its failure when teardown fails too."""
    _, junit, _ = every_outcome
    assert _message(junit, "pivot.getPerson::setup", "error") == "RuntimeError: no target"
    assert _message(junit, "pivot.getPerson::teardown", "error") == "RuntimeError: teardown failed"
    assert _message(junit, "pivot.getPerson::both", "failure") == (
        "getPerson at /data/id: 'x' is not of type 'integer'"
    )


def test_skip_and_xfail_reasons_are_the_messages(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """A skip says its reason, an xfail its marker's reason; an xpass is a failure saying
    the reason it was expected to fail for."""
    _, junit, _ = every_outcome
    assert _message(junit, "pivot.listDays::skip", "skipped") == (
        "Skipped: PIVOT_API_KEY is not set"
    )
    assert _message(junit, "pivot.listDays::known", "skipped") == "known gap: lang=xx"
    assert _message(junit, "pivot.listDays::fixed", "failure") == "was a gap"


def test_an_xfail_not_run_says_its_reason(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """An xfail that is not run is a skip whose message is its reason, like one that runs."""
    _, junit, _ = every_outcome
    message = _message(junit, "pivot.listDays::notrun", "skipped") or ""
    assert message.endswith("hangs the target") and "_pytest" not in message


XFAILS = """
import pytest


@pytest.fixture
def gone():
    pytest.xfail("no such channel in the fixtures")


@pytest.mark.pivot_check("getContent", "imperative")
def test_imperative():
    pytest.xfail("the API answers 500 here")


@pytest.mark.pivot_check("getContent", "in-setup")
def test_in_setup(gone):
    pass


@pytest.mark.pivot_check("getContent", "no-reason")
@pytest.mark.xfail
def test_no_reason():
    assert False, "getContent at /data/title: None is not of type 'string'"


@pytest.mark.pivot_check("getContent", "no-reason-not-run")
@pytest.mark.xfail(run=False)
def test_no_reason_not_run():
    pass


@pytest.mark.pivot_check("getContent", "strict")
@pytest.mark.xfail(reason="was a gap", strict=True)
def test_strict_xpass():
    pass
"""


def test_every_kind_of_xfail_says_why_never_pytest_s_exception(
    pytester: pytest.Pytester, no_key: None
) -> None:
    """pytest.xfail() in a test or a fixture says its reason; an xfail without a reason the
    failure's own message (or that it was not run); a strict xpass is a failure with
    pytest's XPASS(strict) line. No message is pytest's internal XFailed line."""
    result, junit, _ = _run(pytester, XFAILS)
    result.assert_outcomes(xfailed=4, failed=1)
    assert {
        name: _message(junit, name, tag)
        for name, tag in [
            ("pivot.getContent::imperative", "skipped"),
            ("pivot.getContent::in-setup", "skipped"),
            ("pivot.getContent::no-reason", "skipped"),
            ("pivot.getContent::no-reason-not-run", "skipped"),
            ("pivot.getContent::strict", "failure"),
        ]
    } == {
        "pivot.getContent::imperative": "the API answers 500 here",
        "pivot.getContent::in-setup": "no such channel in the fixtures",
        "pivot.getContent::no-reason": "getContent at /data/title: None is not of type 'string'",
        "pivot.getContent::no-reason-not-run": "[NOTRUN]",
        "pivot.getContent::strict": "[XPASS(strict)] was a gap",
    }
    assert "XFailed" not in junit.read_text(encoding="utf-8")


# -- Markdown ------------------------------------------------------------------------------------


def test_markdown_verdict_summary_and_table(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """A heading with the target and the verdict, the counts worst first, then an operation
    x check table whose cell shows the worst outcome (and how many of all), or "-"."""
    _, _, markdown = every_outcome
    lines = markdown.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "### Pivot contract against `mock`: ❌ failed"
    assert re.fullmatch(
        r"3 failed, 2 error, 1 xpassed, 3 passed, 2 xfailed, 1 skipped in \d+\.\d s", lines[2]
    )
    table = lines[4:10]
    assert table == [
        "| operation | body | both | fixed | known | notrun | setup | skip | status | teardown "
        "| test_check_named_after_the_test |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| `getContent` | ❌ 1/3 | - | - | - | - | - | - | - | - | - |",
        "| `getPerson` | - | ❌ 1 | - | - | - | 💥 1 | - | - | 💥 1 | - |",
        "| `listChannels` | - | - | - | - | - | - | - | - | - | ✅ 1 |",
        "| `listDays` | - | - | ❗ 1 | xfail 1 | xfail 1 | - | ⏭️ 1 | ❌ 1 | - | - |",
    ]


def test_markdown_lists_failures_and_skip_reasons(
    every_outcome: tuple[pytest.RunResult, Path, Path],
) -> None:
    """Failures, errors and xpasses one per line, sorted, "|" escaped for the table syntax;
    the skip reasons, deduplicated, in a details block."""
    _, _, markdown = every_outcome
    text = markdown.read_text(encoding="utf-8")
    failures = text.split("#### Failures\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert failures == [
        "- `getContent` body[999]: getContent at /data: 999 is not an object",
        "- `getPerson` both: getPerson at /data/id: 'x' is not of type 'integer'",
        "- `getPerson` setup: RuntimeError: no target",
        "- `getPerson` teardown: RuntimeError: teardown failed",
        "- `listDays` fixed: was a gap",
        "- `listDays` status: listDays at /status: expected 200, got 500 \\| value 500",
    ]
    assert text.endswith(
        "<details><summary>Skip reasons</summary>\n\n"
        "- Skipped: PIVOT_API_KEY is not set\n\n</details>\n"
    )


def test_a_passing_run_says_passed_with_no_failures_or_skips(
    pytester: pytest.Pytester, no_key: None
) -> None:
    """All checks passed: a green verdict, the table, no failure or skip section."""
    result, junit, markdown = _run(pytester, PASSING)
    result.assert_outcomes(passed=2)
    text = markdown.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[:2] == ["### Pivot contract against `mock`: ✅ passed", ""]
    assert re.fullmatch(r"1 passed in \d+\.\d s", lines[2])
    assert lines[3:] == ["", "| operation | body |", "|---|---|", "| `getContent` | ✅ 1 |"]
    assert "Failures" not in text and "Skip reasons" not in text
    assert [_kind(c) for c in _cases(junit).values()] == ["passed"]


def test_a_run_without_contract_tests_says_so(pytester: pytest.Pytester, no_key: None) -> None:
    """No pivot_check test: an empty report that says no contract test ran."""
    result, junit, markdown = _run(pytester, "def test_unmarked():\n    pass\n")
    result.assert_outcomes(passed=1)
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "0" and root.findall("testsuite") == []
    lines = markdown.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "### Pivot contract against `mock`: ✅ passed"
    assert re.fullmatch(r"no contract test ran in \d+\.\d s", lines[2])
    assert "| operation |" not in markdown.read_text("utf-8")


def test_the_target_names_the_report(pytester: pytest.Pytester, no_key: None) -> None:
    """A URL target is the report's label, in JUnit and Markdown."""
    url = "http://127.0.0.1:9"
    _, junit, markdown = _run(pytester, PASSING, f"--pivot-target={url}")
    assert ET.parse(junit).getroot().get("name") == f"pivot contract ({url})"
    assert markdown.read_text("utf-8").startswith(f"### Pivot contract against `{url}`: ")


def test_each_report_is_written_only_when_asked_for(
    pytester: pytest.Pytester, no_key: None
) -> None:
    """--pivot-junit alone writes no Markdown, --pivot-markdown alone no XML; without
    either the report plugin is not even registered."""
    pytester.makepyfile(test_checks=PASSING)
    junit, markdown = pytester.path / "only.xml", pytester.path / "only.md"
    pytester.runpytest("-p", "no:cacheprovider", f"--pivot-junit={junit}")
    assert junit.is_file() and not markdown.exists()
    junit.unlink()
    pytester.runpytest("-p", "no:cacheprovider", f"--pivot-markdown={markdown}")
    assert markdown.is_file() and not junit.exists()
    assert pytester.parseconfigure().pluginmanager.get_plugin("pivotkit-report") is None


def test_markdown_is_appended_to_the_github_step_summary(
    pytester: pytest.Pytester, no_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the Markdown path is $GITHUB_STEP_SUMMARY the summary is appended after what
    earlier steps wrote; any other path is replaced."""
    summary = pytester.path / "out" / "step-summary.md"
    summary.parent.mkdir()
    summary.write_text("## Lint\n\nclean\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_checks=PASSING)
    pytester.runpytest("-p", "no:cacheprovider", f"--pivot-markdown={summary}")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## Lint\n\nclean\n### Pivot contract against `mock`: ✅ passed\n")
    other = pytester.path / "out" / "other.md"
    other.write_text("stale\n", encoding="utf-8")
    pytester.runpytest("-p", "no:cacheprovider", f"--pivot-markdown={other}")
    assert other.read_text(encoding="utf-8").startswith("### Pivot contract against `mock`")
    assert summary.read_text(encoding="utf-8") == text


def test_reports_per_operation_and_check(
    pytester: pytest.Pytester, no_key: None, tmp_path: Path
) -> None:
    """--pivot-junit and --pivot-markdown write one case per operation and check, with the
    failure message, for tests marked pivot_check."""
    pytester.makepyfile("""
        import pytest

        @pytest.mark.pivot_check(operation="getContent", check="body")
        def test_ok():
            pass

        @pytest.mark.pivot_check(operation="listDays", check="status")
        def test_bad():
            assert False, "listDays at /status: expected 200, got 500 (value: 500)"

        def test_unmarked():
            pass
    """)
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    result = pytester.runpytest(f"--pivot-junit={junit}", f"--pivot-markdown={markdown}")
    result.assert_outcomes(passed=2, failed=1)
    xml = junit.read_text(encoding="utf-8")
    assert 'classname="pivot.getContent" name="body"' in xml
    assert 'classname="pivot.listDays" name="status"' in xml
    assert "expected 200, got 500" in xml
    assert "test_unmarked" not in xml
    md = markdown.read_text(encoding="utf-8")
    assert "| `listDays` |" in md and "❌ 1" in md
    assert "- `listDays` status: listDays at /status: expected 200, got 500" in md


def test_a_failure_that_held_the_key_keeps_its_message(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the key scrubbed out of a failure, the report's message is still the failure's
    own message, with *** for the key."""
    key = "0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("PIVOT_API_KEY", key)
    source = (
        "import os, pytest\n\n"
        "@pytest.mark.pivot_check(operation='getContent', check='key')\n"
        "def test_key():\n"
        "    assert False, 'sent ' + os.environ['PIVOT_API_KEY']\n"
    )
    _, junit, markdown = _run(pytester, source)
    assert _message(junit, "pivot.getContent::key", "failure") == "sent ***"
    assert "- `getContent` key: sent ***\n" in markdown.read_text(encoding="utf-8")


def test_the_report_scrubs_what_it_writes_itself(tmp_path: Path) -> None:
    """SuiteReport given the secrets scrubs every fragment of them from the target label,
    the case id and the messages it writes, even from a report nobody scrubbed before."""
    key = "0123456789abcdef0123456789abcdef"
    report = SuiteReport(
        f"https://pivot.test/?k={key}",
        junit=tmp_path / "r.xml",
        markdown=tmp_path / "r.md",
        secrets=[key],
    )
    report.add_report(
        pytest.TestReport(
            "t.py::test_x[k]",
            ("t.py", 1, "test_x"),
            {},
            "failed",
            f"E   sent {key[3:19]}",
            "call",
            user_properties=[(LABEL_PROPERTY, ("getContent", "key", key.upper()))],
        )
    )
    report.write_junit(tmp_path / "r.xml")
    report.write_markdown(tmp_path / "r.md")
    for written in (tmp_path / "r.xml", tmp_path / "r.md"):
        text = written.read_text(encoding="utf-8").lower()
        assert not any(key[i : i + 8] in text for i in range(len(key) - 7)), written.name
    assert "E   sent ***" in (tmp_path / "r.xml").read_text(encoding="utf-8")
    assert "key[***]: E sent ***" in (tmp_path / "r.md").read_text(encoding="utf-8")


# -- the suite command ---------------------------------------------------------------------------


def test_suite_dir_is_the_installed_contract_suite() -> None:
    """suite_dir is the contract_tests package, with its own pytest configuration."""
    where = suite_dir()
    assert where.name == "contract_tests" and (where / "suite.ini").is_file()


def test_suite_dir_says_when_the_suite_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without contract_tests importable: a ConfigError saying the suite is not installed."""
    monkeypatch.setitem(sys.modules, "contract_tests", None)  # blocks the import
    with pytest.raises(ConfigError, match="contract suite is not installed"):
        suite_dir()


def test_suite_command_runs_pytest_on_the_suite_with_its_own_configuration() -> None:
    """This interpreter's pytest on the suite, its suite.ini and root, and the target."""
    where = suite_dir()
    assert suite_command() == [
        sys.executable,
        "-m",
        "pytest",
        str(where),
        "-c",
        str(where / "suite.ini"),
        "--rootdir",
        str(where.parent),
        "--pivot-target=mock",
    ]


def test_suite_command_passes_every_option_then_the_extra_arguments(tmp_path: Path) -> None:
    """Budget, reports and hypothesis profile become the plugin's options, in that order,
    before the extra pytest arguments."""
    junit, markdown = tmp_path / "c.xml", tmp_path / "c.md"
    command = suite_command(
        "live", budget=50, junit=junit, markdown=markdown, profile="ci", extra=("-x", "-q")
    )
    assert command[8:] == [
        "--pivot-target=live",
        "--pivot-budget=50",
        f"--pivot-junit={junit}",
        f"--pivot-markdown={markdown}",
        "--hypothesis-profile=ci",
        "-x",
        "-q",
    ]
    assert "--hypothesis-profile" not in " ".join(suite_command(profile=""))


def test_run_suite_returns_the_exit_code_of_pytest(capfd: pytest.CaptureFixture[str]) -> None:
    """run_suite runs the suite command in a subprocess and gives back its exit code."""
    assert run_suite(extra=("--version",)) == 0
    assert run_suite(extra=("--no-such-option",)) == pytest.ExitCode.USAGE_ERROR
    assert "--no-such-option" in capfd.readouterr().err
