"""The ``pivotkit`` command group, its error handling and the options every command shares.

Every command ends the same way on an error pivotkit raises: one line naming what to fix, and
the exit code :func:`pivotkit.errors.exit_code` gives (1 failed, 2 usage or configuration,
3 unreachable or out of quota, 130 interrupted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pivotkit.errors import PivotError, exit_code

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    """The command group: every PivotError ends the command with ``Error: <message>`` on
    stderr and the exit code :func:`~pivotkit.errors.exit_code` maps it to."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PivotError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exit_code(exc))


def fixtures_option(
    help: str = "Fixtures directory (default: $PIVOT_FIXTURES, else the bundled fixtures/).",
) -> Callable[[F], F]:
    """The ``--fixtures DIR`` option, as every command spells it."""
    return click.option(
        "--fixtures",
        "fixtures_dir",
        default=None,
        help=help,
        type=click.Path(path_type=Path, file_okay=False),
    )


def schemas_option(dest: str = "schemas") -> Callable[[F], F]:
    """The ``--schemas DIR`` option, as every command spells it."""
    return click.option(
        "--schemas",
        dest,
        default=None,
        type=click.Path(path_type=Path, file_okay=False),
        help="Schemas directory (default: $PIVOT_SCHEMAS, else the bundled schemas/).",
    )


def rate_option(default: float | None = None) -> Callable[[F], F]:
    """The ``--rate R`` option of every command that calls the upstream (the client's pacer)."""
    return click.option(
        "--rate",
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=default is not None,
        help="At most this many calls started per second.",
    )


def max_wait_option(default: float) -> Callable[[F], F]:
    """The ``--max-wait S`` option: the longest Retry-After of a 429 the client waits."""
    return click.option(
        "--max-wait",
        type=click.FloatRange(min=0),
        default=default,
        show_default=True,
        help="Longest wait on a 429 Retry-After, in seconds.",
    )


@click.group(cls=_Group)
@click.version_option(package_name="pivotkit")
def main() -> None:
    """Contract tests, mock server and drift alerts for the Plurimedia Pivot API."""
