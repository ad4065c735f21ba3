"""Commands that edit the mock's accounts file: ``accounts list|add|new-keys|hash-password``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pivotkit.cli.options import main, schemas_option

F = TypeVar("F", bound=Callable[..., Any])


def _file_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--file",
        "path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("fixtures/accounts.toml"),
        envvar="PIVOT_ACCOUNTS",
        show_default=True,
        help=help + " ($PIVOT_ACCOUNTS)",
    )


def _open(path: Path, schemas: Path | None, *, create: bool = False) -> Any:
    from pivotkit.accounts_editor import AccountsText
    from pivotkit.contract import Contract

    return AccountsText.open(path, Contract.load(schemas).operations, create=create)


def _read_password() -> str:
    """The portal password: asked twice, unseen, on a terminal; else one line of stdin."""
    from pivotkit.errors import ConfigError

    stdin = sys.stdin
    if stdin.isatty():
        password = str(
            click.prompt("Portal password", hide_input=True, confirmation_prompt=True, err=True)
        )
    else:
        password = stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("password", "empty: give one on the prompt or as a line on stdin")
    return password


def _limit(text: str | None, option: str) -> dict[str, int] | None:
    from pivotkit.errors import ConfigError

    if text is None:
        return None
    calls, _, period = text.partition("/")
    if not (calls.isdigit() and period.isdigit()):
        raise ConfigError(option, f"{text!r} is not CALLS/SECONDS (e.g. 5/10)")
    return {"calls": int(calls), "period": int(period)}


def _print_keys(keys: dict[str, str]) -> None:
    """New keys, once, on stdout only (never in a log or on stderr)."""
    for setting, key in keys.items():
        click.echo(f"{setting} {key}")


def _demo_note(edited: Any, name: str) -> None:
    if edited.demo_keys:
        click.echo(
            f"note: {edited.path} says demo_keys = true, but the keys of {name!r} are not "
            "demo keys: `pivotkit serve` shows that file's keys in clear and the secret "
            "scanner flags them; use a file without demo_keys for private keys",
            err=True,
        )


@main.group()
def accounts() -> None:
    """Edit a mock accounts file (the format of fixtures/accounts.toml) safely.

    Every write is atomic and checked: comments and the other accounts stay as written, and
    the result must read back as meant. New keys are printed once on stdout; passwords are
    read from a prompt or stdin, never from the command line. A running mock picks the
    changes up on restart or POST /__pivot/reload.
    """


@accounts.command("list")
@_file_option("The accounts file.")
@schemas_option()
def list_accounts(path: Path, schemas: Path | None) -> None:
    """The accounts of the file: rights and limits, never keys nor password hashes."""
    from pivotkit.accounts import load_accounts
    from pivotkit.contract import Contract

    loaded = load_accounts(path, Contract.load(schemas).operations)
    for account in loaded.accounts:
        info = account.describe()
        limits = ", ".join(
            f"{label} {info[key]['calls']}/{info[key]['period']} s"
            for key, label in (("rateLimit", "rate"), ("quota", "quota"))
            if info[key]
        )
        click.echo(
            f"{account.name:<12} operations {','.join(info['operations'])}  "
            f"fields {','.join(info['fields'])}"
            + (f"  withheld {','.join(info['withheld'])}" if info["withheld"] else "")
            + (f"  {limits}" if limits else "")
            + ("" if account.password_hash else "  (no portal password)")
        )


@accounts.command("add")
@click.argument("name")
@_file_option("The accounts file (created if missing).")
@click.option(
    "--operation",
    "operations",
    multiple=True,
    metavar="OPERATION_ID",
    help="An operation it may call (repeatable; default: every one).",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="PATH",
    help="A field it may see: /credits or credits.character (repeatable; default: all).",
)
@click.option(
    "--withheld",
    multiple=True,
    metavar="PATH",
    help="A field removed from what it sees (repeatable).",
)
@click.option("--rate-limit", metavar="CALLS/SECONDS", help="e.g. 5/10: then 429.")
@click.option("--quota", metavar="CALLS/SECONDS", help="e.g. 30/3600: then the quota 403.")
@click.option("--no-password", is_flag=True, help="No portal login for it (no password is asked).")
@click.option("--force", is_flag=True, help="Replace an account of that name (new keys).")
@schemas_option()
def add(
    name: str,
    path: Path,
    operations: tuple[str, ...],
    fields: tuple[str, ...],
    withheld: tuple[str, ...],
    rate_limit: str | None,
    quota: str | None,
    no_password: bool,
    force: bool,
    schemas: Path | None,
) -> None:
    """Add account NAME with two new keys (printed once on stdout) and a portal password
    (asked, or one line of stdin; --no-password for none)."""
    from pivotkit.accounts_editor import hash_password, new_key
    from pivotkit.errors import AccountExists

    edited = _open(path, schemas, create=True)
    existed = edited.index(name) is not None
    if existed and not force:
        raise AccountExists(path, name)  # before asking for a password
    limits = {"rate_limit": _limit(rate_limit, "--rate-limit"), "quota": _limit(quota, "--quota")}
    table: dict[str, Any] = {"name": name}
    if not no_password:
        table["password_hash"] = hash_password(_read_password())
    taken = edited.keys_in_use()  # the replaced account's too: --force gives new keys
    keys = {"primary_key": new_key(taken)}
    keys["secondary_key"] = new_key(taken | {keys["primary_key"]})
    table.update(keys)
    table["operations"] = list(operations) or ["*"]
    table["fields"] = list(fields) or ["*"]
    if withheld:
        table["withheld"] = list(withheld)
    table.update({k: v for k, v in limits.items() if v is not None})
    created = edited.original is None
    edited.add(table, force=force)
    edited.save()
    _print_keys(keys)
    verb = "created with" if created else "replaced in" if existed else "added to"
    click.echo(f"account {name!r} {verb} {path}", err=True)
    _demo_note(edited, name)


@accounts.command("new-keys")
@click.argument("name")
@_file_option("The accounts file.")
@click.option(
    "--slot",
    type=click.Choice(["primary", "secondary", "both"]),
    default="both",
    show_default=True,
    help="Which key to replace.",
)
@schemas_option()
def new_keys(name: str, path: Path, slot: str, schemas: Path | None) -> None:
    """Give account NAME new keys (printed once on stdout); the old ones stop working when
    the mock reloads."""
    from pivotkit.accounts_editor import new_key

    edited = _open(path, schemas)
    taken = edited.keys_in_use()
    keys: dict[str, str] = {}
    for chosen in ("primary", "secondary") if slot == "both" else (slot,):
        keys[f"{chosen}_key"] = new_key(taken | set(keys.values()))
    edited.set(name, keys)
    edited.save()
    _print_keys(keys)
    click.echo(f"new {slot} key{'s' if slot == 'both' else ''} of {name!r} in {path}", err=True)
    _demo_note(edited, name)


@accounts.command("hash-password")
@click.argument("name", required=False)
@_file_option("The accounts file (with NAME).")
@schemas_option()
def hash_password_command(name: str | None, path: Path, schemas: Path | None) -> None:
    """The password_hash of a portal password (asked, or one line of stdin): set as NAME's
    in the accounts file, or printed on stdout without NAME."""
    from pivotkit.accounts_editor import hash_password

    if name is None:
        click.echo(hash_password(_read_password()))
        return
    from pivotkit.errors import UnknownAccount

    edited = _open(path, schemas)
    if edited.index(name) is None:  # before asking for the password
        raise UnknownAccount(name, (str(t.get("name")) for t in edited.accounts))
    edited.set(name, {"password_hash": hash_password(_read_password())})
    edited.save()
    click.echo(f"portal password of {name!r} set in {path}", err=True)
