"""What every store of the mock's shared state offers: the values it holds and its methods.

Two stores implement :class:`SharedState`: :class:`mockserver.state.sqlite.State` (a SQLite file
in WAL mode, the embedded default: the workers of one host) and
:class:`mockserver.state.redis_store.RedisState` (a Redis server: several hosts). Callers use the
methods only; no SQL and no Redis command is written outside these two modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pivotkit.accounts import SLOTS


@dataclass(frozen=True)
class UsageRow:
    """Calls of one account on one UTC day, per operation and key slot."""

    day: str
    operation_id: str
    slot: str
    count: int


@dataclass(frozen=True)
class Window:
    """A limit on an account's calls: ``calls`` per ``period`` seconds, counted in a sliding
    window (the gateway's rate limit) or in fixed windows (its quota)."""

    kind: str
    calls: int
    period: float
    sliding: bool


@dataclass(frozen=True)
class Refusal:
    """A call an account's limits refuse: which limit, and the seconds until one is allowed."""

    kind: str
    wait: int


@dataclass(frozen=True)
class Generations:
    """Counters bumped on every change another worker must see (keys, fixtures, scenarios)."""

    keys: int
    fixtures: int
    scenarios: int = 0


@dataclass(frozen=True)
class SequenceRow:
    """A sequence as stored: its JSON ``spec``, where it comes from (``file`` or ``test``) and
    how many requests it has answered."""

    name: str
    origin: str
    spec: str
    position: int


def check_slot(slot: str) -> None:
    """ValueError unless ``slot`` is a key slot (primary, secondary)."""
    if slot not in SLOTS:
        raise ValueError(f"slot must be one of {SLOTS}, not {slot!r}")


@runtime_checkable
class SharedState(Protocol):
    """The state every worker (and, on Redis, every host) of one mock shares.

    ``local_path`` names the files that stay on this host (the journal, which is per host):
    the SQLite file itself, or a file in a private temporary folder of this instance.
    """

    local_path: Path
    usage_flush: float

    def describe(self) -> str:
        """Where the state is, for the banner (a Redis password never shown)."""
        ...

    def ping(self) -> bool:
        """Whether the store answers now (readiness)."""
        ...

    def generations(self) -> Generations:
        """The current generation counters (called on every request: one cheap read)."""
        ...

    def publish_corpus(self, data: bytes) -> int:
        """Store a validated corpus as the next fixtures generation; returns the generation."""
        ...

    def corpus(self, generation: int) -> bytes | None:
        """The corpus published as ``generation`` (None if a newer one replaced it)."""
        ...

    def meta(self, name: str, default: str) -> str:
        """A named value shared by the workers, set to ``default`` if none is stored yet."""
        ...

    def key_overrides(self) -> dict[tuple[str, str], str]:
        """Keys regenerated since the accounts file was written: (account, slot) -> key."""
        ...

    def set_key(self, account: str, slot: str, key: str) -> None:
        """Store a regenerated key and bump the generation every worker checks."""
        ...

    def admit(
        self, account: str, windows: Sequence[Window], clock: Callable[[], float] = ...
    ) -> Refusal | None:
        """Count one call against every window, or against none (see the stores)."""
        ...

    def login_attempt(self, subject: str, limit: int, window: float, now: float) -> int:
        """Reserve one password check: 0, or the seconds to wait."""
        ...

    def login_succeeded(self, subject: str) -> None:
        """Forget the attempts of ``subject``."""
        ...

    def session_stamp(self, account: str) -> str:
        """What a portal session of ``account`` must carry to be valid now."""
        ...

    def end_sessions(self, account: str | None = None) -> None:
        """End every portal session of ``account`` (of every account when None)."""
        ...

    def record_call(
        self,
        account: str,
        operation_id: str,
        slot: str,
        *,
        now: float | None = None,
        write_through: bool = False,
    ) -> None:
        """Count one call in the usage (buffered unless ``write_through``)."""
        ...

    def flush_usage(self) -> None:
        """Write this process's buffered usage counts."""
        ...

    def usage(self, account: str) -> list[UsageRow]:
        """Usage rows of one account, newest day first."""
        ...

    def all_usage(self) -> list[tuple[str, UsageRow]]:
        """Usage rows of every account as (account, row)."""
        ...

    def reset(self) -> None:
        """Forget keys, limits, usage, sign-in attempts and sessions, in every worker."""
        ...

    # -- scenarios: sequences and timelines ------------------------------------------------

    def scenarios_changed(self) -> None:
        """Bump the scenarios generation: every worker reads sequences and timelines again."""
        ...

    def declare_sequences(self, declared: Sequence[tuple[str, str]]) -> None:
        """The scenarios file's sequences (name, spec): those no longer declared go, a new or
        changed one starts from its first answer, an unchanged one keeps its position."""
        ...

    def sequences(self) -> list[SequenceRow]:
        """Every sequence, the most recently added first."""
        ...

    def add_sequence(self, name: str, spec: str) -> None:
        """Add a test's sequence (replacing one of that name), from its first answer."""
        ...

    def remove_sequence(self, name: str) -> bool:
        """Remove a sequence; False when there is none of that name."""
        ...

    def reset_sequences(self, declared: Sequence[tuple[str, str]]) -> None:
        """Only the declared sequences, each at its first answer."""
        ...

    def advance_sequence(self, name: str) -> int | None:
        """Count one request in a sequence: its new position (None: no such sequence)."""
        ...

    def timeline_steps(self) -> dict[str, int]:
        """The step of every started timeline."""
        ...

    def move_timeline(self, name: str, target: Callable[[int], int]) -> int:
        """Set a timeline's step to ``target(current)`` atomically (``target`` may raise)."""
        ...

    def reset_timelines(self) -> None:
        """Every timeline back to not started."""
        ...

    def close(self) -> None:
        """Flush and release this process's connections."""
        ...
