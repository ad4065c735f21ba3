"""What a mock serves, as one snapshot: the fixture index and the accounts file.

A reload builds the index once (:meth:`Corpus.read`: every file stat'ed, a file whose stat
changed, or a new one, read and checked) and validates the accounts (:meth:`Corpus.load`) in
the worker that was asked; the snapshot (the accounts file's bytes and where the index is, no
fixture body: :meth:`Corpus.to_blob`) is then published in the shared state, and every other
worker opens the same read-only index (:meth:`Corpus.from_blob`) instead of reading the files
again. Bodies are read when first asked for, and checked again then (mockserver.store).
"""

from __future__ import annotations

import gc
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mockserver.index import FixtureIndex, IndexedFixtures, build_index, kept_index, open_index
from mockserver.store import (
    Source,
    Walk,
    first_reason,
)
from pivotkit.accounts import AccountsFile, load_accounts
from pivotkit.check import (
    DUPLICATE,
    INVALID,
    KINDS,
    FileResult,
    check_exchange,
    duplicate_results,
    invalid_reason,
)
from pivotkit.contract import Contract
from pivotkit.errors import ConfigError, FixtureError
from pivotkit.fixtures import (
    MAX_FIXTURE_BYTES,
    Exchange,
    FixtureSet,
    iter_fixture_files,
    lang_settings,
    read_exchange,
)

_MAGIC = b"pivotkit-corpus-2\n"
_RECORD = struct.Struct("<IiI")  # name length, data length (-1: unreadable), reason length


@dataclass(frozen=True)
class Refused:
    """A fixture file left out: the file, why (one of :data:`pivotkit.check.KINDS`), and
    the whole reason."""

    path: Path
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Loaded:
    """A corpus once validated: the accounts, the fixtures served, the files refused."""

    accounts: AccountsFile
    fixtures: IndexedFixtures
    refused: tuple[Refused, ...]

    def refused_line(self) -> str:
        """One line: how many fixtures were refused and why ("" when none was)."""
        if not self.refused:
            return ""
        counts = Counter(r.kind for r in self.refused)
        why = ", ".join(f"{k}: {counts[k]}" for k in KINDS if counts[k])
        n = len(self.refused)
        return f"{n} fixture{'s' if n > 1 else ''} refused ({why})"


@dataclass(frozen=True)
class Corpus:
    """A fixtures directory known by its index (:mod:`mockserver.index`) and the bytes of an
    accounts file, as read at one moment; ``walk`` says what building the index did."""

    root: Path
    accounts_path: Path
    accounts: bytes | None
    accounts_error: str
    index: FixtureIndex
    walk: Walk = field(default_factory=Walk)

    @classmethod
    def read(
        cls,
        root: Path,
        accounts_path: Path,
        contract: Contract,
        folder: Path,
        previous: FixtureIndex | None = None,
    ) -> Corpus:
        """Index every ``<operationId>/<name>.json`` under ``root`` into ``folder`` (a file
        whose stat ``previous`` knows is not read again) and read the accounts file."""
        index, walk = build_index(root, contract, folder, previous)
        accounts, error = _read(accounts_path)
        error = error.replace("cannot read it", "cannot read the accounts file")
        return cls(root, accounts_path, accounts, error, index, walk)

    @classmethod
    def kept(
        cls, root: Path, accounts_path: Path, contract: Contract, folder: Path
    ) -> Corpus | None:
        """The corpus of the index kept from the last run (the files not stat'ed: see
        :meth:`read`), or None when there is none for this contract."""
        index = kept_index(root, contract, folder)
        if index is None:
            return None
        accounts, error = _read(accounts_path)
        error = error.replace("cannot read it", "cannot read the accounts file")
        return cls(root, accounts_path, accounts, error, index, Walk(deferred=True))

    def load(self, contract: Contract, *, strict: bool = False) -> Loaded:
        """Validate the accounts (ConfigError if they are wrong) and serve the fixtures the
        index found passing every check of ``pivotkit check`` (format, operation, path,
        status, parameters, body against the contract, duplicates). With ``strict`` any
        refused fixture is a ConfigError naming them."""
        if self.accounts is None:
            raise ConfigError(str(self.accounts_path), self.accounts_error)
        accounts = load_accounts(self.accounts_path, contract.operations, raw=self.accounts)
        refused = [
            Refused(self.root / row[0], row[13] or DUPLICATE, row[14] or row[15])
            for row in self.index.refused()
        ]
        fixtures = IndexedFixtures(
            self.index, Source(self.root, contract), **lang_settings(contract)
        )
        loaded = Loaded(accounts, fixtures, tuple(refused))
        if strict and refused:
            raise ConfigError(
                f"{self.root} (--strict)",
                f"{loaded.refused_line()}; first: {refused[0]}; run pivotkit check",
            )
        return loaded

    # -- the snapshot in the shared state ---------------------------------------------------

    def to_blob(self) -> bytes:
        """The corpus as compressed bytes: the root, the accounts file's bytes and where the
        index is (see :meth:`from_blob`); no fixture is in it."""
        out = bytearray(_MAGIC)
        records = [
            (str(self.root), b"", ""),
            (str(self.accounts_path), self.accounts, self.accounts_error),
            (str(self.index.path), b"", self.index.meta["files"]),
        ]
        for name, data, reason in records:
            encoded, why = name.encode(), reason.encode()
            out += _RECORD.pack(len(encoded), -1 if data is None else len(data), len(why))
            out += encoded + (data or b"") + why
        return zlib.compress(bytes(out), 1)

    @staticmethod
    def blob_paths(blob: bytes) -> tuple[Path, Path]:
        """The fixtures folder and the index file a snapshot names (ValueError if the bytes
        are not a snapshot)."""
        records = _snapshot_records(blob)
        return Path(records[0][0]), Path(records[2][0])

    @classmethod
    def from_blob(cls, blob: bytes) -> Corpus:
        """The corpus :meth:`to_blob` wrote (ValueError if the bytes are not one, or its
        index is gone or another)."""
        records = _snapshot_records(blob)
        (root, _, _), (accounts_path, accounts, error) = records[0], records[1]
        index = open_index(Path(records[2][0]))
        if index is None or index.meta.get("files") != records[2][2]:
            raise ValueError(f"the index {records[2][0]} is gone or was replaced")
        return cls(Path(root), Path(accounts_path), accounts, error, index)


