"""State shared by every worker of the mock: regenerated keys, call counters, usage, in SQLite."""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import sqlite3
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mockserver.state.base import (
    Generations,
    Refusal,
    SequenceRow,
    SharedState,
    UsageRow,
    Window,
    check_slot,
)
from mockserver.state.usage import BufferedUsage, Counts, UsageBuffer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    account TEXT NOT NULL, slot TEXT NOT NULL, key TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (account, slot));
CREATE TABLE IF NOT EXISTS counters (
    account TEXT NOT NULL, kind TEXT NOT NULL, window INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (account, kind, window));
CREATE TABLE IF NOT EXISTS calls (account TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS calls_by_account ON calls (account, kind, at);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, account TEXT NOT NULL, operation_id TEXT NOT NULL, slot TEXT NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (day, account, operation_id, slot));
CREATE TABLE IF NOT EXISTS login_attempts (subject TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_attempts_by_subject ON login_attempts (subject, at);
CREATE TABLE IF NOT EXISTS sessions (account TEXT PRIMARY KEY, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS corpus (generation INTEGER PRIMARY KEY, data BLOB NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('keys_generation', '0');
INSERT OR IGNORE INTO meta (name, value) VALUES ('fixtures_generation', '0');
INSERT OR IGNORE INTO meta (name, value) VALUES ('sessions_epoch', '0');
INSERT OR IGNORE INTO meta (name, value) VALUES ('scenarios_generation', '0');
CREATE TABLE IF NOT EXISTS scenario_sequences (
    name TEXT PRIMARY KEY, origin TEXT NOT NULL, spec TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS scenario_timelines (name TEXT PRIMARY KEY, step INTEGER NOT NULL);
"""

_GEN = struct.Struct("<qqq")  # keys, fixtures and scenarios generations
_NEXT = "(SELECT COALESCE(MAX(created), 0) + 1 FROM scenario_sequences)"
_GENERATIONS = ("keys_generation", "fixtures_generation", "scenarios_generation")


def _private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600), or tighten an existing one: the state
    holds the admin token and the portal's session secret."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            with contextlib.suppress(OSError):  # not ours: leave it, SQLite will say
                os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class State(BufferedUsage, SharedState):
    """SQLite state in WAL mode, one connection per thread and process.

    Every worker that opens the same file sees the same keys and counters: a regenerated key is
    visible to the next request of every worker, because workers compare the cheap
    ``keys_generation`` row on each request. Usage counts are buffered in memory and written by
    a background thread every ``usage_flush`` seconds (0 = write-through) to keep the hot path
    free of writes; reading usage flushes this process's buffer first. A worker killed with
    SIGKILL loses at most the counts of its last ``usage_flush`` seconds; every other count
    (limits, keys, sessions, logins) is written before the request is answered.

    The file and its companions (``-wal``, ``-shm``, ``.gen``) are created 0600. Callers use
    methods only (no SQL outside this module): :class:`mockserver.state.base.SharedState` is
    the interface, which the Redis store implements too.
    """

    def __init__(self, path: Path | str, *, usage_flush: float = 1.0) -> None:
        self.path = Path(path)
        self.local_path = self.path
        self.usage_flush = usage_flush
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for companion in ("", "-wal", "-shm"):
            candidate = self.path.with_name(self.path.name + companion)
            if not companion or candidate.exists():
                _private_file(candidate)
        self._db().executescript(_SCHEMA)
        self._gen_map = self._open_generation_map()
        self._usage = UsageBuffer(usage_flush, self._write_usage, (sqlite3.Error,))

    # -- connections ---------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (reopened after a fork: connections never cross processes)."""
        local = self._local
        db: sqlite3.Connection | None = getattr(local, "db", None)
        if db is None or local.pid != os.getpid():
            db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=True
            )
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            local.db = db
            local.pid = os.getpid()
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- generations -----------------------------------------------------------------------
    # SQLite's meta rows are the truth; a 16-byte memory-mapped file beside the database
    # mirrors them so that the per-request check costs a memory read, not a query. Every
    # process maps the same file, so a bump is seen by the next request of every worker.

    def _open_generation_map(self) -> mmap.mmap:
        gen_path = self.path.with_name(self.path.name + ".gen")
        _private_file(gen_path)
        with open(gen_path, "r+b") as handle:
            if os.fstat(handle.fileno()).st_size < _GEN.size:
                handle.truncate(_GEN.size)
            mapped = mmap.mmap(handle.fileno(), _GEN.size)
        self._mirror(mapped)
        return mapped

    def _mirror(self, mapped: mmap.mmap | None = None) -> None:
        """Copy the committed generation rows from SQLite into the shared map (always after
        the commit: a worker that sees a new generation must find what it stands for). One
        slice assignment, so a reader in another process never sees half a write."""
        current = self._read_generations()
        target = mapped if mapped is not None else self._gen_map
        target[: _GEN.size] = _GEN.pack(current.keys, current.fixtures, current.scenarios)

    def _read_generations(self) -> Generations:
        marks = ", ".join("?" * len(_GENERATIONS))
        rows = dict(
            self._db()
            .execute(f"SELECT name, value FROM meta WHERE name IN ({marks})", _GENERATIONS)
            .fetchall()
        )
        return Generations(*(int(rows[name]) for name in _GENERATIONS))

    def generations(self) -> Generations:
        """The current generation counters (a shared-memory read: called on every request)."""
        return Generations(*_GEN.unpack(self._gen_map[: _GEN.size]))

    def describe(self) -> str:
        """The SQLite file, for the banner."""
        return f"SQLite {self.path}"

    def ping(self) -> bool:
        """Whether the file answers a query now."""
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def _bump(self, db: sqlite3.Connection, name: str) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = ?", (name,))

    def publish_corpus(self, data: bytes) -> int:
        """Store a validated corpus (fixtures and accounts, see mockserver.corpus) as the next
        fixtures generation, which every worker then switches to; returns the generation."""
        with self._write() as db:
            self._bump(db, "fixtures_generation")
            row = db.execute("SELECT value FROM meta WHERE name = 'fixtures_generation'").fetchone()
            generation = int(row[0])
            db.execute("DELETE FROM corpus")
            db.execute("INSERT INTO corpus (generation, data) VALUES (?, ?)", (generation, data))
        self._mirror()
        return generation

    def corpus(self, generation: int) -> bytes | None:
        """The corpus published as ``generation`` (None if a newer one replaced it)."""
        row = (
            self._db()
            .execute("SELECT data FROM corpus WHERE generation = ?", (generation,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def meta(self, name: str, default: str) -> str:
        """A named value shared by the workers, set to ``default`` if none is stored yet."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", (name, default))
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0])

    # -- keys ------------------------------------------------------------------------------

    def key_overrides(self) -> dict[tuple[str, str], str]:
        """Keys regenerated since the accounts file was written: (account, slot) -> key."""
        rows = self._db().execute("SELECT account, slot, key FROM keys").fetchall()
        return {(a, s): k for a, s, k in rows}

    def set_key(self, account: str, slot: str, key: str) -> None:
        """Store a regenerated key and bump the generation every worker checks."""
        check_slot(slot)
        with self._write() as db:
            db.execute(
                "INSERT INTO keys (account, slot, key, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, slot) DO UPDATE SET key = excluded.key, "
                "updated = excluded.updated",
                (account, slot, key, time.time()),
            )
            self._bump(db, "keys_generation")
        self._mirror()

    # -- limits (rate limit, quota) ----------------------------------------------------------

    def admit(
        self, account: str, windows: Sequence[Window], clock: Callable[[], float] = time.time
    ) -> Refusal | None:
        """Count one call of ``account`` against every window, or against none.

        One transaction, serialised across threads and workers, reads the clock, checks every
        window and, only when all have room, counts the call in all of them: a refused call is
        never counted, and calls are judged in the order they are counted. A sliding window
        allows at most ``calls`` in any ``period`` seconds; a fixed one at most ``calls`` per
        window ``[k * period, (k + 1) * period)``.
        """
        with self._write() as db:
            now = clock()
            for w in windows:
                refusal = self._full(db, account, w, now)
                if refusal is not None:
                    return refusal
            for w in windows:
                if w.sliding:
                    db.execute(
                        "INSERT INTO calls (account, kind, at) VALUES (?, ?, ?)",
                        (account, w.kind, now),
                    )
                    continue
                window = int(now // w.period)
                db.execute(
                    "INSERT INTO counters (account, kind, window, count) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (account, kind, window) DO UPDATE SET count = count + 1",
                    (account, w.kind, window),
                )
                db.execute(
                    "DELETE FROM counters WHERE account = ? AND kind = ? AND window < ?",
                    (account, w.kind, window),
                )
        return None

    @staticmethod
    def _full(db: sqlite3.Connection, account: str, w: Window, now: float) -> Refusal | None:
        if w.sliding:
            db.execute(
                "DELETE FROM calls WHERE account = ? AND kind = ? AND at <= ?",
                (account, w.kind, now - w.period),
            )
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(at) FROM calls WHERE account = ? AND kind = ?",
                (account, w.kind),
            ).fetchone()
            if count >= w.calls:
                return Refusal(w.kind, max(1, math.ceil(oldest + w.period - now)))
            return None
        window = int(now // w.period)
        row = db.execute(
            "SELECT count FROM counters WHERE account = ? AND kind = ? AND window = ?",
            (account, w.kind, window),
        ).fetchone()
        if row is not None and row[0] >= w.calls:
            return Refusal(w.kind, max(1, math.ceil((window + 1) * w.period - now)))
        return None

    # -- the portal: sign-in attempts and sessions ---------------------------------------------

    def login_attempt(self, subject: str, limit: int, window: float, now: float) -> int:
        """Reserve one password check for ``subject`` (an account and address digest).

        0 when the check may go: it is counted as a failure until :meth:`login_succeeded`.
        Otherwise the seconds until the oldest of the last ``limit`` attempts leaves the
        ``window``. One transaction, so concurrent attempts are counted one by one.
        """
        with self._write() as db:
            db.execute("DELETE FROM login_attempts WHERE at <= ?", (now - window,))
            rows = db.execute(
                "SELECT at FROM login_attempts WHERE subject = ? ORDER BY at", (subject,)
            ).fetchall()
            if len(rows) >= limit:
                return max(1, math.ceil(float(rows[-limit][0]) + window - now))
            db.execute("INSERT INTO login_attempts (subject, at) VALUES (?, ?)", (subject, now))
        return 0

    def login_succeeded(self, subject: str) -> None:
        """Forget the attempts of ``subject`` (its password was right)."""
        with self._write() as db:
            db.execute("DELETE FROM login_attempts WHERE subject = ?", (subject,))

    def session_stamp(self, account: str) -> str:
        """What a portal session of ``account`` must carry to be valid now."""
        db = self._db()
        epoch = db.execute("SELECT value FROM meta WHERE name = 'sessions_epoch'").fetchone()
        row = db.execute("SELECT generation FROM sessions WHERE account = ?", (account,)).fetchone()
        return f"{epoch[0] if epoch else 0}.{row[0] if row else 0}"

    def end_sessions(self, account: str | None = None) -> None:
        """End every portal session of ``account`` (of every account when None), in every
        worker: the stamp they carry no longer matches."""
        with self._write() as db:
            if account is None:
                self._bump(db, "sessions_epoch")
            else:
                db.execute(
                    "INSERT INTO sessions (account, generation) VALUES (?, 1) "
                    "ON CONFLICT (account) DO UPDATE SET generation = generation + 1",
                    (account,),
                )

    # -- usage -----------------------------------------------------------------------------

    def _write_usage(self, pending: Counts) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT INTO usage (day, account, operation_id, slot, count) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, account, operation_id, slot) "
                "DO UPDATE SET count = count + excluded.count",
                [(*k, n) for k, n in pending.items()],
            )

    def usage(self, account: str) -> list[UsageRow]:
        """Usage rows of one account, newest day first."""
        self.flush_usage()
        rows = (
            self._db()
            .execute(
                "SELECT day, operation_id, slot, count FROM usage WHERE account = ? "
                "ORDER BY day DESC, operation_id, slot",
                (account,),
            )
            .fetchall()
        )
        return [UsageRow(*r) for r in rows]

    def all_usage(self) -> list[tuple[str, UsageRow]]:
        """Usage rows of every account as (account, row)."""
        self.flush_usage()
        rows = (
            self._db()
            .execute(
                "SELECT account, day, operation_id, slot, count FROM usage "
                "ORDER BY account, day DESC, operation_id, slot"
            )
            .fetchall()
        )
        return [(r[0], UsageRow(*r[1:])) for r in rows]

    def reset(self) -> None:
        """Forget regenerated keys, rate and quota windows, usage, sign-in attempts and
        portal sessions, in every worker.

        Keys go back to the accounts file; the keys generation is bumped so every worker
        drops its cached keys on its next request.
        """
        self._usage.clear()
        with self._write() as db:
            db.execute("DELETE FROM keys")
            db.execute("DELETE FROM counters")
            db.execute("DELETE FROM calls")
            db.execute("DELETE FROM usage")
            db.execute("DELETE FROM login_attempts")
            self._bump(db, "keys_generation")
            self._bump(db, "sessions_epoch")
        self._mirror()

    # -- scenarios: sequence positions and timeline steps ----------------------------------

    def scenarios_changed(self) -> None:
        """Bump the scenarios generation: every worker reads sequences and timelines again."""
        with self._write() as db:
            self._bump(db, "scenarios_generation")
        self._mirror()

    def declare_sequences(self, declared: Sequence[tuple[str, str]]) -> None:
        """The scenarios file's sequences (name, spec): those no longer declared go, a new or
        changed one starts from its first answer, an unchanged one keeps its position."""
        names = [name for name, _ in declared]
        with self._write() as db:
            db.execute(
                "DELETE FROM scenario_sequences WHERE origin = 'file' AND name NOT IN "
                f"({', '.join('?' * len(names))})",
                names,
            )
            for name, spec in declared:
                db.execute(
                    "INSERT INTO scenario_sequences (name, origin, spec, position, created) "
                    f"VALUES (?, 'file', ?, 0, {_NEXT}) ON CONFLICT (name) DO UPDATE SET "
                    "spec = excluded.spec, position = 0 "
                    "WHERE origin = 'file' AND spec != excluded.spec",
                    (name, spec),
                )

    def sequences(self) -> list[SequenceRow]:
        """Every sequence, the most recently added first."""
        rows = self._db().execute(
            "SELECT name, origin, spec, position FROM scenario_sequences ORDER BY created DESC"
        )
        return [SequenceRow(str(n), str(o), str(s), int(p)) for n, o, s, p in rows.fetchall()]

    def add_sequence(self, name: str, spec: str) -> None:
        """Add a test's sequence (replacing one of that name), from its first answer."""
        with self._write() as db:
            db.execute("DELETE FROM scenario_sequences WHERE name = ?", (name,))
            db.execute(
                "INSERT INTO scenario_sequences (name, origin, spec, position, created) "
                f"VALUES (?, 'test', ?, 0, {_NEXT})",
                (name, spec),
            )

    def remove_sequence(self, name: str) -> bool:
        """Remove a sequence; False when there is none of that name."""
        with self._write() as db:
            gone = db.execute("DELETE FROM scenario_sequences WHERE name = ?", (name,)).rowcount
        return bool(gone)

    def reset_sequences(self, declared: Sequence[tuple[str, str]]) -> None:
        """Only the declared sequences, each at its first answer."""
        with self._write() as db:
            db.execute("DELETE FROM scenario_sequences")
            for name, spec in declared:
                db.execute(
                    "INSERT INTO scenario_sequences (name, origin, spec, position, created) "
                    f"VALUES (?, 'file', ?, 0, {_NEXT})",
                    (name, spec),
                )

    def advance_sequence(self, name: str) -> int | None:
        """Count one request in a sequence: its new position (None: no such sequence)."""
        with self._write() as db:
            row = db.execute(
                "UPDATE scenario_sequences SET position = position + 1 WHERE name = ? "
                "RETURNING position",
                (name,),
            ).fetchone()
        return None if row is None else int(row[0])

    def timeline_steps(self) -> dict[str, int]:
        """The step of every started timeline."""
        rows = self._db().execute("SELECT name, step FROM scenario_timelines WHERE step > 0")
        return {str(n): int(s) for n, s in rows.fetchall()}

    def move_timeline(self, name: str, target: Callable[[int], int]) -> int:
        """Set a timeline's step to ``target(current)`` in one transaction (``target`` may
        raise: nothing changes)."""
        with self._write() as db:
            row = db.execute(
                "SELECT step FROM scenario_timelines WHERE name = ?", (name,)
            ).fetchone()
            step = target(int(row[0]) if row else 0)
            db.execute(
                "INSERT INTO scenario_timelines (name, step) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET step = excluded.step",
                (name, step),
            )
        return step

    def reset_timelines(self) -> None:
        """Every timeline back to not started."""
        with self._write() as db:
            db.execute("DELETE FROM scenario_timelines")

    def close(self) -> None:
        """Flush, stop the flushing thread and close this thread's connection."""
        self._usage.close()
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local = threading.local()
        self._gen_map.close()
