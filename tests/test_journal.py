"""The request journal over real sockets: what each record says, filters, the byte bound, the
key never kept in any encoding, clearing, and the journal switched off."""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver import journal as journal_module
from mockserver.journal import MIN_BYTES, journal_file
from pivotkit.harness import MockServer, make_app

from .helpers import BASIC, CONVENTIONS, FULL, KEY_HEADER, key_headers, mock_servers, path_of

TOKEN = "admin-token-for-journal-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., MockServer]]:
    """Start the mock on a free loopback port with extra settings; stopped afterwards."""
    with mock_servers(tmp_path, TOKEN) as start:
        yield start


def _journal(server: MockServer, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/__pivot/requests", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_each_answered_request_is_one_record(serve: Callable[..., MockServer]) -> None:
    """Method, path, query, operation, path parameters, account and slot, status, how the
    answer was chosen and the fixture, in the order the mock answered them."""
    server = serve()
    with httpx.Client(base_url=server.url) as client:
        client.get(path_of("getContent", id=7488), headers=key_headers(), params={"lang": "en"})
        client.get(path_of("getContent", id=999999), headers=key_headers(BASIC))
        client.get(path_of("getPerson", id=1001), headers=key_headers(BASIC))  # outside rights
        client.get(path_of("getContent", id=7488))  # no key
        client.get("/v1/api/v1/nothing-here", headers=key_headers())
        client.get(path_of("getContent", id="abc"), headers=key_headers())
    records = _journal(server)["requests"]
    summary = [
        (r["method"], r["operationId"], r["account"], r["status"], r["answer"], r["fixture"])
        for r in records
    ]
    assert summary == [
        ("GET", "getContent", "full", 200, "fixture", "7488-en"),
        ("GET", "getContent", "basic", 200, "empty", None),
        ("GET", "getPerson", None, 401, "gateway", None),
        ("GET", "getContent", None, 401, "gateway", None),
        ("GET", None, None, 404, "gateway", None),
        ("GET", "getContent", "full", 400, "invalid", None),
    ]
    first = records[0]
    assert first["path"] == path_of("getContent", id=7488)
    assert first["query"] == {"lang": "en"}
    assert first["params"] == {"id": "7488"}
    assert first["slot"] == "primary" and first["keyIn"] == "header"
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)
    assert len({r["id"] for r in records}) == len(records)
    assert records[3]["keyIn"] is None
    moment = datetime.fromisoformat(first["time"])
    assert abs(moment - datetime.now(UTC)) < timedelta(minutes=5)


def test_the_record_is_written_before_the_answer_leaves(serve: Callable[..., MockServer]) -> None:
    """A test that asks right after its call finds it (and a fault's delay does not hide it)."""
    server = serve()
    for n in range(1, 6):
        httpx.get(
            server.url + path_of("getContent", id=7488),
            headers={**key_headers(), "x-pivot-fault": "latency=5ms"},
        )
        records = server.requests
        assert len(records) == n
        assert records[-1].fault == "latency=5ms"


def test_filters_by_operation_account_status_since_and_limit(
    serve: Callable[..., MockServer],
) -> None:
    """?operation=, ?account=, ?status= (a status or a class), ?since= (ISO or epoch),
    ?limit= (the most recent); a bad filter is a one-line 400."""
    server = serve()
    with httpx.Client(base_url=server.url) as client:
        client.get(path_of("getContent", id=7488), headers=key_headers())
        client.get(path_of("listChannels"), headers=key_headers(BASIC))
        client.get(path_of("getContent", id=7488))
        time.sleep(0.01)
        middle = datetime.now(UTC)
        client.get(path_of("getContent", id=7520), headers=key_headers())

    def ids(**params: str) -> list[int]:
        return [r["id"] for r in _journal(server, **params)["requests"]]

    every = ids()
    assert len(every) == 4
    assert ids(operation="getContent") == [every[0], every[2], every[3]]
    assert ids(account="basic") == [every[1]]
    assert ids(status="401") == [every[2]] == ids(status="4xx")
    assert ids(status="2xx") == [every[0], every[1], every[3]]
    assert ids(since=middle.isoformat()) == [every[3]]
    assert ids(since=str(middle.timestamp())) == [every[3]]
    assert ids(since=middle.replace(tzinfo=None).isoformat()) == [every[3]]  # naive is UTC
    assert ids(limit="2") == every[2:]
    assert ids(operation="getContent", status="200", limit="1") == [every[3]]
    for params, word in (
        ({"status": "20"}, "status"),
        ({"status": "6xx"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"operaton": "getContent"}, "unknown filter 'operaton'"),
    ):
        response = httpx.get(f"{server.url}/__pivot/requests", params=params, headers=AUTH)
        assert response.status_code == 400
        message = response.json()["error"]
        assert word in message and "\n" not in message


