"""Memory shared by every worker: a file beside the state, mapped by each process, with a lock.

Workers forked from one master inherit the mapping; workers that start on their own map the
same file. The lock holds across threads (a thread lock) and processes (``flock`` on a file
descriptor opened by each process: a descriptor inherited through ``fork`` would share its lock
with the parent, so a process that finds itself forked opens its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path


def _private(path: Path) -> int:
    """A descriptor of ``path`` opened read-write, the file created (or tightened to) 0600:
    beside the state, it is readable by its owner only, like the state itself."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if os.fstat(fd).st_mode & 0o077:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
    return fd


_FIRST_USE = threading.Lock()


def _new_first_use_lock() -> None:
    global _FIRST_USE
    _FIRST_USE = threading.Lock()  # a thread of the parent may have held it at fork time


os.register_at_fork(after_in_child=_new_first_use_lock)


class SharedFile:
    """``size`` bytes of ``path``, memory-mapped; ``fresh`` says the file was just made.

    A file of another size (an older layout, or another bound) is made again at the new size.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = -1
        self._pid = -1
        self._thread_lock = threading.Lock()
        with self._process_lock(), os.fdopen(_private(path), "r+b") as handle:
            self.fresh = os.fstat(handle.fileno()).st_size != size
            if self.fresh:
                handle.truncate(0)
                handle.truncate(size)  # sparse: pages are only allocated once written
            self.map = mmap.mmap(handle.fileno(), size)

    def _lock_fd(self) -> int:
        if self._pid != os.getpid():  # first use in this process (a forked worker)
            with _FIRST_USE:  # one thread opens; the others must not each make their own
                if self._pid != os.getpid():
                    # a lock held at fork time stays held in the child: a new one, and a new
                    # descriptor (an inherited one would share its flock with the parent);
                    # the pid last, so a thread that sees it also sees both
                    self._thread_lock = threading.Lock()
                    self._fd = _private(self.path.with_name(self.path.name + ".lock"))
                    self._pid = os.getpid()
        return self._fd

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[None]:
        fd = self._lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def acquire(self) -> None:
        """Take the lock (threads and processes); :meth:`release` gives it back."""
        fd = self._lock_fd()
        self._thread_lock.acquire()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        """Give the lock back."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def locked(self) -> Iterator[mmap.mmap]:
        """Exclusive use of the bytes, across threads and processes."""
        self.acquire()
        try:
            yield self.map
        finally:
            self.release()

    def close(self) -> None:
        """Unmap (this process only)."""
        with contextlib.suppress(BufferError, ValueError):
            self.map.close()
        if self._pid == os.getpid() and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
