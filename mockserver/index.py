"""The fixture index on disk: one SQLite file per fixtures root, contract and corpus state.

One row per fixture file (see :data:`COLUMNS`): its stat, what matching needs, and the verdict
of its checks. The file is written once (atomically, named after the digest of every file's
stat) and then only read: each process opens it read-only and memory-maps it, so the pages are
the operating system's, shared by every worker, and nothing per fixture is held in Python until
a fixture is asked for. :class:`IndexedFixtures` is the :class:`~pivotkit.fixtures.FixtureSet`
the mock serves over it.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from mockserver.store import (
    INDEX_FORMAT,
    RACY_NS,
    Fixture,
    Source,
    Stat,
    Walk,
    contract_digest,
    files_digest,
    index_row,
    scan,
    signature,
)
from pivotkit.check import duplicate_results
from pivotkit.contract import Contract
from pivotkit.fixtures import Exchange, FixtureSet, Request

#: The columns of a row, in order (``query``: the request's query as JSON pairs, sorted;
#: ``lang``: the language it answers; ``plain``: 1 when it has no query parameter besides the
#: language; ``kind``/``reason``: the file's own verdict, empty when it passes; ``dup``: why it
#: is left out as a duplicate, empty when it is not).
COLUMNS = (
    "rel",
    "size",
    "mtime",
    "ino",
    "ctime",
    "operation",
    "method",
    "path",
    "query",
    "lang",
    "plain",
    "status",
    "source",
    "kind",
    "reason",
    "dup",
)
Row = tuple[Any, ...]
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM files"
_SCHEMA = f"""
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (pos INTEGER NOT NULL, {", ".join(COLUMNS)}, served INTEGER NOT NULL);
"""
_INDEXES = """
CREATE UNIQUE INDEX files_rel ON files (rel);
CREATE INDEX files_match ON files (method, path, lang) WHERE served;
CREATE INDEX files_operation ON files (operation, pos) WHERE served;
CREATE INDEX files_pos ON files (pos);
"""
#: Up to this many distinct paths, "closest" looks at all of them; beyond, at the paths near
#: the one asked for in sort order (difflib over 100,000 paths takes seconds).
CLOSEST_ALL = 5000


def sig_of(row: Row) -> Stat:
    """The stat part of a row."""
    return (row[0], row[1], row[2], row[3], row[4])


def served(row: Row) -> bool:
    return not row[13] and not row[15]


class FixtureIndex:
    """An index file, opened read-only (one connection per process, memory-mapped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self.meta: dict[str, str] = dict(self._query("SELECT name, value FROM meta", ()))
        self.count = int(self.meta["served"])

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():  # a forked worker opens its own
            db = sqlite3.connect(
                f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False
            )
            db.execute("PRAGMA mmap_size = 1073741824")
            db.execute("PRAGMA cache_size = -512")
            self._db, self._pid = db, os.getpid()
        return self._db

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def plain(self, method: str, path: str, lang: str) -> Row | None:
        """The served row without extra query parameters that answers this request."""
        rows = self._query(
            f"{_SELECT} WHERE method = ? AND path = ? AND lang = ? AND served AND plain "
            "AND status < 400 ORDER BY pos LIMIT 1",
            (method, path, lang),
        )
        return rows[0] if rows else None

    def specific(self, method: str, path: str) -> list[Row]:
        """The served rows of this method and path with extra query parameters, in order."""
        return self._query(
            f"{_SELECT} WHERE method = ? AND path = ? AND served AND NOT plain ORDER BY pos",
            (method, path),
        )

    def rows(self, operation: str | None = None) -> list[Row]:
        """The served rows (of one operation), in order."""
        if operation is None:
            return self._query(f"{_SELECT} WHERE served ORDER BY pos", ())
        return self._query(f"{_SELECT} WHERE served AND operation = ? ORDER BY pos", (operation,))

    def refused(self) -> list[Row]:
        """The rows of files left out (their own verdict, or a duplicate), in order."""
        return self._query(f"{_SELECT} WHERE NOT served ORDER BY pos", ())

    def by_rel(self, rel: str) -> Row | None:
        """The row of one file (relative to the root), or None."""
        rows = self._query(f"{_SELECT} WHERE rel = ?", (rel,))
        return rows[0] if rows else None

    def serves(self, rel: Path) -> bool:
        """Whether the file (relative to the root) is served."""
        return bool(self._query("SELECT 1 FROM files WHERE rel = ? AND served", (rel.as_posix(),)))

    def every_row(self) -> dict[str, Row]:
        """Every row by file (the previous index of a rebuild)."""
        return {row[0]: row for row in self._query(_SELECT, ())}

    def paths_near(self, path: str, n: int) -> list[str]:
        """Distinct served paths: all of them in a small corpus, else the ``n`` on either
        side of ``path`` in sort order."""
        if int(self.meta["paths"]) <= CLOSEST_ALL:
            found = self._query("SELECT DISTINCT path FROM files WHERE served", ())
        else:
            found = self._query(
                "SELECT * FROM (SELECT DISTINCT path FROM files WHERE served AND path < ? "
                "ORDER BY path DESC LIMIT ?) UNION SELECT * FROM (SELECT DISTINCT path FROM "
                "files WHERE served AND path >= ? ORDER BY path LIMIT ?)",
                (path, n, path, n),
            )
        return sorted(str(r[0]) for r in found)

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    @staticmethod
    def write(path: Path, rows: Iterable[Row], meta: dict[str, str]) -> None:
        """Write an index file atomically (through a temporary file beside it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode = OFF")
                db.execute("PRAGMA synchronous = OFF")
                db.executescript(_SCHEMA)
                db.execute("BEGIN")
                marks = ", ".join("?" * (len(COLUMNS) + 2))
                db.executemany(
                    f"INSERT INTO files VALUES ({marks})",
                    ((pos, *row, served(row)) for pos, row in enumerate(rows)),
                )
                db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
                for statement in _INDEXES.strip().split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("COMMIT")
            finally:
                db.close()
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def open_index(path: Path) -> FixtureIndex | None:
    """The index at ``path``, or None when there is none or it cannot be read."""
    try:
        return FixtureIndex(path) if path.is_file() else None
    except (sqlite3.Error, KeyError, ValueError):
        return None


class IndexedFixtures(FixtureSet):
    """The fixtures of an index: a :class:`~pivotkit.fixtures.FixtureSet` whose exchanges are
    :class:`~mockserver.store.Fixture` objects made when they are asked for (nothing per
    fixture is held in memory)."""

    def __init__(
        self, index: FixtureIndex, source: Source, *, default_lang: str, lang_parameter: str
    ) -> None:
        self.root = source.root
        self.default_lang = default_lang
        self.lang_parameter = lang_parameter
        self.index = index
        self.source = source
        self._queries: dict[str, Any] = {}

    def fixture(self, row: Row) -> Fixture:
        """The fixture of an index row."""
        query = self._queries.get(row[8])
        if query is None:
            pairs = orjson.loads(row[8]) if row[8] else []
            query = self._queries.setdefault(row[8], {str(k): str(v) for k, v in pairs})
        request = Request(row[6], row[7], MappingProxyType(query), MappingProxyType({}))
        meta = {"operationId": row[5], "source": row[12]} if row[12] else {"operationId": row[5]}
        return Fixture(self.source, sig_of(row), row[5], request, row[11], MappingProxyType(meta))

    @property
    def exchanges(self) -> tuple[Exchange, ...]:  # type: ignore[override]
        """Every fixture served, in file order (made now: O(corpus))."""
        return tuple(iter(self))

    def __len__(self) -> int:
        return self.index.count

    def __iter__(self) -> Iterator[Exchange]:
        return (self.fixture(row) for row in self.index.rows())

    def for_operation(self, operation_id: str) -> list[Exchange]:
        return [self.fixture(row) for row in self.index.rows(operation_id)]

    def named(self, operation_id: str, name: str) -> Exchange | None:
        row = self.index.by_rel(f"{operation_id}/{name}.json")
        return None if row is None or not served(row) else self.fixture(row)

    def match(self, method: str, path: str, lang: str | None = None) -> Exchange | None:
        lang = lang or self.default_lang
        row = self.index.plain(method.upper(), path, lang)
        if row is None and lang != self.default_lang:
            row = self.index.plain(method.upper(), path, self.default_lang)
        return None if row is None else self.fixture(row)

    def duplicates(self) -> list[tuple[Exchange, Exchange]]:
        return []  # left out when the index was built (see IndexFile.refused)

    def closest(self, path: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(path, self.index.paths_near(path, 200), n=n, cutoff=0.5)


def index_path(folder: Path, root: Path, digest: str) -> Path:
    """Where the index of ``root`` in this state (``digest``: of its files) is kept."""
    name = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:16]
    return folder / "fixture-index" / f"{name}-{digest[:24]}.sqlite"


def _usable(index: FixtureIndex | None, digest: str, racy_after: int) -> bool:
    """Whether ``index`` describes exactly these files, none changed near its walk."""
    return (
        index is not None
        and index.meta.get("files") == digest
        and racy_after < int(index.meta["built_ns"]) - RACY_NS
    )


def build_index(
    root: Path,
    contract: Contract,
    folder: Path,
    previous: FixtureIndex | None = None,
) -> tuple[FixtureIndex, Walk]:
    """The index of ``root`` now: ``previous`` (or an index already kept for exactly these
    files) when every file's stat is as it knew it, else a new index in which a file of
    unchanged stat keeps its row and the others are read and checked again."""
    built = time.time_ns()
    started = time.perf_counter()
    items = list(scan(root))
    contract_id = contract_digest(contract)
    digest, latest = files_digest(items, contract_id)
    path = index_path(folder, root, digest)
    if previous is None:  # at start: the index kept for these fixtures, if any
        previous = _latest(path)
    for candidate in (previous, open_index(path)):
        if _usable(candidate, digest, latest):
            assert candidate is not None
            walk = Walk(len(items), 0, time.perf_counter() - started, unchanged=True)
            return candidate, walk
    if previous is not None and previous.meta.get("contract") != contract_id:
        previous = None  # its verdicts hold for another contract
    old = previous.every_row() if previous is not None else {}
    trusted = int(previous.meta["built_ns"]) - RACY_NS if previous is not None else 0
    walk = Walk()
    rows: list[Row] = []
    for rel, stat in items:
        row = old.get(rel)
        if (
            row is not None
            and sig_of(row) == signature(rel, stat)
            and max(row[2], row[4]) < trusted
        ):
            walk.reused += 1
            rows.append((*row[:15], ""))
        else:
            walk.read += 1
            rows.append(index_row(root, rel, stat, contract))
    rows = _with_duplicates(rows, root, contract)
    meta = {
        "format": str(INDEX_FORMAT),
        "contract": contract_id,
        "root": str(root),
        "files": digest,
        "built_ns": str(built),
        "served": str(sum(1 for row in rows if served(row))),
        "paths": str(len({row[7] for row in rows if served(row)})),
    }
    FixtureIndex.write(path, rows, meta)
    _forget_others(path, keep=None if previous is None else previous.path)
    walk.seconds = time.perf_counter() - started
    return FixtureIndex(path), walk


def _with_duplicates(rows: list[Row], root: Path, contract: Contract) -> list[Row]:
    """The rows with ``dup`` set on every fixture that answers the same request as an earlier
    one (``pivotkit check``'s rule, pivotkit.check.duplicate_results)."""
    view = IndexedFixtures.__new__(IndexedFixtures)
    view._queries = {}
    view.source = Source(root, contract)
    passed = [view.fixture(row) for row in rows if not row[13] and row[11] < 400]
    found = {str(r.path): r.problems[0] for r in duplicate_results(list(passed), contract)}
    if not found:
        return rows
    return [(*row[:15], found.get(str(root / row[0]), "")) for row in rows]


def kept_index(root: Path, contract: Contract, folder: Path) -> FixtureIndex | None:
    """The newest index kept in ``folder`` for ``root`` and this contract, or None."""
    index = _latest(index_path(folder, root, ""))
    if index is None or index.meta.get("contract") != contract_digest(contract):
        return None
    return index


def _latest(path: Path) -> FixtureIndex | None:
    """The newest index file kept for the same root as ``path``."""
    prefix = path.name.split("-", 1)[0]
    found = sorted(
        path.parent.glob(f"{prefix}-*.sqlite"), key=lambda p: p.stat().st_mtime_ns, reverse=True
    )
    return next((index for p in found if (index := open_index(p)) is not None), None)


def _forget_others(path: Path, keep: Path | None) -> None:
    """Remove the other index files of the same root (but ``keep``, still open elsewhere)."""
    prefix = path.name.split("-", 1)[0]
    for other in path.parent.glob(f"{prefix}-*.sqlite"):
        if other != path and other != keep:
            other.unlink(missing_ok=True)
