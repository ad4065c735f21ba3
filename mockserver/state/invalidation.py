"""The generations of the Redis state, cached in each process and invalidated through pub/sub.

Every request compares generations (keys, fixtures, scenarios). Reading them from Redis costs a
round trip per request; instead each process keeps the last value read and a thread of its own
listens on a channel. A change (a key regenerated, a corpus published, scenarios changed, a
reset) is written first, then announced: the announcing process publishes a nonce and waits
until every subscriber has acknowledged it (each drops its cached value, then pushes an ack),
at most :data:`ACK_WAIT` seconds. So once the change has answered, no process serves from the
old value: the same guarantee as one read per request, without the round trip.

The cache is used only while the subscription is confirmed; before that, after a fork (the
thread does not survive it) and after a lost connection, every call reads Redis.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis

from mockserver.state.base import Generations

log = logging.getLogger("pivotkit.mock")
ACK_WAIT = 2.0  # seconds an announcement waits for the subscribers' acks
_ACK_TTL = 30


class GenerationCache:
    """One process's view of the generations (see the module docstring)."""

    def __init__(
        self, client: Any, channel: str, ack_prefix: str, read: Callable[[], Generations]
    ) -> None:
        self._client = client
        self._channel = channel
        self._acks = ack_prefix
        self._read = read
        self._lock = threading.Lock()
        self._pid = 0
        self._live = False
        self._epoch = 0
        self._value: Generations | None = None
        self._closed = threading.Event()
        # A forked child starts without the parent's thread, and a lock held at fork time would
        # stay held in it: it gets a fresh lock and reads Redis until its own thread listens.
        alive = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forked(alive))

    def get(self) -> Generations:
        """The generations: the cached value while subscribed, else one read."""
        if self._pid != os.getpid():
            self._start()
        value = self._value
        if value is not None and self._live:
            return value
        epoch = self._epoch
        value = self._read()
        with self._lock:
            if self._live and self._epoch == epoch:
                self._value = value
        return value

    def _drop(self, live: bool | None = None) -> None:
        with self._lock:
            self._epoch += 1
            self._value = None
            if live is not None:
                self._live = live

    def announce(self) -> None:
        """Say a change was written: drop this process's value, publish, and wait for every
        subscriber (of every instance) to drop its own."""
        self._drop()
        nonce = os.urandom(8).hex()
        key = self._acks + nonce
        receivers = int(self._client.publish(self._channel, nonce))
        deadline = time.monotonic() + ACK_WAIT
        got = 0
        while got < receivers:
            left = deadline - time.monotonic()
            if left <= 0 or self._client.blpop([key], timeout=max(left, 0.01)) is None:
                log.warning("%d of %d mock processes did not acknowledge a change", got, receivers)
                break
            got += 1
        self._client.delete(key)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return  # another thread of this process started it
            self._pid = os.getpid()
            self._live = False
            self._value = None
        threading.Thread(target=self._listen, name="pivot-generations", daemon=True).start()

    def _listen(self) -> None:
        pid = os.getpid()
        while self._pid == pid and not self._closed.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(self._channel)
                while self._pid == pid and not self._closed.is_set():
                    self._handle(pubsub.get_message(timeout=1.0))
            except (redis.RedisError, OSError, ValueError):  # ValueError: closed meanwhile
                self._drop(live=False)
                self._closed.wait(0.5)
            finally:
                self._drop(live=False)
                pubsub.close()

    def _handle(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        if message["type"] == "subscribe":
            self._drop(live=True)
        elif message["type"] == "message":
            self._drop()
            key = self._acks + bytes(message["data"]).decode("ascii", "replace")
            pipe = self._client.pipeline(transaction=False)
            pipe.lpush(key, 1)
            pipe.expire(key, _ACK_TTL)
            pipe.execute()

    def close(self) -> None:
        """Stop this process's listening thread (within a second)."""
        self._closed.set()
        self._drop(live=False)


def _forked(ref: weakref.ref[GenerationCache]) -> None:
    cache = ref()
    if cache is not None:
        cache._lock = threading.Lock()
        cache._live = False
        cache._value = None
        cache._pid = 0
