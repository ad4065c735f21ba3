"""The drift history: every run kept in one SQLite file, each finding's life, and the baseline
earlier runs set.

A run stores its findings (each ``new``, ``ongoing`` since a run, or ``resolved``), the
observed schema of each operation, the answers counted per operation, and what each request's
answer showed (status, content type and encoding, empty or not, the fields present in every
object: :class:`~pivotkit.drift.baseline.Expectation`, stored once per distinct value).

The baseline of a request is its answers in the last :data:`BASELINE_RUNS` runs that did not
report its change: a field present in every object of those answers, missing now, is a removal
even without a recorded fixture, and stays one (``ongoing``) while it is missing.

Each run is written in one transaction (all or nothing, whatever stops the process). The file
is bounded: the newest ``keep`` runs of each target are kept, and the oldest runs go first
while the file is over ``max_bytes``. Secrets never reach it: every text is scrubbed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pivotkit.drift.baseline import Expectation
from pivotkit.drift.findings import HEADER_POINTER, ROOT_CAUSES, Finding
from pivotkit.errors import ConfigError
from pivotkit.redact import scrubbed

FORMAT = "pivotkit-drift-history/1"
HISTORY_ENV = "PIVOT_DRIFT_HISTORY"
DEFAULT_PATH = Path(".pivotkit") / "drift-history.sqlite"
DEFAULT_KEEP = 100
DEFAULT_MAX_BYTES = 256 * 2**20
BASELINE_RUNS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    answers INTEGER NOT NULL,
    summary TEXT NOT NULL,
    operations TEXT NOT NULL,
    alerted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_target ON runs (target, id);
CREATE TABLE IF NOT EXISTS findings (
    run INTEGER NOT NULL,
    operation TEXT NOT NULL,
    pointer TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    since INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_run ON findings (run);
CREATE INDEX IF NOT EXISTS findings_key ON findings (operation, pointer, kind);
CREATE TABLE IF NOT EXISTS expectations (hash TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    run INTEGER NOT NULL,
    request TEXT NOT NULL,
    operation TEXT NOT NULL,
    expectation TEXT NOT NULL,
    PRIMARY KEY (run, request)
);
CREATE TABLE IF NOT EXISTS observed (
    run INTEGER NOT NULL,
    operation TEXT NOT NULL,
    schema BLOB NOT NULL,
    PRIMARY KEY (run, operation)
);
"""
_TABLES = ("findings", "answers", "observed")
_ACTIVE = ("new", "ongoing")


def default_history_path(environ: Mapping[str, str]) -> Path:
    """``$PIVOT_DRIFT_HISTORY``, else ``./.pivotkit/drift-history.sqlite`` (one folder to
    cache between CI runs, e.g. ``actions/cache`` with ``path: .pivotkit``)."""
    value = environ.get(HISTORY_ENV, "").strip()
    return Path(value) if value else DEFAULT_PATH


@dataclass(frozen=True)
class Run:
    """One stored run: when, against what, what it found (counts), what it checked."""

    id: int
    target: str
    started: str
    finished: str
    answers: int
    summary: Mapping[str, int]
    operations: Mapping[str, int]
    alerted: bool

    def checked(self, operation: str) -> bool:
        """Whether the run got an answer of ``operation``."""
        return self.operations.get(operation, 0) > 0


@dataclass(frozen=True)
class Recorded:
    """What :meth:`History.record` stored: the run's id, its findings with their life, the
    findings it resolved."""

    run: int
    findings: list[Finding]
    resolved: list[Finding]


def _pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, sort_keys=True, ensure_ascii=False).encode(), 6)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def _below(pointer: str, roots: Iterable[str]) -> bool:
    return any(pointer == r or pointer.startswith(r + "/") for r in roots)


