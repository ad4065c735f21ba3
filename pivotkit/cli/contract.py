"""Commands over the contract and the fixtures: ``check`` and ``docs``."""

from __future__ import annotations

from pathlib import Path

import click

from pivotkit.cli.options import fixtures_option, main, schemas_option
from pivotkit.contract import Contract


@main.command()
@fixtures_option()
@schemas_option()
@click.option("--quiet", "-q", is_flag=True, help="Print failures only.")
def check(fixtures_dir: Path | None, schemas: Path | None, quiet: bool) -> None:
    """Validate every fixture: file format, then body against the contract.

    Prints one line per file; exits 1 if any fixture fails, naming file, pointer and message.
    """
    from pivotkit.check import check_directory
    from pivotkit.locations import default_fixtures_dir

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
@schemas_option()
def docs(out: Path, check_only: bool, schemas: Path | None) -> None:
    """Generate the API reference (Markdown) from the contract in schemas/."""
    from pivotkit.docs import render_reference
    from pivotkit.locations import atomic_write_text

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


@main.group()
def export() -> None:
    """Export the contract for other tools."""


@export.command("openapi")
@click.option(
    "--bundle",
    "bundled",
    is_flag=True,
    help="One self-contained file (every schema file inlined under components).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write here (atomically) instead of standard output.",
)
@schemas_option()
def export_openapi(bundled: bool, fmt: str, out: Path | None, schemas: Path | None) -> None:
    """The contract's OpenAPI document: as it is, or --bundle for the tools that read one file
    only (openapi-python-client, Postman, datamodel-code-generator)."""
    from pivotkit.bundle import bundle, dumps
    from pivotkit.locations import atomic_write_text

    contract = Contract.load(schemas)
    document = bundle(contract) if bundled else contract.openapi
    text = dumps(document, fmt)
    if out is None:
        click.echo(text, nl=False)
        return
    atomic_write_text(out, text)
    click.echo(f"wrote {out}", err=True)


@main.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
    help="Markdown for people (a PR comment, a release note), JSON for tools.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the changelog here (atomically) instead of printing it.",
)
def diff(old: str, new: str, fmt: str, out: Path | None) -> None:
    """What NEW changes for consumers of OLD: a changelog by operation and pointer.

    OLD and NEW are schemas directories, or git:REV for the other one (or the default
    schemas/) as it was at a git revision, e.g. `pivotkit diff git:HEAD schemas/`.
    Each change is breaking, warning or info by the same direction rules as drift.
    Exit 0: nothing breaking; 1: a breaking change; 2: a side that is no contract.
    """
    import tempfile

    from pivotkit.drift.changelog import compare_contracts, load_side, to_json, to_markdown
    from pivotkit.locations import atomic_write_text

    with tempfile.TemporaryDirectory(prefix="pivotkit-diff-") as work:
        before = load_side(old, new, Path(work))
        after = load_side(new, old, Path(work))
    changes = compare_contracts(before, after)
    text = to_json(changes, old, new) if fmt == "json" else to_markdown(changes, old, new)
    if out is not None:
        atomic_write_text(out, text)
        click.echo(f"wrote {out}: {len(changes)} changes")
    else:
        click.echo(text, nl=False)
    if any(c.severity == "breaking" for c in changes):
        raise SystemExit(1)
