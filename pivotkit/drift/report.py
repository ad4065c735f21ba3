"""The drift report: what a run found, and its renderings (JSON, Markdown, JUnit, webhook)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx

from pivotkit.accounts import Rights
from pivotkit.contract import Contract
from pivotkit.drift.analysis import DriftAnalysis
from pivotkit.drift.deviations import Deviation
from pivotkit.drift.findings import FORMAT, Finding
from pivotkit.drift.replay import Answer, RunResult
from pivotkit.errors import EXIT_FAILED, EXIT_OK
from pivotkit.locations import atomic_write_text

#: When a run alerts (webhook, exit 1): ``breaking`` an active breaking finding, ``new`` a
#: breaking finding the last run did not have (every finding is new without a history),
#: ``any`` any active finding.
ALERT_ON = ("breaking", "new", "any")


def alerts(findings: Iterable[Finding], alert_on: str = "breaking") -> bool:
    """Whether ``findings`` call for an alert under ``alert_on`` (see :data:`ALERT_ON`)."""
    if alert_on not in ALERT_ON:
        raise ValueError(f"alert_on must be one of {ALERT_ON}, not {alert_on!r}")
    found = [f for f in findings if f.kind != "deviation-expired" or alert_on == "any"]
    if alert_on == "any":
        return bool(found)
    breaking = [f for f in found if f.severity == "breaking"]
    if alert_on == "new":
        return any(f.status in ("", "new") for f in breaking)
    return bool(breaking)


@dataclass(frozen=True)
class RunPoint:
    """One run of a history, for the chart of findings over time."""

    run: int
    started: str
    counts: Mapping[str, int]


@dataclass
class DriftReport:
    """Everything a drift run found, and its renderings (JSON, Markdown, JUnit, text)."""

    target: str
    findings: list[Finding]
    suppressed: list[Finding]
    answers: Mapping[str, int]
    statuses: Mapping[str, Mapping[int, int]]
    operations: list[str]
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    planned: int = 0
    preexisting: int = 0
    stopped: str | None = None
    started: str = ""
    finished: str = ""
    resolved: list[Finding] = field(default_factory=list)
    run: int | None = None
    alert_on: str = "breaking"
    series: list[RunPoint] = field(default_factory=list)

    @property
    def alerted(self) -> bool:
        """Whether this run alerts (webhook, exit 1) under :attr:`alert_on`."""
        return alerts(self.findings, self.alert_on)

    def count(self, severity: str) -> int:
        """Active findings of one severity."""
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def exit_code(self) -> int:
        """1 when the run alerts (by default: a breaking finding), else 0 (3 for an
        unreachable target is the CLI's)."""
        return EXIT_FAILED if self.alerted else EXIT_OK

    def summary(self) -> dict[str, int]:
        """The counts of the report."""
        return {
            "breaking": self.count("breaking"),
            "warning": self.count("warning"),
            "info": self.count("info"),
            "suppressed": len(self.suppressed),
            "preexisting": self.preexisting,
            "answers": sum(self.answers.values()),
            "planned": self.planned,
            "calls": self.calls,
            "errors": len(self.errors),
            "new": sum(1 for f in self.findings if f.status == "new"),
            "ongoing": sum(1 for f in self.findings if f.status == "ongoing"),
            "resolved": len(self.resolved),
        }

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form, ``{"format": "pivotkit-drift/1", ...}``."""
        return {
            "format": FORMAT,
            "target": self.target,
            "run": self.run,
            "started": self.started,
            "finished": self.finished,
            "summary": self.summary(),
            "alertOn": self.alert_on,
            "alerted": self.alerted,
            "stopped": self.stopped,
            "operations": [
                {
                    "operation": op,
                    "answers": self.answers.get(op, 0),
                    "statuses": {str(s): n for s, n in sorted(self.statuses.get(op, {}).items())},
                    "breaking": sum(
                        1 for f in self.findings if f.operation == op and f.severity == "breaking"
                    ),
                }
                for op in self.operations
            ],
            "findings": [f.to_dict() for f in self.findings],
            "suppressed": [f.to_dict() for f in self.suppressed],
            "resolved": [f.to_dict() for f in self.resolved],
            "errors": list(self.errors),
        }

    def dumps(self) -> str:
        """The JSON text (2-space indent, final newline)."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"

    def text_summary(self) -> str:
        """One paragraph for chat (the webhook's ``text``)."""
        s = self.summary()
        if not s["answers"]:
            verdict = "no answer, nothing checked"
        elif s["breaking"]:
            verdict = "BREAKING drift"
        else:
            verdict = "drift without breaking change" if self.findings else "no drift"
        text = (
            f"pivotkit drift against {self.target}: {verdict}. {s['answers']} answers from "
            f"{len(self.operations)} operations: {s['breaking']} breaking, {s['warning']} "
            f"warning, {s['info']} info, {s['suppressed']} suppressed."
        )
        if self.run is not None:
            text += (
                f" Run {self.run}: {s['new']} new, {s['ongoing']} ongoing, "
                f"{s['resolved']} resolved."
            )
        top = [f for f in self.findings if f.severity == "breaking"][:3]
        if top:
            text += " " + "; ".join(f"{f.operation} {f.pointer or '/'} {f.kind}" for f in top)
            text += "."
        if self.stopped:
            text += f" Stopped early: {self.stopped}."
        return text

    def to_markdown(self) -> str:
        """A Markdown page for a CI step summary."""
        s = self.summary()
        lines = [
            f"## pivotkit drift: {self.target}",
            "",
            self.text_summary(),
            "",
            "| breaking | warning | info | suppressed | answers | calls |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {s['breaking']} | {s['warning']} | {s['info']} | {s['suppressed']} | "
            f"{s['answers']} | {s['calls']} |",
            "",
        ]
        if self.findings:
            lines += [
                "### Findings",
                "",
                "| severity | operation | pointer | kind | expected | observed | example "
                "| answers |" + (" life |" if self.run is not None else ""),
                "|---|---|---|---|---|---|---|---:|" + ("---|" if self.run is not None else ""),
            ]
            lines += [
                _md_row(f) + (f" {f.life()} |" if self.run is not None else "")
                for f in self.findings
            ]
            lines.append("")
        if self.resolved:
            lines += ["### Resolved since the last run", ""]
            lines += [f"- {f.operation} `{f.pointer or '/'}` {f.kind}" for f in self.resolved]
            lines.append("")
        if self.suppressed:
            lines += [
                "### Suppressed (known deviations)",
                "",
                "| operation | pointer | kind | reason | owner | until |",
                "|---|---|---|---|---|---|",
            ]
            for f in self.suppressed:
                d = f.suppressed_by
                assert d is not None
                lines.append(
                    f"| {f.operation} | `{f.pointer or '/'}` | {f.kind} | "
                    f"{_md(d.reason)} | {_md(d.owner)} | {d.expires.isoformat()} |"
                )
            lines.append("")
        if self.errors:
            lines += ["### Errors", ""] + [f"- {_md(e)}" for e in self.errors] + [""]
        return "\n".join(lines)

    def to_junit(self) -> str:
        """JUnit XML: one test case per operation, failed by its breaking findings."""
        suite = ElementTree.Element(
            "testsuite",
            {
                "name": "pivotkit-drift",
                "tests": str(len(self.operations)),
                "failures": str(sum(1 for op in self.operations if self._breaking(op))),
                "errors": "0",
                "skipped": str(sum(1 for op in self.operations if not self.answers.get(op))),
            },
        )
        for op in self.operations:
            case = ElementTree.SubElement(
                suite, "testcase", {"classname": "pivotkit.drift", "name": op}
            )
            breaking = self._breaking(op)
            others = [f for f in self.findings if f.operation == op and f.severity != "breaking"]
            if not self.answers.get(op):
                ElementTree.SubElement(case, "skipped", {"message": "no answer"})
            elif breaking:
                failure = ElementTree.SubElement(
                    case,
                    "failure",
                    {"message": f"{len(breaking)} breaking finding(s)", "type": "drift"},
                )
                failure.text = "\n".join(f.line() for f in breaking)
            if others:
                out = ElementTree.SubElement(case, "system-out")
                out.text = "\n".join(f.line() for f in others)
        ElementTree.indent(suite)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            + ElementTree.tostring(suite, encoding="unicode")
            + "\n"
        )

    def _breaking(self, op: str) -> list[Finding]:
        return [f for f in self.findings if f.operation == op and f.severity == "breaking"]

    def webhook_payload(self) -> dict[str, Any]:
        """The webhook's JSON: a Slack-style ``text`` plus the machine-readable summary."""
        return {
            "text": self.text_summary(),
            "format": FORMAT,
            "target": self.target,
            "summary": self.summary(),
            "run": self.run,
            "alertOn": self.alert_on,
            "findings": [f.to_dict() for f in self.findings[:50]],
            "resolved": [f.to_dict() for f in self.resolved[:50]],
        }


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_row(f: Finding) -> str:
    example = "" if f.example is None else json.dumps(f.example, ensure_ascii=False)
    if len(example) > 60:
        example = example[:57] + "..."
    shown = f"`{_md(example)}`" if example else ""
    return (
        f"| {f.severity} | {f.operation} | `{f.pointer or '/'}` | {f.kind} | "
        f"{_md(f.expected)} | {_md(f.observed)} | {shown} | {f.count}/{f.answers} |"
    )


