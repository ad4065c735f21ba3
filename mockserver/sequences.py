"""Sequences at run time: which one a request matches, and its next answer.

Every worker holds the same list (the scenarios file's, then those added by tests); the most
recently added that matches answers (as in WireMock: a test's sequence wins over the file's,
a specific one added after a general one wins over it). Positions live in the SQLite state, so a
series of answers is played once across all workers: "503, 503, then the fixture" gives two
503s whichever worker each request reaches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mockserver.routing import Call
from mockserver.state import State
from pivotkit.accounts import Account
from pivotkit.operations import Operation
from pivotkit.scenarios import Sequence, Step, parse_sequence

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scenario_sequences (
    name TEXT PRIMARY KEY, origin TEXT NOT NULL, spec TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL)
"""
_NEXT = "(SELECT COALESCE(MAX(created), 0) + 1 FROM scenario_sequences)"


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

    def __init__(self, state: State, declared: tuple[Sequence, ...]) -> None:
        self.state = state
        self.declared = declared
        self.active: tuple[Sequence, ...] = ()
        with state.transaction() as db:
            db.execute(_SCHEMA)
            names = [s.name for s in declared]
            db.execute(
                "DELETE FROM scenario_sequences WHERE origin = 'file' AND name NOT IN "
                f"({', '.join('?' * len(names))})",
                names,
            )
            for sequence in declared:  # a changed declaration starts again from its first answer
                db.execute(
                    "INSERT INTO scenario_sequences (name, origin, spec, position, created) "
                    f"VALUES (?, 'file', ?, 0, {_NEXT}) ON CONFLICT (name) DO UPDATE SET "
                    "spec = excluded.spec, position = 0 "
                    "WHERE origin = 'file' AND spec != excluded.spec",
                    (sequence.name, _spec(sequence)),
                )

    def load(self) -> None:
        """Read the list every worker plays (after a change announced by the counter)."""
        rows = self.state.rows("SELECT name, spec FROM scenario_sequences ORDER BY created DESC")
        self.active = tuple(
            parse_sequence(json.loads(str(spec)), f"sequence {name!r}") for name, spec in rows
        )

    def add(self, sequence: Sequence) -> None:
        """Add a sequence (or replace the one of that name), from its first answer."""
        with self.state.transaction() as db:
            db.execute("DELETE FROM scenario_sequences WHERE name = ?", (sequence.name,))
            db.execute(
                "INSERT INTO scenario_sequences (name, origin, spec, position, created) "
                f"VALUES (?, 'test', ?, 0, {_NEXT})",
                (sequence.name, _spec(sequence)),
            )

    def remove(self, name: str) -> bool:
        """Remove a sequence; False when there is none of that name."""
        with self.state.transaction() as db:
            gone = db.execute("DELETE FROM scenario_sequences WHERE name = ?", (name,)).rowcount
        return bool(gone)

    def reset(self) -> None:
        """Back to the declared sequences, each at its first answer."""
        with self.state.transaction() as db:
            db.execute("DELETE FROM scenario_sequences")
            for sequence in self.declared:
                db.execute(
                    "INSERT INTO scenario_sequences (name, origin, spec, position, created) "
                    f"VALUES (?, 'file', ?, 0, {_NEXT})",
                    (sequence.name, _spec(sequence)),
                )

    def next(
        self, operation: Operation, call: Call, params: Mapping[str, str], account: Account
    ) -> tuple[Sequence, int, Step] | None:
        """The newest sequence the request matches, the request's number in it (1-based) and
        its answer; None when none matches. Counts the request (in every worker)."""
        for sequence in self.active:
            if not matches(sequence, operation, call, params, account):
                continue
            with self.state.transaction() as db:
                row = db.execute(
                    "UPDATE scenario_sequences SET position = position + 1 WHERE name = ? "
                    "RETURNING position",
                    (sequence.name,),
                ).fetchone()
            if row is not None:
                number = int(row[0])
                return sequence, number, sequence.step_at(number - 1)
        return None

    def describe(self) -> list[dict[str, Any]]:
        """Every sequence with how many requests it has answered, in the order they are
        tried (the newest first), as JSON-ready rows."""
        rows = self.state.rows(
            "SELECT name, origin, spec, position FROM scenario_sequences ORDER BY created DESC"
        )
        out = []
        for name, origin, spec, position in rows:
            data = json.loads(str(spec))
            sequence = parse_sequence(data, f"sequence {name!r}")
            out.append(
                {
                    **data,
                    "origin": origin,
                    "answered": position,
                    "length": sequence.length,
                }
            )
        return out


def _spec(sequence: Sequence) -> str:
    return json.dumps(sequence.to_dict(), ensure_ascii=False, sort_keys=True)
