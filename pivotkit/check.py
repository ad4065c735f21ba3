"""Checking the fixture corpus: file format, then each body against the contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pivotkit.contract import Contract, Violation
from pivotkit.errors import FixtureError, ScenarioError
from pivotkit.fixtures import Exchange, FixtureSet, iter_fixture_files, lang_settings, read_exchange
from pivotkit.scenarios import SCENARIOS_FILE, load_scenarios, sequence_problems, timeline_problems

#: Why a fixture is refused, in the words of the mock's start-up line and ``pivotkit check``.
INVALID = "invalid file"
UNKNOWN = "unknown operation"
MISFIT = "request does not fit its operation"
UNDECLARED = "status not declared"
BREAKS = "body breaks the contract"
DUPLICATE = "duplicate"
KINDS = (INVALID, UNKNOWN, MISFIT, UNDECLARED, BREAKS, DUPLICATE)


@dataclass(frozen=True)
class FileResult:
    """What checking one fixture file found; ``kind`` names the first reason it fails (see
    :data:`KINDS`), empty when it passes."""

    path: Path
    problems: tuple[str, ...] = ()
    violations: tuple[Violation, ...] = field(default=())
    kind: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.violations

    def lines(self) -> list[str]:
        """Human-readable lines: ``file: ok`` or one ``file pointer: message`` per problem."""
        if self.ok:
            return [f"ok    {self.path}"]
        out = [f"FAIL  {self.path}: {p}" for p in self.problems]
        out += [f"FAIL  {self.path} {v.pointer or '/'}: {v.message}" for v in self.violations]
        return out


def check_exchange(contract: Contract, exchange: Exchange) -> FileResult:
    """Check one loaded exchange: operation known, path fits, status declared, body valid."""
    path = exchange.file or Path(exchange.name)
    op = contract.operations.get(exchange.operation_id)
    if op is None:
        return FileResult(
            path,
            (
                f"unknown operation {exchange.operation_id!r} (directory name); "
                f"known: {', '.join(sorted(contract.operations))}",
            ),
            kind=UNKNOWN,
        )
    problems: list[str] = []
    if exchange.request.method != op.method:
        problems.append(
            f"/request/method: {exchange.request.method} but {op.operation_id} is {op.method}"
        )
    params = op.match(exchange.request.path)
    if params is None:
        problems.append(f"/request/path: {exchange.request.path!r} does not fit {op.path}")
    status = exchange.response.status
    if status not in op.statuses:
        problems.append(
            f"/response/status: {status} is not declared for {op.operation_id} "
            f"({', '.join(map(str, op.statuses))})"
        )
        return FileResult(path, tuple(problems), kind=MISFIT if len(problems) > 1 else UNDECLARED)
    if params is not None and status == 200:
        problems += [f"/request/path: {p}" for p in op.parameter_problems(params)]
    violations = contract.validate(op.operation_id, status, exchange.response.body)
    kind = MISFIT if problems else BREAKS if violations else ""
    return FileResult(path, tuple(problems), tuple(violations), kind)


def duplicate_results(exchanges: list[Exchange], contract: Contract) -> list[FileResult]:
    """A failed result for every exchange that answers the same request as an earlier one
    (the earlier file, in path order, is the one served)."""
    found = FixtureSet(exchanges, None, **lang_settings(contract)).duplicates()
    return [
        FileResult(
            dup.file or Path(dup.name),
            (f"answers the same request as {kept.file or kept.name}, which is served instead",),
            kind=DUPLICATE,
        )
        for dup, kept in found
    ]


def _check_files(contract: Contract, root: Path, loaded: list[Exchange]) -> list[FileResult]:
    """The fixture files under ``root``; unreadable files become failed results, and so does
    a fixture that answers the same request as an earlier one (a duplicate). ``loaded``
    receives every exchange read."""
    results = []
    passed: list[Exchange] = []
    for file in iter_fixture_files(root):
        try:
            exchange = read_exchange(file)
        except FixtureError as exc:
            results.append(FileResult(file, (invalid_reason(exc),), kind=INVALID))
            continue
        loaded.append(exchange)
        result = check_exchange(contract, exchange)
        results.append(result)
        if result.ok:
            passed.append(exchange)
    refused = {r.path: r for r in duplicate_results(passed, contract)}
    return [refused.get(r.path, r) for r in results]


def invalid_reason(error: FixtureError) -> str:
    """Where in the file and why a fixture could not be read."""
    where = f"line {error.line}" if error.line else (error.pointer or "/")
    return f"{where}: {error.reason}"


def check_directory(
    contract: Contract, root: Path, scenarios: Path | None = None
) -> list[FileResult]:
    """Check every fixture file under ``root``, then the scenarios file (``scenarios``, else
    ``root/scenarios.json`` when there is one) and its timelines' fixtures; unreadable files
    become failed results."""
    loaded: list[Exchange] = []
    results = _check_files(contract, root, loaded)
    path = scenarios if scenarios is not None else root / SCENARIOS_FILE
    if scenarios is not None or path.is_file():
        fixtures = FixtureSet(loaded, root, **lang_settings(contract))
        results += check_scenarios(contract, path, fixtures)
    return results


def check_scenarios(contract: Contract, path: Path, fixtures: FixtureSet) -> list[FileResult]:
    """The scenarios file against the contract and the fixtures, then each timeline step's
    fixtures like any other."""
    try:
        declared = load_scenarios(path)
    except ScenarioError as exc:
        where = f"line {exc.line}" if exc.line else (exc.pointer or "/")
        return [FileResult(path, (f"{where}: {exc.reason}",))]
    problems = [
        f"/sequences/{i}{problem}"
        for i, sequence in enumerate(declared.sequences)
        for problem in sequence_problems(sequence, contract, fixtures)
    ]
    problems += [
        f"/timelines/{i}{problem}"
        for i, timeline in enumerate(declared.timelines)
        for problem in timeline_problems(timeline, contract)
    ]
    results = [FileResult(path, tuple(problems))]
    for timeline in declared.timelines:
        for step in timeline.steps:
            if step.fixtures is not None and step.fixtures.is_dir():
                results += _check_files(contract, step.fixtures, [])
    return results