def _snapshot_records(blob: bytes) -> list[tuple[str, bytes | None, str]]:
    """The three records of a snapshot (root, accounts, index), or ValueError."""
    raw = zlib.decompress(blob)
    if not raw.startswith(_MAGIC):
        raise ValueError("not a pivotkit corpus snapshot")
    records = list(_records(raw, len(_MAGIC)))
    if len(records) != 3:
        raise ValueError("a corpus snapshot holds its root, accounts and index")
    return records


def _validate(
    root: Path, files: tuple[tuple[str, bytes | None, str], ...], contract: Contract
) -> tuple[list[Exchange], list[Refused]]:
    """The fixtures that pass every check of ``pivotkit check`` (format, operation, path,
    status, body, duplicates), and the others with the reason."""
    refused: list[Refused] = []
    passed: list[Exchange] = []
    for name, data, reason in files:
        path = root / name
        if data is None:
            refused.append(Refused(path, INVALID, reason))
            continue
        try:
            exchange = read_exchange(path, data)
        except FixtureError as exc:
            refused.append(Refused(path, INVALID, invalid_reason(exc)))
            continue
        result = check_exchange(contract, exchange)
        if result.ok:
            passed.append(exchange)
        else:
            refused.append(_refused(result))
    duplicates = duplicate_results(passed, contract)
    refused += [_refused(r) for r in duplicates]
    dropped = {r.path for r in duplicates}
    return [ex for ex in passed if ex.file not in dropped], refused


def load_fixtures(
    root: Path, contract: Contract, *, strict: bool = False
) -> tuple[FixtureSet, list[str]]:
    """A folder of fixtures alone (a timeline's step), validated like the corpus: the
    fixtures served and one line per file refused; with ``strict`` a refused file is a
    FixtureError."""
    files = []
    for path in iter_fixture_files(root):
        data, reason = _read(path)
        files.append((path.relative_to(root).as_posix(), data, reason))
    with _gc_paused():
        served, refused = _validate(root, tuple(files), contract)
    if strict and refused:
        raise FixtureError(refused[0].path, refused[0].reason)
    return FixtureSet(served, root, **lang_settings(contract)), [str(r) for r in refused]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk load, then freeze what was loaded.

    Loading builds many long-lived objects and no cycles: each collection pass would rescan
    the growing heap (half the start-up time with 10,000 fixtures). Freezing afterwards keeps
    those objects out of later collections, so they do not lengthen request-time pauses.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


def _refused(result: FileResult) -> Refused:
    """The first reason a checked fixture fails."""
    return Refused(result.path, result.kind, first_reason(result))


def _records(raw: bytes, offset: int) -> Iterator[tuple[str, bytes | None, str]]:
    while offset < len(raw):
        name_len, data_len, why_len = _RECORD.unpack_from(raw, offset)
        offset += _RECORD.size
        name = raw[offset : offset + name_len].decode()
        offset += name_len
        data = None if data_len < 0 else raw[offset : offset + data_len]
        offset += max(data_len, 0)
        reason = raw[offset : offset + why_len].decode()
        offset += why_len
        yield name, data, reason


def _read(path: Path) -> tuple[bytes | None, str]:
    """A file's bytes (one more than the fixture bound at most: the reader refuses a file
    past it, with its size), or None and why it cannot be read."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_FIXTURE_BYTES + 1), ""
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror or exc})"
