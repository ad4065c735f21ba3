"""Timelines at run time: the data as of a step, and the updates operation answered from it.

A timeline is played from step 1 once started (not started, it changes nothing). At step k the
fixtures of steps k, k-1, ..., 1 are found before the ordinary ones (a later step wins), and the
updates operation (the contract's ``x-pivot-role: updates``) reports, for the date-time asked,
the items of every step up to k published after it (``at`` later than the date-time; both are
written alike, so they compare as text), one per channel/day (the latest step's), or the
empty-200. Current steps live in the shared state (SQLite or Redis), shared by every worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mockserver.backend import Backend
from mockserver.corpus import load_fixtures
from mockserver.routing import Call
from mockserver.state import SharedState
from mockserver.wire import Prepared
from pivotkit.accounts import Account
from pivotkit.contract import Contract
from pivotkit.errors import FixtureError, ScenarioError
from pivotkit.fixtures import Exchange, FixtureSet, Request, Response
from pivotkit.operations import Operation
from pivotkit.scenarios import Timeline

_CACHE = 256  # prepared updates answers kept (per date-time, account and steps)


class Timelines:
    """Every timeline of the scenarios file, with its steps' fixtures loaded."""

    def __init__(
        self, state: SharedState, contract: Contract, timelines: tuple[Timeline, ...]
    ) -> None:
        self.state = state
        self.contract = contract
        self.specs = {t.name: t for t in timelines}
        self._sets: dict[str, list[FixtureSet]] = {}
        for timeline in timelines:
            self._sets[timeline.name] = [
                self._load(timeline, i) for i in range(len(timeline.steps))
            ]
        self.steps: Mapping[str, int] = MappingProxyType({})
        self._cache: dict[tuple[Any, ...], Prepared] = {}

    def _load(self, timeline: Timeline, index: int) -> FixtureSet:
        step = timeline.steps[index]
        if step.fixtures is None:
            return FixtureSet(
                (),
                None,
                default_lang=self.contract.conventions.default_lang,
                lang_parameter=self.contract.conventions.lang_parameter,
            )
        origin = f"timeline {timeline.name!r} step {index + 1} ({step.name})"
        if not step.fixtures.is_dir():
            raise ScenarioError(origin, f"{step.fixtures} is not a folder of fixtures")
        try:
            fixtures, _ = load_fixtures(step.fixtures, self.contract, strict=True)
        except FixtureError as exc:
            raise ScenarioError(origin, str(exc)) from None
        return fixtures

    @property
    def active(self) -> bool:
        """Whether any timeline is started."""
        return bool(self.steps)

    def load(self) -> None:
        """Read the current steps (after a change announced by the counter)."""
        steps = self.state.timeline_steps()
        self.steps = MappingProxyType({n: s for n, s in steps.items() if n in self.specs})
        self._cache.clear()

    # -- changing the step ---------------------------------------------------------------------

    def state_of(self, name: str) -> dict[str, Any]:
        """Where a timeline is: its step (0: not started), the step's name and time."""
        timeline = self._timeline(name)
        number = self.state.timeline_steps().get(name, 0)
        step = timeline.step(number) if number else None
        return {
            "name": name,
            "description": timeline.description,
            "step": number,
            "steps": len(timeline.steps),
            "stepName": None if step is None else step.name,
            "at": None if step is None else step.at,
            "names": [s.name for s in timeline.steps],
        }

    def _timeline(self, name: str) -> Timeline:
        timeline = self.specs.get(name)
        if timeline is None:
            known = ", ".join(sorted(self.specs)) or "none"
            raise ScenarioError(f"timeline {name!r}", f"no such timeline (known: {known})")
        return timeline

    def go(self, name: str, number: int | None = None) -> dict[str, Any]:
        """Go to step ``number`` (0: not started), or to the next step when None."""
        timeline = self._timeline(name)

        def target(current: int) -> int:
            step = current + 1 if number is None else number
            if number is None and current >= len(timeline.steps):
                raise ScenarioError(
                    f"timeline {name!r}",
                    f"at its last step ({current} of {len(timeline.steps)}); reset it or go to a "
                    "step by number",
                )
            if not 0 <= step <= len(timeline.steps):
                raise ScenarioError(
                    f"timeline {name!r}",
                    f"has steps 1 to {len(timeline.steps)} (0: not started), not {step}",
                )
            return step

        self.state.move_timeline(name, target)
        return self.state_of(name)

    def reset(self) -> None:
        """Every timeline back to not started."""
        self.state.reset_timelines()

    # -- answering -----------------------------------------------------------------------------

    def match(self, call: Call) -> tuple[Exchange, str] | None:
        """The fixture of the latest step (up to the current one) that answers the call."""
        for name, number in sorted(self.steps.items()):
            sets = self._sets[name]
            for index in range(number - 1, -1, -1):
                found = sets[index].match(call.method, call.path, call.lang)
                if found is not None:
                    step = self.specs[name].steps[index]
                    return found, f"timeline {name} step {index + 1} ({step.name})"
        return None

    def updates(
        self, operation: Operation, params: Mapping[str, str], account: Account, backend: Backend
    ) -> tuple[Prepared, str] | None:
        """The updates operation's answer for the date-time asked (None: not that operation)."""
        updates = self.contract.conventions.updates
        if updates is None or operation.operation_id != updates.operation_id:
            return None
        since = params.get(updates.since_parameter, "")
        label = ", ".join(
            f"timeline {n} step {k} ({self.specs[n].step(k).name})"
            for n, k in sorted(self.steps.items())
        )
        key = (
            since,
            account.name if account.restricted else None,
            tuple(sorted(self.steps.items())),
        )
        prepared = self._cache.get(key)
        if prepared is None:
            prepared = self._updates_answer(operation, since, account, backend)
            if len(self._cache) >= _CACHE:
                self._cache.clear()
            self._cache[key] = prepared
        return prepared, f"{label}: updates since {since}"

    def _updates_answer(
        self, operation: Operation, since: str, account: Account, backend: Backend
    ) -> Prepared:
        updates = self.contract.conventions.updates
        assert updates is not None
        items: dict[tuple[Any, ...], Mapping[str, Any]] = {}
        for name, number in sorted(self.steps.items()):
            for step in self.specs[name].steps[:number]:
                if step.at > since:
                    for item in step.updates:
                        items[tuple(item.get(k) for k in updates.key_fields)] = item
        if not items:
            return backend.empty
        body = self.contract.conventions.envelope.wrap(200, [dict(i) for i in items.values()])
        path = operation.expand(**{updates.since_parameter: since})
        exchange = Exchange(
            operation.operation_id,
            f"updates-since-{since}",
            Request(operation.method, path),
            Response(200, body),
            MappingProxyType({"source": "synthetic"}),
        )
        return backend.prepare_exchange(exchange, account)
