"""A drift job: options in, plan, replay, analysis and reports out, then an exit code."""

from __future__ import annotations

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
from pivotkit.drift.deviations import Deviation, load_deviations
from pivotkit.drift.replay import REPLAYED_STATUSES, RunResult, plan_from_file, replay
from pivotkit.drift.report import DriftReport, append_step_summary, build_report, post_webhook
from pivotkit.drift.updates import write_drift_fixtures
from pivotkit.errors import EXIT_UNAVAILABLE, ConfigError
from pivotkit.fixtures import FixtureSet, atomic_write_text
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
        """Send the plan to the target."""
        limit = self.budget.limit
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
        """The report of the answers; drifted answers saved when ``--update-fixtures``."""
        analysis = DriftAnalysis(self.contract, rights=self.profile.rights, secrets=self.secrets)
        drifted = [(answer, analysis.add(answer)) for answer in run.answers]
        report = build_report(
            analysis,
            target=self.target.label,
            deviations=self.deviations,
            today=self.options.today,
            run=run,
            operations=sorted({p.operation_id for p in plan}),
            started=started,
        )
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

    def show(self, report: DriftReport, run: RunResult) -> None:
        """The findings, suppressed findings, errors and summary, one line each."""
        for finding in report.findings:
            self.echo(finding.line())
        for finding in report.suppressed:
            self.echo(f"(suppressed) {finding.line()}")
        for error in run.errors:
            self.echo(f"error: {error}")
        self.echo(report.text_summary())

    def write(self, report: DriftReport) -> None:
        """The report files, the step summary, the webhook."""
        options = self.options
        markdown = report.to_markdown()
        outputs = (
            (options.markdown, markdown),
            (options.json_out, report.dumps()),
            (options.junit, report.to_junit()),
        )
        for path, text in outputs:
            if path is not None:
                atomic_write_text(path, text)
        summary = self.env.get("GITHUB_STEP_SUMMARY")
        if summary:
            append_step_summary(Path(summary), markdown)
        if options.webhook:
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
    breaking finding, 1 breaking, 3 unreachable or out of quota); ConfigError for exit 2."""
    job = DriftJob(options, environ=environ, echo=echo, transport=transport, sleep=sleep)
    plan = job.plan()
    started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    run = job.replay(plan)
    report = job.analyse(plan, run, started)
    job.show(report, run)
    job.write(report)
    if run.quota is not None or run.unreachable:
        return EXIT_UNAVAILABLE
    return report.exit_code
