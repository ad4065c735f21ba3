"""The shared-state interface, on both stores: the SQLite file and a real redis-server.

Each case runs against ``State`` (SQLite) and ``RedisState`` (a ``redis-server`` started on a
free loopback port, no persistence, stopped by its pid). Two store objects on the same SQLite
file or the same Redis stand for two workers or two hosts.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mockserver.state import SharedState, State, Window, open_state
from mockserver.state.redis_store import RedisState, redacted
from pivotkit.errors import ConfigError, TargetUnreachable, exit_code
from tests.helpers import clean_env, free_port, pivotkit_command, redis_server

Opener = Callable[[], SharedState]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another store object on the same state (another worker, or another host)."""
    opened: list[SharedState] = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        setting: Path | str = url
    else:
        setting = tmp_path / "state.sqlite"

    def open_one() -> SharedState:
        store = open_state(setting, usage_flush=60)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_the_store_is_the_one_the_setting_names(opener: Opener, redis_url: str) -> None:
    store = opener()
    assert isinstance(store, SharedState)
    assert store.ping()
    assert isinstance(open_state(redis_url), RedisState)


def test_generations_keys_and_meta_are_shared(opener: Opener) -> None:
    one, two = opener(), opener()
    before = two.generations()
    one.set_key("full", "primary", "k" * 32)
    after = two.generations()
    assert after.keys == before.keys + 1 and after.fixtures == before.fixtures
    assert two.key_overrides() == {("full", "primary"): "k" * 32}
    with pytest.raises(ValueError, match="slot"):
        one.set_key("full", "tertiary", "x")
    assert one.meta("admin_token", "first") == "first"
    assert two.meta("admin_token", "second") == "first"
    one.scenarios_changed()
    assert two.generations().scenarios == after.scenarios + 1


def test_a_published_corpus_is_read_by_its_generation(opener: Opener) -> None:
    one, two = opener(), opener()
    blob = bytes(range(256)) * 100
    first = one.publish_corpus(blob)
    assert two.generations().fixtures == first and two.corpus(first) == blob
    second = two.publish_corpus(b"newer")
    assert second == first + 1
    assert one.corpus(first) is None and one.corpus(second) == b"newer"


@pytest.mark.parametrize("boundary", [10.0, 1_000_000_000.0])
def test_sliding_rate_limit_holds_at_the_boundary(opener: Opener, boundary: float) -> None:
    """5 calls per 10 s, just before a window boundary and just after, through two stores:
    the second five are refused (the boundary never doubles the limit), with the wait until
    the first call leaves the window, and are not counted."""
    one, two = opener(), opener()
    now = [boundary - 0.5]
    window = [Window("rate", 5, 10, True)]

    def clock() -> float:
        return now[0]

    assert [(one, two)[i % 2].admit("limited", window, clock) for i in range(5)] == [None] * 5
    now[0] = boundary + 0.5
    refusals = [(one, two)[i % 2].admit("limited", window, clock) for i in range(5)]
    assert all(r is not None and (r.kind, r.wait) == ("rate", 9) for r in refusals)
    now[0] = boundary + 9.6
    got = [two.admit("limited", window, clock) for _ in range(6)]
    assert got[:5] == [None] * 5 and got[5] is not None


def test_quota_renews_at_fixed_boundaries_and_refusals_do_not_count(opener: Opener) -> None:
    one, two = opener(), opener()
    now = [7200.0 + 100]

    def clock() -> float:
        return now[0]

    quota = [Window("quota", 3, 3600, False)]
    assert [one.admit("limited", quota, clock) for _ in range(3)] == [None] * 3
    refused = two.admit("limited", quota, clock)
    assert refused is not None and (refused.kind, refused.wait) == ("quota", 3500)
    both = [Window("rate", 1, 10, True), Window("quota", 5, 3600, False)]
    now[0] = 10_800.0
    assert one.admit("basic", both, clock) is None
    for _ in range(10):  # refused by the rate limit: the quota does not see them
        refusal = two.admit("basic", both, clock)
        assert refusal is not None and refusal.kind == "rate"
    now[0] += 10
    assert one.admit("basic", both, clock) is None
    now[0] = 14_399.5  # still the same quota window: 2 counted of 5
    got = [two.admit("basic", [both[1]], clock) for _ in range(4)]
    last = got[3]
    assert got[:3] == [None] * 3 and last is not None and (last.kind, last.wait) == ("quota", 1)


