"""The memory every worker shares (mockserver.shared.SharedFile): one lock across threads and
processes, also for the first threads of a freshly forked worker (granian forks its workers
from the process that built the app, and their first requests arrive on several threads)."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

from mockserver.shared import SharedFile

_COUNT = struct.Struct("<Q")
THREADS, ROUNDS, FORKS = 8, 200, 12


def _hammer(shared: SharedFile) -> int:
    """In a forked child: THREADS threads start at once, each adding 1 ROUNDS times by a
    read-then-write under the lock; 0 when every addition counted and nothing raised."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                with shared.locked() as mm:
                    (value,) = _COUNT.unpack_from(mm, 0)
                    _COUNT.pack_into(mm, 0, value + 1)
        except BaseException as exc:  # reported through the exit code
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        return 2  # deadlocked: two threads each took a lock of their own
    return 1 if errors else 0


def test_first_threads_of_a_forked_worker_share_one_lock(tmp_path: Path) -> None:
    shared = SharedFile(tmp_path / "shared", 4096)
    with shared.locked():  # the parent has its own descriptor and lock before it forks
        pass
    for _ in range(FORKS):
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child reports through its exit code)
            os._exit(_hammer(shared))
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        assert code != 2, "the child's threads deadlocked on the lock"
        assert code == 0, "a thread of the child failed"
    with shared.locked() as mm:
        assert _COUNT.unpack_from(mm, 0)[0] == FORKS * THREADS * ROUNDS
