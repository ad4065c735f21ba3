"""What a mock serves, as one snapshot: every fixture file and the accounts file, read once.

A reload reads the files once (:meth:`Corpus.read`) and validates them (:meth:`Corpus.load`)
in the worker that was asked; the snapshot of exactly those bytes is then published in the
shared state (:meth:`Corpus.to_blob`), and every other worker builds the same fixtures and
accounts from it (:meth:`Corpus.from_blob`) instead of reading the files again, so a file
edited in between cannot make two workers disagree.
"""

from __future__ import annotations

import gc
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pivotkit.accounts import AccountsFile, load_accounts
from pivotkit.check import (
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

_MAGIC = b"pivotkit-corpus-1\n"
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
    fixtures: FixtureSet
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
    """The bytes of a fixtures directory and an accounts file, as read at one moment.

    ``files`` holds (path relative to ``root``, bytes or None when unreadable, the reason).
    """

    root: Path
    accounts_path: Path
    accounts: bytes | None
    accounts_error: str
    files: tuple[tuple[str, bytes | None, str], ...]

    @classmethod
    def read(cls, root: Path, accounts_path: Path) -> Corpus:
        """Read every ``<operationId>/<name>.json`` under ``root`` and the accounts file."""
        files = []
        for path in iter_fixture_files(root):
            data, reason = _read(path)
            files.append((path.relative_to(root).as_posix(), data, reason))
        accounts, error = _read(accounts_path)
        error = error.replace("cannot read it", "cannot read the accounts file")
        return cls(root, accounts_path, accounts, error, tuple(files))

    def load(self, contract: Contract, *, strict: bool = False) -> Loaded:
        """Validate everything: the accounts (ConfigError if they are wrong), then each
        fixture (format, operation, path, status, parameters, body against the contract, and
        duplicates). With ``strict`` any refused fixture is a ConfigError naming them."""
        with _gc_paused():
            return self._load(contract, strict=strict)

    def _load(self, contract: Contract, *, strict: bool) -> Loaded:
        if self.accounts is None:
            raise ConfigError(str(self.accounts_path), self.accounts_error)
        accounts = load_accounts(self.accounts_path, contract.operations, raw=self.accounts)
        served, refused = _validate(self.root, self.files, contract)
        loaded = Loaded(
            accounts, FixtureSet(served, self.root, **lang_settings(contract)), tuple(refused)
        )
        if strict and refused:
            raise ConfigError(
                f"{self.root} (--strict)",
                f"{loaded.refused_line()}; first: {refused[0]}; run pivotkit check",
            )
        return loaded

    # -- the snapshot in the shared state ---------------------------------------------------

    def to_blob(self) -> bytes:
        """The corpus as compressed bytes (see :meth:`from_blob`)."""
        out = bytearray(_MAGIC)
        records = [
            (str(self.root), b"", ""),
            (str(self.accounts_path), self.accounts, self.accounts_error),
            *self.files,
        ]
        for name, data, reason in records:
            encoded, why = name.encode(), reason.encode()
            out += _RECORD.pack(len(encoded), -1 if data is None else len(data), len(why))
            out += encoded + (data or b"") + why
        return zlib.compress(bytes(out), 1)

    @classmethod
    def from_blob(cls, blob: bytes) -> Corpus:
        """The corpus :meth:`to_blob` wrote (ValueError if the bytes are not one)."""
        raw = zlib.decompress(blob)
        if not raw.startswith(_MAGIC):
            raise ValueError("not a pivotkit corpus snapshot")
        records = list(_records(raw, len(_MAGIC)))
        if len(records) < 2:
            raise ValueError("a corpus snapshot holds its root and accounts first")
        (root, _, _), (accounts_path, accounts, error) = records[0], records[1]
        return cls(Path(root), Path(accounts_path), accounts, error, tuple(records[2:]))


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
    reasons = [*result.problems, *(f"{v.pointer or '/'}: {v.message}" for v in result.violations)]
    return Refused(result.path, result.kind, reasons[0])


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
