"""The ``drift`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pivotkit.cli.options import fixtures_option, main, schemas_option


@main.command()
@click.option(
    "--target",
    default="live",
    show_default=True,
    help="'live' (key in $PIVOT_API_KEY) or a base URL (a staging gateway, a mock).",
)
@fixtures_option("Fixtures whose requests are replayed and serve as baseline.")
@click.option(
    "--plan",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Replay this plan (pivotkit record --plan format) instead of the fixtures.",
)
@schemas_option("schemas_dir")
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