class History:
    """A drift history file (created on first use). Use as a context manager, or close()."""

    def __init__(
        self,
        path: Path,
        *,
        keep: int = DEFAULT_KEEP,
        max_bytes: int = DEFAULT_MAX_BYTES,
        secrets: Iterable[str] = (),
        create: bool = True,
    ) -> None:
        if keep < 1:
            raise ConfigError("--history-keep", "keep at least 1 run")
        self.path = path
        self.keep = keep
        self.max_bytes = max_bytes
        self._secrets = tuple(s for s in secrets if s)
        if not path.exists() and not create:
            raise ConfigError(str(path), "no drift history here; run `pivotkit drift --history`")
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            else:  # reading only: never a byte written
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            self._open(create)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(str(path), f"not a pivotkit drift history ({exc})") from None
        except OSError as exc:
            raise ConfigError(str(path), f"cannot open the drift history: {exc.strerror}") from None

    def _open(self, create: bool) -> None:
        """Check the file is a history of this format; create the tables in an empty one.
        Another SQLite file (the mock's state, say) is refused and left untouched."""
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables:
            found = None
            if "meta" in tables:
                try:
                    row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
                except sqlite3.DatabaseError:
                    row = None
                found = row[0] if row else None
            if found != FORMAT:
                what = f"a drift history of format {found}" if found else "another SQLite file"
                raise ConfigError(
                    str(self.path), f"not a pivotkit drift history ({what}); left untouched"
                )
            return
        if not create:
            raise ConfigError(str(self.path), "an empty file, no drift history")
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- reading -------------------------------------------------------------------------------

    def runs(self, target: str | None = None, limit: int | None = None) -> list[Run]:
        """The stored runs, newest first (of one target when given)."""
        sql = "SELECT id, target, started, finished, answers, summary, operations, alerted "
        sql += "FROM runs" + (" WHERE target = ?" if target is not None else "")
        sql += " ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        rows = self._db.execute(sql, (target,) if target is not None else ()).fetchall()
        return [
            Run(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), bool(r[7]))
            for r in rows
        ]

    def findings(self, run: int) -> list[Finding]:
        """The findings stored with a run (new, ongoing and resolved)."""
        rows = self._db.execute("SELECT body FROM findings WHERE run = ?", (run,)).fetchall()
        return [Finding.from_dict(json.loads(r[0])) for r in rows]

    def life(
        self,
        target: str | None = None,
        *,
        operation: str | None = None,
        pointer: str | None = None,
        kind: str | None = None,
    ) -> dict[tuple[str, str, str], list[tuple[Run, str]]]:
        """Each matching finding's life: (run, status) for every run that reported it."""
        runs = {r.id: r for r in self.runs(target)}
        sql = "SELECT run, operation, pointer, kind, status FROM findings WHERE 1 = 1"
        args: list[Any] = []
        for column, value in (("operation", operation), ("pointer", pointer), ("kind", kind)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        out: dict[tuple[str, str, str], list[tuple[Run, str]]] = {}
        for run, op, ptr, knd, status in self._db.execute(sql + " ORDER BY run", args):
            if run in runs:
                out.setdefault((op, ptr, knd), []).append((runs[run], status))
        return out

    def observed_schema(self, run: int, operation: str) -> Any:
        """The observed schema of an operation in a run (None when it had no answer)."""
        row = self._db.execute(
            "SELECT schema FROM observed WHERE run = ? AND operation = ?", (run, operation)
        ).fetchone()
        return _unpack(row[0]) if row else None

    def baseline(self, target: str, window: int = BASELINE_RUNS) -> dict[str, Expectation]:
        """Request key -> what its answers in earlier runs against ``target`` lead to expect.

        Each part of the expectation comes from the last ``window`` runs that answered the
        request without reporting a change of that part: the status and headers from the
        newest of them, a field when every one of them had it in every object.
        """
        runs = {r.id: r for r in self.runs(target)}
        if not runs:
            return {}
        changed = self._changes(target)
        answers: dict[str, list[tuple[int, str, str]]] = {}
        for run, request, op, digest in self._db.execute(
            "SELECT run, request, operation, expectation FROM answers ORDER BY run DESC"
        ):
            if run in runs:
                answers.setdefault(request, []).append((run, op, digest))
        cache: dict[str, Expectation] = {}
        out = {}
        for request, seen in answers.items():
            entries = [(run, op, self._expectation(digest, cache)) for run, op, digest in seen]
            out[request] = _expect(entries, changed, window)
        return out

    def _expectation(self, digest: str, cache: dict[str, Expectation]) -> Expectation:
        found = cache.get(digest)
        if found is None:
            row = self._db.execute(
                "SELECT data FROM expectations WHERE hash = ?", (digest,)
            ).fetchone()
            found = cache[digest] = Expectation.from_dict(_unpack(row[0]), "")
        return found

    def _changes(self, target: str) -> dict[tuple[int, str], set[str]]:
        """(run, operation) -> pointers of the active root-cause and status/header findings
        it reported (what is skipped when that run is a baseline)."""
        out: dict[tuple[int, str], set[str]] = {}
        rows = self._db.execute(
            "SELECT f.run, f.operation, f.pointer, f.kind FROM findings f "
            "JOIN runs r ON f.run = r.id WHERE r.target = ? AND f.status IN ('new', 'ongoing')",
            (target,),
        )
        for run, op, pointer, kind in rows:
            if kind in ROOT_CAUSES or pointer.startswith(HEADER_POINTER) or not pointer:
                out.setdefault((run, op), set()).add(pointer)
        return out

    # -- writing -------------------------------------------------------------------------------

    def record(
        self,
        *,
        target: str,
        started: str,
        finished: str,
        findings: list[Finding],
        summary: Mapping[str, int],
        operations: Mapping[str, int],
        seen: Mapping[str, tuple[str, Expectation]],
        observed: Mapping[str, Any],
        alert: Callable[[list[Finding]], bool] = lambda _: False,
    ) -> Recorded:
        """Store one run (one transaction): its findings with their life, the resolved ones,
        what each request showed, the observed schemas; then trim the file to its bounds."""
        with self._transaction() as db:
            previous = self.runs(target)
            cur = db.execute(
                "INSERT INTO runs (target, started, finished, answers, summary, operations) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    target,
                    started,
                    finished,
                    sum(operations.values()),
                    json.dumps(dict(summary)),
                    json.dumps(dict(operations)),
                ),
            )
            run = int(cur.lastrowid or 0)
            current = Run(run, target, started, finished, 0, summary, operations, False)
            lived, resolved = self._lifecycle(current, previous, findings)
            counted = {
                **summary,
                "new": sum(1 for f in lived if f.status == "new"),
                "ongoing": sum(1 for f in lived if f.status == "ongoing"),
                "resolved": len(resolved),
            }
            db.execute(
                "UPDATE runs SET alerted = ?, summary = ? WHERE id = ?",
                (int(alert(lived)), json.dumps(counted), run),
            )
            for finding in [*lived, *resolved]:
                self._store_finding(run, finding)
            for request, (op, expectation) in seen.items():
                digest = self._store_expectation(expectation)
                db.execute(
                    "INSERT INTO answers VALUES (?, ?, ?, ?)",
                    (run, self._clean(request), op, digest),
                )
            for op, schema in observed.items():
                db.execute(
                    "INSERT INTO observed VALUES (?, ?, ?)",
                    (run, op, _pack(scrubbed(schema, self._secrets))),
                )
            self._trim(target)
        self._shrink()
        return Recorded(run, lived, resolved)

    def _clean(self, text: str) -> str:
        out = scrubbed(text, self._secrets)
        return out if isinstance(out, str) else text

    def _store_finding(self, run: int, finding: Finding) -> None:
        body = scrubbed(finding.to_dict(), self._secrets)
        body["suppressed"] = None
        self._db.execute(
            "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run,
                finding.operation,
                body["pointer"],
                finding.kind,
                finding.severity,
                finding.status,
                finding.since or run,
                finding.runs,
                json.dumps(body, ensure_ascii=False, default=str),
            ),
        )

    def _store_expectation(self, expectation: Expectation) -> str:
        data = scrubbed(expectation.to_dict(), self._secrets)
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        self._db.execute("INSERT OR IGNORE INTO expectations VALUES (?, ?)", (digest, _pack(data)))
        return digest

    def _lifecycle(
        self, current: Run, previous: list[Run], findings: list[Finding]
    ) -> tuple[list[Finding], list[Finding]]:
        """Each finding new or ongoing (against the last run that checked its operation), and
        the findings of those runs that are gone now (resolved)."""
        cache: dict[int, dict[tuple[str, str, str], Finding]] = {}

        def active(run: Run) -> dict[tuple[str, str, str], Finding]:
            if run.id not in cache:
                cache[run.id] = {f.key: f for f in self.findings(run.id) if f.status in _ACTIVE}
            return cache[run.id]

        def last_checking(operation: str) -> Run | None:
            if operation not in current.operations:  # a deviation's pattern: the last run
                return previous[0] if previous else None
            return next((run for run in previous if run.checked(operation)), None)

        lived = []
        for finding in findings:
            before = last_checking(finding.operation)
            old = active(before).get(finding.key) if before is not None else None
            if old is None:
                since, since_date, runs, status = current.id, current.started, 1, "new"
            else:
                since, since_date, runs = old.since or current.id, old.since_date, old.runs + 1
                status = "ongoing"
            lived.append(
                replace(finding, status=status, since=since, since_date=since_date, runs=runs)
            )
        now = {f.key for f in findings}
        resolved = []
        for operation in sorted(op for op, n in current.operations.items() if n > 0):
            before = last_checking(operation)
            if before is None:
                continue
            for key, old in active(before).items():
                if key[0] == operation and key not in now:
                    resolved.append(replace(old, status="resolved"))
        return lived, resolved

    def _trim(self, target: str) -> None:
        """Drop the runs of ``target`` beyond the newest ``keep``."""
        rows = self._db.execute(
            "SELECT id FROM runs WHERE target = ? ORDER BY id DESC LIMIT -1 OFFSET ?",
            (target, self.keep),
        ).fetchall()
        self._delete([r[0] for r in rows])

    def _delete(self, runs: list[int]) -> None:
        if not runs:
            return
        marks = ",".join("?" * len(runs))
        for table in _TABLES:
            self._db.execute(f"DELETE FROM {table} WHERE run IN ({marks})", runs)
        self._db.execute(f"DELETE FROM runs WHERE id IN ({marks})", runs)
        self._db.execute(
            "DELETE FROM expectations WHERE hash NOT IN (SELECT expectation FROM answers)"
        )

    def size(self) -> int:
        """The bytes the file's pages take."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _shrink(self) -> None:
        """While the file is over ``max_bytes``, drop the oldest run (never the newest)."""
        while self.size() > self.max_bytes:
            rows = self._db.execute("SELECT id FROM runs ORDER BY id LIMIT 2").fetchall()
            if len(rows) < 2:
                break
            with self._transaction():
                self._delete([rows[0][0]])
        self._db.execute("PRAGMA incremental_vacuum").fetchall()


def _expect(
    entries: list[tuple[int, str, Expectation]],
    changed: Mapping[tuple[int, str], set[str]],
    window: int,
) -> Expectation:
    """One request's expectation from its answers in earlier runs (newest first)."""

    def usable(run: int, op: str, pointer: str) -> bool:
        return not _below(pointer, changed.get((run, op), ()))

    def latest(pointer: str) -> Expectation | None:
        return next((e for run, op, e in entries if usable(run, op, pointer)), None)

    status_from = latest("") or entries[0][2]
    type_from = latest(HEADER_POINTER + "content-type")
    encoding_from = latest(HEADER_POINTER + "content-encoding")
    candidates = set().union(*(e.steady for _, _, e in entries))
    steady = set()
    for pointer in candidates:
        chosen = [e for run, op, e in entries if usable(run, op, pointer)][:window]
        if chosen and all(pointer in e.steady for e in chosen):
            steady.add(pointer)
    names = set().union(*(e.headers for _, _, e in entries))
    headers = set()
    for name in names:
        before = latest(HEADER_POINTER + name)
        if before is not None and name in before.headers:
            headers.add(name)
    runs = sorted({run for run, _, _ in entries})
    span = f"run {runs[0]}" if len(runs) == 1 else f"runs {runs[0]}-{runs[-1]}"
    return Expectation(
        f"seen in every answer of {span} of the history",
        status_from.status,
        type_from.content_type if type_from is not None else None,
        encoding_from.content_encoding if encoding_from is not None else None,
        status_from.empty,
        frozenset(steady),
        frozenset(headers),
    )
