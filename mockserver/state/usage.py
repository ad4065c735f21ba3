"""Usage counts buffered in each process and written by the store in one step (both stores).

``record`` adds one call to this process's buffer (keyed by UTC day, account, operation, slot);
a daemon thread of each process (threads do not survive a fork: each worker starts its own)
hands the buffer to the store's ``write`` every ``interval`` seconds, and so does the exit. A
failed write keeps the counts for the next one. The thread holds the buffer weakly and ends
with it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable

Counts = dict[tuple[str, str, str, str], int]


class UsageBuffer:
    """This process's counts not yet written (see the module docstring)."""

    def __init__(
        self,
        interval: float,
        write: Callable[[Counts], None],
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self.interval = interval
        self._write = write
        self._errors: tuple[type[BaseException], ...] = (*errors, OSError)
        self._lock = threading.Lock()
        self._pending: Counts = {}
        self._flusher_pid = 0
        self._stop = threading.Event()
        self._day_key = -1
        self._day = ""
        atexit.register(self._flush_at_exit)

    def record(
        self, account: str, operation_id: str, slot: str, now: float | None, write_through: bool
    ) -> None:
        """Count one call (written at once with ``write_through`` or a 0 interval)."""
        stamp = time.time() if now is None else now
        day_key = int(stamp // 86400)
        if day_key != self._day_key:
            self._day = time.strftime("%Y-%m-%d", time.gmtime(stamp))
            self._day_key = day_key
        key = (self._day, account, operation_id, slot)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1
        if write_through or self.interval <= 0:
            self.flush()
        elif self._flusher_pid != os.getpid():  # first call in this process (or this fork)
            self._start_flusher()

    def _start_flusher(self) -> None:
        self._flusher_pid = os.getpid()
        ref = weakref.ref(self)
        interval, stop, errors = self.interval, self._stop, self._errors

        def flush_periodically() -> None:
            while not stop.wait(interval):
                buffer = ref()
                if buffer is None:
                    return
                with contextlib.suppress(*errors):
                    buffer.flush()
                del buffer

        threading.Thread(target=flush_periodically, name="pivot-usage-flush", daemon=True).start()

    def flush(self) -> None:
        """Hand the buffered counts to the store; on its error they stay for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self._write(pending)
        except self._errors:
            with self._lock:
                for k, n in pending.items():
                    self._pending[k] = self._pending.get(k, 0) + n
            raise

    def clear(self) -> None:
        """Forget the buffered counts (a reset)."""
        with self._lock:
            self._pending = {}

    def _flush_at_exit(self) -> None:
        with contextlib.suppress(*self._errors):  # the store may be gone
            self.flush()

    def close(self) -> None:
        """Write what is left and stop the thread."""
        self._stop.set()
        atexit.unregister(self._flush_at_exit)
        self.flush()


class BufferedUsage:
    """The usage methods of a store that keeps a :class:`UsageBuffer` as ``_usage``."""

    _usage: UsageBuffer

    def record_call(
        self,
        account: str,
        operation_id: str,
        slot: str,
        *,
        now: float | None = None,
        write_through: bool = False,
    ) -> None:
        """Count one call in the usage (buffered unless ``write_through``)."""
        self._usage.record(account, operation_id, slot, now, write_through)

    def flush_usage(self) -> None:
        """Write this process's buffered usage counts."""
        self._usage.flush()
