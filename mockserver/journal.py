"""The request journal: every API request the mock answered, in a ring bounded in bytes.

The ring lives in a file beside the state, memory-mapped by every worker (:mod:`shared`), so
a request answered by one worker is in the journal the next request of any worker reads. It is
cut in segments: a record that does not fit in the current segment starts the next one, which
forgets what it held (the oldest sixteenth of the journal). A record is a 12-byte header
(length, id) and a compact JSON list; its path and query are cut to a few hundred characters.

The key is never written: the journal says where it came (header or query) and which account
and slot it opened; the key query parameter, any key-shaped value and the presented key itself
wherever it appears are replaced by the same placeholder as in recorded fixtures.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator, Mapping
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

SEGMENTS = 16
MIN_BYTES = 64 * 1024
MAX_BYTES = 1024 * 1024 * 1024
_MAGIC = b"PIVOTJ01"
_HEADER = struct.Struct("<8sQQQ")  # magic, capacity, current segment, next id
_EVICTED = struct.Struct("<Q")  # records forgotten since the last clear
_SEGMENT = struct.Struct("<II")  # bytes used, records
_RECORD = struct.Struct("<IQ")  # payload length, id
_TABLE = _HEADER.size + _EVICTED.size
_DATA = _TABLE + SEGMENTS * _SEGMENT.size
_MAX_PATH = 512
_MAX_VALUE = 256
_MAX_PARAMS = 32
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


@dataclass(frozen=True)
class Stats:
    """How full the journal is: bytes used of its capacity, records kept and forgotten."""

    capacity: int
    used: int
    kept: int
    evicted: int
    total: int


class Journal:
    """The shared ring of request records (see the module docstring)."""

    def __init__(self, path: Path, capacity: int, key_query: str | None) -> None:
        if not MIN_BYTES <= capacity <= MAX_BYTES:
            raise ValueError(f"the journal holds {MIN_BYTES} to {MAX_BYTES} bytes, not {capacity}")
        self.segment_size = capacity // SEGMENTS
        self.capacity = self.segment_size * SEGMENTS
        self.path = path
        self._key_query = key_query
        self._pid = os.getpid()
        self._file = SharedFile(path, _DATA + self.capacity)
        with self._file.locked() as mm:
            magic, cap, _, _ = _HEADER.unpack_from(mm, 0)
            if magic != _MAGIC or cap != self.capacity:
                _HEADER.pack_into(mm, 0, _MAGIC, self.capacity, 0, 1)
                self._wipe(mm)

    def _wipe(self, mm: Any) -> None:
        _EVICTED.pack_into(mm, _HEADER.size, 0)
        for i in range(SEGMENTS):
            _SEGMENT.pack_into(mm, _TABLE + i * _SEGMENT.size, 0, 0)

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
            return orjson.dumps([time.time(), os.getpid()])
        key = seen.key
        exchange = answer.exchange
        return orjson.dumps(
            [
                time.time(),
                os.getpid(),
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
        )

    def note(self, answer: Answer) -> None:
        """Write down one answered request (cheap: one JSON dump and a copy under a lock)."""
        payload = self.record(answer)
        size = _RECORD.size + len(payload)
        if size > self.segment_size:  # pragma: no cover - records are cut far below this
            return
        shared = self._file
        mm = shared.map
        shared.acquire()
        try:
            magic, capacity, current, next_id = _HEADER.unpack_from(mm, 0)
            at = _TABLE + current * _SEGMENT.size
            used, count = _SEGMENT.unpack_from(mm, at)
            if used + size > self.segment_size:
                current = (current + 1) % SEGMENTS
                at = _TABLE + current * _SEGMENT.size
                forgotten = _SEGMENT.unpack_from(mm, at)[1]
                if forgotten:
                    evicted = _EVICTED.unpack_from(mm, _HEADER.size)[0]
                    _EVICTED.pack_into(mm, _HEADER.size, evicted + forgotten)
                used, count = 0, 0
            start = _DATA + current * self.segment_size + used
            _RECORD.pack_into(mm, start, len(payload), next_id)
            mm[start + _RECORD.size : start + size] = payload
            _SEGMENT.pack_into(mm, at, used + size, count + 1)
            _HEADER.pack_into(mm, 0, magic, capacity, current, next_id + 1)
        finally:
            shared.release()

    # -- reading -----------------------------------------------------------------------------

    def _snapshot(self) -> tuple[list[bytes], Stats]:
        with self._file.locked() as mm:
            _, _, current, next_id = _HEADER.unpack_from(mm, 0)
            evicted = _EVICTED.unpack_from(mm, _HEADER.size)[0]
            chunks, used, kept = [], 0, 0
            for step in range(1, SEGMENTS + 1):
                segment = (current + step) % SEGMENTS
                seg_used, seg_count = _SEGMENT.unpack_from(mm, _TABLE + segment * _SEGMENT.size)
                if seg_used:
                    start = _DATA + segment * self.segment_size
                    chunks.append(mm[start : start + seg_used])
                    used += seg_used
                    kept += seg_count
        return chunks, Stats(self.capacity, used, kept, evicted, next_id - 1)

    def entries(self) -> tuple[list[dict[str, Any]], Stats]:
        """Every record kept, oldest first, as JSON-ready dictionaries, and the stats."""
        chunks, stats = self._snapshot()
        return [entry for chunk in chunks for entry in _parse(chunk)], stats

    def stats(self) -> Stats:
        """How full the journal is."""
        return self._snapshot()[1]

    def clear(self) -> int:
        """Forget every record (in every worker); returns how many were kept."""
        with self._file.locked() as mm:
            kept = sum(
                _SEGMENT.unpack_from(mm, _TABLE + i * _SEGMENT.size)[1] for i in range(SEGMENTS)
            )
            self._wipe(mm)
        return int(kept)

    def close(self) -> None:
        self._file.close()


def _parse(chunk: bytes) -> Iterator[dict[str, Any]]:
    offset = 0
    while offset + _RECORD.size <= len(chunk):
        length, record_id = _RECORD.unpack_from(chunk, offset)
        start = offset + _RECORD.size
        values = orjson.loads(chunk[start : start + length])
        offset = start + length
        entry: dict[str, Any] = {"id": record_id, **dict(zip(FIELDS, values, strict=False))}
        entry["time"] = (
            datetime.fromtimestamp(values[0], UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z")
        )
        entry["epoch"] = values[0]
        yield entry


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
