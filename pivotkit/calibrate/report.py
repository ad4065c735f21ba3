"""The calibration report: ``CALIBRATION.md`` for the reviewer and ``calibration.json``, its
twin for tools. Everything in it is redacted (examples go through ``example_of``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pivotkit.calibrate.crawl import CrawlResult, OperationLog
from pivotkit.calibrate.definition import Exported, Match
from pivotkit.calibrate.revision import Change

WHAT_TO_DO_WRONG = (
    "download the API's definition from the developer portal (APIs, the API, the export "
    "button: OpenAPI) and run again with --apim-export FILE, or correct the path in "
    "schemas/openapi.yaml"
)


@dataclass
class OperationReport:
    """One operation's line of the report."""

    operation_id: str
    path: str
    source: str  # confirmed, provider-export, wrong, refused, not-reached...
    answers: int = 0
    empties: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    previous_path: str = ""

    @property
    def reached(self) -> bool:
        return self.source in ("confirmed", "provider-export")

    @property
    def calibrated(self) -> bool:
        """Reached, and at least one answer had data (its schema was calibrated)."""
        return self.reached and self.answers > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "operationId": self.operation_id,
            "path": self.path,
            "previousPath": self.previous_path or None,
            "result": self.source,
            "answers": self.answers,
            "emptyResults": self.empties,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "notes": self.notes,
        }


def operation_report(log: OperationLog, path: str, match: Match | None) -> OperationReport:
    """The report line of one operation from what the crawl learnt."""
    source = {
        "confirmed": "confirmed",
        "wrong": "path wrong",
        "refused": "refused (401)",
        "failing": "failing (see notes)",
        "untried": "not reached",
    }[log.path]
    if match is not None and match.path_changed and log.path == "confirmed":
        source = "provider-export"
    notes = list(log.notes)
    if log.path == "wrong":
        notes.insert(0, f"the gateway answers its 404 at {path}: {WHAT_TO_DO_WRONG}")
    if log.path == "untried":
        notes.insert(0, "not reached within the budget (raise --budget)")
    elif log.path == "confirmed" and not log.answers:
        notes.append(
            "reached, but every answer was the empty result: no data to calibrate "
            "its schema (no link gave it a real id)"
        )
    return OperationReport(
        log.operation_id,
        path,
        source,
        log.answers,
        log.empties,
        dict(log.statuses),
        notes,
        match.old_path if match is not None and match.path_changed else "",
    )


