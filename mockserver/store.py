"""The fixture store: an index of the corpus, bodies read and prepared on first use.

At start (and on reload) every fixture file is known by one line of an index: its path, size,
mtime and inode, and what matching needs (method, path, query, status, source), with the
verdict of the checks ``pivotkit check`` makes (the kind and reason when it is refused). The
index is kept beside the state (``<state dir>/fixture-index/<root digest>.json``), keyed by
the contract's digest: a start on an unchanged corpus reads the index and stats the files; only
a file whose stat changed (or a new one) is read and validated again. Memory holds one small
:class:`Fixture` per file; its body is read, validated again and prepared (serialised,
gzipped, headers) when it is first asked for, into each worker's prepared-answer cache, which
is bounded in bytes (least recently used answers dropped first).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from pivotkit import __version__
from pivotkit.check import INVALID, check_exchange, invalid_reason
from pivotkit.contract import Contract
from pivotkit.errors import FixtureError
from pivotkit.fixtures import MAX_FIXTURE_BYTES, Exchange, Request, Response, read_exchange

INDEX_FORMAT = 2
#: A file changed less than this long before its stat was taken may change again within the
#: same timestamp tick (2 s on the coarsest file systems): it is read again at the next start
#: or reload instead of trusted.
RACY_NS = 2_000_000_000

_EMPTY: Mapping[str, str] = MappingProxyType({})

#: A file as indexed: path relative to the root, size, mtime_ns, inode, ctime_ns (which no
#: tool can set back: a rewrite of the same size, dated back, is seen).
Stat = tuple[str, int, int, int, int]


def signature(rel: str, stat: os.stat_result) -> Stat:
    """The :data:`Stat` of a file."""
    return (rel, stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)


def contract_digest(contract: Contract) -> str:
    """A digest of everything the contract says (a verdict holds for this digest only)."""
    digest = hashlib.sha256(f"{__version__}|{INDEX_FORMAT}|{MAX_FIXTURE_BYTES}".encode())
    for document in contract.documents:
        digest.update(document.uri.encode())
        digest.update(orjson.dumps(document.contents, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


class Source:
    """Where fixtures are read from, and how they are checked on use."""

    def __init__(self, root: Path, contract: Contract) -> None:
        self.root = root
        self.contract = contract

    def read(self, fixture: Fixture) -> Exchange:
        """The fixture's exchange as its file holds it now, checked again: format, the
        contract, and the same request and status as indexed (FixtureError otherwise)."""
        path = self.root / fixture.sig[0]
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FIXTURE_BYTES + 1)
        except OSError as exc:
            raise FixtureError(path, f"cannot read it ({exc.strerror or exc})") from None
        exchange = read_exchange(path, raw)
        result = check_exchange(self.contract, exchange)
        if not result.ok:
            reasons = [
                *result.problems,
                *(f"{v.pointer or '/'}: {v.message}" for v in result.violations),
            ]
            raise FixtureError(path, f"{result.kind}: {reasons[0]}")
        if _matching(exchange) != _matching(fixture):
            raise FixtureError(path, "its request or status changed since it was indexed (reload)")
        return exchange


def _matching(exchange: Exchange) -> tuple[str, str, tuple[tuple[str, str], ...], int]:
    request = exchange.request
    return (
        request.method,
        request.path,
        tuple(sorted(request.query.items())),
        exchange.response.status,
    )


class IndexedResponse(Response):
    """A response known by its status; headers and body are read from the file on use."""

    def __init__(self, status: int, source: Source, fixture_sig: Stat) -> None:
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_sig", fixture_sig)

    def _loaded(self) -> Response:
        source: Source = object.__getattribute__(self, "_source")
        sig: Stat = object.__getattribute__(self, "_sig")
        return read_exchange(source.root / sig[0]).response

    @property
    def body(self) -> Any:
        return self._loaded().body

    @property
    def headers(self) -> Mapping[str, str]:
        return self._loaded().headers


class Fixture(Exchange):
    """One indexed fixture: what matching needs at hand, the body read from its file on use.

    ``sig`` (see :data:`Stat`) names the file as indexed; the
    prepared-answer cache is keyed by it, so an answer outlives a reload of unchanged files.
    """

    sig: Stat
    origin: Source

    def __init__(
        self,
        source: Source,
        sig: Stat,
        operation_id: str,
        request: Request,
        status: int,
        meta: Mapping[str, Any],
    ) -> None:
        object.__setattr__(self, "operation_id", operation_id)
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "response", IndexedResponse(status, source, sig))
        object.__setattr__(self, "meta", meta)
        object.__setattr__(self, "sig", sig)
        object.__setattr__(self, "origin", source)

    @property
    def name(self) -> str:
        return self.sig[0].rsplit("/", 1)[-1][: -len(".json")]

    @property
    def file(self) -> Path:
        return self.origin.root / self.sig[0]

    def __hash__(self) -> int:
        return hash(self.sig)

    def __repr__(self) -> str:
        return f"Fixture({self.sig[0]!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fixture) and other.sig == self.sig


@dataclass
class Line:
    """One line of the index: a file's stat and what it was found to be."""

    sig: Stat
    operation_id: str
    method: str = ""
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()
    status: int = 0
    source: str = ""
    kind: str = ""  # "" when the file passes every check of its own
    reason: str = ""

    def row(self) -> list[Any]:
        return [
            *self.sig,
            self.method,
            self.path,
            self.query,
            self.status,
            self.source,
            self.kind,
            self.reason,
        ]

    @classmethod
    def of(cls, row: list[Any]) -> Line:
        rel, size, mtime, ino, ctime, method, path, query, status, source, kind, reason = row
        return cls(
            (str(rel), int(size), int(mtime), int(ino), int(ctime)),
            str(rel).split("/", 1)[0],
            str(method),
            str(path),
            tuple((str(k), str(v)) for k, v in query),
            int(status),
            str(source),
            str(kind),
            str(reason),
        )


