"""The request journal: every API request the mock answered, in a ring bounded in bytes.

The ring lives in a file memory-mapped by every worker (:mod:`shared`), in ``/dev/shm`` when
the machine has it (else beside the state), so a request answered by one worker is in the
journal the next request of any worker reads. It is a pool of segments: each worker writes
into segments of its own (a few lanes, so that its threads do not queue on one lock), with no
system call and no wait for another process on the hot path; a full segment is sealed and a
free one taken, else the oldest sealed one, whose records are forgotten (the only step that
locks across processes, once per segment). Readers merge the segments by time. A record is a
16-byte header (length, clear epoch, id) and a compact JSON list; its path and query are cut
to a few hundred characters.

The key is never written: the journal says where it came (header or query) and which account
and slot it opened; the key query parameter, any key-shaped value and the presented key itself
wherever it appears are replaced by the same placeholder as in recorded fixtures.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import struct
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from mockserver.faults import NO_FAULT, Fault
from mockserver.shared import SharedFile
from pivotkit.redact import KEY_PLACEHOLDER, KEY_SHAPED

if TYPE_CHECKING:
    from mockserver.dispatch import Answer

log = logging.getLogger("pivotkit.mock")
MEMORY_DIRS = (Path("/dev/shm"),)  # tmpfs, where there is one
MIN_BYTES = 64 * 1024
MAX_BYTES = 1024 * 1024 * 1024
_SEGMENT_BYTES = 64 * 1024  # the aim; 4 to 256 segments whatever the bound
_MAGIC = b"PIVOTJ02"
_HEADER = struct.Struct("<8sQQQQQ")  # magic, capacity, segment size, next seq, evicted, epoch
_SEGMENT = struct.Struct("<QQIIII")  # seq, owner pid (0: sealed), used, count, epoch, -
_ORIGIN = 512  # bytes after the header: the state file's path (to sweep orphans)
_RECORD = struct.Struct("<IIQ")  # payload length, clear epoch, id
_EPOCH = struct.Struct("<Q")  # the header's epoch, read on every note
_EPOCH_AT = _HEADER.size - _EPOCH.size
_FILL = struct.Struct("<III")  # a segment's used, count, epoch: what a note updates
_FILL_AT = 16
_MAX_PATH = 512
_MAX_VALUE = 200
_MAX_PARAMS = 32
_ID_BITS = 24  # id = segment seq << 24 | index in the segment
FIELDS = (
    "time",
    "worker",
    "method",
    "path",
    "query",
    "operationId",
    "params",
    "account",
    "slot",
    "keyIn",
    "status",
    "answer",
    "fixture",
    "fault",
)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _masked(text: str, key: str | None) -> str:
    if key and key in text:
        text = text.replace(key, KEY_PLACEHOLDER)
    return KEY_SHAPED.sub(KEY_PLACEHOLDER, text) if len(text) >= 32 else text


def fault_label(fault: Fault) -> str | None:
    """The fault played, in the x-pivot-fault vocabulary (None for none)."""
    if fault is NO_FAULT or fault.empty:
        return None
    parts = []
    if fault.latency_ms is not None:
        low, high = fault.latency_ms
        parts.append(f"latency={low:g}ms" if low == high else f"latency={low:g}..{high:g}ms")
    for flag, name in ((fault.drop, "drop"), (fault.truncate, "truncate")):
        if flag:
            parts.append(name)
    if fault.invalid_json:
        parts.append("invalid-json")
    return ",".join(parts) or None


def journal_file(state: Path) -> Path:
    """Where the journal of a state file lives: in memory (``/dev/shm``, a tmpfs) when the
    machine has one, else beside the state. A ring rewritten all the time in a file on a disk
    is written back to it by the kernel: measured, 7 us more per request, against 2.5 us in
    memory. The name comes from the state's path, so every worker of a state finds it."""
    for folder in MEMORY_DIRS:
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            digest = hashlib.sha256(str(state.resolve()).encode("utf-8", "surrogateescape"))
            return folder / f"pivotkit-{digest.hexdigest()[:24]}.journal"
    return state.with_name(state.name + ".journal")


def _remove_if_owner(path: Path, owner: int) -> None:
    """Remove an in-memory journal (and its lock file), from the process that made it only."""
    if os.getpid() == owner:
        for gone in (path, path.with_name(path.name + ".lock")):
            with contextlib.suppress(OSError):
                gone.unlink()


