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
    default=None,
    metavar="FILE|URL",
    help="State shared by workers: keys, limits, usage. A SQLite file (default: a temp "
    "file), or redis://[:password@]host:port/db for several instances (better in "
    "PIVOT_STATE: a password on the command line is visible to other users).",
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
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes of the fast server (they share one SQLite state).",
)
@click.option(
    "--dev",
    is_flag=True,
    help="werkzeug's development server instead: one process, restarted when a source, "
    "fixture or accounts file changes.",
)
@click.option("--no-reload", is_flag=True, help="With --dev: do not restart on changes.")
@click.option(
    "--production",
    is_flag=True,
    help="Accepted for compatibility and ignored: the fast server is the default.",
)
@click.option(
    "--port-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the bound port there (atomically) once connections are accepted; "
    "for scripts, with --port 0.",
)
@click.option(
    "--strict",
    is_flag=True,
    default=None,
    help="Refuse to start (or reload) when any fixture is refused.",
)
@click.option(
    "--trust-proxy",
    type=click.IntRange(0, 5),
    default=None,
    metavar="N",
    help="Reverse proxies in front whose X-Forwarded-For/-Proto/-Host are believed "
    "(client address, HTTPS for the Secure cookie). Default 0: none.",
)
def serve(
    host: str,
    port: int,
    fixtures_dir: Path | None,
    accounts: Path | None,
    schemas: Path | None,
    state: str | None,
    config_file: Path | None,
    admin_token: str | None,
    faults: str | None,
    dynamic: bool | None,
    record_from: str | None,
    workers: int,
    dev: bool,
    no_reload: bool,
    scenarios: Path | None,
    journal: bool | None,
    journal_bytes: str | None,
    production: bool,
    port_file: Path | None,
    strict: bool | None,
    trust_proxy: int | None,
) -> None:
    """Serve the mock of the Pivot API (point your client at http://HOST:PORT).

    The fast server (granian) in one process by default, or --workers N; --dev for werkzeug's
    auto-reloading development server. Prints the address bound, each account's keys (the
    bundled ones are public demo keys), the admin token, and how many fixtures were refused
    and why (pivotkit check lists them). Settings: defaults < --config file < PIVOT_
    variables < these flags. A port in use: one line, exit 2.
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
        "PIVOT_STRICT_FIXTURES": strict,
        "PIVOT_TRUST_PROXY": trust_proxy,
        "PIVOT_SCENARIOS": scenarios,
        "PIVOT_JOURNAL": journal,
        "PIVOT_JOURNAL_BYTES": journal_bytes,
    }
    if dev and workers > 1:
        raise click.UsageError("--dev runs one process; --workers is for the fast server")
    if no_reload and not dev:
        raise click.UsageError("--no-reload goes with --dev")
    given = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items() if v is not None}
    run(
        given,
        host=host,
        port=port,
        workers=workers,
        dev=dev,
        reload=not no_reload,
        port_file=port_file,
        echo=click.echo,
    )
