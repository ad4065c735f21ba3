"""The contract suite's command: ``test``."""

from __future__ import annotations

from pathlib import Path

import click

from pivotkit.cli.options import fixtures_option, main, schemas_option


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
@schemas_option()
@fixtures_option()
@click.option(
    "--allow-no-key",
    is_flag=True,
    help="Without $PIVOT_API_KEY, run anyway: every test that needs the target is skipped "
    "and the run passes (default: refuse, exit 2).",
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test(
    target: str,
    budget: int | None,
    junit: Path,
    markdown: Path,
    profile: str | None,
    schemas: Path | None,
    fixtures_dir: Path | None,
    allow_no_key: bool,
    pytest_args: tuple[str, ...],
) -> None:
    """Run the contract suite against a target and write JUnit XML and Markdown reports.

    Extra arguments go to pytest, e.g. `pivotkit test --target live -- -k getContent`.
    A URL or live target without $PIVOT_API_KEY is refused (exit 2) unless --allow-no-key.
    Exits with pytest's status: 0 passed, 1 some check failed, 3 quota exhausted.
    """
    import os

    from pivotkit.client import KEY_ENV, ApiKey, parse_target
    from pivotkit.contract import Contract
    from pivotkit.errors import KeyNotSet
    from pivotkit.report import run_suite

    # The suite runs in a subprocess: it reads the contract and fixtures from these variables.
    for variable, given in (("PIVOT_SCHEMAS", schemas), ("PIVOT_FIXTURES", fixtures_dir)):
        if given is not None:
            if not given.is_dir():
                raise click.UsageError(f"{given}: no such directory")
            os.environ[variable] = str(given.resolve())
    Contract.load(schemas)  # a broken contract is one line and exit 2, before pytest starts

    chosen = parse_target(target, option="--target")
    if chosen.needs_key and ApiKey.from_env() is None:
        if not allow_no_key:
            raise KeyNotSet(
                KEY_ENV,
                f"--target {chosen.label}",
                "; or pass --allow-no-key to skip every test that needs it",
            )
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