def build_report(
    analysis: DriftAnalysis,
    *,
    target: str,
    deviations: Iterable[Deviation] = (),
    today: dt.date | None = None,
    run: RunResult | None = None,
    operations: Iterable[str] | None = None,
    started: str = "",
    alert_on: str = "breaking",
) -> DriftReport:
    """Turn an analysis (and the run that fed it) into a report."""
    active, suppressed = analysis.findings(deviations, today)
    ops = sorted(set(operations or ()) | set(analysis.answers))
    stopped = None
    if run is not None and run.quota is not None:
        stopped = str(run.quota)
    elif run is not None and run.budget_spent:
        stopped = f"call budget spent after {run.calls} calls"
    return DriftReport(
        target=target,
        findings=active,
        suppressed=suppressed,
        answers=dict(analysis.answers),
        statuses={k: dict(v) for k, v in analysis.statuses.items()},
        operations=ops,
        errors=list(run.errors) if run else [],
        calls=run.calls if run else 0,
        planned=run.planned if run else 0,
        preexisting=analysis.preexisting,
        stopped=stopped,
        started=started,
        finished=_now(),
        alert_on=alert_on,
    )


def analyze(
    contract: Contract,
    answers: Iterable[Answer],
    *,
    rights: Rights | None = None,
    deviations: Iterable[Deviation] = (),
    today: dt.date | None = None,
    target: str = "recorded",
) -> DriftReport:
    """The drift report of answers already at hand (no HTTP): the in-process entry point."""
    analysis = DriftAnalysis(contract, rights=rights)
    for answer in answers:
        analysis.add(answer)
    return build_report(analysis, target=target, deviations=deviations, today=today)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def post_webhook(
    url: str,
    report: DriftReport,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """POST the report's webhook payload as JSON; returns the receiver's status."""
    with httpx.Client(timeout=timeout, transport=transport) as client:
        response = client.post(url, json=report.webhook_payload())
    return response.status_code


def write_text(path: Path, text: str) -> None:
    """Write a report file atomically."""
    atomic_write_text(path, text)


def append_step_summary(path: Path, markdown: str) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY`` (the runner owns the file: appending is the API)."""
    with contextlib.suppress(OSError), path.open("a", encoding="utf-8") as handle:
        handle.write(markdown + "\n")
