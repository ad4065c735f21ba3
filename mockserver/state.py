"""State shared by every worker of the mock: regenerated keys, call counters, usage, in SQLite."""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pivotkit.accounts import SLOTS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    account TEXT NOT NULL, slot TEXT NOT NULL, key TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (account, slot));
CREATE TABLE IF NOT EXISTS counters (
    account TEXT NOT NULL, kind TEXT NOT NULL, window INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (account, kind, window));
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, account TEXT NOT NULL, operation_id TEXT NOT NULL, slot TEXT NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (day, account, operation_id, slot));
INSERT OR IGNORE INTO meta (name, value) VALUES ('keys_generation', '0');
INSERT OR IGNORE INTO meta (name, value) VALUES ('fixtures_generation', '0');
"""

_GEN = struct.Struct("<qq")  # keys generation, fixtures generation


@dataclass(frozen=True)
class UsageRow:
    """Calls of one account on one UTC day, per operation and key slot."""

    day: str
    operation_id: str
    slot: str
    count: int


@dataclass(frozen=True)
class Generations:
    """Counters bumped on every change another worker must see (keys, fixtures)."""

    keys: int
    fixtures: int


class State:
    """SQLite state in WAL mode, one connection per thread and process.

    Every worker that opens the same file sees the same keys and counters: a regenerated key is
    visible to the next request of every worker, because workers compare the cheap
    ``keys_generation`` row on each request. Usage counts of accounts without limits are
    buffered in memory for ``usage_flush`` seconds (0 = write-through) to keep the hot path free
    of writes; reading usage flushes this process's buffer first.
    """

    def __init__(self, path: Path | str, *, usage_flush: float = 1.0) -> None:
        self.path = Path(path)
        self.usage_flush = usage_flush
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str, str], int] = {}
        self._last_flush = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db().executescript(_SCHEMA)
        self._gen_map = self._open_generation_map()
        self._day_key = -1
        self._day = ""
        atexit.register(self._flush_at_exit)

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
        with open(gen_path, "a+b") as handle:
            if os.fstat(handle.fileno()).st_size < _GEN.size:
                handle.truncate(_GEN.size)
            mapped = mmap.mmap(handle.fileno(), _GEN.size)
        self._mirror(mapped)
        return mapped

    def _mirror(self, mapped: mmap.mmap | None = None) -> None:
        """Copy the generation rows from SQLite into the shared map."""
        current = self._read_generations()
        _GEN.pack_into(
            mapped if mapped is not None else self._gen_map, 0, current.keys, current.fixtures
        )

    def _read_generations(self) -> Generations:
        rows = dict(
            self._db()
            .execute(
                "SELECT name, value FROM meta "
                "WHERE name IN ('keys_generation', 'fixtures_generation')"
            )
            .fetchall()
        )
        return Generations(int(rows["keys_generation"]), int(rows["fixtures_generation"]))

    def generations(self) -> Generations:
        """The current generation counters (a shared-memory read: called on every request)."""
        keys, fixtures = _GEN.unpack_from(self._gen_map, 0)
        return Generations(keys, fixtures)

    def bump_fixtures(self) -> None:
        """Tell every worker to reload its fixtures on its next request."""
        with self._write() as db:
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                "WHERE name = 'fixtures_generation'"
            )
            self._mirror()

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
        if slot not in SLOTS:
            raise ValueError(f"slot must be one of {SLOTS}, not {slot!r}")
        with self._write() as db:
            db.execute(
                "INSERT INTO keys (account, slot, key, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, slot) DO UPDATE SET key = excluded.key, "
                "updated = excluded.updated",
                (account, slot, key, time.time()),
            )
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'keys_generation'"
            )
            self._mirror()

    # -- counters (rate limit, quota) ------------------------------------------------------

    def hit(self, account: str, kind: str, window: int) -> int:
        """Count one call in a fixed window; returns the window's count including this call."""
        with self._write() as db:
            row = db.execute(
                "INSERT INTO counters (account, kind, window, count) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (account, kind, window) DO UPDATE SET count = count + 1 "
                "RETURNING count",
                (account, kind, window),
            ).fetchone()
            db.execute(
                "DELETE FROM counters WHERE account = ? AND kind = ? AND window < ?",
                (account, kind, window),
            )
        return int(row[0])

    # -- usage -----------------------------------------------------------------------------

    def record_call(
        self,
        account: str,
        operation_id: str,
        slot: str,
        *,
        now: float | None = None,
        write_through: bool = False,
    ) -> None:
        """Count one call in the usage table (buffered unless ``write_through``)."""
        stamp = time.time() if now is None else now
        day_key = int(stamp // 86400)
        if day_key != self._day_key:
            self._day = time.strftime("%Y-%m-%d", time.gmtime(stamp))
            self._day_key = day_key
        key = (self._day, account, operation_id, slot)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1
            due = (
                write_through
                or self.usage_flush <= 0
                or time.monotonic() - self._last_flush >= self.usage_flush
            )
        if due:
            self.flush_usage()

    def flush_usage(self) -> None:
        """Write this process's buffered usage counts."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        try:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO usage (day, account, operation_id, slot, count) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, account, operation_id, slot) "
                    "DO UPDATE SET count = count + excluded.count",
                    [(*k, n) for k, n in pending.items()],
                )
        except sqlite3.Error:
            with self._lock:  # keep the counts for the next flush
                for k, n in pending.items():
                    self._pending[k] = self._pending.get(k, 0) + n
            raise

    def _flush_at_exit(self) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):  # the state file may be gone
            self.flush_usage()

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
        """Forget regenerated keys, rate and quota windows and usage, in every worker.

        Keys go back to the accounts file; the keys generation is bumped so every worker
        drops its cached keys on its next request.
        """
        with self._lock:
            self._pending = {}
        with self._write() as db:
            db.execute("DELETE FROM keys")
            db.execute("DELETE FROM counters")
            db.execute("DELETE FROM usage")
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'keys_generation'"
            )
            self._mirror()

    # -- for the other parts of the mock (scenarios keep their tables here) ---------------

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction on this thread's connection (BEGIN IMMEDIATE ... COMMIT)."""
        return self._write()

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """The rows of one read-only query."""
        return list(self._db().execute(sql, params).fetchall())

    def close(self) -> None:
        """Flush and close this thread's connection."""
        self.flush_usage()
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local = threading.local()
        atexit.unregister(self._flush_at_exit)
        self._gen_map.close()