def test_the_admin_token_guards_the_journal(serve: Callable[..., MockServer]) -> None:
    """Reading or clearing the journal without the admin token is the admin 401."""
    server = serve()
    for method in ("GET", "DELETE"):
        response = httpx.request(method, f"{server.url}/__pivot/requests")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.get(
        f"{server.url}/__pivot/requests", headers={"Authorization": "Bearer not-the-token"}
    )
    assert wrong.status_code == 401


def test_delete_clears_it_and_admin_pages_are_not_journaled(
    serve: Callable[..., MockServer],
) -> None:
    """DELETE forgets every record (and says how many); admin and portal pages never appear."""
    server = serve()
    for _ in range(3):
        httpx.get(server.url + path_of("getContent", id=7488), headers=key_headers())
    httpx.get(f"{server.url}/__pivot/health")
    httpx.get(f"{server.url}/portal/")
    cleared = httpx.delete(f"{server.url}/__pivot/requests", headers=AUTH).json()
    assert cleared == {"cleared": 3}
    data = _journal(server)
    assert data["requests"] == []
    assert data["journal"]["kept"] == 0 and data["journal"]["used"] == 0
    httpx.get(server.url + path_of("getContent", id=7488), headers=key_headers())
    assert [r.operation_id for r in server.requests] == ["getContent"]


def _encodings(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        secret.upper().encode(),
        raw[::-1],
        raw.hex().encode(),
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b32encode(raw),
        urllib.parse.quote(secret, safe="").encode(),
        "".join(f"%{b:02X}" for b in raw).encode(),
        hashlib.sha256(raw).hexdigest().encode(),
        secret.encode("utf-16-le"),
        *((raw[:16], raw[16:]) if len(raw) == 32 else ()),
    ]


def test_the_key_is_never_kept_in_any_encoding(
    serve: Callable[..., MockServer], tmp_path: Path
) -> None:
    """Keys sent in the header, in the query (plain or percent-encoded), in another parameter,
    in the path, valid or not: the journal file, the state and the admin answer hold none of
    them, in clear, encoded or hashed; the record says where the key was."""
    server = serve()
    unknown = "0123456789abcdef0123456789abcdef"
    odd = "Not-A-Hex-Key!42"  # a non key-shaped value sent as the key: masked all the same
    query = CONVENTIONS.key_query
    assert query is not None
    with httpx.Client(base_url=server.url) as client:
        client.get(path_of("getContent", id=7488), headers=key_headers(FULL))
        client.get(path_of("getContent", id=7488), params={query: BASIC, "lang": "fr"})
        client.get(
            path_of("getContent", id=7488) + f"?{urllib.parse.quote(query)}={FULL}&note={FULL}"
        )
        client.get(path_of("getContent", id=7488), headers=key_headers(unknown))
        client.get(path_of("getContent", id=7488), headers={KEY_HEADER: odd}, params={"x": odd})
        client.get(f"/v1/api/v1/contents/{FULL}", headers=key_headers(FULL))
        client.get(f"/v1/api/v1/no-route/{odd}", headers={KEY_HEADER: odd})
    records = _journal(server)["requests"]
    assert [r["keyIn"] for r in records] == ["header", "query", "query"] + ["header"] * 4
    assert [r["account"] for r in records[:4]] == ["full", "basic", "full", None]
    assert records[1]["query"][query] == "x" * 32
    assert records[2]["query"]["note"] == "x" * 32
    assert records[4]["query"]["x"] == "x" * 32
    assert FULL not in records[5]["path"] and odd not in records[6]["path"]
    journal = server.app.extensions["pivot"].journal.path
    files = [p for p in tmp_path.iterdir() if p.is_file()] + [journal]
    stored = b"".join(p.read_bytes() for p in files)
    answered = httpx.get(f"{server.url}/__pivot/requests", headers=AUTH).content
    for secret in (FULL, BASIC, unknown, odd):
        for encoded in _encodings(secret):
            assert encoded not in stored, (secret, encoded)
            assert encoded not in answered, (secret, encoded)