@dataclass
class Calibration:
    """Everything a calibration run did and decided."""

    upstream: str
    started: str
    seconds: float
    calls: int
    budget: int | None
    crawl: CrawlResult
    operations: list[OperationReport]
    changes: list[Change]
    notes: list[Change]
    matches: list[Match] = field(default_factory=list)
    unmatched_export: list[Exported] = field(default_factory=list)
    har: list[str] = field(default_factory=list)
    har_paths: list[str] = field(default_factory=list)
    residual: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    export_used: bool = False

    @property
    def unreached(self) -> list[OperationReport]:
        """The operations not calibrated: not reached, or reached without data."""
        return [o for o in self.operations if not o.calibrated]

    @property
    def exit_code(self) -> int:
        """0 every operation reached and calibrated; 1 some not (or residual violations);
        3 the upstream unreachable or out of quota."""
        if self.crawl.quota or (
            self.crawl.unreachable and not any(o.reached for o in self.operations)
        ):
            return 3
        return 1 if self.unreached or self.residual else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "started": self.started,
            "seconds": round(self.seconds, 2),
            "calls": self.calls,
            "budget": self.budget,
            "stopped": self.crawl.stopped or None,
            "exitCode": self.exit_code,
            "operations": [o.to_dict() for o in self.operations],
            "export": {
                "used": self.export_used,
                "mapping": [m.to_dict() for m in self.matches],
                "notInContract": [e.label() for e in self.unmatched_export],
            },
            "barrenLinks": self.crawl.barren_links(),
            "har": self.har,
            "harPathsNotInContract": self.har_paths,
            "changes": [c.to_dict() for c in self.changes],
            "neverObserved": [c.to_dict() for c in self.notes],
            "residualViolations": self.residual,
            "files": self.files,
        }

    def json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"

    # -- markdown -------------------------------------------------------------------------

    def markdown(self) -> str:
        lines = [f"# Calibration of {self.upstream}", ""]
        lines += self._summary()
        lines += self._operations_table()
        lines += self._mapping()
        lines += self._changes()
        lines += self._never()
        lines += self._links()
        lines += self._har_section()
        lines += self._residual()
        lines += _review()
        return "\n".join(lines).rstrip() + "\n"

    def _summary(self) -> list[str]:
        reached = sum(o.reached for o in self.operations)
        calibrated = sum(o.calibrated for o in self.operations)
        budget = f" of a budget of {self.budget}" if self.budget is not None else ""
        out = [
            f"Started {self.started}, {self.seconds:.1f} s, {self.calls} upstream calls{budget}.",
            f"{reached} of {len(self.operations)} operations reached, {calibrated} with data; "
            f"{len(self.changes)} schema changes; {len(self.notes)} declared things never seen.",
        ]
        if self.crawl.stopped:
            out.append(f"Stopped early: {self.crawl.stopped}.")
        out.append(f"Exit code {self.exit_code}.")
        return [*out, ""]

    def _operations_table(self) -> list[str]:
        out = [
            "## Operations",
            "",
            "| operation | path | result | answers | empty | notes |",
            "|---|---|---|---|---|---|",
        ]
        for o in self.operations:
            path = f"`{o.path}`" + (f" (was `{o.previous_path}`)" if o.previous_path else "")
            notes = "; ".join(o.notes).replace("|", "\\|")
            out.append(
                f"| {o.operation_id} | {path} | {o.source} | {o.answers} | {o.empties} | {notes} |"
            )
        return [*out, ""]

    def _mapping(self) -> list[str]:
        if not self.export_used:
            return []
        out = [
            "## The provider's export, mapped to the contract (review it)",
            "",
            "| operation | export operation | summary | path | score |",
            "|---|---|---|---|---|",
        ]
        for m in self.matches:
            renamed = ", ".join(f"{a} -> {b}" for a, b in m.renamed.items())
            path = f"`{m.exported.path}`" + (f" (parameters {renamed})" if renamed else "")
            out.append(
                f"| {m.operation_id} | {m.exported.operation_id} | {m.exported.summary} | "
                f"{path} | {m.score:.1f} |"
            )
        for e in self.unmatched_export:
            out.append(
                f"| (none) | {e.operation_id} | {e.summary} | `{e.path}` | in the export, "
                "not in the contract |"
            )
        return [*out, ""]

    def _changes(self) -> list[str]:
        out = [f"## Schema changes ({len(self.changes)})", ""]
        by_file: dict[str, list[Change]] = {}
        for change in self.changes:
            by_file.setdefault(change.file, []).append(change)
        for name in sorted(by_file):
            out += [f"### {name}", ""]
            for c in by_file[name]:
                out.append(
                    f"- `{c.pointer or '/'}` **{c.kind}**: {c.summary}; "
                    f"{c.answers} answers{_ops(c)}, e.g. `{_short(c.example)}`"
                )
            out.append("")
        return out

    def _never(self) -> list[str]:
        if not self.notes:
            return []
        out = [
            "## Declared, never observed (kept: review whether the account lacks the "
            "right, or the field is gone)",
            "",
        ]
        out += [f"- `{c.where}`: {c.summary}{_ops(c)}" for c in self.notes]
        return [*out, ""]

    def _links(self) -> list[str]:
        barren = self.crawl.barren_links()
        if not barren:
            return []
        out = [
            "## Links that found nothing (review their pointers: the upstream may name the "
            "fields otherwise)",
            "",
        ]
        for name in barren:
            answers = self.crawl.links[name][0]
            out.append(f"- {name}: nothing in {answers} answers")
        return [*out, ""]

    def _har_section(self) -> list[str]:
        if not self.har:
            return []
        out = ["## Browser sessions (HAR)", ""] + [f"- {line}" for line in self.har]
        if self.har_paths:
            out.append(
                "- API paths in the sessions that no operation of the contract has: "
                + ", ".join(f"`{p}`" for p in sorted(set(self.har_paths)))
            )
        return [*out, ""]

    def _residual(self) -> list[str]:
        if not self.residual:
            return [
                "## Check",
                "",
                "Every recorded fixture passes the calibrated contract (`pivotkit check`).",
                "",
            ]
        out = ["## Check: what the calibrated contract still refuses", ""]
        return out + [f"- {line}" for line in self.residual[:50]] + [""]


def _ops(change: Change) -> str:
    return f" ({', '.join(change.operations)})" if change.operations else ""


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _review() -> list[str]:
    return [
        "## What to review",
        "",
        "1. The operations table: every path `confirmed` or `provider-export`; a `path wrong` "
        "needs the export or a hand correction.",
        "2. The export's mapping, when one was given: each contract operation paired with the "
        "right exported one.",
        "3. Added fields marked required: present in every answer seen, but the sample may be "
        "small; make one optional if the provider says so.",
        "4. Fields never observed: kept. An account without the right to a field does not see "
        "it; remove a field only when the provider confirms it is gone.",
        "5. Then `git apply contract.patch`, copy the fixtures you want to keep, and run "
        "`pivotkit check` and `pivotkit test`.",
    ]


def parse_mapping(raw: Mapping[str, Any]) -> dict[str, str]:
    """``{operationId: path}`` from a calibration.json (for scripts)."""
    return {str(o["operationId"]): str(o["path"]) for o in raw.get("operations", [])}
