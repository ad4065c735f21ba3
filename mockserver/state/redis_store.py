"""The shared state on a Redis server: several ``pivotkit serve`` instances act as one gateway.

Every value the SQLite store keeps lives under one key prefix of the Redis database the URL
names: generations (``gen``: keys, fixtures, scenarios, sessions epoch), ``meta`` (admin token,
portal session secret, request context: stored as the SQLite store stores them, so protect
the server with ``requirepass`` and ``rediss://``), regenerated ``keys``, the published
``corpus``, rate-limit logs and quota windows (``limit:<account>:<kind>``), ``usage``, portal
``sessions`` and sign-in attempts (``login:<digest>``), sequences (``seq``, ``seqpos``) and
timeline steps (``timelines``).

Each process caches the generations and drops its copy when a change is announced on a pub/sub
channel; the change answers only once every process has acknowledged (else each request reads
them, one HMGET): a key regenerated or a corpus published through any instance is seen by the
next request of every instance. Limits are one
Lua script per call (check every window, then count in all or none), on the Redis server's
clock (``TIME``) unless a clock is injected, so instances' clocks do not matter. Usage counts
are buffered per process as with SQLite and flushed with HINCRBY.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from mockserver.state.base import (
    Generations,
    Refusal,
    SequenceRow,
    SharedState,
    UsageRow,
    Window,
    check_slot,
)
from mockserver.state.invalidation import GenerationCache
from mockserver.state.usage import BufferedUsage, Counts, UsageBuffer
from pivotkit.errors import ConfigError, TargetUnreachable

PREFIX = "pivotkit:"
_SEP = "\x1f"

# KEYS: one per window. ARGV: now ('' = the server's TIME), a unique member, then calls,
# period, sliding (1/0) per window. Returns nil, or {window index, seconds to wait}.
_ADMIT = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local function limit(i)
  local at = 3 * i
  return tonumber(ARGV[at]), tonumber(ARGV[at + 1]), ARGV[at + 2] == '1'
end
for i = 1, #KEYS do
  local calls, period, sliding = limit(i)
  if sliding then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
    local count = redis.call('ZCARD', KEYS[i])
    if count >= calls then
      local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2]
      local left = oldest and (tonumber(oldest) + period - now) or period
      return {i, math.max(1, math.ceil(left))}
    end
  else
    local window = math.floor(now / period)
    local stored = redis.call('HMGET', KEYS[i], 'w', 'n')
    if tonumber(stored[1]) == window and tonumber(stored[2]) >= calls then
      return {i, math.max(1, math.ceil((window + 1) * period - now))}
    end
  end
end
for i = 1, #KEYS do
  local calls, period, sliding = limit(i)
  if sliding then
    redis.call('ZADD', KEYS[i], now, ARGV[2] .. ':' .. i)
    redis.call('PEXPIRE', KEYS[i], math.ceil(period * 1000) + 1000)
  else
    local window = math.floor(now / period)
    if tonumber(redis.call('HGET', KEYS[i], 'w')) == window then
      redis.call('HINCRBY', KEYS[i], 'n', 1)
    else
      redis.call('HSET', KEYS[i], 'w', window, 'n', 1)
    end
    redis.call('PEXPIRE', KEYS[i], math.ceil(((window + 1) * period - now) * 1000) + 1000)
  end
end
return false
"""

# KEYS: the subject's attempts. ARGV: now, window, limit, a unique member.
_LOGIN = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local at = tonumber(redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')[2])
  return math.max(1, math.ceil(at + window - now))
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return 0
"""

# KEYS: gen, corpus. ARGV: the snapshot. The generation and its snapshot appear together.
_PUBLISH = """
local g = redis.call('HINCRBY', KEYS[1], 'fixtures', 1)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], g, ARGV[1])
return g
"""

# KEYS: seq, seqpos. ARGV: the name. The new position, or nil when there is no such sequence.
_ADVANCE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
end
return false
"""