def test_limits_are_exact_under_concurrency_on_the_real_clock(opener: Opener) -> None:
    """16 threads over two stores, 200 calls on the store's own clock (Redis: the server's
    TIME) against 25 per hour: exactly 25 admitted, whatever the interleaving."""
    stores = [opener(), opener()]
    window = [Window("rate", 25, 3600, True), Window("quota", 1000, 3600, False)]
    admitted: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def client(i: int) -> None:
        start.wait()
        for _ in range(200 // 16 + 1):
            ok = stores[i % 2].admit("limited", window) is None
            with lock:
                admitted.append(ok)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 25 and len(admitted) == 16 * 13


def test_sign_in_attempts_and_sessions(opener: Opener) -> None:
    one, two = opener(), opener()
    assert [one.login_attempt("s", 2, 60, 100.0), two.login_attempt("s", 2, 60, 101.0)] == [0, 0]
    assert two.login_attempt("s", 2, 60, 110.0) == 50  # the oldest of the last 2 leaves at 160
    assert one.login_attempt("other", 2, 60, 110.0) == 0
    assert one.login_attempt("s", 2, 60, 160.5) == 0  # the one at 100 left
    two.login_succeeded("s")
    assert one.login_attempt("s", 1, 60, 161.0) == 0
    stamp = one.session_stamp("full")
    two.end_sessions("full")
    assert one.session_stamp("full") != stamp and one.session_stamp("basic") == "0.0"
    basic = one.session_stamp("basic")
    two.end_sessions()
    assert one.session_stamp("basic") != basic


def test_usage_is_buffered_per_process_and_summed(opener: Opener) -> None:
    one, two = opener(), opener()
    day = 1_700_000_000.0
    for store in (one, two, one):
        store.record_call("full", "getContent", "primary", now=day)
    two.record_call("full", "getContent", "secondary", now=day + 86_400)
    two.record_call("basic", "getPerson", "primary", now=day, write_through=True)
    one.flush_usage()
    rows = two.usage("full")
    assert [(r.day, r.operation_id, r.slot, r.count) for r in rows] == [
        ("2023-11-15", "getContent", "secondary", 1),
        ("2023-11-14", "getContent", "primary", 3),
    ]
    assert [(a, r.count) for a, r in one.all_usage()] == [("basic", 1), ("full", 1), ("full", 3)]


def test_reset_forgets_keys_limits_usage_and_sessions(opener: Opener) -> None:
    one, two = opener(), opener()
    one.set_key("full", "primary", "k" * 32)
    window = [Window("rate", 1, 3600, True)]
    assert one.admit("limited", window) is None and one.admit("limited", window) is not None
    one.record_call("full", "getContent", "primary", write_through=True)
    assert one.login_attempt("s", 1, 60, 100.0) == 0
    stamp = one.session_stamp("full")
    keys = two.generations().keys
    two.reset()
    assert one.generations().keys == keys + 1
    assert one.key_overrides() == {} and one.usage("full") == []
    assert one.admit("limited", window) is None
    assert one.login_attempt("s", 1, 60, 101.0) == 0
    assert one.session_stamp("full") != stamp


def test_sequences_are_shared(opener: Opener) -> None:
    one, two = opener(), opener()
    one.declare_sequences([("a", '{"a": 1}'), ("b", '{"b": 1}')])
    assert [r.name for r in two.sequences()] == ["b", "a"]
    assert [two.advance_sequence("a"), one.advance_sequence("a")] == [1, 2]
    assert one.advance_sequence("missing") is None
    two.declare_sequences([("a", '{"a": 1}'), ("b", '{"b": 2}')])  # b changed: from the start
    positions = {r.name: r.position for r in one.sequences()}
    assert positions == {"a": 2, "b": 0}
    one.add_sequence("t", '{"t": 1}')
    newest = two.sequences()[0]
    assert (newest.name, newest.origin) == ("t", "test")
    one.declare_sequences([("a", '{"a": 1}')])  # b no longer declared; the test's stays
    assert sorted(r.name for r in two.sequences()) == ["a", "t"]
    assert two.remove_sequence("t") and not two.remove_sequence("t")
    one.add_sequence("x", "{}")
    one.advance_sequence("a")
    two.reset_sequences([("a", '{"a": 1}'), ("c", '{"c": 1}')])
    assert [(r.name, r.position, r.origin) for r in one.sequences()] == [
        ("c", 0, "file"),
        ("a", 0, "file"),
    ]


def test_sequence_positions_count_every_request_once(opener: Opener) -> None:
    stores = [opener(), opener()]
    stores[0].declare_sequences([("s", "{}")])
    got: list[int | None] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        for _ in range(25):
            position = stores[i % 2].advance_sequence("s")
            with lock:
                got.append(position)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p for p in got if p is not None) == list(range(1, 201))


def test_timeline_steps_are_shared(opener: Opener) -> None:
    one, two = opener(), opener()
    assert one.timeline_steps() == {}
    assert one.move_timeline("t", lambda current: current + 1) == 1
    assert two.move_timeline("t", lambda current: current + 1) == 2
    assert two.timeline_steps() == {"t": 2}

    def refuse(current: int) -> int:
        raise ValueError(f"at {current}")

    with pytest.raises(ValueError, match="at 2"):
        one.move_timeline("t", refuse)
    assert two.timeline_steps() == {"t": 2}
    one.move_timeline("t", lambda current: 0)
    assert two.timeline_steps() == {}
    one.move_timeline("u", lambda current: 3)
    two.reset_timelines()
    assert one.timeline_steps() == {}