def _sweep(folder: Path) -> None:
    """Remove the in-memory journals whose state file no longer exists (a mock that was
    killed before it could remove its own)."""
    for path in folder.glob("pivotkit-*.journal"):
        try:
            with open(path, "rb") as handle:
                head = handle.read(_HEADER.size + _ORIGIN)
        except OSError:
            continue
        origin = head[_HEADER.size :].rstrip(b"\0").decode("utf-8", "surrogateescape")
        if head[:8] == _MAGIC and origin and not Path(origin).exists():
            _remove_if_owner(path, os.getpid())


def _reset_writer(alive: weakref.ref[Journal]) -> None:
    journal = alive()
    if journal is not None:
        journal._writer()


def _put(mm: Any, offset: int, layout: struct.Struct, *values: Any) -> None:
    """Write a struct into the shared memory in one copy of its final bytes (``pack_into``
    zeroes the whole struct before it writes the fields: a process reading meanwhile would see
    an owner, a count or an epoch of 0)."""
    mm[offset : offset + layout.size] = layout.pack(*values)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


class _Lane:
    """One segment a worker writes into, with its lock and how full it is."""

    __slots__ = ("count", "epoch", "lock", "segment", "seq", "used")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.segment = -1
        self.seq = self.used = self.count = self.epoch = 0


@dataclass(frozen=True)
class Stats:
    """How full the journal is: bytes used of its capacity, records kept and forgotten."""

    capacity: int
    used: int
    kept: int
    evicted: int
    total: int