def redacted(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` query) shown as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a Redis URL that cannot be read>"
    netloc = parts.netloc
    if "@" in netloc:
        auth, _, host = netloc.rpartition("@")
        user, sep, _ = auth.partition(":")
        netloc = f"{user}:***@{host}" if sep or not user else f"***@{host}"
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else f"{k}{sep}{v}"
        for k, sep, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _check_url(url: str) -> None:
    """ValueError unless ``url`` is ``redis[s]://[[user]:password@]host[:port][/db]`` or
    ``unix://path``: a port that is a number, a database that is a number."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "unix":
        if not parts.path:
            raise ValueError("unix:// needs the socket's path")
        return
    if not parts.hostname:
        raise ValueError("no host")
    if parts.port is None and parts.netloc.rpartition("@")[2].endswith(":"):
        raise ValueError("an empty port")
    db = parts.path.strip("/")
    if db and not (db.isascii() and db.isdigit()):
        raise ValueError(f"the database must be a number, not {db!r}")


def _password(url: str) -> str | None:
    with contextlib.suppress(ValueError):
        return urlsplit(url).password
    return None


def _remove_if_owner(folder: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


class RedisState(BufferedUsage, SharedState):
    """The state on a Redis server (see the module docstring).

    ConfigError (exit 2) for a URL that is not a Redis URL or credentials Redis refuses;
    TargetUnreachable (exit 3) when the server does not answer at start. The URL's password
    is never shown: :meth:`describe` and every message use :func:`redacted`.
    """

    def __init__(self, url: str, *, usage_flush: float = 1.0, prefix: str = PREFIX) -> None:
        self.url = url
        self.usage_flush = usage_flush
        self._prefix = prefix
        shown = redacted(url)
        secret = _password(url)

        def scrub(text: str) -> str:
            return text.replace(secret, "***") if secret else text

        try:
            _check_url(url)
            self._r: Any = redis.Redis.from_url(
                url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
            )
        except ValueError as exc:
            raise ConfigError(
                "PIVOT_STATE", f"{shown}: not a Redis URL ({scrub(str(exc))})"
            ) from None
        try:
            self._r.ping()
        except redis.AuthenticationError as exc:
            raise ConfigError(
                "PIVOT_STATE", f"{shown}: Redis refused ({scrub(str(exc))})"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise TargetUnreachable(f"the Redis state {shown}", scrub(str(exc))) from None
        except redis.ResponseError as exc:
            raise ConfigError("PIVOT_STATE", f"{shown}: {scrub(str(exc))}") from None
        self._shown = shown
        self._admit = self._r.register_script(_ADMIT)
        self._login = self._r.register_script(_LOGIN)
        self._publish = self._r.register_script(_PUBLISH)
        self._advance = self._r.register_script(_ADVANCE)
        folder = tempfile.mkdtemp(prefix="pivotkit-redis-")
        atexit.register(_remove_if_owner, folder, os.getpid())
        self.local_path = Path(folder) / "state"
        self._usage = UsageBuffer(usage_flush, self._write_usage, (redis.RedisError,))
        self._generations = GenerationCache(
            self._r, self._k("changes"), self._k("ack:"), self._read_generations
        )

    def _k(self, name: str) -> str:
        return self._prefix + name

    def describe(self) -> str:
        """The Redis URL, password masked."""
        return f"Redis {self._shown}"

    def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            return bool(self._r.ping())
        except (redis.RedisError, OSError):
            return False

    # -- generations, corpus, meta -----------------------------------------------------------

    def generations(self) -> Generations:
        """The generation counters, cached in this process while its subscription to the
        changes holds (:mod:`mockserver.state.invalidation`), else one HMGET."""
        return self._generations.get()

    def _read_generations(self) -> Generations:
        try:
            keys, fixtures, scenarios = self._r.hmget(
                self._k("gen"), "keys", "fixtures", "scenarios"
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise TargetUnreachable(f"the Redis state {self._shown}", str(exc)) from None
        return Generations(int(keys or 0), int(fixtures or 0), int(scenarios or 0))

    def publish_corpus(self, data: bytes) -> int:
        """Store a validated corpus as the next fixtures generation; returns the generation."""
        generation = int(self._publish(keys=[self._k("gen"), self._k("corpus")], args=[data]))
        self._generations.announce()
        return generation

    def corpus(self, generation: int) -> bytes | None:
        """The corpus published as ``generation`` (None if a newer one replaced it)."""
        data = self._r.hget(self._k("corpus"), str(generation))
        return None if data is None else bytes(data)

    def meta(self, name: str, default: str) -> str:
        """A named value shared by every instance, set to ``default`` if none is stored yet."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hsetnx(self._k("meta"), name, default)
        pipe.hget(self._k("meta"), name)
        return bytes(pipe.execute()[1]).decode("utf-8")

    # -- keys ------------------------------------------------------------------------------

    def key_overrides(self) -> dict[tuple[str, str], str]:
        """Keys regenerated since the accounts file was written: (account, slot) -> key."""
        out = {}
        for field, key in self._r.hgetall(self._k("keys")).items():
            account, _, slot = field.decode("utf-8").rpartition(_SEP)
            out[(account, slot)] = key.decode("utf-8")
        return out

    def set_key(self, account: str, slot: str, key: str) -> None:
        """Store a regenerated key and bump the generation every instance checks."""
        check_slot(slot)
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self._k("keys"), f"{account}{_SEP}{slot}", key)
        pipe.hincrby(self._k("gen"), "keys", 1)
        pipe.execute()
        self._generations.announce()

    # -- limits ------------------------------------------------------------------------------

    def admit(
        self, account: str, windows: Sequence[Window], clock: Callable[[], float] = time.time
    ) -> Refusal | None:
        """Count one call of ``account`` against every window, or against none: one Lua
        script, atomic on the server, with the same sliding and fixed windows as the SQLite
        store. The time is the Redis server's, unless a clock other than ``time.time`` is
        given (tests), which is then used for every call."""
        if not windows:
            return None
        args: list[str | int] = [
            "" if clock is time.time else repr(float(clock())),
            os.urandom(8).hex(),
        ]
        for w in windows:
            args += [w.calls, repr(float(w.period)), 1 if w.sliding else 0]
        keys = [self._k(f"limit:{account}:{w.kind}") for w in windows]
        refused = self._admit(keys=keys, args=args)
        if not refused:
            return None
        index, wait = refused
        return Refusal(windows[int(index) - 1].kind, int(wait))

    # -- the portal ------------------------------------------------------------------------

    def login_attempt(self, subject: str, limit: int, window: float, now: float) -> int:
        """Reserve one password check (see the SQLite store): one Lua script."""
        args: list[str | int] = [repr(float(now)), repr(float(window)), limit, os.urandom(8).hex()]
        return int(self._login(keys=[self._k(f"login:{subject}")], args=args))

    def login_succeeded(self, subject: str) -> None:
        """Forget the attempts of ``subject``."""
        self._r.delete(self._k(f"login:{subject}"))

    def session_stamp(self, account: str) -> str:
        """What a portal session of ``account`` must carry to be valid now."""
        pipe = self._r.pipeline(transaction=False)
        pipe.hget(self._k("gen"), "sessions")
        pipe.hget(self._k("sessions"), account)
        epoch, generation = pipe.execute()
        return f"{int(epoch or 0)}.{int(generation or 0)}"

    def end_sessions(self, account: str | None = None) -> None:
        """End every portal session of ``account`` (of every account when None)."""
        if account is None:
            self._r.hincrby(self._k("gen"), "sessions", 1)
        else:
            self._r.hincrby(self._k("sessions"), account, 1)

    # -- usage -----------------------------------------------------------------------------

    def _write_usage(self, pending: Counts) -> None:
        """Add the counts to the shared ones (HINCRBY, one round trip)."""
        pipe = self._r.pipeline(transaction=True)
        for key, count in pending.items():
            pipe.hincrby(self._k("usage"), _SEP.join(key), count)
        pipe.execute()

    def all_usage(self) -> list[tuple[str, UsageRow]]:
        """Usage rows of every account as (account, row), by account then newest day."""
        self.flush_usage()
        rows = []
        for field, count in self._r.hgetall(self._k("usage")).items():
            day, account, operation_id, slot = field.decode("utf-8").split(_SEP)
            rows.append((account, UsageRow(day, operation_id, slot, int(count))))
        rows.sort(key=lambda r: (r[1].operation_id, r[1].slot))
        rows.sort(key=lambda r: r[1].day, reverse=True)
        rows.sort(key=lambda r: r[0])
        return rows

    def usage(self, account: str) -> list[UsageRow]:
        """Usage rows of one account, newest day first."""
        return [row for name, row in self.all_usage() if name == account]

    def reset(self) -> None:
        """Forget regenerated keys, limits, usage, sign-in attempts and portal sessions, in
        every instance (their next request sees the keys generation move)."""
        self._usage.clear()
        doomed = [self._k("keys"), self._k("usage")]
        for pattern in ("limit:*", "login:*"):
            doomed += list(self._r.scan_iter(match=self._k(pattern), count=1000))
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(*doomed)
        pipe.hincrby(self._k("gen"), "keys", 1)
        pipe.hincrby(self._k("gen"), "sessions", 1)
        pipe.execute()
        self._generations.announce()

    # -- scenarios -------------------------------------------------------------------------

    def scenarios_changed(self) -> None:
        """Bump the scenarios generation: every instance reads the scenarios again."""
        self._r.hincrby(self._k("gen"), "scenarios", 1)
        self._generations.announce()

    def _stored_sequences(self, client: Any) -> dict[str, dict[str, Any]]:
        raw = client.hgetall(self._k("seq"))
        return {n.decode("utf-8"): json.loads(v) for n, v in raw.items()}

    def declare_sequences(self, declared: Sequence[tuple[str, str]]) -> None:
        """The scenarios file's sequences: see :meth:`SharedState.declare_sequences`."""
        seq, pos = self._k("seq"), self._k("seqpos")

        def change(pipe: Any) -> None:
            stored = self._stored_sequences(pipe)
            names = {name for name, _ in declared}
            created = int(pipe.get(self._k("seqcreated")) or 0)
            pipe.multi()
            for name, row in stored.items():
                if row["origin"] == "file" and name not in names:
                    pipe.hdel(seq, name)
                    pipe.hdel(pos, name)
            for name, spec in declared:
                known = stored.get(name)
                if known is not None and (known["origin"] != "file" or known["spec"] == spec):
                    continue
                if known is None:
                    created += 1
                kept = created if known is None else known["created"]
                pipe.hset(seq, name, json.dumps({"origin": "file", "spec": spec, "created": kept}))
                pipe.hset(pos, name, 0)
            pipe.set(self._k("seqcreated"), created)

        self._r.transaction(change, seq, pos, self._k("seqcreated"))

    def sequences(self) -> list[SequenceRow]:
        """Every sequence, the most recently added first."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(self._k("seq"))
        pipe.hgetall(self._k("seqpos"))
        specs, positions = pipe.execute()
        rows = []
        for raw_name, raw in specs.items():
            row = json.loads(raw)
            position = int(positions.get(raw_name, 0))
            rows.append(
                (
                    row["created"],
                    SequenceRow(raw_name.decode(), row["origin"], row["spec"], position),
                )
            )
        return [row for _, row in sorted(rows, key=lambda r: r[0], reverse=True)]

    def _put_sequences(self, pipe: Any, origin: str, declared: Sequence[tuple[str, str]]) -> None:
        first = int(self._r.incrby(self._k("seqcreated"), max(1, len(declared))))
        for i, (name, spec) in enumerate(declared):
            row = {"origin": origin, "spec": spec, "created": first - len(declared) + 1 + i}
            pipe.hset(self._k("seq"), name, json.dumps(row))
            pipe.hset(self._k("seqpos"), name, 0)

    def add_sequence(self, name: str, spec: str) -> None:
        """Add a test's sequence (replacing one of that name), from its first answer."""
        pipe = self._r.pipeline(transaction=True)
        self._put_sequences(pipe, "test", [(name, spec)])
        pipe.execute()

    def remove_sequence(self, name: str) -> bool:
        """Remove a sequence; False when there is none of that name."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hdel(self._k("seq"), name)
        pipe.hdel(self._k("seqpos"), name)
        return bool(pipe.execute()[0])

    def reset_sequences(self, declared: Sequence[tuple[str, str]]) -> None:
        """Only the declared sequences, each at its first answer."""
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(self._k("seq"), self._k("seqpos"))
        self._put_sequences(pipe, "file", declared)
        pipe.execute()

    def advance_sequence(self, name: str) -> int | None:
        """Count one request in a sequence: its new position (None: no such sequence)."""
        position = self._advance(keys=[self._k("seq"), self._k("seqpos")], args=[name])
        return None if position is None else int(position)

    def timeline_steps(self) -> dict[str, int]:
        """The step of every started timeline."""
        raw = self._r.hgetall(self._k("timelines"))
        steps = {n.decode("utf-8"): int(s) for n, s in raw.items()}
        return {n: s for n, s in steps.items() if s > 0}

    def move_timeline(self, name: str, target: Callable[[int], int]) -> int:
        """Set a timeline's step to ``target(current)`` (WATCH/MULTI: retried when another
        instance moved it meanwhile; ``target`` may raise: nothing changes)."""
        key = self._k("timelines")
        chosen: list[int] = []

        def change(pipe: Any) -> None:
            step = target(int(pipe.hget(key, name) or 0))
            chosen[:] = [step]
            pipe.multi()
            pipe.hset(key, name, step)

        self._r.transaction(change, key)
        return chosen[0]

    def reset_timelines(self) -> None:
        """Every timeline back to not started."""
        self._r.delete(self._k("timelines"))

    def close(self) -> None:
        """Flush, stop the flushing thread and close this process's connections."""
        with contextlib.suppress(redis.RedisError, OSError):
            self._usage.close()
        self._generations.close()
        self._r.close()