def test_the_sqlite_generation_file_is_written_whole(tmp_path: Path) -> None:
    """The 24-byte generation map beside the file holds the three counters."""
    state = State(tmp_path / "s.sqlite")
    state.set_key("full", "primary", "k" * 32)
    state.scenarios_changed()
    raw = (tmp_path / "s.sqlite.gen").read_bytes()
    assert len(raw) == 24 and raw[:8] == (1).to_bytes(8, "little")
    assert raw[16:] == (1).to_bytes(8, "little")
    state.close()


# -- bad settings: one line, exit 2 (bad URL) or 3 (unreachable), the password never shown ----


def test_a_bad_url_or_an_unreachable_redis_is_one_clear_error() -> None:
    port = free_port()
    with pytest.raises(TargetUnreachable) as unreachable:
        RedisState(f"redis://:s3cret-pass@127.0.0.1:{port}/0")
    assert exit_code(unreachable.value) == 3 and "s3cret-pass" not in str(unreachable.value)
    with pytest.raises(ConfigError) as bad:
        RedisState("redis://:s3cret-pass@127.0.0.1:6379/not-a-db")
    assert exit_code(bad.value) == 2 and "s3cret-pass" not in str(bad.value)
    assert redacted("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redacted("redis://:pw@h:1/0?password=pw2") == "redis://:***@h:1/0?password=***"
    assert redacted("rediss://h:1/2") == "rediss://h:1/2"


def test_a_wrong_password_is_refused_at_start(tmp_path: Path) -> None:
    with redis_server(tmp_path, password="right-password-1") as url:
        assert RedisState(url).ping()
        with pytest.raises(ConfigError) as wrong:
            RedisState(url.replace("right-password-1", "wrong-password-2"))
        assert "wrong-password-2" not in str(wrong.value) and exit_code(wrong.value) == 2
        with pytest.raises(ConfigError):
            RedisState(url.replace(":right-password-1@", ""))


@pytest.mark.parametrize(
    ("state", "code", "says"),
    [
        ("redis://:pw-never-shown@127.0.0.1:{port}/0", 3, "is unreachable"),
        ("redis://:pw-never-shown@127.0.0.1:{port}/x", 2, "not a Redis URL"),
        ("redis://:pw-never-shown@127.0.0.1:notaport/0", 2, "not a Redis URL"),
        ("http://127.0.0.1:{port}/0", 2, "not a state"),
    ],
)
def test_serve_with_a_bad_state_says_so_in_one_line(state: str, code: int, says: str) -> None:
    setting = state.format(port=free_port())
    done = subprocess.run(
        pivotkit_command("serve", "--port", "0"),
        env=clean_env(PIVOT_STATE=setting, RUST_BACKTRACE="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert "pw-never-shown" not in done.stderr + done.stdout


def _listening(store: SharedState) -> None:
    """Wait until a Redis store's process listens for changes (its cache is in use)."""
    cache = store._generations  # type: ignore[attr-defined]
    for _ in range(200):
        store.generations()
        if cache._live:
            return
        time.sleep(0.01)
    pytest.fail("the generations cache never subscribed")


def test_cached_generations_are_dropped_before_a_change_answers(redis_url: str) -> None:
    """With both caches warm, every change through one store is seen by the other's very
    next read: the change answers only once every subscriber dropped its copy."""
    redis.Redis.from_url(redis_url).flushdb()
    one, two = RedisState(redis_url), RedisState(redis_url)
    try:
        _listening(one)
        _listening(two)
        for i in range(20):
            seen = two.generations()
            one.set_key("full", "primary", f"{i:032d}")
            assert two.generations().keys == seen.keys + 1
            one.scenarios_changed()
            assert two.generations().scenarios == seen.scenarios + 1
        blob = one.publish_corpus(b"x")
        assert two.generations().fixtures == blob
    finally:
        one.close()
        two.close()


def test_a_silent_subscriber_delays_a_change_at_most_the_ack_wait(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A process that died between receiving a change and acknowledging it (here: a bare
    subscriber) holds a change for ACK_WAIT seconds at most, with a warning."""
    from mockserver.state.invalidation import ACK_WAIT

    client: Any = redis.Redis.from_url(redis_url)
    client.flushdb()
    silent = client.pubsub()
    silent.subscribe("pivotkit:changes")
    store = RedisState(redis_url)
    try:
        _listening(store)
        started = time.monotonic()
        store.set_key("full", "primary", "k" * 32)
        waited = time.monotonic() - started
        assert ACK_WAIT - 0.1 <= waited < ACK_WAIT + 5
        assert "did not acknowledge a change" in caplog.text
        assert store.key_overrides() == {("full", "primary"): "k" * 32}
    finally:
        silent.close()
        store.close()
