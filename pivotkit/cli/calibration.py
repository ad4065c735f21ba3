"""The command that turns the guessed contract into the real one: ``calibrate``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pivotkit.cli.options import fixtures_option, main, max_wait_option, rate_option, schemas_option


@main.command()
@click.option(
    "--upstream",
    required=True,
    envvar="PIVOT_UPSTREAM",
    metavar="URL",
    help="The API to calibrate against: the live URL, a staging gateway ($PIVOT_UPSTREAM).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write schemas/, fixtures/, CALIBRATION.md, calibration.json, "
    "contract.patch (never inside the input schemas or fixtures).",
)
@click.option(
    "--apim-export",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The API's definition downloaded from the developer portal (OpenAPI 2 or 3, JSON or "
    "YAML): its paths and parameters replace the assumed ones.",
)
@click.option(
    "--har",
    "har_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A browser session saved as HAR (the portal's Try-it): its API calls are evidence "
    "too (repeatable).",
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="At most this many upstream calls.",
)
@rate_option()
@click.option(
    "--per-operation",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="Answers with data to collect per operation before moving on.",
)
@click.option(
    "--account",
    default="default",
    show_default=True,
    help="The account profile written in the fixtures' meta.account.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampling.")
@max_wait_option(60.0)
@click.option("--quiet", "-q", is_flag=True, help="Print the summary only, not every request.")
@schemas_option()
@fixtures_option("Input fixtures (only accounts.toml is read from them).")
def calibrate(
    upstream: str,
    out: Path,
    apim_export: Path | None,
    har_files: tuple[Path, ...],
    budget: int,
    rate: float | None,
    per_operation: int,
    account: str,
    seed: int,
    max_wait: float,
    quiet: bool,
    schemas: Path | None,
    fixtures_dir: Path | None,
) -> None:
    """Calibrate the contract against a real upstream, in one reviewed step.

    Crawls the upstream by following its answers (the contract's links), within --budget,
    records what it sees (redacted) and writes into --out a calibrated copy of the contract,
    the fixtures, the report CALIBRATION.md (and calibration.json) and contract.patch for
    `git apply`. The key comes from $PIVOT_API_KEY. Exit 0: every operation calibrated; 1:
    some could not be (named in the report); 2: usage; 3: upstream unreachable or out of
    quota (what was learnt is still written).
    """
    from pivotkit.calibrate.job import Options
    from pivotkit.calibrate.job import calibrate as run
    from pivotkit.client import KEY_ENV
    from pivotkit.errors import ConfigError

    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise ConfigError("key", f"${KEY_ENV} is empty: export your subscription key there")
    for option, path in (("--apim-export", apim_export), *(("--har", h) for h in har_files)):
        if path is not None and not path.is_file():
            raise ConfigError(option, f"{path}: no such file")
    options = Options(
        upstream=upstream,
        out=out,
        key=key,
        schemas=schemas,
        fixtures=fixtures_dir,
        apim_export=apim_export,
        har=har_files,
        budget=budget,
        rate=rate,
        account=account,
        per_operation=per_operation,
        seed=seed,
        max_wait=max_wait,
        say=(lambda line: None) if quiet else click.echo,
    )
    result = run(options)
    calibrated = sum(o.calibrated for o in result.operations)
    for op in result.unreached:
        why = op.notes[0] if op.notes else ""
        click.echo(
            f"not calibrated: {op.operation_id}: {op.source}" + (f" ({why})" if why else ""),
            err=True,
        )
    if result.crawl.stopped:
        click.echo(f"stopped: {result.crawl.stopped}; what was learnt is written", err=True)
    click.echo(
        f"{calibrated} of {len(result.operations)} operations calibrated, {len(result.changes)} "
        f"schema changes, {result.calls} calls in {result.seconds:.1f} s; "
        f"see {out / 'CALIBRATION.md'} and {out / 'contract.patch'}"
    )
    raise SystemExit(result.exit_code)
