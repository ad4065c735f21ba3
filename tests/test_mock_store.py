"""The fixture store (mockserver/store.py): the index kept beside the state and reused while the
files are unchanged, bodies read and prepared on first use into a cache bounded in bytes, a
fixture broken after indexing answered as absent and reported. Through real sockets (MockServer)
and a real ``pivotkit serve`` with two workers."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.store import RACY_NS
from pivotkit.harness import MockServer, make_app
from tests.helpers import BASIC, FULL, KEY_HEADER, path_of, serve_process

TOKEN = "store-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BUNDLED = Path(__file__).resolve().parent.parent / "fixtures"
CONTENT = json.loads((BUNDLED / "getContent" / "7488.json").read_text("utf-8"))


def _content(root: Path, content_id: int, *, title: str = "", lang: str = "", pad: int = 0) -> Path:
    """A getContent fixture for ``content_id`` (``pad`` characters of synopsis)."""
    data = json.loads(json.dumps(CONTENT))
    data["request"]["path"] = path_of("getContent", id=content_id)
    if lang:
        data["request"]["query"] = {"lang": lang}
    body = data["response"]["body"]["data"]
    body["id"] = content_id
    if title:
        body["title"] = title
    if pad:
        body["synopsis"] = "".join(chr(0x41 + (i * 7919) % 26) for i in range(pad))
    path = root / "getContent" / f"{content_id}{'-' + lang if lang else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), "utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "fixtures"
    for i in range(20):
        _content(root, 800_000 + i, title=f"title {i}")
    shutil.copy(BUNDLED / "accounts.toml", root / "accounts.toml")
    time.sleep(RACY_NS / 1e9 + 0.1)  # older than the window in which a stat is not trusted
    return root


@pytest.fixture
def start(tmp_path: Path, corpus: Path) -> Iterator[Callable[..., MockServer]]:
    """MockServers on ``corpus``, all on the same state folder (so the same index file)."""
    servers: list[MockServer] = []

    def run(**config: Any) -> MockServer:
        for server in servers:
            server.stop()
        settings = {
            "PIVOT_FIXTURES": str(corpus),
            "PIVOT_STATE": str(tmp_path / "state" / "state.sqlite"),
            "PIVOT_ADMIN_TOKEN": TOKEN,
            **config,
        }
        (tmp_path / "state").mkdir(exist_ok=True)
        servers.append(MockServer(make_app(settings)).start())
        return servers[-1]

    try:
        yield run
    finally:
        for server in servers:
            server.stop()


def _admin(url: str, what: str) -> Any:
    response = httpx.get(f"{url}/__pivot/{what}", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _get(url: str, content_id: int, key: str = FULL, **headers: str) -> httpx.Response:
    headers[KEY_HEADER] = key
    return httpx.get(f"{url}{path_of('getContent', id=content_id)}", headers=headers, timeout=10)


def _title(url: str, content_id: int, lang: str = "") -> Any:
    query = f"?lang={lang}" if lang else ""
    response = httpx.get(
        f"{url}{path_of('getContent', id=content_id)}{query}", headers={KEY_HEADER: FULL}
    )
    assert response.status_code == 200
    body = response.json()
    return body.get("data", {}).get("title") if body else None


# -- the index ------------------------------------------------------------------------------


def test_a_second_start_on_an_unchanged_corpus_reads_no_fixture(
    start: Callable[..., MockServer], corpus: Path, tmp_path: Path
) -> None:
    """The first start reads and checks every file and writes the index beside the state; the
    next reads none; a changed, an added and a removed file are the only ones read after."""
    first = _admin(start().url, "fixtures")["index"]
    assert (first["read"], first["reused"]) == (20, 0)
    assert Path(first["file"]).is_file() and Path(first["file"]).parent.parent == tmp_path / "state"
    second = start()
    assert _admin(second.url, "fixtures")["index"] | {"seconds": 0} == first | {
        "read": 0,
        "reused": 20,
        "seconds": 0,
        "unchanged": True,
    }
    assert _title(second.url, 800_003) == "title 3"
    _content(corpus, 800_003, title="edited")
    (corpus / "getContent" / "800004.json").unlink()
    _content(corpus, 900_000, title="added")
    third = start()
    index = _admin(third.url, "fixtures")["index"]
    assert (index["read"], index["reused"]) == (2, 18)
    assert _title(third.url, 800_003) == "edited"
    assert _title(third.url, 900_000) == "added"
    assert _title(third.url, 800_004) is None  # the empty-200


def test_an_index_of_another_contract_or_a_damaged_one_is_not_used(
    start: Callable[..., MockServer], tmp_path: Path
) -> None:
    """The index is named after the contract's digest and every file's stat: another contract
    (one description changed) reads every file again; a damaged index file is rebuilt."""
    path = Path(_admin(start().url, "fixtures")["index"]["file"])
    schemas = tmp_path / "schemas"
    shutil.copytree(BUNDLED.parent / "schemas", schemas)
    openapi = schemas / "openapi.yaml"
    openapi.write_text(openapi.read_text("utf-8").replace("info:\n", "info:\n  x-note: v2\n", 1))
    other = _admin(start(PIVOT_SCHEMAS=str(schemas)).url, "fixtures")["index"]
    assert other["read"] == 20 and other["file"] != str(path)
    again = _admin(start().url, "fixtures")["index"]
    assert (again["read"], again["file"]) == (20, str(path))  # the other one replaced it
    Path(again["file"]).write_bytes(b"not an index" * 100)
    assert _admin(start().url, "fixtures")["index"]["read"] == 20
    assert _admin(start().url, "fixtures")["index"]["read"] == 0


def test_a_file_just_written_is_read_again_even_if_its_stat_matches(
    start: Callable[..., MockServer], corpus: Path
) -> None:
    """A file changed within two seconds of the index's walk could change again in the same
    timestamp tick: it is not trusted from the index; and a rewrite of the same size dated
    back to its old mtime is seen (the inode's ctime changed)."""
    fresh = _content(corpus, 800_001, title="fresh")
    os.utime(fresh)  # now
    start()
    assert _admin(start().url, "fixtures")["index"]["read"] == 1
    time.sleep(RACY_NS / 1e9 + 0.1)
    start()  # the index now dates from after the window: the fresh file is trusted
    same = corpus / "getContent" / "800002.json"
    before = same.stat()
    same.write_text(same.read_text("utf-8").replace("title 2", "title X"), "utf-8")
    os.utime(same, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert same.stat().st_size == before.st_size
    assert _admin(start().url, "fixtures")["index"]["read"] == 1
    assert _title(start().url, 800_002) == "title X"


def test_reload_reads_only_the_changed_files_and_refuses_a_served_one_broken(
    start: Callable[..., MockServer], corpus: Path
) -> None:
    """A reload stats every file, reads the changed ones, sees additions and removals; a
    served fixture whose file no longer loads refuses it (409) and nothing changes."""
    server = start()
    assert _title(server.url, 800_002) == "title 2"
    _content(corpus, 800_002, title="changed")
    _content(corpus, 900_001, title="new")
    (corpus / "getContent" / "800005.json").unlink()
    done = httpx.post(f"{server.url}/__pivot/reload", headers=AUTH).json()
    assert done["index"]["read"] == 2 and done["index"]["reused"] == 18
    assert done["fixtures"] == 20
    assert _title(server.url, 800_002) == "changed"
    assert _title(server.url, 900_001) == "new"
    assert _title(server.url, 800_005) is None
    broken = corpus / "getContent" / "800006.json"
    broken.write_text(broken.read_text("utf-8")[:50], "utf-8")
    refused = httpx.post(f"{server.url}/__pivot/reload", headers=AUTH)
    assert refused.status_code == 409 and "800006.json" in refused.json()["problems"][0]
    assert _admin(server.url, "fixtures")["index"]["read"] == 2  # the last reload's walk


# -- first use ------------------------------------------------------------------------------


def test_a_fixture_broken_after_indexing_answers_as_absent_and_is_reported(
    start: Callable[..., MockServer], corpus: Path
) -> None:
    """Truncated, made to break the contract, or moved to another request after the index was
    built: the fixture is checked when first asked for, answers as if it were not there (the
    empty-200, or the default language's fixture) and is listed like a refused fixture."""
    _content(corpus, 800_010, lang="en", title="english")
    server = start()
    empty = _get(server.url, 123_456_789)
    truncated = corpus / "getContent" / "800007.json"
    truncated.write_text(truncated.read_text("utf-8")[:80], "utf-8")
    answer = _get(server.url, 800_007)
    assert (answer.status_code, answer.content) == (200, empty.content)
    assert answer.headers["content-type"] == empty.headers["content-type"]
    breaking = json.loads((corpus / "getContent" / "800008.json").read_text("utf-8"))
    breaking["response"]["body"]["data"]["productionYear"] = "not a year"
    (corpus / "getContent" / "800008.json").write_text(json.dumps(breaking), "utf-8")
    assert _get(server.url, 800_008).content == empty.content
    moved = _content(corpus, 800_010, lang="en")
    moved.write_text(moved.read_text("utf-8").replace("800010", "800011"), "utf-8")
    assert _title(server.url, 800_010, "en") == "title 10"  # the default language's fixture
    listing = _admin(server.url, "fixtures")
    problems = [p for p in listing["problems"] if "first use" in p]
    assert sorted(Path(p.split(": ", 1)[0]).name for p in problems) == [
        "800007.json",
        "800008.json",
        "800010-en.json",
    ]
    assert listing["refused"] == "3 fixtures refused (invalid file: 3)"
    assert _admin(server.url, "health")["fixtureCache"]["broken"] == 3
    assert _get(server.url, 800_007).content == empty.content  # still absent, counted once
    assert _admin(server.url, "health")["fixtureCache"]["broken"] == 3


def test_a_fixture_edited_validly_after_indexing_is_served_as_it_is_now(
    start: Callable[..., MockServer], corpus: Path
) -> None:
    """The body is read when first asked for: an edit that keeps the same request and still
    fits the contract is what is served."""
    server = start()
    _content(corpus, 800_009, title="edited after the index")
    assert _title(server.url, 800_009) == "edited after the index"


def test_lazily_prepared_answers_keep_gzip_rights_and_the_empty_200(
    start: Callable[..., MockServer], corpus: Path
) -> None:
    """A fixture prepared on first use: compact JSON, gzipped for a client that accepts it
    (same bytes decompressed), the restricted account's fields withheld, the provider's
    headers; an unrecorded id is the empty-200."""
    server = start()
    body = json.loads((corpus / "getContent" / "800001.json").read_text("utf-8"))["response"]
    identity = _get(server.url, 800_001, **{"Accept-Encoding": "identity"})
    packed = _get(server.url, 800_001, **{"Accept-Encoding": "gzip"})
    assert identity.headers.get("content-encoding") is None
    assert packed.headers["content-encoding"] == "gzip"
    raw = httpx.get(
        f"{server.url}{path_of('getContent', id=800_001)}",
        headers={KEY_HEADER: FULL, "Accept-Encoding": "gzip"},
    )
    assert raw.json() == identity.json() == body["body"]
    compact = json.dumps(body["body"], ensure_ascii=False, separators=(",", ":")).encode()
    assert identity.content == compact
    with httpx.stream(
        "GET",
        f"{server.url}{path_of('getContent', id=800_001)}",
        headers={KEY_HEADER: FULL, "Accept-Encoding": "gzip"},
    ) as stream:
        assert gzip.decompress(b"".join(stream.iter_raw())) == compact
    basic = _get(server.url, 800_001, key=BASIC).json()
    assert "synopsis" in body["body"]["data"] and "synopsis" not in basic["data"]
    assert basic["data"]["title"] == body["body"]["data"]["title"]
    empty = _get(server.url, 987_654_321)
    assert empty.status_code == 200 and empty.json() == {}
    stats = _admin(server.url, "health")["fixtureCache"]
    assert stats["prepared"] == 2  # once for every client of the full account, once filtered
    assert stats["entries"] == 2


def test_the_cache_stays_under_its_bound_while_serving_more_than_it(
    start: Callable[..., MockServer], corpus: Path
) -> None:
    """With a 1 MiB cache, 40 fixtures of about 40 KB (1.6 MB of bodies) are all answered
    rightly; the cache never holds more than its bound, and the one asked for between every
    other stays in it (least recently used go first)."""
    for i in range(40):
        _content(corpus, 700_000 + i, pad=40_000)
    server = start(PIVOT_FIXTURE_CACHE="1MiB")
    hot, seen = 800_000, 0
    for i in range(40):
        answer = _get(server.url, 700_000 + i)
        assert answer.json()["data"]["id"] == 700_000 + i
        seen += len(answer.content)
        assert _title(server.url, hot) == "title 0"
        stats = _admin(server.url, "health")["fixtureCache"]
        assert 0 < stats["bytes"] <= stats["maxBytes"] == 1024 * 1024
    assert seen > 1.5 * 1024 * 1024
    assert stats["prepared"] == 41  # every large one once, the hot one once
    assert stats["entries"] < 40
    again = _get(server.url, 700_000)  # evicted long ago: prepared again, the same answer
    assert again.json()["data"]["id"] == 700_000
    assert _admin(server.url, "health")["fixtureCache"]["prepared"] == 42


def test_the_cache_setting_is_checked() -> None:
    """PIVOT_FIXTURE_CACHE is a size from 1 MiB to 64 GiB, with a one-line error otherwise."""
    from mockserver.config import resolve_settings
    from pivotkit.errors import ConfigError

    assert resolve_settings({"PIVOT_FIXTURE_CACHE": "256MiB"}).fixture_cache == 256 * 1024**2
    assert resolve_settings({}).fixture_cache == 64 * 1024**2
    for bad in ("12", "lots", "128GiB"):
        with pytest.raises(ConfigError, match=r"fixture cache|size"):
            resolve_settings({"PIVOT_FIXTURE_CACHE": bad})


# -- production: two workers ----------------------------------------------------------------


def test_two_workers_start_on_the_kept_index_and_check_it_after(
    tmp_path: Path, corpus: Path
) -> None:
    """``pivotkit serve --workers 2``: the first start builds the index beside ``--state``;
    the next serves the kept index at once and stats the files after its first request, in one
    worker: a file added and one changed while the mock was stopped are then served by both
    workers (read alone); a reload done by one worker reaches the other."""
    from tests.helpers import clean_env

    args = ("--fixtures", str(corpus), "--workers", "2", "--state", str(tmp_path / "s.sqlite"))
    env = clean_env(PIVOT_ADMIN_TOKEN=TOKEN)
    with serve_process(tmp_path, *args, env=env) as (url, _, _):
        assert _admin(url, "fixtures")["index"]["read"] == 20
    _content(corpus, 900_002, title="added while stopped")
    _content(corpus, 800_011, title="changed while stopped")
    with serve_process(tmp_path, *args, env=env) as (url, _, _):
        deadline = time.monotonic() + 30
        titles: set[Any] = set()
        while time.monotonic() < deadline and titles != {"added while stopped"}:
            with httpx.Client(headers={"Connection": "close", KEY_HEADER: FULL}) as client:
                titles = {
                    (client.get(f"{url}{path_of('getContent', id=900_002)}").json() or {})
                    .get("data", {})
                    .get("title")
                    for _ in range(10)
                }
        assert titles == {"added while stopped"}
        assert _title(url, 800_011) == "changed while stopped"
        _content(corpus, 800_012, title="reloaded")
        done = httpx.post(f"{url}/__pivot/reload", headers=AUTH).json()
        # 800012, and the two written just before the start if still within the racy window
        assert (
            done["index"]["read"] in (1, 3)
            and done["index"]["reused"] + done["index"]["read"] == 21
        )
        pids = set()
        with httpx.Client(headers={"Connection": "close"}) as client:
            for _ in range(40):
                pids.add(client.get(f"{url}/__pivot/health").json()["pid"])
                answer = client.get(
                    f"{url}{path_of('getContent', id=800_012)}", headers={KEY_HEADER: FULL}
                )
                assert answer.json()["data"]["title"] == "reloaded"
        assert len(pids) == 2
