"""Scenarios in the dispatch: answers chosen ahead of the fixtures, shared by every worker.

One hook in the dispatch (:meth:`Scenarios.answer`, after the key, the limits, the faults and
the parameters) asks, in order: the request's ``Prefer`` header (:mod:`preference`), the first
sequence that matches (:mod:`sequences`), then the started timelines (:mod:`timelines`) for the
data itself. With none of them, the hook costs a memory read and a dictionary lookup.

Sequences and timelines come from the scenarios file beside the fixtures
(``<fixtures>/scenarios.json``, or ``PIVOT_SCENARIOS``) and from tests (``/__pivot/`` endpoints).
A change is written to the shared state (SQLite or Redis), then announced by its scenarios
generation: every worker (of every host) reads the new state on its next request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mockserver.faults import NO_FAULT, Fault, parse_fault
from mockserver.preference import APPLIED_HEADER, PREFER_ENV, PREFER_HEADER, parse_prefer
from mockserver.routing import Call
from mockserver.sequences import Sequences
from mockserver.state import SharedState
from mockserver.timelines import Timelines
from mockserver.wire import prepare_gateway
from pivotkit.accounts import Account
from pivotkit.contract import Contract
from pivotkit.errors import ScenarioError
from pivotkit.operations import Operation
from pivotkit.scenarios import (
    SCENARIOS_FILE,
    Sequence,
    Step,
    find_example,
    load_scenarios,
    sequence_problems,
    timeline_problems,
)
from pivotkit.scenarios import (
    Scenarios as ScenariosFile,
)

if TYPE_CHECKING:
    from mockserver.backend import Backend
    from mockserver.dispatch import Answer, Dispatcher

log = logging.getLogger("pivotkit.mock")
_MOCK_HEADER = "x-pivot-mock"


def scenarios_file(setting: Path | None, fixtures_dir: Path) -> ScenariosFile:
    """The scenarios of ``setting`` (a file that must exist), else of
    ``<fixtures>/scenarios.json`` when there is one, else none."""
    path = setting if setting is not None else fixtures_dir / SCENARIOS_FILE
    if setting is None and not path.is_file():
        return ScenariosFile()
    return load_scenarios(path)


class Scenarios:
    """Prefer, sequences and timelines of one mock (see the module docstring)."""

    def __init__(
        self, state: SharedState, contract: Contract, declared: ScenariosFile, backend: Backend
    ) -> None:
        self.contract = contract
        self.declared = declared
        origin = str(declared.path or "scenarios")
        for i, sequence in enumerate(declared.sequences):
            problems = self.problems(sequence, backend)
            self._refuse(problems, origin, f"/sequences/{i}", f"sequence {sequence.name!r}: ")
        for i, timeline in enumerate(declared.timelines):
            problems = timeline_problems(timeline, contract)
            self._refuse(problems, origin, f"/timelines/{i}", f"timeline {timeline.name!r}: ")
        self.sequences = Sequences(state, declared.sequences)
        self.timelines = Timelines(state, contract, declared.timelines)
        self.state = state
        self._seen = -1

    @staticmethod
    def _refuse(problems: list[str], origin: str, at: str = "", what: str = "") -> None:
        if problems:
            pointer, _, message = problems[0].partition(": ")
            raise ScenarioError(origin, what + message, at + pointer)

    def problems(self, sequence: Sequence, backend: Backend) -> list[str]:
        """What is wrong with a sequence (see :func:`pivotkit.scenarios.sequence_problems`)."""
        return sequence_problems(sequence, self.contract, backend.fixtures)

    # -- shared state ------------------------------------------------------------------------

    def sync(self, generation: int) -> None:
        """Read sequences and timelines again when the scenarios ``generation`` moved (the
        mock's sync passes it on every request)."""
        seen = generation
        if seen != self._seen:
            self._seen = seen
            self.sequences.load()
            self.timelines.load()

    def changed(self) -> None:
        """Announce a change to every worker (this one included)."""
        self.state.scenarios_changed()

    def reset(self) -> None:
        """The declared sequences from their first answer, no test's sequence, every
        timeline not started."""
        self.sequences.reset()
        self.timelines.reset()
        self.changed()

    def add_sequence(self, sequence: Sequence, backend: Backend) -> dict[str, Any]:
        """Add (or replace) a sequence; ScenarioError says what is wrong with it."""
        self._refuse(self.problems(sequence, backend), f"sequence {sequence.name!r}")
        self.sequences.add(sequence)
        self.changed()
        return next(s for s in self.sequences.describe() if s["name"] == sequence.name)

    def remove_sequence(self, name: str) -> bool:
        gone = self.sequences.remove(name)
        self.changed()
        return gone

    def go(self, name: str, number: int | None = None) -> dict[str, Any]:
        """Move a timeline to a step (the next one when None)."""
        state = self.timelines.go(name, number)
        self.changed()
        return state

    # -- the hook --------------------------------------------------------------------------------

    def answer(
        self,
        dispatcher: Dispatcher,
        environ: Mapping[str, Any],
        operation: Operation,
        call: Call,
        params: Mapping[str, str],
        account: Account,
    ) -> Answer | None:
        """The answer a Prefer header, a sequence or a timeline chooses, or None (ordinary).
        The dispatch synced the scenarios first (:meth:`sync`, through the mock's sync)."""
        prefer = environ.get(PREFER_ENV)
        if not prefer and not self.sequences.active and not self.timelines.active:
            return None
        chosen = None
        if prefer:
            try:
                found = parse_prefer(prefer, operation)
            except ScenarioError as exc:
                return self._error(dispatcher, exc.reason)
            if found is not None:
                step, applied = found
                answer = self._resolve(dispatcher, step, operation, call, params, account, "prefer")
                if answer.via != "prefer-error":
                    answer.extra = (*answer.extra, (APPLIED_HEADER, applied))
                return answer
        if self.sequences.active:
            chosen = self.sequences.next(operation, call, params, account)
        if chosen is not None:
            sequence, number, step = chosen
            via = f"sequence {sequence.name} #{number}"
            return self._resolve(dispatcher, step, operation, call, params, account, via)
        if self.timelines.active:
            return self._data(dispatcher, operation, call, params, account, NO_FAULT, "")
        return None

    def _error(self, dispatcher: Dispatcher, message: str) -> Answer:
        from mockserver.dispatch import Answer

        conv = self.contract.conventions
        body = conv.messages.body(400, f"{PREFER_HEADER}: {message}")
        prepared = prepare_gateway(
            400, body, conv.gateway_content_type, ((_MOCK_HEADER, "prefer-error"),)
        )
        return Answer(prepared, via="prefer-error")

    def _resolve(
        self,
        dispatcher: Dispatcher,
        step: Step,
        operation: Operation,
        call: Call,
        params: Mapping[str, str],
        account: Account,
        via: str,
    ) -> Answer:
        from mockserver.dispatch import Answer

        backend = dispatcher.mock.backend
        fault = NO_FAULT if step.fault is None else parse_fault(step.fault)
        if fault.status is not None:
            prepared = dispatcher.status_answer(fault.status, fault.retry_after)
            return Answer(prepared, fault=Fault(latency_ms=fault.latency_ms), via=via)
        if step.fixture is not None:
            exchange, problem = find_example(
                backend.fixtures, operation.operation_id, step.fixture, step.status
            )
            if exchange is None:
                if via == "prefer":
                    return self._error(dispatcher, f"example={step.fixture}: {problem}")
                log.warning("%s: %s; answering the ordinary way", via, problem)
                return self._data(dispatcher, operation, call, params, account, fault, via)
            prepared = backend.prepared(exchange, account)
            return Answer(prepared, fault=fault, via=via, exchange=exchange)
        if step.status not in (None, 200):
            prepared = dispatcher.status_answer(step.status, step.retry_after or 60)
            return Answer(prepared, fault=fault, via=via)
        if step.answer == "empty":
            return Answer(backend.empty, fault=fault, via=via)
        if step.answer == "dynamic":
            generated = backend.generated(operation, call, params, account)
            return Answer(generated or backend.empty, fault=fault, via=via)
        return self._data(
            dispatcher, operation, call, params, account, fault, via, static=step.answer == "static"
        )

    def _data(
        self,
        dispatcher: Dispatcher,
        operation: Operation,
        call: Call,
        params: Mapping[str, str],
        account: Account,
        fault: Fault,
        via: str,
        *,
        static: bool = False,
    ) -> Answer:
        """The answer from the data: the started timelines, then the fixtures."""
        from mockserver.dispatch import Answer

        backend = dispatcher.mock.backend
        prefix = f"{via}: " if via else ""
        if self.timelines.active:
            updates = self.timelines.updates(operation, params, account, backend)
            if updates is not None:
                return Answer(updates[0], fault=fault, via=prefix + updates[1])
            found = self.timelines.match(call)
            if found is not None:
                exchange, label = found
                prepared = backend.prepared(exchange, account)
                return Answer(prepared, fault=fault, via=prefix + label, exchange=exchange)
        if static:
            recorded = backend.match(call)
            if recorded is None:
                return Answer(backend.empty, fault=fault, via=prefix + "empty")
            prepared = backend.prepared(recorded, account)
            return Answer(prepared, fault=fault, via=prefix + "fixture", exchange=recorded)
        answer = dispatcher.fixture_answer(operation, call, params, account, fault)
        answer.via = prefix + answer.via
        return answer
