"""Reports of the contract suite: JUnit XML (one case per operation and check) and Markdown."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pivotkit.locations import atomic_write_text

_ICONS = {
    "passed": "✅",
    "failed": "❌",
    "error": "💥",
    "skipped": "⏭️",
    "xfailed": "xfail",
    "xpassed": "❗",
}
_ORDER = ("failed", "error", "xpassed", "passed", "xfailed", "skipped")


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one test: which operation and check, the case id, how it went."""

    operation: str
    check: str
    case: str
    outcome: str
    duration: float
    message: str = ""
    nodeid: str = ""
    details: str = ""

    @property
    def name(self) -> str:
        """The JUnit test case name: ``check[case]``."""
        return f"{self.check}[{self.case}]" if self.case else self.check


def _message(text: str, limit: int = 2000) -> str:
    """The crash message without hypothesis' or pytest's trailing explanations."""
    kept: list[str] = []
    text = re.sub(r"^[\w.]*(AssertionError|ResponseMismatch): ", "", text.strip())
    for line in text.splitlines():
        if line.startswith(
            (
                "Failing test case",
                "Falsifying example",
                "Explanation:",
                "assert ",
                "You can reproduce",
            )
        ):
            break
        kept.append(line.rstrip())
    return "\n".join(kept)[:limit]


def _xfail_reason(report: pytest.TestReport) -> str:
    """An xfail's (or xpass's) message: its reason, as the marker or ``pytest.xfail`` gave it
    (with pytest's ``[NOTRUN]`` when the test was not run), else the failure's own message;
    never the line of pytest's internal ``XFailed`` exception."""
    reason = str(getattr(report, "wasxfail", "")).strip()
    if reason:
        return reason
    text = _message(_failure_text(report))
    internal = pytest.xfail.Exception
    return "" if text.startswith(f"{internal.__module__}.{internal.__qualname__}") else text


