"""The ``pivotkit`` command: a click group over the library's functions.

Every command ends the same way on an error pivotkit raises: one line naming what to fix, and
the exit code :func:`pivotkit.errors.exit_code` gives (1 failed, 2 usage or configuration,
3 unreachable or out of quota, 130 interrupted).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from pivotkit.contract import Contract
from pivotkit.errors import PivotError, exit_code

_F = TypeVar("_F", bound=Callable[..., Any])


class PivotFailure(click.ClickException):
    """A PivotError as click shows it: ``Error: <message>`` and the mapped exit code."""

    def __init__(self, error: PivotError) -> None:
        super().__init__(str(error))
        self.exit_code = exit_code(error)


class _Group(click.Group):
    """The command group: every PivotError becomes a :class:`PivotFailure`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PivotError as exc:
            raise PivotFailure(exc) from None


def _fixtures_option(
    help: str = "Fixtures directory (default: $PIVOT_FIXTURES, else the bundled fixtures/).",
) -> Callable[[_F], _F]:
    """The ``--fixtures DIR`` option, as every command spells it."""
    return click.option(
        "--fixtures",
        "fixtures_dir",
        default=None,
        help=help,
        type=click.Path(path_type=Path, file_okay=False),
    )


def _schemas_option(dest: str = "schemas") -> Callable[[_F], _F]:
    """The ``--schemas DIR`` option, as every command spells it."""
    return click.option(
        "--schemas",
        dest,
        default=None,
        type=click.Path(path_type=Path, file_okay=False),
        help="Schemas directory (default: $PIVOT_SCHEMAS, else the bundled schemas/).",
    )


@click.group(cls=_Group)
@click.version_option(package_name="pivotkit")
def main() -> None:
    """Contract tests, mock server and drift alerts for the Plurimedia Pivot API."""


@main.command()
@_fixtures_option()
@_schemas_option()
@click.option("--quiet", "-q", is_flag=True, help="Print failures only.")
def check(fixtures_dir: Path | None, schemas: Path | None, quiet: bool) -> None:
    """Validate every fixture: file format, then body against the contract.

    Prints one line per file; exits 1 if any fixture fails, naming file, pointer and message.
    """
    from pivotkit.check import check_directory
    from pivotkit.fixtures import default_fixtures_dir

    contract = Contract.load(schemas)
    root = fixtures_dir or default_fixtures_dir()
    if not root.is_dir():
        raise click.ClickException(f"{root}: no such fixtures directory")
    results = check_directory(contract, root)
    if not results:
        raise click.ClickException(f"{root}: no fixture files (<operationId>/<name>.json)")
    failed = [r for r in results if not r.ok]
    for result in results:
        if not (quiet and result.ok):
            for line in result.lines():
                click.echo(line, err=not result.ok)
    click.echo(
        f"{len(results) - len(failed)} passed, {len(failed)} failed ({len(results)} fixtures)"
    )
    if failed:
        raise SystemExit(1)


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("docs/reference.md"),
    show_default=True,
    help="Where to write the Markdown reference.",
)
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Write nothing; exit 1 if the file differs from the contract.",
)
@_schemas_option()
def docs(out: Path, check_only: bool, schemas: Path | None) -> None:
    """Generate the API reference (Markdown) from the contract in schemas/."""
    from pivotkit.docs import render_reference
    from pivotkit.fixtures import atomic_write_text

    text = render_reference(Contract.load(schemas))
    current = out.read_text(encoding="utf-8") if out.is_file() else None
    if check_only:
        if current is None:
            raise click.ClickException(f"{out} does not exist; run `pivotkit docs --out {out}`")
        if current != text:
            raise click.ClickException(
                f"{out} is out of date with the contract; run `pivotkit docs` to regenerate it"
            )
        click.echo(f"{out} is up to date")
        return
    if current == text:
        click.echo(f"{out} unchanged")
        return
    atomic_write_text(out, text)
    click.echo(f"wrote {out}")


