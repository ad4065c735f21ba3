"""A drift job: options in, plan, replay, analysis and reports out, then an exit code."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from pivotkit.accounts import KEY_SHAPE, Account, load_profile
from pivotkit.client import DEFAULT_LIVE_BUDGET, KEY_ENV, ApiKey, CallBudget, Target, parse_target
from pivotkit.contract import Contract
from pivotkit.drift.analysis import DriftAnalysis
from pivotkit.drift.baseline import Expectation
from pivotkit.drift.deviations import Deviation, load_deviations
from pivotkit.drift.history import DEFAULT_KEEP, History, default_history_path
from pivotkit.drift.page import render
from pivotkit.drift.replay import REPLAYED_STATUSES, RunResult, plan_from_file, replay
from pivotkit.drift.report import (
    ALERT_ON,
    DriftReport,
    RunPoint,
    alerts,
    append_step_summary,
    build_report,
    post_webhook,
)
from pivotkit.drift.updates import write_drift_fixtures
from pivotkit.errors import EXIT_UNAVAILABLE, ConfigError
from pivotkit.fixtures import FixtureSet
from pivotkit.locations import atomic_write_text
from pivotkit.plan import PlanItem, plan_from_fixtures, sample


@dataclass
class DriftOptions:
    """The options of ``pivotkit drift`` (see its ``--help``)."""

    target: str = "live"
    fixtures_dir: Path | None = None
    schemas_dir: Path | None = None
    plan: Path | None = None
    sample: int | None = None
    seed: int | None = None
    budget: int | None = None
    concurrency: int = 4
    rate: float = 5.0
    max_wait: float = 120.0
    account_profile: Path | None = None
    account: str | None = None
    known_deviations: Path | None = None
    markdown: Path | None = None
    json_out: Path | None = None
    junit: Path | None = None
    webhook: str | None = None
    update_fixtures: Path | None = None
    today: dt.date | None = None
    timeout: float = 30.0
    history: Path | str | None = None
    history_keep: int = DEFAULT_KEEP
    alert_on: str = "breaking"
    html: Path | None = None


def _key(env: Mapping[str, str], target: Target) -> ApiKey | None:
    key = ApiKey.from_env(env, KEY_ENV)
    if key is not None and not KEY_SHAPE.fullmatch(key.reveal()):
        raise ConfigError(
            KEY_ENV,
            "a key is 32 lowercase hexadecimal characters; the value "
            "set has another shape (it is not shown)",
        )
    if key is None and target.kind == "live":
        raise ConfigError(
            KEY_ENV, "set the subscription key in $PIVOT_API_KEY to run against the live API"
        )
    return key


class DriftJob:
    """One run of ``pivotkit drift``, step by step: :meth:`plan`, :meth:`replay`,
    :meth:`analyse`, :meth:`write`. ConfigError (exit 2) for anything the user must fix."""

    def __init__(
        self,
        options: DriftOptions,
        *,
        environ: Mapping[str, str] | None = None,
        echo: Callable[[str], None] = print,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.env = os.environ if environ is None else environ
        self.echo = echo
        self.transport = transport
        self.sleep = sleep
        self.contract = Contract.load(options.schemas_dir)
        self.target = parse_target(options.target, contract=self.contract, option="--target")
        if self.target.kind == "mock":
            raise ConfigError(
                "--target",
                "drift needs a server: start `pivotkit serve` and pass its URL, or 'live'",
            )
        self.key = _key(self.env, self.target)
        limit = options.budget
        if limit is None and self.target.kind == "live":
            limit = DEFAULT_LIVE_BUDGET
        self.budget = CallBudget(limit, option="--budget")
        self.fixtures = FixtureSet.load(options.fixtures_dir, contract=self.contract)
        self.profile = (
            load_profile(options.account_profile, options.account)
            if options.account_profile is not None
            else Account(name="default")
        )
        self.deviations: list[Deviation] = (
            load_deviations(options.known_deviations)
            if options.known_deviations is not None
            else []
        )
        self.secrets = [self.key.reveal()] if self.key is not None else []
        if options.alert_on not in ALERT_ON:
            raise ConfigError("--alert-on", f"one of {', '.join(ALERT_ON)}")
        self.history = self._history()

    def _history(self) -> History | None:
        """The history file, opened before any request (a bad file is exit 2, no call sent)."""
        chosen = self.options.history
        if chosen is None:
            return None
        path = Path(chosen) if str(chosen) else default_history_path(self.env)
        return History(path, keep=self.options.history_keep, secrets=self.secrets)

    def plan(self) -> list[PlanItem]:
        """The requests to replay: the plan file's, or the fixtures' (sampled)."""
        options, rights = self.options, self.profile.rights
        if options.plan is not None:
            items = plan_from_file(options.plan, self.fixtures, self.contract, rights=rights)
        else:
            items = plan_from_fixtures(
                self.fixtures, self.contract, replayed=REPLAYED_STATUSES, rights=rights
            )
            for item in items:
                if item.error:
                    self.echo(f"error: {item.error}")
            items = [item for item in items if item.sendable]
        items = sample(items, options.sample, options.seed)
        if not items:
            raise ConfigError(
                "--fixtures",
                f"no replayable fixture under {self.fixtures.root} "
                f"(status {', '.join(map(str, sorted(REPLAYED_STATUSES)))})",
            )
        return items

    def replay(self, plan: list[PlanItem]) -> RunResult:
        """Send the plan to the target (TargetUnreachable, exit 3, when the first request
        cannot connect: one line, nothing else sent)."""
        limit = self.budget.limit

        def started() -> None:
            self.echo(
                f"drift: {len(plan)} requests to {self.target.label}"
                + (f" (budget {limit})" if limit is not None else "")
            )

        options = self.options
        run = replay(
            plan,
            self.target.base_url,
            contract=self.contract,
            key=self.key,
            budget=self.budget,
            concurrency=options.concurrency,
            rate=options.rate,
            max_wait=options.max_wait,
            timeout=options.timeout,
            transport=self.transport,
            sleep=self.sleep,
            started=started,
        )
        if run.answers and all(a.status == 401 for a in run.answers):
            raise ConfigError(
                KEY_ENV,
                f"{self.target.label} answered 401 to every request: "
                "the key is missing, unknown, regenerated, or not subscribed to "
                "this API",
            )
        return run

    def analyse(self, plan: list[PlanItem], run: RunResult, started: str) -> DriftReport:
        """The report of the answers (the history's baseline and life of each finding when
        ``--history``); drifted answers saved when ``--update-fixtures``."""
        baseline: dict[str, Expectation] = {}
        if self.history is not None:
            baseline = self.history.baseline(self.target.label)
        analysis = DriftAnalysis(
            self.contract, rights=self.profile.rights, secrets=self.secrets, history=baseline
        )
        drifted = [(answer, analysis.add(answer)) for answer in run.answers]
        operations = sorted({p.operation_id for p in plan})
        report = build_report(
            analysis,
            target=self.target.label,
            deviations=self.deviations,
            today=self.options.today,
            run=run,
            operations=operations,
            started=started,
            alert_on=self.options.alert_on,
        )
        if self.history is not None and run.answers:
            report = self._remember(self.history, report, analysis, operations)
        if self.options.update_fixtures is not None:
            written = write_drift_fixtures(
                drifted,
                self.options.update_fixtures,
                contract=self.contract,
                account=self.profile.name,
                upstream=self.target.label,
                secrets=self.secrets,
            )
            self.echo(
                f"{len(written)} drifted answers written under "
                f"{self.options.update_fixtures} for review"
            )
        return report

    def _remember(
        self,
        history: History,
        report: DriftReport,
        analysis: DriftAnalysis,
        operations: list[str],
    ) -> DriftReport:
        """Store the run; the report gets each finding's life, the resolved ones, the chart."""
        alert_on = self.options.alert_on
        recorded = history.record(
            target=report.target,
            started=report.started,
            finished=report.finished,
            findings=report.findings,
            summary=report.summary(),
            operations={op: report.answers.get(op, 0) for op in operations},
            seen=analysis.seen,
            observed={op: obs.to_schema() for op, obs in analysis.observers.items()},
            alert=lambda found: alerts(found, alert_on),
        )
        series = [
            RunPoint(r.id, r.started, r.summary)
            for r in reversed(history.runs(report.target, limit=30))
        ]
        return dataclasses.replace(
            report,
            findings=recorded.findings,
            resolved=recorded.resolved,
            run=recorded.run,
            series=series,
        )

    def show(self, report: DriftReport, run: RunResult) -> None:
        """The findings, suppressed findings, errors and summary, one line each."""
        for finding in report.findings:
            self.echo(finding.line())
        for finding in report.suppressed:
            self.echo(f"(suppressed) {finding.line()}")
        for error in run.errors:
            self.echo(f"error: {error}")
        for finding in report.resolved:
            self.echo(f"(resolved) {finding.operation} {finding.pointer or '/'} {finding.kind}")
        self.echo(report.text_summary())

    def write(self, report: DriftReport) -> None:
        """The report files, the step summary, the webhook."""
        options = self.options
        markdown = report.to_markdown()
        outputs = (
            (options.markdown, markdown),
            (options.json_out, report.dumps()),
            (options.junit, report.to_junit()),
            (options.html, render(report) if options.html is not None else ""),
        )
        for path, text in outputs:
            if path is not None:
                atomic_write_text(path, text)
        summary = self.env.get("GITHUB_STEP_SUMMARY")
        if summary:
            append_step_summary(Path(summary), markdown)
        if options.webhook and not report.alerted:
            self.echo(f"webhook: not sent (nothing to alert on under --alert-on {report.alert_on})")
        elif options.webhook:
            try:
                status = post_webhook(options.webhook, report)
            except httpx.HTTPError as exc:  # the URL may hold a token: never print it
                self.echo(f"webhook: not delivered ({type(exc).__name__})")
            else:
                if status >= 400:
                    self.echo(f"webhook: the receiver answered {status}")


def run_drift(
    options: DriftOptions,
    *,
    environ: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``pivotkit drift``: plan, replay, analyse, report. Returns the exit code (0 no
    alert, 1 an alert: by default a breaking finding, see ``alert_on``; 3 out of quota or
    nothing answered); ConfigError for exit 2, TargetUnreachable for exit 3."""
    job = DriftJob(options, environ=environ, echo=echo, transport=transport, sleep=sleep)
    try:
        plan = job.plan()
        started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        run = job.replay(plan)
        report = job.analyse(plan, run, started.replace("+00:00", "Z"))
        job.show(report, run)
        job.write(report)
    finally:
        if job.history is not None:
            job.history.close()
    if run.quota is not None or run.unreachable:
        return EXIT_UNAVAILABLE
    return report.exit_code