class Journal:
    """The shared pool of request records (see the module docstring)."""

    def __init__(self, state: Path, capacity: int, key_query: str | None) -> None:
        if not MIN_BYTES <= capacity <= MAX_BYTES:
            raise ValueError(f"the journal holds {MIN_BYTES} to {MAX_BYTES} bytes, not {capacity}")
        self.segments = max(4, min(256, capacity // _SEGMENT_BYTES))
        self.segment_size = capacity // self.segments
        self.capacity = self.segment_size * self.segments
        self.path = journal_file(state)
        self._key_query = key_query
        self._table = _HEADER.size + _ORIGIN
        self._data = self._table + self.segments * _SEGMENT.size
        if self.path.parent != state.parent:
            _sweep(self.path.parent)
        self._file = SharedFile(self.path, self._data + self.capacity)
        self._writer()
        # A forked worker gets its own writing state (and never writes into its parent's
        # segment); a weak reference, so an app that is dropped is not kept alive.
        alive = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_writer(alive))
        with self._file.locked() as mm:
            magic, capacity, size = _HEADER.unpack_from(mm, 0)[:3]
            if (magic, capacity, size) != (_MAGIC, self.capacity, self.segment_size):
                mm[: self._data] = bytes(self._data)
                _put(mm, 0, _HEADER, _MAGIC, self.capacity, self.segment_size, 1, 0, 1)
                origin = str(state.resolve()).encode("utf-8", "surrogateescape")[:_ORIGIN]
                mm[_HEADER.size : _HEADER.size + len(origin)] = origin
                if self.path.parent != state.parent:  # in memory: gone when its maker ends
                    atexit.register(_remove_if_owner, self.path, os.getpid())

    def _writer(self) -> None:
        """This process's writing state (made again in a forked child): its lanes."""
        self._pid = os.getpid()
        self._lanes = [_Lane() for _ in range(max(1, min(4, self.segments // 16)))]
        self._warned = False

    # -- writing (the hot path) ------------------------------------------------------------

    def _query(self, query: Mapping[str, str], key: str | None) -> dict[str, str]:
        out = {}
        for i, (name, value) in enumerate(query.items()):
            if i >= _MAX_PARAMS:
                break
            if name == self._key_query:
                value = KEY_PLACEHOLDER
            out[_cut(_masked(name, key), _MAX_VALUE)] = _cut(_masked(value, key), _MAX_VALUE)
        return out

    def record(self, answer: Answer) -> bytes:
        """The payload that :meth:`note` writes for an answer (compact JSON, key masked)."""
        seen = answer.seen
        if seen is None:  # pragma: no cover - the dispatch always sets it
            return orjson.dumps([time.time(), self._pid])
        key = seen.key
        exchange = answer.exchange
        path, params = seen.path, seen.params
        # A text shorter than the key and than a key's shape holds neither: most paths and
        # path parameters are copied as they are.
        shortest = min(32, len(key)) if key else 32
        if len(path) >= shortest:
            path = _cut(_masked(path, key), _MAX_PATH)
        if any(len(v) >= shortest for v in params.values()):
            params = {k: _cut(_masked(v, key), _MAX_VALUE) for k, v in params.items()}
        values = [
            time.time(),
            self._pid,
            seen.method,
            path,
            self._query(seen.query, key) if seen.query else {},
            None if seen.operation is None else seen.operation.operation_id,
            params if params else {},
            None if seen.account is None else seen.account.name,
            seen.slot,
            seen.key_in,
            answer.prepared.status,
            answer.via,
            None if exchange is None else exchange.name,
            None if answer.fault is NO_FAULT else fault_label(answer.fault),
        ]
        payload = orjson.dumps(values)
        if len(payload) + _RECORD.size > self.segment_size:  # wide characters: the query goes
            values[4] = {"\u2026": "\u2026"}
            payload = orjson.dumps(values)
        return payload

    def note(self, answer: Answer) -> None:
        """Write down one answered request: a JSON dump and a copy into a segment of this
        worker's own (a lock across processes only when the segment is full).

        A worker has a few lanes, each a segment with its lock: a thread takes the first lane
        no other thread holds, so a thread the interpreter paused inside a write never makes
        the others wait (one lock for all threads formed convoys: +6 us a request with four
        threads, granian runs many).
        """
        payload = self.record(answer)
        size = _RECORD.size + len(payload)
        for lane in self._lanes:
            if lane.lock.acquire(False):
                break
        else:
            lane = self._lanes[0]
            lane.lock.acquire()
        try:
            self._write(lane, payload, size)
        finally:
            lane.lock.release()

    def _write(self, lane: _Lane, payload: bytes, size: int) -> None:
        mm = self._file.map
        used, count, epoch = lane.used, lane.count, lane.epoch
        if lane.segment < 0 or used + size > self.segment_size:
            lane.segment, used, count, epoch = self._claim(lane)
            if lane.segment < 0:
                if not self._warned:
                    log.warning(
                        "the journal has %d segments, all taken by other live workers: "
                        "requests are not kept (raise --journal-bytes)",
                        self.segments,
                    )
                    self._warned = True
                return
        current = _EPOCH.unpack_from(mm, _EPOCH_AT)[0]
        if current != epoch:  # cleared since: count again
            count, epoch = 0, current
        start = self._data + lane.segment * self.segment_size + used
        head = _RECORD.pack(len(payload), epoch, (lane.seq << _ID_BITS) | count)
        mm[start : start + size] = head + payload
        # what readers need (used, count, epoch), in one copy; seq and owner stay
        at = self._table + lane.segment * _SEGMENT.size + _FILL_AT
        mm[at : at + _FILL.size] = _FILL.pack(used + size, count + 1, epoch)
        lane.used, lane.count, lane.epoch = used + size, count + 1, epoch

    def _claim(self, lane: _Lane) -> tuple[int, int, int, int]:
        """Seal the lane's segment and take another: a free one, else the oldest sealed (or
        left by a worker that died), forgetting its records; under the file's lock."""
        with self._file.locked() as mm:
            magic, capacity, size, next_seq, evicted, epoch = _HEADER.unpack_from(mm, 0)
            rows = [
                _SEGMENT.unpack_from(mm, self._table + i * _SEGMENT.size)
                for i in range(self.segments)
            ]
            mine = lane.segment
            if mine >= 0 and rows[mine][1] == self._pid:
                seq, _, used, count, seg_epoch, _ = rows[mine]
                rows[mine] = (seq, 0, used, count, seg_epoch, 0)
                _put(mm, self._table + mine * _SEGMENT.size, _SEGMENT, *rows[mine])
            free = [i for i, r in enumerate(rows) if r[1] == 0 and r[2] == 0]
            sealed = [i for i, r in enumerate(rows) if r[1] == 0 or not _alive(r[1])]
            if free:
                target = free[0]
            elif sealed:
                target = min(sealed, key=lambda i: rows[i][0])
            else:  # more live lanes than segments: this one keeps nothing (never two in one)
                return -1, 0, 0, epoch
            forgotten = rows[target][3] if rows[target][4] == epoch else 0
            _put(mm, 0, _HEADER, magic, capacity, size, next_seq + 1, evicted + forgotten, epoch)
            at = self._table + target * _SEGMENT.size
            _put(mm, at, _SEGMENT, next_seq, self._pid, 0, 0, epoch, 0)
        lane.seq = next_seq
        return target, 0, 0, epoch

    # -- reading -----------------------------------------------------------------------------

    def _snapshot(self) -> tuple[list[bytes], int, int]:
        with self._file.locked() as mm:
            evicted, epoch = _HEADER.unpack_from(mm, 0)[4:6]
            chunks = []
            for i in range(self.segments):
                used = _SEGMENT.unpack_from(mm, self._table + i * _SEGMENT.size)[2]
                if used:
                    start = self._data + i * self.segment_size
                    chunks.append(mm[start : start + used])
        return chunks, evicted, epoch

    def entries(self) -> tuple[list[dict[str, Any]], Stats]:
        """Every record kept, oldest first, as JSON-ready dictionaries, and the stats."""
        chunks, evicted, epoch = self._snapshot()
        entries: list[dict[str, Any]] = []
        used = 0
        for chunk in chunks:
            used += _parse(chunk, epoch, entries)
        entries.sort(key=lambda e: (e["epoch"], e["id"]))
        return entries, Stats(self.capacity, used, len(entries), evicted, len(entries) + evicted)

    def stats(self) -> Stats:
        """How full the journal is."""
        return self.entries()[1]

    def clear(self) -> int:
        """Forget every record (in every worker); returns how many were kept."""
        kept = len(self.entries()[0])
        with self._file.locked() as mm:
            magic, capacity, size, next_seq, _, epoch = _HEADER.unpack_from(mm, 0)
            _put(mm, 0, _HEADER, magic, capacity, size, next_seq, 0, epoch + 1)
            for i in range(self.segments):  # sealed ones are emptied; a worker's own keeps
                at = self._table + i * _SEGMENT.size  # its bytes, now of a past epoch
                row = _SEGMENT.unpack_from(mm, at)
                if row[1] == 0 or not _alive(row[1]):
                    _put(mm, at, _SEGMENT, row[0], 0, 0, 0, epoch + 1, 0)
        return kept

    def close(self) -> None:
        self._file.close()


def _parse(chunk: bytes, epoch: int, into: list[dict[str, Any]]) -> int:
    """Append the records of one segment written since the last clear; their bytes."""
    offset = used = 0
    while offset + _RECORD.size <= len(chunk):
        length, record_epoch, record_id = _RECORD.unpack_from(chunk, offset)
        start = offset + _RECORD.size
        offset = start + length
        if length == 0 or offset > len(chunk):
            break  # not a record: nothing more to read in this segment
        if record_epoch != epoch:
            continue  # written before the last clear
        try:
            values = orjson.loads(chunk[start : start + length])
        except orjson.JSONDecodeError:
            continue
        entry: dict[str, Any] = {"id": record_id, **dict(zip(FIELDS, values, strict=False))}
        entry["time"] = (
            datetime.fromtimestamp(values[0], UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z")
        )
        entry["epoch"] = values[0]
        into.append(entry)
        used += _RECORD.size + length
    return used


def _since(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise ValueError(
            f"since={text[:40]!r} is not a date-time (2024-11-05T10:00:00Z) or epoch seconds"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Filter:
    """Which records to list: by operation, account, status (``404`` or a class: ``4xx``),
    answered at or after ``since`` (epoch seconds), the ``limit`` most recent."""

    operation: str | None = None
    account: str | None = None
    status: str | None = None
    since: float | None = None
    limit: int | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> Filter:
        """From query parameters; ValueError says which one is wrong and why."""
        known = {"operation", "account", "status", "since", "limit"}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r}; filters: {', '.join(sorted(known))}")
        status = args.get("status") or None
        if status is not None and not (
            len(status) == 3
            and status[0] in "12345"
            and (status[1:].isdigit() or status[1:] == "xx")
        ):
            raise ValueError(f"status={status[:20]!r} is not a status (404) or a class (4xx)")
        limit = args.get("limit") or None
        if limit is not None and not (limit.isascii() and limit.isdigit() and int(limit) > 0):
            raise ValueError(f"limit={limit[:20]!r} is not a positive whole number")
        since = args.get("since") or None
        return cls(
            operation=args.get("operation") or None,
            account=args.get("account") or None,
            status=status,
            since=None if since is None else _since(since),
            limit=None if limit is None else int(limit),
        )

    def keeps(self, entry: Mapping[str, Any]) -> bool:
        if self.operation is not None and entry.get("operationId") != self.operation:
            return False
        if self.account is not None and entry.get("account") != self.account:
            return False
        if self.since is not None and entry["epoch"] < self.since:
            return False
        if self.status is not None:
            status = str(entry.get("status"))
            if self.status.endswith("xx"):
                return status[0] == self.status[0]
            return status == self.status
        return True

    def apply(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [e for e in entries if self.keeps(e)]
        return kept[-self.limit :] if self.limit else kept