@dataclass
class Walk:
    """What building an index did: lines kept from the previous index, files read."""

    reused: int = 0
    read: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"reused": self.reused, "read": self.read, "seconds": round(self.seconds, 3)}


class Interner:
    """One shared object per distinct small value (query maps, meta maps, strings)."""

    def __init__(self) -> None:
        self._queries: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {(): _EMPTY}
        self._metas: dict[tuple[str, str], Mapping[str, Any]] = {}

    def query(self, items: tuple[tuple[str, str], ...]) -> Mapping[str, str]:
        found = self._queries.get(items)
        if found is None:
            found = self._queries[items] = MappingProxyType(dict(items))
        return found

    def meta(self, operation_id: str, source: str) -> Mapping[str, Any]:
        key = (operation_id, source)
        found = self._metas.get(key)
        if found is None:
            data = (
                {"operationId": operation_id, "source": source}
                if source
                else {"operationId": operation_id}
            )
            found = self._metas[key] = MappingProxyType(data)
        return found


def scan(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every ``<operationId>/<name>.json`` under ``root`` that is a file, with its stat, in
    the order of :func:`pivotkit.fixtures.iter_fixture_files`."""
    found: list[tuple[str, os.stat_result]] = []
    try:
        folders = sorted(e.name for e in os.scandir(root) if e.is_dir())
    except OSError:
        return
    for folder in folders:
        try:
            entries = list(os.scandir(root / folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(".json"):
                continue
            try:
                stat = entry.stat()
            except OSError:
                continue
            if entry.is_file():
                found.append((f"{folder}/{entry.name}", stat))
    found.sort(key=lambda item: item[0])
    yield from found


def index_line(root: Path, rel: str, stat: os.stat_result, contract: Contract) -> Line:
    """Read and check one file (everything ``pivotkit check`` checks but duplicates)."""
    sig = signature(rel, stat)
    operation_id = rel.split("/", 1)[0]
    path = root / rel
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FIXTURE_BYTES + 1)
        exchange = read_exchange(path, raw)
    except OSError as exc:
        return Line(
            sig, operation_id, kind=INVALID, reason=f"cannot read it ({exc.strerror or exc})"
        )
    except FixtureError as exc:
        return Line(sig, operation_id, kind=INVALID, reason=invalid_reason(exc))
    request = exchange.request
    line = Line(
        sig,
        operation_id,
        request.method,
        request.path,
        tuple(sorted(request.query.items())),
        exchange.response.status,
        exchange.source,
    )
    result = check_exchange(contract, exchange)
    if not result.ok:
        reasons = [
            *result.problems,
            *(f"{v.pointer or '/'}: {v.message}" for v in result.violations),
        ]
        line.kind, line.reason = result.kind, reasons[0]
    return line


def build_lines(
    root: Path, contract: Contract, previous: Mapping[str, Line], trusted_before: int
) -> tuple[list[Line], Walk]:
    """The index of ``root``: the previous line of a file whose stat is unchanged (and that
    was not written within :data:`RACY_NS` of the previous index), else the file read again."""
    started = time.perf_counter()
    walk = Walk()
    lines = []
    for rel, stat in scan(root):
        old = previous.get(rel)
        sig = signature(rel, stat)
        if old is not None and old.sig == sig and max(sig[2], sig[4]) < trusted_before:
            walk.reused += 1
            lines.append(old)
            continue
        walk.read += 1
        lines.append(index_line(root, rel, stat, contract))
    walk.seconds = time.perf_counter() - started
    return lines, walk


def fixtures_of(lines: Iterable[Line], source: Source) -> list[Fixture]:
    """A :class:`Fixture` for every line that passed its own checks."""
    interner = Interner()
    strings: dict[str, str] = {}
    out = []
    for line in lines:
        if line.kind:
            continue
        method = strings.setdefault(line.method, line.method)
        operation_id = sys.intern(line.operation_id)
        request = Request(method, line.path, interner.query(line.query), _EMPTY)
        meta = interner.meta(operation_id, sys.intern(line.source))
        out.append(Fixture(source, line.sig, operation_id, request, line.status, meta))
    return out


class IndexFile:
    """The index kept on disk for one fixtures root and one contract."""

    def __init__(self, folder: Path | None, root: Path, digest: str) -> None:
        name = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:20]
        self.path = None if folder is None else folder / "fixture-index" / f"{name}.json"
        self.root = root
        self.digest = digest

    def read(self) -> tuple[dict[str, Line], int]:
        """The lines of the stored index by path, and the time before which a file's stat is
        trusted (empty and 0 when there is no usable index)."""
        if self.path is None:
            return {}, 0
        try:
            data = orjson.loads(self.path.read_bytes())
            if (
                data.get("format") != INDEX_FORMAT
                or data.get("contract") != self.digest
                or data.get("root") != str(self.root)
            ):
                return {}, 0
            lines = [Line.of(row) for row in data["files"]]
            trusted = int(data["built_ns"]) - RACY_NS
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}, 0
        return {line.sig[0]: line for line in lines}, trusted

    def write(self, lines: list[Line], built_ns: int) -> None:
        """Store the index atomically (a failure to write only costs the next start);
        ``built_ns`` is when its files were first stat'ed."""
        if self.path is None:
            return
        data = orjson.dumps(
            {
                "format": INDEX_FORMAT,
                "contract": self.digest,
                "root": str(self.root),
                "built_ns": built_ns,
                "files": [line.row() for line in lines],
            }
        )
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)


def lines_blob(lines: list[Line]) -> bytes:
    """The index lines as bytes, for the snapshot other workers build from."""
    return orjson.dumps([line.row() for line in lines])


def lines_from_blob(data: bytes) -> list[Line]:
    """The lines :func:`lines_blob` wrote (ValueError when they are not)."""
    rows = orjson.loads(data)
    if not isinstance(rows, list):
        raise ValueError("not an index")
    try:
        return [Line.of(row) for row in rows]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an index ({exc})") from None