def _plan(
    contract: Contract,
    plan_file: Path | None,
    from_fixtures: bool,
    fixtures_dir: Path | None,
    ops: Sequence[str],
    params: Sequence[str],
    langs: Sequence[str],
) -> list[Any]:
    from pivotkit.fixtures import default_fixtures_dir
    from pivotkit.plan import PlanItem, load_plan, plan_from_fixtures, plan_from_options

    items: list[PlanItem] = []
    if plan_file:
        items += load_plan(plan_file)
    if from_fixtures:
        items += plan_from_fixtures(fixtures_dir or default_fixtures_dir(), contract)
    if ops:
        items += plan_from_options(ops, params, langs, contract)
    return items


def _record_run(recorder: Any, items: list[Any]) -> Any:
    def show(outcome: Any) -> None:
        click.echo(outcome.line(), err=outcome.status == "failed")

    with recorder:
        if not (sys.stdout.isatty() and len(items) > 1):
            return recorder.run(items, show)
        with click.progressbar(
            items,
            label="recording",
            file=sys.stdout,
            item_show_func=lambda i: i.label() if i else None,
        ) as bar:
            report = recorder.run(bar)
        for outcome in report.outcomes:
            if outcome.status != "recorded" or outcome.message:
                show(outcome)
        return report


@main.command()
@click.option(
    "--upstream",
    required=True,
    envvar="PIVOT_UPSTREAM",
    metavar="URL",
    help="Base URL to record from, e.g. https://api.plurimedia.fr ($PIVOT_UPSTREAM).",
)
@click.option(
    "--key-env",
    default="PIVOT_API_KEY",
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the subscription key (never a flag).",
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="YAML/JSON list of {operationId, params, lang?, name?}.",
)
@click.option("--from-fixtures", is_flag=True, help="Re-record every request in --fixtures.")
@click.option(
    "--op",
    "ops",
    multiple=True,
    metavar="OPERATION_ID",
    help="An operation to record (repeatable), with --param and --lang.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A path parameter; repeat a name for several values (all combinations).",
)
@click.option("--lang", "langs", multiple=True, help="A lang to ask for (repeatable).")
@_fixtures_option("Where --from-fixtures reads (default: the fixtures directory).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where fixtures are written (default: the fixtures directory).",
)
@click.option(
    "--account",
    default="default",
    show_default=True,
    help="The account profile written in meta.account.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a fixture that differs (default: keep it, write <name>-2.json).",
)
@click.option("--budget", type=click.IntRange(min=0), help="At most this many upstream calls.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="At most this many calls per second.",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Longest wait on a 429 Retry-After, in seconds.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Retries of a request answered 429.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.option(
    "--redact-header",
    "redact_headers",
    multiple=True,
    metavar="NAME",
    help="Another header to mask (repeatable).",
)
@click.option(
    "--redact-field",
    "redact_fields",
    multiple=True,
    metavar="POINTER",
    help="A body field to mask: /data/token, data.token or **.token (repeatable).",
)
@_schemas_option()
def record(
    upstream: str,
    key_env: str,
    plan_file: Path | None,
    from_fixtures: bool,
    ops: tuple[str, ...],
    params: tuple[str, ...],
    langs: tuple[str, ...],
    fixtures_dir: Path | None,
    out: Path | None,
    account: str,
    overwrite: bool,
    budget: int | None,
    rate: float | None,
    max_wait: float,
    retries: int,
    timeout: float,
    redact_headers: tuple[str, ...],
    redact_fields: tuple[str, ...],
    schemas: Path | None,
) -> None:
    """Record live exchanges from an upstream into fixtures, with secrets redacted.

    The requests come from --plan, --from-fixtures and/or --op/--param/--lang. Each answer is
    written atomically as <out>/<operationId>/<name>.json (meta.source "live"); an equal
    fixture is left alone, a different one is kept and the new one written beside it unless
    --overwrite. Exit 0: no failure; 1: some request failed; 2: usage; 3: quota exhausted or
    upstream unreachable; 130: interrupted (what was written is kept).
    """
    from pivotkit.fixtures import default_fixtures_dir
    from pivotkit.recorder import Recorder
    from pivotkit.redact import Redactor

    if not (plan_file or from_fixtures or ops):
        raise click.UsageError("say what to record: --plan FILE, --from-fixtures or --op ...")
    if (params or langs) and not ops:
        raise click.UsageError("--param and --lang go with --op")
    key = os.environ.get(key_env, "").strip()
    if not key:
        raise click.UsageError(
            f"${key_env} is empty: export your subscription key there "
            "(or name another variable with --key-env)"
        )
    contract = Contract.load(schemas)
    items = _plan(contract, plan_file, from_fixtures, fixtures_dir, ops, params, langs)
    redactor = Redactor.build(
        headers=redact_headers, fields=redact_fields, conventions=contract.conventions
    )
    recorder = Recorder(
        upstream,
        key,
        out or default_fixtures_dir(),
        account=account,
        contract=contract,
        redactor=redactor,
        overwrite=overwrite,
        budget=budget,
        rate=rate,
        max_wait=max_wait,
        retries=retries,
        timeout=timeout,
    )
    report = _record_run(recorder, items)
    if report.stopped:
        click.echo(f"stopped: {report.stopped}; what was recorded is kept", err=True)
    click.echo(report.summary())
    raise SystemExit(report.exit_code)


