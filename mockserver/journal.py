"""The request journal: every API request the mock answered, in a ring bounded in bytes.

The ring lives in a file beside the state, memory-mapped by every worker (:mod:`shared`), so
a request answered by one worker is in the journal the next request of any worker reads. It is
a pool of segments: each worker writes into a segment of its own, with no lock but its threads'
(no system call, no wait for another process on the hot path); a full segment is sealed and the
worker takes a free one, else the oldest sealed one, whose records are forgotten (the only
step that locks across processes, once per segment). Readers merge the segments by time. A
record is a 16-byte header (length, clear epoch, id) and a compact JSON list; its path and
query are cut to a few hundred characters.

The key is never written: the journal says where it came (header or query) and which account
and slot it opened; the key query parameter, any key-shaped value and the presented key itself
wherever it appears are replaced by the same placeholder as in recorded fixtures.
"""

from __future__ import annotations

import os
import struct
import threading
import time
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

MIN_BYTES = 64 * 1024
MAX_BYTES = 1024 * 1024 * 1024
_SEGMENT_BYTES = 64 * 1024  # the aim; 4 to 256 segments whatever the bound
_MAGIC = b"PIVOTJ02"
_HEADER = struct.Struct("<8sQQQQQ")  # magic, capacity, segment size, next seq, evicted, epoch
_SEGMENT = struct.Struct("<QQIIII")  # seq, owner pid (0: sealed), used, count, epoch, -
_RECORD = struct.Struct("<IIQ")  # payload length, clear epoch, id
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

    def __init__(self, path: Path, capacity: int, key_query: str | None) -> None:
        if not MIN_BYTES <= capacity <= MAX_BYTES:
            raise ValueError(f"the journal holds {MIN_BYTES} to {MAX_BYTES} bytes, not {capacity}")
        self.segments = max(4, min(256, capacity // _SEGMENT_BYTES))
        self.segment_size = capacity // self.segments
        self.capacity = self.segment_size * self.segments
        self.path = path
        self._key_query = key_query
        self._table = _HEADER.size
        self._data = self._table + self.segments * _SEGMENT.size
        self._file = SharedFile(path, self._data + self.capacity)
        self._writer()
        with self._file.locked() as mm:
            magic, capacity, size = _HEADER.unpack_from(mm, 0)[:3]
            if (magic, capacity, size) != (_MAGIC, self.capacity, self.segment_size):
                mm[: self._data] = bytes(self._data)
                _put(mm, 0, _HEADER, _MAGIC, self.capacity, self.segment_size, 1, 0, 1)

    def _writer(self) -> None:
        """This process's writing state (made again in a forked child)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._segment = -1  # the segment this process writes into
        self._seq = 0

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
        values = [
            time.time(),
            self._pid,
            seen.method,
            _cut(_masked(seen.path, key), _MAX_PATH),
            self._query(seen.query, key) if seen.query else {},
            None if seen.operation is None else seen.operation.operation_id,
            {k: _cut(_masked(v, key), _MAX_VALUE) for k, v in seen.params.items()},
            None if seen.account is None else seen.account.name,
            seen.slot,
            seen.key_in,
            answer.prepared.status,
            answer.via,
            None if exchange is None else exchange.name,
            fault_label(answer.fault),
        ]
        payload = orjson.dumps(values)
        if len(payload) + _RECORD.size > self.segment_size:  # wide characters: the query goes
            values[4] = {"\u2026": "\u2026"}
            payload = orjson.dumps(values)
        return payload

    def note(self, answer: Answer) -> None:
        """Write down one answered request: a JSON dump and a copy into this worker's own
        segment (a lock across processes only when the segment is full)."""
        if self._pid != os.getpid():
            self._writer()
        payload = self.record(answer)
        size = _RECORD.size + len(payload)
        mm = self._file.map
        with self._lock:
            segment = self._segment
            if segment >= 0:
                at = self._table + segment * _SEGMENT.size
                seq, owner, used, count, epoch, _ = _SEGMENT.unpack_from(mm, at)
                if owner != self._pid or seq != self._seq or used + size > self.segment_size:
                    segment = -1
            if segment < 0:
                segment, used, count, epoch = self._claim()
                at = self._table + segment * _SEGMENT.size
            current = _HEADER.unpack_from(mm, 0)[5]
            if current != epoch:  # cleared since: count again
                count, epoch = 0, current
            start = self._data + segment * self.segment_size + used
            head = _RECORD.pack(len(payload), epoch, (self._seq << _ID_BITS) | count)
            mm[start : start + size] = head + payload
            _put(mm, at, _SEGMENT, self._seq, self._pid, used + size, count + 1, epoch, 0)

    def _claim(self) -> tuple[int, int, int, int]:
        """Seal this worker's segment and take another: a free one, else the oldest sealed
        (or left by a worker that died), forgetting its records; under the file's lock."""
        with self._file.locked() as mm:
            magic, capacity, size, next_seq, evicted, epoch = _HEADER.unpack_from(mm, 0)
            rows = [
                _SEGMENT.unpack_from(mm, self._table + i * _SEGMENT.size)
                for i in range(self.segments)
            ]
            mine = self._segment
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
            else:  # more live workers than segments: take the oldest one
                target = min(range(self.segments), key=lambda i: rows[i][0])
            forgotten = rows[target][3] if rows[target][4] == epoch else 0
            _put(mm, 0, _HEADER, magic, capacity, size, next_seq + 1, evicted + forgotten, epoch)
            at = self._table + target * _SEGMENT.size
            _put(mm, at, _SEGMENT, next_seq, self._pid, 0, 0, epoch, 0)
        self._segment, self._seq = target, next_seq
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
