"""The state every worker of the mock shares: SQLite on one host, Redis across hosts.

:mod:`mockserver.state.base` holds the interface (:class:`SharedState`) and its values;
:mod:`mockserver.state.sqlite` the embedded store (the default), :mod:`mockserver.state.redis_store`
the one several instances behind a load balancer share (``--state redis://host:port/db``).
"""

from __future__ import annotations

from pathlib import Path

from mockserver.state.base import Generations as Generations
from mockserver.state.base import Refusal as Refusal
from mockserver.state.base import SequenceRow as SequenceRow
from mockserver.state.base import SharedState as SharedState
from mockserver.state.base import UsageRow as UsageRow
from mockserver.state.base import Window as Window
from mockserver.state.sqlite import State as State

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(setting: Path | str) -> bool:
    """Whether a state setting names a Redis server rather than a SQLite file."""
    return isinstance(setting, str) and setting.lower().startswith(REDIS_SCHEMES)


def open_state(setting: Path | str, *, usage_flush: float = 1.0) -> SharedState:
    """The store a setting names: a Redis URL, or a SQLite file (made if missing)."""
    if is_redis_url(setting):
        from mockserver.state.redis_store import RedisState

        return RedisState(str(setting), usage_flush=usage_flush)
    return State(Path(setting), usage_flush=usage_flush)
