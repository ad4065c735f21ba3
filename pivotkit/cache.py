"""A cache bounded in bytes: what the mock and the recorder remember between requests."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, KeysView
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

#: What one entry costs besides its key and value: the dictionary slots and the size record.
ENTRY_OVERHEAD = 120


def size_of(value: object) -> int:
    """The approximate bytes ``value`` holds: strings and bytes by length, tuples and dicts by
    their parts (one level deep), anything else by ``sys.getsizeof``."""
    if isinstance(value, str | bytes | bytearray):
        return sys.getsizeof(value)
    if isinstance(value, tuple | list | frozenset | set):
        return sys.getsizeof(value) + sum(sys.getsizeof(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(
            sys.getsizeof(k) + sys.getsizeof(v) for k, v in value.items()
        )
    return sys.getsizeof(value)


class BoundedCache(Generic[K, V]):
    """A dictionary that never holds more than ``max_bytes``.

    Every entry is sized when it is stored (its key by :func:`size_of`, its value by ``sizer``,
    plus :data:`ENTRY_OVERHEAD`); an entry larger than ``max_entry`` bytes is not stored at
    all (the caller computed it and uses it once), so a request cannot fill the cache with one
    huge key; when the budget is full the oldest entries are dropped first (with ``lru``,
    the least recently read or written). Reads take no lock (one dictionary lookup; with
    ``lru`` a read of an entry that is not the newest moves it, under the lock); writes do,
    so the byte count stays exact across threads.
    """

    def __init__(
        self,
        max_bytes: int,
        *,
        max_entry: int | None = None,
        sizer: Callable[[V], int] = size_of,
        lru: bool = False,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be more than 0")
        self.max_bytes = max_bytes
        self.max_entry = min(max_entry or max_bytes // 16, max_bytes)
        self._sizer = sizer
        self._data: dict[K, V] = {}
        self._sizes: dict[K, int] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._lru = lru
        self._newest: object = None

    @property
    def nbytes(self) -> int:
        """The bytes held now (keys, values and overhead, as sized when stored)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def keys(self) -> KeysView[K]:
        """A live view of the keys (membership without a method call)."""
        return self._data.keys()

    def reader(self) -> Callable[[K, D], V | D]:
        """``get`` at the speed of a dictionary look-up (without ``lru``: a read then moves
        nothing; with it, :meth:`get` itself)."""
        return self.get if self._lru else self._data.get

    def get(self, key: K, default: D) -> V | D:
        """The value stored for ``key``, else ``default``."""
        if self._lru and key is not self._newest and key != self._newest:
            with self._lock:
                if key not in self._data:
                    return default
                value = self._data.pop(key)
                self._data[key] = value
                self._newest = key
                return value
        return self._data.get(key, default)

    def put(self, key: K, value: V) -> V:
        """Store ``value`` (unless the entry alone is over ``max_entry``); returns ``value``."""
        size = size_of(key) + self._sizer(value) + ENTRY_OVERHEAD
        if size > self.max_entry:
            return value
        with self._lock:
            old = self._sizes.pop(key, None)
            if old is not None:
                self._bytes -= old
                del self._data[key]
            while self._data and self._bytes + size > self.max_bytes:
                oldest = next(iter(self._data))
                del self._data[oldest]
                self._bytes -= self._sizes.pop(oldest)
            self._data[key] = value
            self._sizes[key] = size
            self._bytes += size
            self._newest = key
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._bytes = 0
            self._newest = None
