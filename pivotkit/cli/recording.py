"""Commands that record and learn from recordings: ``record`` and ``infer``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pivotkit.cli.options import fixtures_option, main, max_wait_option, rate_option, schemas_option
from pivotkit.contract import Contract


def _plan(
    contract: Contract,
    plan_file: Path | None,
    from_fixtures: bool,
    fixtures_dir: Path | None,
    ops: Sequence[str],
    params: Sequence[str],
    langs: Sequence[str],
) -> list[Any]:
    from pivotkit.locations import default_fixtures_dir
    from pivotkit.plan import PlanItem, load_plan, plan_from_fixtures, plan_from_options

    items: list[PlanItem] = []
    if plan_file:
        items += load_plan(plan_file)
    if from_fixtures:
        items += plan_from_fixtures(fixtures_dir or default_fixtures_dir(), contract)
    if ops:
        items += plan_from_options(ops, params, langs, contract)
    return items


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _size(value: str) -> int:
    """``16M``, ``512K``, ``1G`` or a number of bytes; at least 1 KiB."""
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    digits = text[: len(text) - len(unit)] if unit else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 12:
        raise click.BadParameter(f"{value!r} is not a size: 16M, 512K, 1G or bytes")
    size = int(digits) * _UNITS[unit]
    if size < 1024:
        raise click.BadParameter("at least 1K")
    return size


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


def _record_har(
    contract: Contract,
    har_files: Sequence[Path],
    out: Path | None,
    key_env: str,
    account: str,
    overwrite: bool,
) -> int:
    """``record --from-har``: the API calls of browser sessions as redacted fixtures."""
    from pivotkit.calibrate.har import HarReader, write_har_exchanges

    target = _out_dir(out)
    reader = HarReader(contract, secrets=[os.environ.get(key_env, "").strip()], account=account)
    total = 0
    for path in har_files:
        imported = reader.read(path)
        for status, written in write_har_exchanges(imported, target, overwrite=overwrite):
            click.echo(f"{'recorded' if status != 'unchanged' else status:<9} {written}")
        click.echo(imported.summary())
        total += len(imported.exchanges)
    return 0 if total else 1


def _out_dir(out: Path | None) -> Path:
    """Where record writes: --out, else $PIVOT_FIXTURES, else the project's ./fixtures;
    never into the installed package (ConfigError: one line, exit 2)."""
    from pivotkit.errors import ConfigError
    from pivotkit.locations import outside_package

    env = os.environ.get("PIVOT_FIXTURES")
    chosen = out or (Path(env) if env else Path("fixtures"))
    if out is None and not env and not chosen.is_dir():
        raise ConfigError(
            "--out",
            f"no ./fixtures directory in {Path.cwd()}: say where to write the recorded "
            "fixtures with --out DIR (record never writes into the installed package)",
        )
    return outside_package(chosen, "--out" if out else "PIVOT_FIXTURES" if env else "./fixtures")


@main.command()
@click.option(
    "--upstream",
    default=None,
    envvar="PIVOT_UPSTREAM",
    metavar="URL",
    help="Base URL to record from: the live URL of the contract, a staging gateway, a mock "
    "($PIVOT_UPSTREAM).",
)
@click.option(
    "--from-har",
    "har_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Take the API calls of a browser session saved as HAR (the portal's Try-it), "
    "redacted like recording, instead of calling an upstream (repeatable).",
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
@fixtures_option("Where --from-fixtures reads (default: the fixtures directory).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where fixtures are written (default: $PIVOT_FIXTURES, else ./fixtures when it "
    "exists; never the installed package).",
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
@rate_option()
@max_wait_option(60.0)
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
    help="Seconds one whole exchange may take: connecting, waiting and reading the body.",
)
@click.option(
    "--max-size",
    default="16M",
    show_default=True,
    metavar="SIZE",
    callback=lambda ctx, param, value: _size(value),
    help="Largest body recorded, once decoded (bytes, or with K, M, G); a bigger one is "
    "stopped while it streams in, and nothing is written.",
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
@schemas_option()
def record(
    upstream: str | None,
    har_files: tuple[Path, ...],
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
    max_size: int,
    redact_headers: tuple[str, ...],
    redact_fields: tuple[str, ...],
    schemas: Path | None,
) -> None:
    """Record live exchanges from an upstream into fixtures, with secrets redacted.

    The requests come from --plan, --from-fixtures and/or --op/--param/--lang (or, with
    --from-har, from a browser session instead of an upstream). Each answer is
    written atomically as <out>/<operationId>/<name>.json (meta.source "live"); an equal
    fixture is left alone, a different one is kept and the new one written beside it unless
    --overwrite. Exit 0: no failure; 1: some request failed; 2: usage; 3: quota exhausted or
    upstream unreachable; 130: interrupted (what was written is kept).
    """
    from pivotkit.recorder import Recorder
    from pivotkit.redact import Redactor

    if har_files:
        raise SystemExit(
            _record_har(Contract.load(schemas), har_files, out, key_env, account, overwrite)
        )
    if not upstream:
        raise click.UsageError("--upstream URL is required (or --from-har FILE)")
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
    target = _out_dir(out)
    redactor = Redactor.build(
        headers=redact_headers, fields=redact_fields, conventions=contract.conventions
    )
    recorder = Recorder(
        upstream,
        key,
        target,
        account=account,
        contract=contract,
        redactor=redactor,
        overwrite=overwrite,
        budget=budget,
        rate=rate,
        max_wait=max_wait,
        retries=retries,
        timeout=timeout,
        max_size=max_size,
    )
    report = _record_run(recorder, items)
    if report.stopped:
        click.echo(f"stopped: {report.stopped}; what was recorded is kept", err=True)
    click.echo(report.summary())
    raise SystemExit(report.exit_code)


@main.command()
@click.argument("operation")
@fixtures_option()
@schemas_option()
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
