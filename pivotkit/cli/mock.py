"""The mock's commands: ``serve``."""

from __future__ import annotations

from pathlib import Path

import click

from pivotkit.cli.options import fixtures_option, main, schemas_option


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@fixtures_option()
@click.option(
    "--accounts",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Accounts file, TOML (default: <fixtures>/accounts.toml).",
)
@schemas_option()
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
    "--scenarios",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Scenarios file: sequences and timelines (default: <fixtures>/scenarios.json).",
)
@click.option(
    "--journal/--no-journal",
    default=None,
    help="Keep every API request in the journal, GET /__pivot/requests (default: on).",
)
@click.option(
    "--journal-bytes",
    default=None,
    metavar="SIZE",
    help="Bytes the journal keeps, shared by the workers (default 4MiB; e.g. 64KiB, 1GiB).",
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
    scenarios: Path | None,
    journal: bool | None,
    journal_bytes: str | None,
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
        "PIVOT_SCENARIOS": scenarios,
        "PIVOT_JOURNAL": journal,
        "PIVOT_JOURNAL_BYTES": journal_bytes,
    }
    given = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items() if v is not None}
    count = workers if workers is not None else (2 if production else 1)
    try:
        run(given, host=host, port=port, workers=count, production=production, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
