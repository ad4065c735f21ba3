"""The ``drift`` command group: ``pivotkit drift`` runs a drift, ``pivotkit drift history``
shows the runs a history kept.

``drift`` is a click group invoked without a subcommand (``invoke_without_command``): its own
options run a drift exactly as a plain command would; ``history`` is its one subcommand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from pivotkit.cli.options import fixtures_option, main, max_wait_option, rate_option, schemas_option


@main.group(invoke_without_command=True, subcommand_metavar="[history [OPTIONS]]")
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
@rate_option(5.0)
@max_wait_option(120.0)
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
    "--html",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A self-contained HTML page: summary, chart of findings per run, findings by operation.",
)
@click.option(
    "--history",
    default=None,
    is_flag=False,
    flag_value="",
    metavar="[FILE]",
    help="Keep every run in this SQLite file and compare with earlier ones (bare --history: "
    "$PIVOT_DRIFT_HISTORY, else ./.pivotkit/drift-history.sqlite).",
)
@click.option(
    "--history-keep",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Runs of each target the history keeps (the oldest go first).",
)
@click.option(
    "--alert-on",
    type=click.Choice(["breaking", "new", "any"]),
    default="breaking",
    show_default=True,
    help="When the webhook fires and the exit is 1: a breaking finding, a new breaking "
    "finding (not in the last run of the history), or any finding.",
)
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Date for deviation expiry (default: today).",
)
@click.pass_context
def drift(ctx: click.Context, /, today: Any, **options: Any) -> None:
    """Replay requests against a target and report drift from the contract.

    Every answer is validated in strict mode, compared with the recorded answer of the same
    request and with the earlier runs of --history, and merged into an observed schema per
    operation; findings (breaking, warning, info) say where, what kind, what the contract
    expected and what came back, and with --history whether each is new, ongoing or
    resolved. Exit 0: no alert; 1: an alert (--alert-on, by default a breaking finding);
    2: usage or configuration error; 3: target unreachable or out of quota.

    `pivotkit drift history` lists the runs of a history and the life of its findings.
    """
    if ctx.invoked_subcommand is not None:  # `drift --history FILE history` reads FILE
        given = click.core.ParameterSource.COMMANDLINE
        ctx.obj = {
            name: options[name]
            for name in ("history", "target")
            if ctx.get_parameter_source(name) == given and options[name]
        }
        return
    from pivotkit.drift import DriftOptions, run_drift

    raise SystemExit(
        run_drift(DriftOptions(today=today.date() if today else None, **options), echo=click.echo)
    )


@drift.command("history")
@click.pass_context
@click.option(
    "--history",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The history file (default: $PIVOT_DRIFT_HISTORY, else ./.pivotkit/drift-history.sqlite).",
)
@click.option("--target", default=None, help="Only runs against this target (as reported).")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Runs shown."
)
@click.option("--operation", default=None, help="Show the life of this operation's findings.")
@click.option("--pointer", default=None, help="... of the findings at this JSON pointer.")
@click.option("--kind", default=None, help="... of the findings of this kind.")
@click.option(
    "--schema",
    "schema_of",
    default=None,
    metavar="OPERATION",
    help="Print the observed schema of OPERATION in --run (default: the last run).",
)
@click.option("--run", "run_id", type=int, default=None, help="The run of --schema.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def history(
    ctx: click.Context,
    /,
    path: Path | None,
    target: str | None,
    limit: int,
    operation: str | None,
    pointer: str | None,
    kind: str | None,
    schema_of: str | None,
    run_id: int | None,
    as_json: bool,
) -> None:
    """List the runs a drift history kept, or the life of findings (new, ongoing, resolved).

    Exit 2 when the file is missing or not a drift history.
    """
    from pivotkit.drift.history import History, default_history_path

    above = ctx.obj or {}
    path = path or (Path(above["history"]) if "history" in above else None)
    target = target or above.get("target")
    with History(path or default_history_path(os.environ), create=False) as store:
        if schema_of is not None:
            _print_schema(store, schema_of, run_id, target)
        elif operation or pointer or kind:
            _print_life(store, target, operation, pointer, kind, as_json)
        else:
            _print_runs(store, target, limit, as_json)


def _print_runs(store: Any, target: str | None, limit: int, as_json: bool) -> None:
    runs = store.runs(target, limit=limit)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in runs], indent=2, default=dict))
        return
    if not runs:
        click.echo("no run kept yet")
        return
    click.echo("run  started               breaking warning info  new resolved alert  target")
    for r in runs:
        s = r.summary
        click.echo(
            f"{r.id:>3}  {r.started:<20}  {s.get('breaking', 0):>8} {s.get('warning', 0):>7} "
            f"{s.get('info', 0):>4} {s.get('new', 0):>4} {s.get('resolved', 0):>8} "
            f"{'yes' if r.alerted else 'no':>5}  {r.target} ({r.answers} answers)"
        )


def _print_life(
    store: Any,
    target: str | None,
    operation: str | None,
    pointer: str | None,
    kind: str | None,
    as_json: bool,
) -> None:
    lives = store.life(target, operation=operation, pointer=pointer, kind=kind)
    if as_json:
        out = [
            {
                "operation": op,
                "pointer": ptr,
                "kind": knd,
                "runs": [{"run": r.id, "started": r.started, "status": st} for r, st in events],
            }
            for (op, ptr, knd), events in sorted(lives.items())
        ]
        click.echo(json.dumps(out, indent=2))
        return
    if not lives:
        click.echo("no such finding in the history")
        return
    for (op, ptr, knd), events in sorted(lives.items()):
        click.echo(f"{op} {ptr or '/'} {knd}")
        for run, status in events:
            click.echo(f"  run {run.id} ({run.started}): {status}")


def _print_schema(store: Any, operation: str, run_id: int | None, target: str | None) -> None:
    if run_id is None:
        runs = store.runs(target, limit=1)
        if not runs:
            raise click.ClickException("no run kept yet")
        run_id = runs[0].id
    schema = store.observed_schema(run_id, operation)
    if schema is None:
        raise click.ClickException(f"run {run_id} has no observed schema of {operation}")
    click.echo(json.dumps(schema, indent=2, ensure_ascii=False))
