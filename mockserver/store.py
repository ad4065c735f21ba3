"""Fixtures known by their index line: read, checked and prepared on first use.

Every fixture file is known by one row of the index (:mod:`mockserver.index`): its stat (see
:data:`Stat`), what matching needs (method, path, query, language, status, source) and the
verdict of the checks ``pivotkit check`` makes. A :class:`Fixture` is made from a row when a
request asks for it; its body is read from the file, checked again against the contract and
against its row (same request, same status) by :meth:`Source.read`, and prepared by the backend
into each worker's prepared-answer cache, bounded in bytes. Building a row (:func:`index_row`)
reads and checks a file once; :func:`scan` and :func:`files_digest` are the stat walk that tells
whether the files are still the ones the index knows.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pivotkit import __version__
from pivotkit.check import INVALID, FileResult, check_exchange, invalid_reason
from pivotkit.contract import Contract
from pivotkit.errors import FixtureError
from pivotkit.fixtures import MAX_FIXTURE_BYTES, Exchange, Request, Response, read_exchange

INDEX_FORMAT = 2
#: A file changed less than this long before its stat was taken may change again within the
#: same timestamp tick (2 s on the coarsest file systems): it is read again at the next start
#: or reload instead of trusted.
RACY_NS = 2_000_000_000


#: A file as indexed: path relative to the root, size, mtime_ns, inode, ctime_ns (which no
#: tool can set back: a rewrite of the same size, dated back, is seen).
Stat = tuple[str, int, int, int, int]


def signature(rel: str, stat: os.stat_result) -> Stat:
    """The :data:`Stat` of a file."""
    return (rel, stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)


def first_reason(result: FileResult) -> str:
    """The first reason a checked fixture fails."""
    reasons = [*result.problems, *(f"{v.pointer or '/'}: {v.message}" for v in result.violations)]
    return reasons[0]


def contract_digest(contract: Contract) -> str:
    """A digest of everything the contract says (a verdict holds for this digest only)."""
    known = _DIGESTS.get(id(contract))
    if known is not None and known[0] is contract:
        return known[1]
    digest = hashlib.sha256(f"{__version__}|{INDEX_FORMAT}|{MAX_FIXTURE_BYTES}".encode())
    for document in contract.documents:
        digest.update(document.uri.encode())
        digest.update(orjson.dumps(document.contents, option=orjson.OPT_SORT_KEYS))
    _DIGESTS[id(contract)] = (contract, digest.hexdigest())
    return _DIGESTS[id(contract)][1]


_DIGESTS: dict[int, tuple[Contract, str]] = {}


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
            raise FixtureError(path, f"{result.kind}: {first_reason(result)}")
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
        try:
            return read_exchange(source.root / sig[0]).response
        except FixtureError:  # broken since it was indexed: nothing to show (served as absent)
            return Response(self.status, None)

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
        object.__setattr__(self, "name", sig[0].rsplit("/", 1)[-1][: -len(".json")])

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
class Walk:
    """What building an index did: files whose row was kept from the previous index, files
    read and checked, whether every file was as the previous index knew it, and whether the
    walk is still to come (a production start serves the kept index at once)."""

    reused: int = 0
    read: int = 0
    seconds: float = 0.0
    unchanged: bool = False
    deferred: bool = False  # the index kept from the last run, the files not stat'ed yet

    def as_dict(self) -> dict[str, Any]:
        return {
            "reused": self.reused,
            "read": self.read,
            "seconds": round(self.seconds, 3),
            "unchanged": self.unchanged,
            "deferred": self.deferred,
        }


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
    found.sort()  # by path: paths are unique, so the stats are never compared
    yield from found


def files_digest(items: list[tuple[str, os.stat_result]], contract: str) -> tuple[str, int]:
    """A digest of every file's :data:`Stat` and the contract's digest, and the latest time
    a file changed (mtime or ctime, in ns)."""
    parts = [contract]
    latest = 0
    for rel, st in items:
        mtime, ctime = st.st_mtime_ns, st.st_ctime_ns
        parts.append(f"{rel}\0{st.st_size}\0{mtime}\0{st.st_ino}\0{ctime}")
        latest = max(latest, mtime, ctime)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest(), latest


def index_row(root: Path, rel: str, stat: os.stat_result, contract: Contract) -> tuple[Any, ...]:
    """Read and check one file (everything ``pivotkit check`` checks but duplicates): its row
    of the index (see :data:`mockserver.index.COLUMNS`)."""
    sig = signature(rel, stat)
    operation_id = rel.split("/", 1)[0]
    path = root / rel
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FIXTURE_BYTES + 1)
        exchange = read_exchange(path, raw)
    except OSError as exc:
        reason = f"cannot read it ({exc.strerror or exc})"
        return (*sig, operation_id, "", "", "", "", 1, 0, "", INVALID, reason, "")
    except FixtureError as exc:
        return (*sig, operation_id, "", "", "", "", 1, 0, "", INVALID, invalid_reason(exc), "")
    request = exchange.request
    conv = contract.conventions
    query = sorted(request.query.items())
    lang = request.query.get(conv.lang_parameter) or conv.default_lang
    plain = all(k == conv.lang_parameter for k, _ in query)
    kind = reason = ""
    result = check_exchange(contract, exchange)
    if not result.ok:
        kind, reason = result.kind, first_reason(result)
    return (
        *sig,
        operation_id,
        request.method,
        request.path,
        orjson.dumps(query).decode() if query else "",
        lang,
        int(plain),
        exchange.response.status,
        exchange.source,
        kind,
        reason,
        "",
    )