def test_the_journal_is_a_ring_bounded_in_bytes(
    serve: Callable[..., MockServer], tmp_path: Path
) -> None:
    """With the smallest bound (64 KiB), many long requests keep the file at its size, the
    used bytes within the bound, and the most recent records, oldest forgotten first."""
    server = serve(PIVOT_JOURNAL_BYTES="64KiB")
    journal_file = server.app.extensions["pivot"].journal.path
    size = journal_file.stat().st_size
    long_value = "v" * 300
    with httpx.Client(base_url=server.url, headers=key_headers()) as client:
        for n in range(700):
            client.get(path_of("getContent", id=7488), params={"n": str(n), "pad": long_value})
    data = _journal(server)
    stats, records = data["journal"], data["requests"]
    assert stats["capacity"] == MIN_BYTES
    assert journal_file.stat().st_size == size  # never grows
    assert stats["used"] <= stats["capacity"]
    segments = server.app.extensions["pivot"].journal.segments
    assert stats["used"] >= stats["capacity"] * (segments - 1) / segments - 1024
    assert stats["total"] == 700 and stats["evicted"] > 0
    assert stats["kept"] + stats["evicted"] == 700 == len(records) + stats["evicted"]
    assert [r["query"]["n"] for r in records] == [str(n) for n in range(700 - len(records), 700)]
    assert (
        records[-1]["query"]["pad"].startswith("v" * 150) and len(records[-1]["query"]["pad"]) < 300
    )


def test_long_paths_and_many_parameters_are_cut(serve: Callable[..., MockServer]) -> None:
    """A 4,000-character path and 100 query parameters make one short record."""
    server = serve()
    params = {f"p{i}": str(i) for i in range(100)}
    httpx.get(server.url + "/v1/api/v1/" + "a" * 4000, params=params, headers=key_headers())
    [record] = server.requests
    assert record.status == 404
    assert len(record.path) <= 512 and record.path.endswith("\u2026")
    assert len(record.query) == 32


@pytest.mark.parametrize("setting", [{"PIVOT_JOURNAL": "false"}, {"PIVOT_JOURNAL": False}])
def test_the_journal_can_be_switched_off(
    serve: Callable[..., MockServer], tmp_path: Path, setting: dict[str, Any]
) -> None:
    """PIVOT_JOURNAL=false: no file beside the state, and the endpoints say it is off (409)."""
    server = serve(**setting)
    assert (
        httpx.get(server.url + path_of("getContent", id=7488), headers=key_headers()).status_code
        == 200
    )
    assert not list(tmp_path.glob("*.journal"))
    assert not journal_file(tmp_path / "state-0.sqlite").exists()
    for method in ("GET", "DELETE"):
        response = httpx.request(method, f"{server.url}/__pivot/requests", headers=AUTH)
        assert response.status_code == 409
        assert "journal is off" in response.json()["error"]


@pytest.mark.parametrize("value", ["10", "2GiB", "lots", "-5", "64 XB"])
def test_a_bad_bound_is_refused_at_start(tmp_path: Path, value: str) -> None:
    """PIVOT_JOURNAL_BYTES outside 64 KiB to 1 GiB, or not a size, is a one-line ConfigError."""
    from pivotkit.errors import ConfigError

    with pytest.raises(ConfigError, match="PIVOT_JOURNAL_BYTES") as caught:
        make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_JOURNAL_BYTES": value})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("64KiB", 65536), ("1MB", 10**6), ("131072", 131072), ("2m", 2 * 1024**2)],
)
def test_the_bound_reads_units(serve: Callable[..., MockServer], value: str, expected: int) -> None:
    """64KiB, 1MB, a plain number of bytes, 2m (MiB) are all sizes."""
    server = serve(PIVOT_JOURNAL_BYTES=value)
    capacity = _journal(server)["journal"]["capacity"]
    segments = server.app.extensions["pivot"].journal.segments
    assert capacity == expected - expected % segments and 4 <= segments <= 256


def test_reset_empties_the_journal(serve: Callable[..., MockServer]) -> None:
    """The per-test reset (POST /__pivot/reset, what the plugin does) empties it."""
    server = serve()
    httpx.get(server.url + path_of("getContent", id=7488), headers=key_headers())
    assert len(server.requests) == 1
    assert httpx.post(f"{server.url}/__pivot/reset", headers=AUTH).json() == {"reset": True}
    assert server.requests == []


def test_a_mock_started_again_on_a_state_reads_its_journal(tmp_path: Path) -> None:
    """A mock started on the same state file reads the same journal (as a worker started
    after the others does); a different bound starts a new one."""
    settings = {"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_ADMIN_TOKEN": TOKEN}
    with MockServer(make_app(settings)) as first:
        httpx.get(first.url + path_of("getContent", id=7488), headers=key_headers())
    with MockServer(make_app(settings)) as second:
        assert [r.operation_id for r in second.requests] == ["getContent"]
    with MockServer(make_app({**settings, "PIVOT_JOURNAL_BYTES": "128KiB"})) as third:
        assert third.requests == []


