"""Readiness for a load balancer: ``/__pivot/ready`` is 200 only while this instance should
get traffic.

503 while the shared state (SQLite or Redis) does not answer, and from SIGTERM on (draining:
requests in flight finish, new ones should go to another instance). Nothing answers before the
fixtures are known: the app opens their index before it serves a request.
``/__pivot/health`` stays the liveness check: 200 while the process answers.
The draining flag is one byte of anonymous shared memory made before granian forks its
workers, so the supervisor that receives SIGTERM sets it for every worker at once.
"""

from __future__ import annotations

import mmap
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockserver.app import PivotMock


class Readiness:
    """The draining flag of one instance, shared by its forked workers."""

    def __init__(self) -> None:
        self._flag = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED | MAP_ANONYMOUS

    def drain(self) -> None:
        """From now on this instance is draining (ready answers 503)."""
        self._flag[:1] = b"\x01"

    @property
    def draining(self) -> bool:
        """Whether SIGTERM (or :meth:`drain`) was received."""
        return self._flag[0] == 1


def report(mock: PivotMock) -> tuple[int, dict[str, Any]]:
    """The status and the JSON body of ``/__pivot/ready`` (no secret: the state is named
    by its kind only)."""
    checks = {
        "fixtures": mock.corpus
        is not None,  # always, once it answers: kept for the balancer's logs
        "state": mock.state.ping(),
        "draining": mock.readiness.draining,
    }
    if checks["draining"]:
        status = "draining"
    elif not checks["state"]:
        status = "state unreachable"
    else:
        status = "ready"
    body = {"status": status, "pid": os.getpid(), **checks}
    return (200 if status == "ready" else 503), body
