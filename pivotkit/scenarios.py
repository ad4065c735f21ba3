"""Scenarios as data: sequences (scripted answers) and timelines (states of the data over time).

A scenarios file sits beside the fixtures (``<fixtures>/scenarios.json``, format:
``pivotkit/scenarios-file.schema.json``). The mock plays it (``mockserver/scenarios.py``);
``pivotkit check`` checks it against the contract; tests add sequences at run time in the same
format (:func:`parse_sequence`, :func:`answer_data` for the shorthand).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from pivotkit.errors import ScenarioError
from pivotkit.fixtures import read_json_file
from pivotkit.pointers import to_pointer
from pivotkit.structure import message_of

if TYPE_CHECKING:
    from pivotkit.contract import Contract
    from pivotkit.fixtures import Exchange, FixtureSet
    from pivotkit.operations import Operation

SCENARIOS_FILE = "scenarios.json"
SCHEMA_PATH = Path(__file__).with_name("scenarios-file.schema.json")
ANSWER_KINDS = ("fixture", "empty", "dynamic", "static")
THEN = ("last", "cycle", "fixture")
WAIT_STATUSES = (403, 429)  # the gateway's answers that announce a wait (Retry-After)


@cache
def _validator(definition: str | None = None) -> Draft202012Validator:
    """The file's validator, or one of its definitions' (``sequence``)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    if definition is not None:
        schema = {"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}
    return Draft202012Validator(schema)


def _frozen(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Match:
    """Which requests a sequence answers: an operation, and optionally parameter values (path
    or query, compared as the request's text) and an account."""

    operation: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    account: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operation": self.operation}
        if self.params:
            out["params"] = dict(self.params)
        if self.account is not None:
            out["account"] = self.account
        return out


@dataclass(frozen=True)
class Step:
    """One scripted answer: a status, a named fixture, an answer kind, and/or a fault spec."""

    status: int | None = None
    retry_after: int | None = None
    fixture: str | None = None
    answer: str | None = None
    fault: str | None = None
    times: int = 1

    @property
    def ordinary(self) -> bool:
        """Whether this is the mock's ordinary answer, unchanged."""
        return (
            self.status in (None, 200)
            and self.fixture is None
            and self.answer in (None, "fixture")
            and self.fault is None
        )

    def label(self) -> str:
        """A few words for the journal and messages: ``503``, ``fixture 7520``, ``empty``."""
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.retry_after is not None:
            parts.append(f"retry-after {self.retry_after}")
        if self.fixture is not None:
            parts.append(f"fixture {self.fixture}")
        if self.answer is not None:
            parts.append(self.answer)
        if self.fault is not None:
            parts.append(f"fault {self.fault}")
        return " ".join(parts) or "fixture"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (
            ("status", self.status),
            ("retryAfter", self.retry_after),
            ("fixture", self.fixture),
            ("answer", self.answer),
            ("fault", self.fault),
        ):
            if value is not None:
                out[key] = value
        if self.times != 1:
            out["times"] = self.times
        return out


ORDINARY = Step(answer="fixture")


@dataclass(frozen=True)
class Sequence:
    """A scripted series of answers for the requests that match; ``then`` says what follows
    the last one: ``last`` (it repeats), ``cycle`` (start again), ``fixture`` (ordinary)."""

    name: str
    match: Match
    answers: tuple[Step, ...]
    then: str = "last"
    description: str = ""

    @property
    def length(self) -> int:
        """How many requests the answers cover (``times`` counted)."""
        return sum(step.times for step in self.answers)

    def step_at(self, index: int) -> Step:
        """The answer to the request number ``index`` (0-based) that matched."""
        if index >= self.length:
            if self.then == "fixture":
                return ORDINARY
            index = self.length - 1 if self.then == "last" else index % self.length
        for step in self.answers:
            if index < step.times:
                return step
            index -= step.times
        return self.answers[-1]  # pragma: no cover - index < length always lands above

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "match": self.match.to_dict(),
            "answers": [s.to_dict() for s in self.answers],
            "then": self.then,
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class TimelineStep:
    """One state of the data: when its changes are published (``at``, written like the updates
    operation's date-time), the fixtures that change, and the items the updates operation
    reports for it."""

    name: str
    at: str
    fixtures: Path | None = None
    updates: tuple[Mapping[str, Any], ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Timeline:
    """A named series of states of the data, played one step at a time."""

    name: str
    steps: tuple[TimelineStep, ...]
    description: str = ""

    def step(self, number: int) -> TimelineStep:
        """Step ``number`` (1-based)."""
        return self.steps[number - 1]


@dataclass(frozen=True)
class Scenarios:
    """The sequences and timelines of one file (``path`` None: none was found)."""

    path: Path | None = None
    sequences: tuple[Sequence, ...] = ()
    timelines: tuple[Timeline, ...] = ()

    def timeline(self, name: str) -> Timeline:
        """The timeline of that name; ScenarioError lists the known ones."""
        for timeline in self.timelines:
            if timeline.name == name:
                return timeline
        known = ", ".join(t.name for t in self.timelines) or "none"
        where = self.path if self.path is not None else "the scenarios"
        raise ScenarioError(f"timeline {name!r}", f"no such timeline in {where} (known: {known})")


# -- reading ---------------------------------------------------------------------------------


def _check_shape(data: Any, origin: str, definition: str | None = None) -> None:
    error = best_match(_validator(definition).iter_errors(data))
    if error is not None:
        raise ScenarioError(origin, message_of(error), to_pointer(error.absolute_path))


def _step(data: Mapping[str, Any], origin: str, pointer: str) -> Step:
    step = Step(
        status=data.get("status"),
        retry_after=data.get("retryAfter"),
        fixture=data.get("fixture"),
        answer=data.get("answer"),
        fault=data.get("fault"),
        times=data.get("times", 1),
    )
    chosen = [k for k in ("status", "fixture", "answer") if data.get(k) is not None]
    if "answer" in chosen and len(chosen) > 1:
        raise ScenarioError(
            origin, f"give answer or {' and '.join(chosen[:-1])}, not both", pointer
        )
    if step.retry_after is not None and step.status not in WAIT_STATUSES:
        raise ScenarioError(
            origin,
            "retryAfter goes with status 429 or 403 (the answers that announce a wait)",
            pointer,
        )
    if step.fault is not None and step.status is not None:
        raise ScenarioError(
            origin, "give the status in the fault spec (status=503) or as status, not both", pointer
        )
    return step


def _sequence(data: Mapping[str, Any], origin: str, pointer: str) -> Sequence:
    match = data["match"]
    return Sequence(
        name=data["name"],
        match=Match(match["operation"], _frozen(match.get("params")), match.get("account")),
        answers=tuple(
            _step(a, origin, f"{pointer}/answers/{i}") for i, a in enumerate(data["answers"])
        ),
        then=data.get("then", "last"),
        description=data.get("description", ""),
    )


def _timeline(data: Mapping[str, Any], origin: str, pointer: str, base: Path) -> Timeline:
    steps = []
    for i, raw in enumerate(data["steps"]):
        folder = raw.get("fixtures")
        steps.append(
            TimelineStep(
                name=raw["name"],
                at=raw["at"],
                fixtures=None if folder is None else (base / folder),
                updates=tuple(MappingProxyType(dict(u)) for u in raw.get("updates", ())),
                description=raw.get("description", ""),
            )
        )
        if i and steps[-1].at <= steps[-2].at:
            raise ScenarioError(
                origin,
                f"step {raw['name']!r} is at {raw['at']}, not after the step before it "
                f"({steps[-2].at}): steps go forward in time",
                f"{pointer}/steps/{i}/at",
            )
    _unique((s.name for s in steps), origin, f"{pointer}/steps", "step")
    return Timeline(data["name"], tuple(steps), data.get("description", ""))


def _unique(names: Iterable[str], origin: str, pointer: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ScenarioError(origin, f"two {what}s are named {name!r}", f"{pointer}/{i}/name")
        seen.add(name)


def parse_scenarios(data: Any, origin: str, base: Path) -> Scenarios:
    """Scenarios from a decoded file; folders are relative to ``base``. ScenarioError names
    the origin and the JSON pointer of the first problem."""
    _check_shape(data, origin)
    sequences = tuple(
        _sequence(s, origin, f"/sequences/{i}") for i, s in enumerate(data.get("sequences", []))
    )
    timelines = tuple(
        _timeline(t, origin, f"/timelines/{i}", base)
        for i, t in enumerate(data.get("timelines", []))
    )
    _unique((s.name for s in sequences), origin, "/sequences", "sequence")
    _unique((t.name for t in timelines), origin, "/timelines", "timeline")
    return Scenarios(Path(origin), sequences, timelines)


def load_scenarios(path: Path) -> Scenarios:
    """Read a scenarios file; ScenarioError names the file and the line or JSON pointer."""
    return parse_scenarios(read_json_file(path, ScenarioError), str(path), path.parent)


def parse_sequence(data: Any, origin: str = "sequence") -> Sequence:
    """One sequence in the file's format (what a test or ``POST /__pivot/sequences`` sends)."""
    _check_shape(data, origin, "sequence")
    return _sequence(data, origin, "")


def answer_data(value: Any) -> dict[str, Any]:
    """An answer in the file's format from the shorthand tests write: ``503`` (a status),
    ``200`` or ``"fixture"`` (the ordinary answer), ``"empty"``, ``"dynamic"``, ``"static"``,
    an x-pivot-fault spec (``"status=429,retry-after=2"``, ``"latency=2s"``), or a mapping
    in the file's format (``{"fixture": "7520"}``; ``retry_after`` is read as ``retryAfter``)."""
    if isinstance(value, bool):
        raise ScenarioError("answer", f"{value!r} is not an answer")
    if isinstance(value, int):
        return {"answer": "fixture"} if value == 200 else {"status": value}
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return answer_data(int(text))
        return {"answer": text} if text in ANSWER_KINDS else {"fault": text}
    if isinstance(value, Mapping):
        return {("retryAfter" if k == "retry_after" else str(k)): v for k, v in value.items()}
    raise ScenarioError("answer", f"{value!r} is not an answer (a status, a word, a mapping)")


# -- against the contract ----------------------------------------------------------------------


def status_problem(operation: Operation, status: int) -> str | None:
    """Why ``status`` cannot be scripted for the operation (None: it can): a status is 200,
    one the operation declares, or a 5xx (the backend or the gateway failing)."""
    if status == 200 or status in operation.statuses or 500 <= status <= 599:
        return None
    declared = ", ".join(str(s) for s in operation.statuses)
    return f"{operation.operation_id} does not answer {status} (declared: {declared}; or a 5xx)"


def find_example(
    fixtures: FixtureSet, operation_id: str, name: str, status: int | None = None
) -> tuple[Exchange | None, str | None]:
    """The fixture of that name of the operation, or why there is none: no such name, or it
    answers another status than ``status``."""
    named = getattr(fixtures, "named", None)  # an indexed set finds one file at once
    found = (
        named(operation_id, name)
        if callable(named)
        else next((ex for ex in fixtures.for_operation(operation_id) if ex.name == name), None)
    )
    if found is None:
        names = sorted(ex.name for ex in fixtures.for_operation(operation_id))
        listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        return None, f"{operation_id} has no fixture {name!r} (its fixtures: {listed or 'none'})"
    if status is not None and found.response.status != status:
        return None, f"fixture {name!r} answers {found.response.status}, not {status}"
    return found, None


def _fault_problem(spec: str) -> str | None:
    from mockserver.faults import parse_fault  # the mock's own parser, so both agree
    from pivotkit.errors import FaultSpecError

    try:
        parse_fault(spec)
    except FaultSpecError as exc:
        return exc.reason
    return None


def sequence_problems(
    sequence: Sequence, contract: Contract, fixtures: FixtureSet | None = None
) -> list[str]:
    """What is wrong with a sequence (``/pointer: message`` each): an operation, a parameter
    name or a status the contract does not have, a fault spec that does not parse, a fixture
    the operation does not have (when ``fixtures`` are given)."""
    op = contract.operations.get(sequence.match.operation)
    if op is None:
        known = ", ".join(sorted(contract.operations))
        return [f"/match/operation: unknown operation {sequence.match.operation!r}; known: {known}"]
    names = {p.name for p in op.parameters}
    out = [
        f"/match/params/{name}: {op.operation_id} has no parameter {name!r} "
        f"(its parameters: {', '.join(sorted(names))})"
        for name in sequence.match.params
        if name not in names
    ]
    for i, step in enumerate(sequence.answers):
        problem = None if step.status is None else status_problem(op, step.status)
        if problem:
            out.append(f"/answers/{i}/status: {problem}")
        problem = None if step.fault is None else _fault_problem(step.fault)
        if problem:
            out.append(f"/answers/{i}/fault: {problem}")
        if step.fixture is not None and fixtures is not None:
            problem = find_example(fixtures, op.operation_id, step.fixture, step.status)[1]
            if problem:
                out.append(f"/answers/{i}/fixture: {problem}")
    return out


def timeline_problems(timeline: Timeline, contract: Contract) -> list[str]:
    """What in a timeline the contract contradicts: step times that are not a valid date-time
    of the updates operation, update items that break its 200 schema, a channel/day reported
    twice in one step, fixture folders that do not exist."""
    updates = contract.conventions.updates
    out: list[str] = []
    for i, step in enumerate(timeline.steps):
        where = f"/steps/{i}"
        if step.fixtures is not None and not step.fixtures.is_dir():
            out.append(f"{where}/fixtures: {step.fixtures} is not a folder")
        if updates is None:
            if step.updates:
                out.append(
                    f"{where}/updates: the contract marks no operation x-pivot-role: updates"
                )
            continue
        op = contract.operation(updates.operation_id)
        out += [
            f"{where}/at: {p}" for p in op.parameter_problems({updates.since_parameter: step.at})
        ]
        if step.fixtures is not None and (step.fixtures / updates.operation_id).is_dir():
            out.append(
                f"{where}/fixtures: {updates.operation_id} fixtures are not used in a timeline "
                "(the step's updates answer it): remove the folder"
            )
        envelope = contract.conventions.envelope
        body = envelope.wrap(200, [dict(u) for u in step.updates])
        payload = "/" + envelope.payload_field
        out += [
            f"{where}/updates{v.pointer.removeprefix(payload)}: {v.message}"
            for v in contract.validate(updates.operation_id, 200, body)
        ]
        keys = [tuple(u.get(k) for k in updates.key_fields) for u in step.updates]
        out += [
            f"{where}/updates/{j}: {'/'.join(map(str, key))} is reported twice in this step"
            for j, key in enumerate(keys)
            if key in keys[:j]
        ]
    return out


__all__ = [
    "SCENARIOS_FILE",
    "Match",
    "Scenarios",
    "Sequence",
    "Step",
    "Timeline",
    "TimelineStep",
    "answer_data",
    "load_scenarios",
    "parse_sequence",
]