_WRITER = """
import sys
from mockserver import create_app

import time
from pathlib import Path

state, count, key_header, key, ready, go, finish = sys.argv[1:8]
app = create_app({"PIVOT_STATE": state, "PIVOT_JOURNAL_BYTES": "64KiB"})
client = app.test_client()


def get(n):
    client.get("/v1/api/v1/contents/7488", headers={key_header: key}, query_string={"n": str(n)})


def wait(mark):
    while not Path(mark).exists():
        time.sleep(0.005)


Path(ready).touch()
wait(go)  # both start writing at the same moment
for n in range(int(count)):
    get(n)
Path(ready + ".done").touch()
wait(finish)  # alive until both are done: a dead writer's segment is free for the other to take
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """Two processes answering at the same time into one small journal: every request is
    either kept or counted as forgotten, no record is torn, and each process keeps an
    unbroken run of its latest requests."""
    import subprocess
    import sys

    state = tmp_path / "state.sqlite"
    count = 4000
    make_app({"PIVOT_STATE": str(state), "PIVOT_JOURNAL_BYTES": "64KiB"})  # the files
    go, finish = tmp_path / "go", tmp_path / "finish"
    ready = [tmp_path / f"ready-{n}" for n in range(2)]
    args = (state, count, KEY_HEADER, FULL)
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, *map(str, (*args, mark, go, finish))])
        for mark in ready
    ]

    def all_there(marks: list[Path]) -> None:
        deadline = time.monotonic() + 120
        while not all(mark.exists() for mark in marks) and time.monotonic() < deadline:
            assert all(w.poll() is None for w in writers), "a writer ended early"
            time.sleep(0.01)

    all_there(ready)
    go.touch()
    all_there([mark.with_name(mark.name + ".done") for mark in ready])
    finish.touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    app = make_app({"PIVOT_STATE": str(state), "PIVOT_JOURNAL_BYTES": "64KiB"})
    entries, stats = app.extensions["pivot"].journal.entries()
    assert stats.total == 2 * count and stats.kept + stats.evicted == 2 * count
    assert stats.used <= stats.capacity and stats.evicted > 0
    by_worker: dict[int, list[int]] = {}
    for entry in entries:
        by_worker.setdefault(entry["worker"], []).append(int(entry["query"]["n"]))
    assert sorted(by_worker) == sorted(w.pid for w in writers)
    for kept in by_worker.values():  # the segment a live writer holds is never taken from it
        assert kept == list(range(count - len(kept), count))


def test_the_journal_lives_in_memory_when_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a memory folder (/dev/shm) the journal goes there, named after the state; without
    one, beside the state."""
    memory = tmp_path / "shm"
    memory.mkdir()
    monkeypatch.setattr(journal_module, "MEMORY_DIRS", (memory,))
    state = tmp_path / "a" / "state.sqlite"
    app = make_app({"PIVOT_STATE": str(state)})
    path = app.extensions["pivot"].journal.path
    assert path.parent == memory and path.name.startswith("pivotkit-")
    assert journal_file(state) == path != journal_file(tmp_path / "b" / "state.sqlite")
    monkeypatch.setattr(journal_module, "MEMORY_DIRS", (tmp_path / "no-such-folder",))
    assert journal_file(state) == state.with_name("state.sqlite.journal")


_MAKER = """
import os, sys
from mockserver import create_app, journal
from pathlib import Path

journal.MEMORY_DIRS = (Path(sys.argv[2]),)
app = create_app({"PIVOT_STATE": sys.argv[1]})
print(app.extensions["pivot"].journal.path, flush=True)
if sys.argv[3] == "kill":
    os.kill(os.getpid(), 9)
"""


def test_an_in_memory_journal_goes_with_its_mock(tmp_path: Path) -> None:
    """The process that made an in-memory journal removes it when it ends; one left by a
    mock that was killed is removed by the next mock, once its state file is gone."""
    import subprocess
    import sys

    memory = tmp_path / "shm"
    memory.mkdir()

    def run(state: Path, how: str) -> Path:
        done = subprocess.run(
            [sys.executable, "-c", _MAKER, str(state), str(memory), how],
            capture_output=True,
            text=True,
            check=False,
        )
        return Path(done.stdout.strip())

    ended = run(tmp_path / "one" / "state.sqlite", "exit")
    assert ended.parent == memory and not ended.exists()
    killed_state = tmp_path / "two" / "state.sqlite"
    killed = run(killed_state, "kill")
    assert killed.exists()
    shutil.rmtree(killed_state.parent)  # its temporary state goes, as serve's does
    run(tmp_path / "three" / "state.sqlite", "exit")
    assert not killed.exists() and not list(memory.iterdir())
