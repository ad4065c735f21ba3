"""Sequences at run time: which one a request matches, and its next answer.

Every worker holds the same list (the scenarios file's, then those added by tests); the most
recently added that matches answers (as in WireMock: a test's sequence wins over the file's,
a specific one added after a general one wins over it). Positions live in the shared state
(SQLite or Redis), so a series of answers is played once across all workers (and hosts):
"503, 503, then the fixture" gives two 503s whichever worker each request reaches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mockserver.routing import Call
from mockserver.state import SharedState
from pivotkit.accounts import Account
from pivotkit.operations import Operation
from pivotkit.scenarios import Sequence, Step, parse_sequence


def matches(
    sequence: Sequence,
    operation: Operation,
    call: Call,
    params: Mapping[str, str],
    account: Account,
) -> bool:
    """Whether a request is one the sequence answers."""
    match = sequence.match
    if match.operation != operation.operation_id:
        return False
    if match.account is not None and match.account != account.name:
        return False
    for name, value in match.params.items():
        got = params.get(name) if name in params else call.query.get(name)
        if got != value:
            return False
    return True


class Sequences:
    """The sequences every worker plays (the newest tried first), over the shared state."""

    def __init__(self, state: SharedState, declared: tuple[Sequence, ...]) -> None:
        self.state = state
        self.declared = declared
        self.active: tuple[Sequence, ...] = ()
        # a changed declaration starts again from its first answer
        state.declare_sequences(self._declared())

    def _declared(self) -> list[tuple[str, str]]:
        return [(s.name, _spec(s)) for s in self.declared]

    def load(self) -> None:
        """Read the list every worker plays (after a change announced by the counter)."""
        self.active = tuple(
            parse_sequence(json.loads(row.spec), f"sequence {row.name!r}")
            for row in self.state.sequences()
        )

    def add(self, sequence: Sequence) -> None:
        """Add a sequence (or replace the one of that name), from its first answer."""
        self.state.add_sequence(sequence.name, _spec(sequence))

    def remove(self, name: str) -> bool:
        """Remove a sequence; False when there is none of that name."""
        return self.state.remove_sequence(name)

    def reset(self) -> None:
        """Back to the declared sequences, each at its first answer."""
        self.state.reset_sequences(self._declared())

    def next(
        self, operation: Operation, call: Call, params: Mapping[str, str], account: Account
    ) -> tuple[Sequence, int, Step] | None:
        """The newest sequence the request matches, the request's number in it (1-based) and
        its answer; None when none matches. Counts the request (in every worker)."""
        for sequence in self.active:
            if not matches(sequence, operation, call, params, account):
                continue
            number = self.state.advance_sequence(sequence.name)
            if number is not None:
                return sequence, number, sequence.step_at(number - 1)
        return None

    def describe(self) -> list[dict[str, Any]]:
        """Every sequence with how many requests it has answered, in the order they are
        tried (the newest first), as JSON-ready rows."""
        out = []
        for row in self.state.sequences():
            data = json.loads(row.spec)
            sequence = parse_sequence(data, f"sequence {row.name!r}")
            out.append(
                {
                    **data,
                    "origin": row.origin,
                    "answered": row.position,
                    "length": sequence.length,
                }
            )
        return out


def _spec(sequence: Sequence) -> str:
    return json.dumps(sequence.to_dict(), ensure_ascii=False, sort_keys=True)
