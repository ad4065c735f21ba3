"""Two `pivotkit serve` instances (real subprocesses, granian, different ports) on one state
behave as one gateway: on Redis (a real redis-server on loopback) as across hosts, and on one
SQLite file as on one host. Keys, limits at the boundary, reload, usage, key regeneration under
load, sequences and timelines; the journal stays per instance."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from mockserver.store import RACY_NS
from pivotkit.client import demo_key
from pivotkit.control import RemoteMock
from tests.helpers import (
    BASIC,
    FULL,
    KEY_HEADER,
    LIMITED,
    clean_env,
    free_port,
    path_of,
    redis_server,
    serve_process,
    stop,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "admin-token-for-instance-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTENT = path_of("getContent", id=7488)
FULL_2 = demo_key("full", "secondary").reveal()
CLI = "from pivotkit.cli import main; main()"
RATE = 3  # limited: 3 calls per second (sliding)
QUOTA = 5  # basic: 5 calls per 2-second window (fixed)


@dataclass
class Pair:
    """Two instances on one state, and the fixtures folder they serve."""

    store: str
    urls: tuple[str, str]
    fixtures: Path
    logs: tuple[Path, Path]


def _accounts(folder: Path) -> Path:
    text = (ROOT / "fixtures" / "accounts.toml").read_text("utf-8")
    text = text.replace(
        "rate_limit = { calls = 5, period = 10 }", f"rate_limit = {{ calls = {RATE}, period = 1 }}"
    ).replace("quota = { calls = 30, period = 3600 }", "quota = { calls = 100000, period = 3600 }")
    marker = 'withheld = ["credits.character"'
    start = text.index(marker)
    end = text.index("\n", start)
    text = text[: end + 1] + f"quota = {{ calls = {QUOTA}, period = 2 }}\n" + text[end + 1 :]
    path = folder / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["redis", "sqlite"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp(f"instances-{request.param}")
    fixtures = tmp / "fixtures"
    shutil.copytree(ROOT / "fixtures", fixtures)
    accounts = _accounts(tmp)
    env = clean_env(PIVOT_USAGE_FLUSH="0", RUST_BACKTRACE="0")
    with ExitStack() as stack:
        if request.param == "redis":
            state = stack.enter_context(redis_server(tmp))
        else:
            state = str(tmp / "state.sqlite")
        args = ["--admin-token", TOKEN, "--state", state, "--fixtures", str(fixtures)]
        args += ["--accounts", str(accounts)]
        one = stack.enter_context(serve_process(tmp, *args, env=env))
        two = stack.enter_context(serve_process(tmp, *args, env=env))
        yield Pair(request.param, (one[0], two[0]), fixtures, (one[2], two[2]))


@pytest.fixture
def both(pair: Pair) -> Pair:
    """The pair, reset (keys, limits, usage, scenarios, journal) before the test."""
    for url in pair.urls:
        assert httpx.post(f"{url}/__pivot/reset", headers=AUTH, timeout=10).status_code == 200
    return pair


def _get(url: str, key: str = FULL, path: str = CONTENT) -> int:
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers={KEY_HEADER: key})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _regenerate(url: str) -> str:
    response = httpx.post(f"{url}/__pivot/accounts/full/keys/primary", headers=AUTH, timeout=10)
    assert response.status_code == 200
    return str(response.json()["key"])


def test_a_key_regenerated_through_one_is_refused_by_the_other_at_once(both: Pair) -> None:
    one, two = both.urls
    assert _get(one) == 200 and _get(two) == 200
    new = _regenerate(one)
    assert _get(two) == 401 and _get(one) == 401
    assert _get(two, new) == 200 and _get(one, new) == 200
    assert _get(two, FULL_2) == 200
    usage = httpx.get(f"{one}/__pivot/usage?account=full", headers=AUTH, timeout=10).json()
    counts = {(r["operationId"], r["slot"]): r["count"] for r in usage["usage"]}
    assert counts == {("getContent", "primary"): 4, ("getContent", "secondary"): 1}


def test_usage_sums_across_instances(both: Pair) -> None:
    """Calls answered by either instance are counted once each, read through either."""
    assert [_get(both.urls[i % 2]) for i in range(7)] == [200] * 7
    assert _get(both.urls[1], FULL_2) == 200
    for url in both.urls:
        rows = httpx.get(f"{url}/__pivot/usage?account=full", headers=AUTH, timeout=10).json()
        counts = {r["slot"]: r["count"] for r in rows["usage"]}
        assert counts == {"primary": 7, "secondary": 1}


def _hammer(
    urls: tuple[str, str], key: str, threads: int, until: float
) -> list[tuple[float, float, int]]:
    """Each thread alternates the instances with fresh connections until ``until``
    (time.time()); every call as (sent, received, status)."""
    calls: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def client(i: int) -> None:
        start.wait()
        n = i
        while time.time() < until:
            sent = time.time()
            status = _get(urls[n % 2], key)
            got = time.time()
            n += 1
            with lock:
                calls.append((sent, got, status))

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return calls


def _just_before_a_boundary(period: int, lead: float = 0.25) -> None:
    """Sleep until ``lead`` seconds before the next multiple of ``period`` (Unix time)."""
    now = time.time()
    target = (now // period + 1) * period - lead
    if target - now < 0.05:
        target += period
    time.sleep(target - now)


def test_the_rate_limit_is_exact_across_instances_from_just_before_a_boundary(
    both: Pair,
) -> None:
    """`limited` at 3 calls per second, 8 clients alternating both instances, starting 0.25 s
    before a whole second: no 4 admitted calls fit in one second (sliding, whatever the
    boundary), and refused calls are not counted (the limit is reached again each second)."""
    _just_before_a_boundary(1)
    calls = _hammer(both.urls, LIMITED, 8, time.time() + 3.5)
    assert {s for _, _, s in calls} <= {200, 429}
    admitted = sorted(((s, g) for s, g, status in calls if status == 200), key=lambda c: c[1])
    for i in range(len(admitted) - RATE):
        group = admitted[i : i + RATE + 1]
        assert group[-1][1] - min(s for s, _ in group) >= 1, group
    span = admitted[-1][1] - admitted[0][0]
    assert len(admitted) >= RATE * int(span - 1) and len(calls) > 4 * len(admitted)


def test_the_quota_is_exact_across_instances_across_a_window_boundary(both: Pair) -> None:
    """`basic`: 5 calls per fixed 2-second window. Load on both instances from 0.25 s before a
    window's end to 0.5 s into the next: exactly 5 admitted in each window, 10 in all."""
    _just_before_a_boundary(2)
    calls = _hammer(both.urls, BASIC, 8, time.time() + 0.75)
    admitted = [c for c in calls if c[2] == 200]
    assert {s for _, _, s in calls} <= {200, 403}  # the gateway's quota answer is a 403
    assert len(admitted) == 2 * QUOTA, len(admitted)
    boundary = (calls[0][0] // 2 + 1) * 2
    before = [c for c in admitted if c[1] < boundary]
    after = [c for c in admitted if c[0] >= boundary]
    assert len(before) <= QUOTA and len(after) <= QUOTA


def test_no_old_key_is_accepted_after_the_regeneration_answered(both: Pair) -> None:
    """8 clients call both instances with the full account's key while it is regenerated
    through the first: every call sent after the regeneration's answer is refused (401),
    whichever instance it reaches."""
    calls: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(i: int) -> None:
        n = i
        while not stop.is_set():
            sent = time.monotonic()
            status = _get(both.urls[n % 2])
            n += 1
            with lock:
                calls.append((sent, status))

    workers = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in workers:
        t.start()
    time.sleep(0.4)
    _regenerate(both.urls[0])
    answered = time.monotonic()
    time.sleep(0.6)
    stop.set()
    for t in workers:
        t.join()
    before = [s for t, s in calls if t < answered]
    after = [s for t, s in calls if t >= answered]
    assert 200 in before and len(after) > 10
    assert set(after) == {401}, sorted(set(after))


def _content_id(url: str, path: str) -> object:
    response = httpx.get(f"{url}{path}", headers={KEY_HEADER: FULL}, timeout=10)
    assert response.status_code == 200
    data = response.json().get("data")
    return data.get("id") if isinstance(data, dict) else None


def test_a_reload_through_one_reaches_both(both: Pair) -> None:
    """A fixture added to the folder, reloaded through the first instance: the second
    serves it on its next request (before the reload, both gave the empty-200)."""
    one, two = both.urls
    source = json.loads((both.fixtures / "getContent" / "7488.json").read_text("utf-8"))
    source["request"]["path"] = "/v1/api/v1/contents/987654"
    source["response"]["body"]["data"]["id"] = 987654
    made = both.fixtures / "getContent" / f"reloaded-{both.store}.json"
    path = path_of("getContent", id=987654)
    assert [_content_id(url, path) for url in both.urls] == [None, None]
    made.write_text(json.dumps(source), "utf-8")
    try:
        reload = httpx.post(f"{one}/__pivot/reload", headers=AUTH, timeout=30)
        assert reload.status_code == 200, reload.text
        assert [_content_id(two, path), _content_id(one, path)] == [987654, 987654]
        if both.store == "redis":  # as on another host: the first's index is not in its folder
            assert "reloaded elsewhere, reading them here" in both.logs[1].read_text("utf-8")
    finally:
        made.unlink()
        httpx.post(f"{one}/__pivot/reload", headers=AUTH, timeout=30)
    assert [_content_id(url, path) for url in (two, one)] == [None, None]


def test_sequences_and_timelines_advanced_through_one_are_seen_by_the_other(both: Pair) -> None:
    one, two = both.urls
    with RemoteMock(one, TOKEN) as first, RemoteMock(two, TOKEN) as second:
        handle = first.sequence("getContent", [503, 503, "fixture"], params={"id": 7488})
        assert [_get(two), _get(one), _get(two), _get(one)] == [503, 503, 200, 200]
        assert handle.answered == 4
        assert [s["answered"] for s in second.sequences() if s["name"] == handle.name] == [4]
        first.timeline("canal-plus-evening").advance()
        seen = second.timeline("canal-plus-evening")
        assert seen.step == 1
        seen.advance()
        assert first.timeline("canal-plus-evening").step == 2


def test_the_journal_is_per_instance_on_redis(both: Pair) -> None:
    one, two = both.urls
    assert _get(one) == 200
    with RemoteMock(one, TOKEN) as first, RemoteMock(two, TOKEN) as second:
        assert len(first.requests) == 1
        assert len(second.requests) == (0 if both.store == "redis" else 1)


def test_the_banner_says_where_the_state_is_without_the_password(pair: Pair) -> None:
    text = pair.logs[0].read_text(errors="replace")
    if pair.store == "redis":
        assert "shared state: Redis redis://127.0.0.1:" in text
    else:
        assert "shared state" not in text


def test_instances_on_one_redis_share_a_generated_admin_token(tmp_path: Path) -> None:
    """Without --admin-token, the second instance prints the token the first generated (kept
    in Redis), so either instance accepts it; a password in the URL is never printed."""
    env = clean_env(RUST_BACKTRACE="0")
    with redis_server(tmp_path, password="pass-never-printed") as url, ExitStack() as stack:
        logs = [
            stack.enter_context(serve_process(tmp_path, "--state", url, env=env))[2] for _ in (1, 2)
        ]
        tokens = []
        for log in logs:
            text = log.read_text(errors="replace")
            assert "pass-never-printed" not in text and "redis://:***@127.0.0.1" in text
            [line] = [t for t in text.splitlines() if t.startswith("admin token (generated):")]
            tokens.append(line.split()[3])
        assert tokens[0] == tokens[1]
        assert redis.Redis.from_url(url).hget("pivotkit:meta", "admin_token") is not None


def test_an_instance_on_redis_keeps_its_index_in_index_dir(tmp_path: Path) -> None:
    """With a Redis state there is no state file to keep the fixture index beside:
    PIVOT_INDEX_DIR keeps it, so the next start reads no fixture; without it, every start
    reads them all (a temporary folder)."""
    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", fixtures)
    total = len(list(fixtures.glob("*/*.json")))
    time.sleep(RACY_NS / 1e9 + 0.1)  # a stat younger than this window is never trusted

    def index(url: str, **env: str) -> dict[str, object]:
        args = ("--state", url, "--fixtures", str(fixtures), "--admin-token", TOKEN)
        with serve_process(tmp_path, *args, env=clean_env(RUST_BACKTRACE="0", **env)) as served:
            answer = httpx.get(f"{served[0]}/__pivot/fixtures", headers=AUTH, timeout=10)
            found: dict[str, object] = answer.json()["index"]
            return found

    kept = tmp_path / "index"
    with redis_server(tmp_path) as url:
        first, second = (index(url, PIVOT_INDEX_DIR=str(kept)) for _ in (1, 2))
        assert (first["read"], second["read"], second["reused"]) == (total, 0, total)
        assert Path(str(second["file"])).parent.parent == kept
        assert index(url)["read"] == index(url)["read"] == total


def _deployment_section() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    start = readme.index("### Deployment: several instances behind a load balancer")
    ends = [readme.find(mark, start + 1) for mark in ("\n## ", "\n### ")]
    return readme[start : min(end for end in ends if end > 0)]


def test_the_deployment_snippet_runs_as_written(tmp_path: Path) -> None:
    """The README's deployment commands, as written (Redis with a password, the host, port
    and fixtures folder replaced by this machine's), start two instances that act as one;
    SIGTERM drains them (ready 503) and they exit 0. The nginx example sends to that port."""
    section = _deployment_section()
    [script] = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    [nginx] = re.findall(r"```nginx\n(.*?)```", section, flags=re.S)
    assert re.findall(r"server [\d.]+:(\d+)", nginx) == ["8081", "8081"]
    assert "http_503" in nginx
    password = "deploy-pass-not-printed"
    with redis_server(tmp_path, password=password) as url, ExitStack() as stack:
        port = url.rsplit(":", 1)[1].split("/")[0]
        procs = []
        for n in (1, 2):
            listen = free_port()
            text = script.replace(":6379/", f":{port}/").replace("--port 8081", f"--port {listen}")
            text = text.replace("/srv/pivot/fixtures", str(ROOT / "fixtures"))
            text = text.replace("--host 0.0.0.0", "--host 127.0.0.1")
            text = text.replace("\npivotkit serve", f'\nexec "{sys.executable}" -c "{CLI}" serve')
            log = tmp_path / f"deploy-{n}.log"
            env = clean_env(
                REDIS_PASSWORD=password,
                REDIS_HOST="127.0.0.1",
                PIVOT_TOKEN=TOKEN,
                RUST_BACKTRACE="0",
            )
            with log.open("wb") as out:
                proc = subprocess.Popen(["bash", "-c", text], stdout=out, stderr=out, env=env)
            stack.callback(stop, proc)
            wait_ready(f"http://127.0.0.1:{listen}", proc, log)
            procs.append((proc, f"http://127.0.0.1:{listen}", log))
        urls = (procs[0][1], procs[1][1])
        assert all(httpx.get(f"{u}/__pivot/ready").status_code == 200 for u in urls)
        new = _regenerate(urls[1])
        assert _get(urls[0]) == 401 and _get(urls[0], new) == 200
        for proc, _, _ in procs:
            proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert [httpx.get(f"{u}/__pivot/ready").status_code for u in urls] == [503, 503]
        assert [proc.wait(timeout=30) for proc, _, _ in procs] == [0, 0]
        for _, _, log in procs:
            text = log.read_text(errors="replace")
            assert password not in text and "redis://:***@127.0.0.1" in text