@main.command()
@click.argument("operation")
@_fixtures_option()
@_schemas_option()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Proposal file (default: proposals/<operationId>.schema.json).",
)
@click.option(
    "--status",
    type=int,
    default=200,
    show_default=True,
    help="Response status whose fixtures are used.",
)
def infer(
    operation: str, fixtures_dir: Path | None, schemas: Path | None, out: Path | None, status: int
) -> None:
    """Infer OPERATION's schema from its fixtures and diff it with the contract.

    Uses every fixture of the operation with the status and a non-empty body; prints one line
    per difference (only observed, only in the contract, type differs, nullable, required or
    optional, format, enum) and writes a JSON Schema 2020-12 proposal for review. schemas/ is
    never written.
    """
    from pivotkit.fixtures import FixtureSet
    from pivotkit.infer import infer as infer_schema
    from pivotkit.infer import write_proposal

    contract = Contract.load(schemas)
    result = infer_schema(
        contract, FixtureSet.load(fixtures_dir, contract=contract), operation, status
    )
    target = write_proposal(
        result.schema,
        out or Path("proposals") / f"{operation}.schema.json",
        schemas_dir=contract.directory,
    )
    for line in result.report_lines():
        click.echo(line)
    click.echo(f"proposal written to {target}")


@main.command()
@click.option(
    "--target",
    default="live",
    show_default=True,
    help="'live' (key in $PIVOT_API_KEY) or a base URL (a staging gateway, a mock).",
)
@_fixtures_option("Fixtures whose requests are replayed and serve as baseline.")
@click.option(
    "--plan",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Replay this plan (pivotkit record --plan format) instead of the fixtures.",
)
@_schemas_option("schemas_dir")
@click.option(
    "--sample", type=click.IntRange(min=1), default=None, help="Replay a sample of N requests."
)
@click.option("--seed", type=int, default=None, help="Seed of --sample (reproducible).")
@click.option(
    "--budget",
    type=click.IntRange(min=0),
    default=None,
    help="Most calls to send, retries included (live default: 50).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    default=4,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    default=5.0,
    show_default=True,
    help="Most requests started per second.",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    help="Longest Retry-After wait on a 429, in seconds.",
)
@click.option(
    "--account-profile",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML/JSON: fields withheld from the account (mock notation).",
)
@click.option("--account", default=None, help="Account name in an accounts-file profile.")
@click.option(
    "--known-deviations",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML/TOML file of accepted findings, with owner and expiry.",
)
@click.option(
    "--markdown",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Markdown report (also appended to $GITHUB_STEP_SUMMARY when set).",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="JSON report, format pivotkit-drift/1.",
)
@click.option(
    "--junit",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="JUnit XML report, one test case per operation.",
)
@click.option("--webhook", default=None, help="POST a JSON summary (Slack-style 'text').")
@click.option(
    "--update-fixtures",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write drifted answers as new fixtures here, for review.",
)
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Date for deviation expiry (default: today).",
)
def drift(today: Any, **options: Any) -> None:
    """Replay requests against a target and report drift from the contract.

    Every answer is validated in strict mode and merged into an observed schema per
    operation; findings (breaking, warning, info) say where, what kind, what the contract
    expected and what came back. Exit 0: no breaking finding; 1: breaking drift; 2: usage or
    configuration error; 3: target unreachable or out of quota.
    """
    from pivotkit.drift import DriftOptions, run_drift

    raise SystemExit(
        run_drift(DriftOptions(today=today.date() if today else None, **options), echo=click.echo)
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@_fixtures_option()
@click.option(
    "--accounts",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Accounts file, TOML (default: <fixtures>/accounts.toml).",
)
@_schemas_option()
@click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="SQLite state shared by workers: keys, usage (default: a temp file).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file, TOML (below PIVOT_ variables and flags).",
)
@click.option("--admin-token", default=None, help="Bearer token of /__pivot/ (default: generated).")
@click.option(
    "--faults",
    default=None,
    metavar="SPEC",
    help="Fault spec for every call, e.g. 'latency=50..300ms' or 'status=503,p=0.1'.",
)
@click.option(
    "--dynamic",
    is_flag=True,
    default=None,
    help="Answer unrecorded ids with bodies generated from the schemas.",
)
@click.option(
    "--record-from",
    default=None,
    metavar="URL",
    help="Upstream for record-through of unrecorded requests.",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Worker processes (implies --production when > 1; default 2 there).",
)
@click.option(
    "--production",
    is_flag=True,
    help="Serve with granian worker processes instead of the development server.",
)
def serve(
    host: str,
    port: int,
    fixtures_dir: Path | None,
    accounts: Path | None,
    schemas: Path | None,
    state: Path | None,
    config_file: Path | None,
    admin_token: str | None,
    faults: str | None,
    dynamic: bool | None,
    record_from: str | None,
    workers: int | None,
    production: bool,
) -> None:
    """Serve the mock of the Pivot API (point your client at http://HOST:PORT).

    Prints each account's keys (the bundled ones are public demo keys) and the admin token.
    Settings: defaults < --config file < PIVOT_ variables < these flags.
    """
    from mockserver.server import serve as run

    flags = {
        "PIVOT_FIXTURES": fixtures_dir,
        "PIVOT_ACCOUNTS": accounts,
        "PIVOT_SCHEMAS": schemas,
        "PIVOT_STATE": state,
        "PIVOT_CONFIG": config_file,
        "PIVOT_ADMIN_TOKEN": admin_token,
        "PIVOT_FAULTS": faults,
        "PIVOT_DYNAMIC": dynamic,
        "PIVOT_RECORD_FROM": record_from,
    }
    given = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items() if v is not None}
    count = workers if workers is not None else (2 if production else 1)
    try:
        run(given, host=host, port=port, workers=count, production=production, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("test", context_settings={"ignore_unknown_options": True})
@click.option(
    "--target",
    default="mock",
    envvar="PIVOT_TARGET",
    show_default=True,
    help="mock (in-process), mock-server (loopback port), live (the contract's live "
    "URL) or a base URL; a URL or live takes its key from $PIVOT_API_KEY.",
)
@click.option(
    "--budget",
    type=click.IntRange(min=0),
    default=None,
    help="Most requests the run may send (default: 50 for live, else unlimited).",
)
@click.option(
    "--junit",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("reports/pivot-contract.xml"),
    show_default=True,
    help="JUnit XML report: one test case per operation and check.",
)
@click.option(
    "--markdown",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("reports/pivot-contract.md"),
    show_default=True,
    help="Markdown summary (appended when it is $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--profile",
    type=click.Choice(["dev", "ci"]),
    default=None,
    help="Hypothesis profile of the property tests (default: dev).",
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test(
    target: str,
    budget: int | None,
    junit: Path,
    markdown: Path,
    profile: str | None,
    pytest_args: tuple[str, ...],
) -> None:
    """Run the contract suite against a target and write JUnit XML and Markdown reports.

    Extra arguments go to pytest, e.g. `pivotkit test --target live -- -k getContent`.
    Exits with pytest's status: 0 passed, 1 some check failed, 3 quota exhausted.
    """
    from pivotkit.client import KEY_ENV, ApiKey, parse_target
    from pivotkit.report import run_suite

    chosen = parse_target(target, option="--target")
    if chosen.needs_key and ApiKey.from_env() is None:
        click.echo(
            f"warning: {KEY_ENV} is not set: every test against {chosen.label} will be "
            "skipped (nothing is sent)",
            err=True,
        )
    code = run_suite(
        target, budget=budget, junit=junit, markdown=markdown, profile=profile, extra=pytest_args
    )
    click.echo(f"reports: {junit} {markdown}", err=True)
    raise SystemExit(code)