def _failure_text(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(getattr(crash, "message", crash))
    return str(longrepr or "")


#: The user property that carries a test's (operation, check, case) in its reports, so that
#: the reports are right when the tests ran elsewhere (pytest-xdist workers).
LABEL_PROPERTY = "pivot_check"


def check_label(item: pytest.Item) -> tuple[str, str, str] | None:
    """The (operation, check, case) of a test marked ``pivot_check``; None for another test."""
    mark = item.get_closest_marker("pivot_check")
    if mark is None:
        return None
    operation = mark.kwargs.get("operation", mark.args[0] if mark.args else "-")
    check = mark.kwargs.get("check", mark.args[1] if len(mark.args) > 1 else item.name)
    callspec = getattr(item, "callspec", None)
    return str(operation), str(check), str(getattr(callspec, "id", ""))


def _reported_label(report: pytest.TestReport) -> tuple[str, str, str] | None:
    for name, value in report.user_properties:
        if name == LABEL_PROPERTY and isinstance(value, (list, tuple)) and len(value) == 3:
            return str(value[0]), str(value[1]), str(value[2])
    return None


class SuiteReport:
    """Collects the suite's results (as a pytest plugin) and writes JUnit XML and Markdown."""

    def __init__(
        self,
        target: str,
        *,
        junit: Path | None = None,
        markdown: Path | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        from pivotkit.redact import log_redactor

        wanted = tuple(s for s in secrets if s)
        self._redactor = log_redactor(wanted) if wanted else None
        self.target = self._scrubbed(target)
        self.junit = junit
        self.markdown = markdown
        self.started = time.monotonic()
        self.finished: float | None = None
        self.results: dict[str, CaseResult] = {}
        self._durations: dict[str, float] = defaultdict(float)

    # -- pytest hooks (the instance is registered as a plugin) -----------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record the outcome of each test phase."""
        self.add_report(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the reports asked for."""
        self.finished = time.monotonic()
        if self.junit is not None:
            self.write_junit(self.junit)
        if self.markdown is not None:
            self.write_markdown(self.markdown)

    # -- collecting ------------------------------------------------------------------------

    def add_report(self, report: pytest.TestReport) -> None:
        """Fold one phase report (setup, call, teardown) into the test's result."""
        label = _reported_label(report)
        if label is None:
            return
        self._durations[report.nodeid] += report.duration
        xfail = hasattr(report, "wasxfail")
        outcome = ""
        if report.when == "call":
            outcome = ("xfailed" if report.skipped else "xpassed") if xfail else report.outcome
        elif report.failed:
            outcome = "error"
        elif report.skipped:
            outcome = "xfailed" if xfail else "skipped"
        if not outcome:
            return
        previous = self.results.get(report.nodeid)
        if previous is not None and previous.outcome in ("failed", "error"):
            return
        if xfail:
            message = _xfail_reason(report)
        else:
            message = "" if outcome == "passed" else _message(_failure_text(report))
        details = str(report.longrepr or "") if outcome in ("failed", "error", "xpassed") else ""
        operation, check, case = (self._scrubbed(text) for text in label)
        self.results[report.nodeid] = CaseResult(
            operation,
            check,
            case,
            outcome=outcome,
            duration=self._durations[report.nodeid],
            message=self._scrubbed(message),
            nodeid=report.nodeid,
            details=self._scrubbed(details),
        )

    def _scrubbed(self, text: str) -> str:
        """``text`` without any fragment of a secret (the plugin scrubs pytest's reports too:
        this guards what the report itself writes)."""
        return text if self._redactor is None else self._redactor.log_text(text)

    # -- summaries -------------------------------------------------------------------------

    @property
    def counts(self) -> Counter[str]:
        """Outcome -> number of tests."""
        return Counter(r.outcome for r in self.results.values())

    @property
    def elapsed(self) -> float:
        """Seconds from the start of collection to the end of the session."""
        return (self.finished or time.monotonic()) - self.started

    def to_junit(self) -> ET.ElementTree[Any]:
        """One ``testsuite`` per operation, one ``testcase`` per check and case."""
        root = ET.Element("testsuites", name=f"pivot contract ({self.target})")
        by_op: dict[str, list[CaseResult]] = defaultdict(list)
        for result in self.results.values():
            by_op[result.operation].append(result)
        totals: Counter[str] = Counter()
        for operation in sorted(by_op):
            cases = by_op[operation]
            counts = Counter(c.outcome for c in cases)
            suite = ET.SubElement(
                root,
                "testsuite",
                name=operation,
                tests=str(len(cases)),
                failures=str(counts["failed"] + counts["xpassed"]),
                errors=str(counts["error"]),
                skipped=str(counts["skipped"] + counts["xfailed"]),
                time=f"{sum(c.duration for c in cases):.3f}",
            )
            ET.SubElement(
                ET.SubElement(suite, "properties"), "property", name="target", value=self.target
            )
            for case in sorted(cases, key=lambda c: (c.check, c.case)):
                node = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"pivot.{operation}",
                    name=case.name,
                    time=f"{case.duration:.3f}",
                )
                if case.outcome in ("failed", "xpassed"):
                    ET.SubElement(node, "failure", message=case.message).text = (
                        case.details or case.message
                    )
                elif case.outcome == "error":
                    ET.SubElement(node, "error", message=case.message).text = (
                        case.details or case.message
                    )
                elif case.outcome in ("skipped", "xfailed"):
                    ET.SubElement(node, "skipped", message=case.message)
            totals.update(counts)
        root.set("tests", str(len(self.results)))
        root.set("failures", str(totals["failed"] + totals["xpassed"]))
        root.set("errors", str(totals["error"]))
        root.set("skipped", str(totals["skipped"] + totals["xfailed"]))
        root.set("time", f"{self.elapsed:.3f}")
        return ET.ElementTree(root)

    def _table(self) -> list[str]:
        """The operation x check table."""
        checks = sorted({r.check for r in self.results.values()})
        operations = sorted({r.operation for r in self.results.values()})
        cells: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for r in self.results.values():
            cells[r.operation, r.check][r.outcome] += 1
        if not operations:
            return []
        lines = ["| operation | " + " | ".join(checks) + " |", "|---|" + "---|" * len(checks)]
        for op in operations:
            row = [_cell(cells.get((op, check), Counter())) for check in checks]
            lines.append(f"| `{op}` | " + " | ".join(row) + " |")
        return lines

    def _failures(self) -> list[str]:
        failures = [r for r in self.results.values() if r.outcome in ("failed", "error", "xpassed")]
        if not failures:
            return []
        lines = ["", "#### Failures", ""]
        for r in sorted(failures, key=lambda r: (r.operation, r.check, r.case)):
            text = " ".join(r.message.split()).replace("|", "\\|")
            lines.append(f"- `{r.operation}` {r.name}: {text}")
        return lines

    def _skips(self) -> list[str]:
        skipped = sorted({r.message for r in self.results.values() if r.outcome == "skipped"})
        if not skipped:
            return []
        return [
            "",
            "<details><summary>Skip reasons</summary>",
            "",
            *(f"- {reason}" for reason in skipped),
            "",
            "</details>",
        ]

    def to_markdown(self) -> str:
        """A summary table (operation x check) for a CI step summary, then the failures."""
        counts = self.counts
        failed = counts["failed"] or counts["error"] or counts["xpassed"]
        verdict = "❌ failed" if failed else "✅ passed"
        summary = ", ".join(f"{counts[o]} {o}" for o in _ORDER if counts[o])
        lines = [
            f"### Pivot contract against `{self.target}`: {verdict}",
            "",
            f"{summary or 'no contract test ran'} in {self.elapsed:.1f} s",
            "",
            *self._table(),
            *self._failures(),
            *self._skips(),
        ]
        return "\n".join(lines) + "\n"

    def write_junit(self, path: Path) -> None:
        """Write the JUnit XML report (atomically)."""
        tree = self.to_junit()
        ET.indent(tree)
        text = ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True)
        atomic_write_text(path, text + "\n")

    def write_markdown(self, path: Path) -> None:
        """Write the Markdown summary; append it when ``path`` is ``$GITHUB_STEP_SUMMARY``
        (that file collects every step of a job)."""
        import os

        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and Path(summary).resolve() == path.resolve():
            with path.open("a", encoding="utf-8") as handle:
                handle.write(self.to_markdown())
        else:
            atomic_write_text(path, self.to_markdown())


def _cell(counter: Counter[str]) -> str:
    total = sum(counter.values())
    if not total:
        return "-"
    for outcome in _ORDER:
        if counter[outcome]:
            shown = counter[outcome]
            icon = _ICONS[outcome]
            return f"{icon} {shown}/{total}" if shown != total else f"{icon} {total}"
    return "-"


def suite_dir() -> Path:
    """Where the contract suite (the ``contract_tests`` package) is installed."""
    import importlib.util

    spec = importlib.util.find_spec("contract_tests")
    if spec is None or not spec.submodule_search_locations:
        from pivotkit.errors import ConfigError

        raise ConfigError("contract_tests", "the contract suite is not installed with pivotkit")
    return Path(next(iter(spec.submodule_search_locations)))


def suite_command(
    target: str = "mock",
    *,
    budget: int | None = None,
    junit: Path | None = None,
    markdown: Path | None = None,
    profile: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The pytest command line that runs the contract suite against ``target``.

    The suite brings its own pytest configuration (``contract_tests/suite.ini``), so the
    caller's project configuration does not change its verdict.
    """
    import sys

    where = suite_dir()
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(where),
        "-c",
        str(where / "suite.ini"),
        "--rootdir",
        str(where.parent),
        f"--pivot-target={target}",
    ]
    if budget is not None:
        command.append(f"--pivot-budget={budget}")
    if junit is not None:
        command.append(f"--pivot-junit={junit}")
    if markdown is not None:
        command.append(f"--pivot-markdown={markdown}")
    if profile:
        command.append(f"--hypothesis-profile={profile}")
    return [*command, *extra]


def run_suite(target: str = "mock", **options: Any) -> int:
    """Run the contract suite in a subprocess (see :func:`suite_command`); its exit code."""
    import subprocess

    return subprocess.call(suite_command(target, **options))


__all__ = [
    "run_suite",
]
