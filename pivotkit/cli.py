"""The ``pivotkit`` command: a click group over the library's functions."""

from __future__ import annotations

from pathlib import Path

import click

from pivotkit.errors import PivotError


def _contract(schemas: Path | None):  # type: ignore[no-untyped-def]
    from pivotkit.contract import Contract

    try:
        return Contract.load(schemas)
    except PivotError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.version_option(package_name="pivotkit")
def main() -> None:
    """Contract tests, mock server and drift alerts for the Plurimedia Pivot API."""


@main.command()
@click.option("--fixtures", "fixtures_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="Fixtures directory (default: the bundled fixtures/).")
@click.option("--schemas", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Schemas directory (default: the bundled schemas/).")
@click.option("--quiet", "-q", is_flag=True, help="Print failures only.")
def check(fixtures_dir: Path | None, schemas: Path | None, quiet: bool) -> None:
    """Validate every fixture: file format, then body against the contract.

    Prints one line per file; exits 1 if any fixture fails, naming file, pointer and message.
    """
    from pivotkit.check import check_directory
    from pivotkit.fixtures import default_fixtures_dir

    contract = _contract(schemas)
    root = fixtures_dir or default_fixtures_dir()
    if not root.is_dir():
        raise click.ClickException(f"{root}: no such fixtures directory")
    results = check_directory(contract, root)
    if not results:
        raise click.ClickException(f"{root}: no fixture files (<operationId>/<name>.json)")
    failed = [r for r in results if not r.ok]
    for result in results:
        if quiet and result.ok:
            continue
        for line in result.lines():
            click.echo(line, err=not result.ok)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed "
               f"({len(results)} fixtures)")
    if failed:
        raise SystemExit(1)
