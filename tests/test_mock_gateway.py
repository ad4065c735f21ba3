"""The gateway layer's pieces: field rights, TimeSpan, key lookup in constant time, state."""

from __future__ import annotations

import hmac
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from mockserver.gateway import Gateway
from mockserver.state import State
from pivotkit.accounts import (
    build_trie,
    load_accounts,
    parse_field_path,
    remove_fields,
    select_fields,
)
from pivotkit.conventions import timespan
from pivotkit.fixtures import Exchange, iter_fixture_files, read_exchange
from tests.helpers import CONVENTIONS

quota_message = CONVENTIONS.messages.quota_exhausted

BUNDLED = Path(__file__).resolve().parent.parent / "fixtures" / "accounts.toml"
DATA = {
    "id": 1,
    "title": "T",
    "synopsis": "S",
    "credits": [{"name": "A", "character": "X"}, {"name": "B"}],
    "content": {"credits": [{"name": "C", "character": "Y"}], "synopsis": "Z"},
    "images": [{"url": "u", "hierarchy": 2}],
    "countries": ["FR", "US"],
}


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("/credits", ("credits",)),
        ("credits.character", ("credits", "character")),
        ("/a~1b/c~0d", ("a/b", "c~d")),
        ("images.url", ("images", "url")),
    ],
)
def test_field_paths_accept_pointers_and_dotted_names(text: str, parts: tuple[str, ...]) -> None:
    """JSON pointers (with ~0/~1 escapes) and dotted paths both name a field."""
    assert parse_field_path(text) == parts


@pytest.mark.parametrize("text", ["", "/", "a..b", ".a", "a.", "//x"])
def test_malformed_field_paths_are_refused(text: str) -> None:
    """Empty segments are a mistake, reported as such."""
    with pytest.raises(ValueError, match="not a field path"):
        parse_field_path(text)


def test_select_keeps_nested_fields_through_arrays() -> None:
    """Allowed paths apply to each element of arrays; a parent path keeps its whole subtree."""
    trie = build_trie([("id",), ("credits", "name"), ("images",), ("countries",)])
    assert select_fields(DATA, trie) == {
        "id": 1,
        "credits": [{"name": "A"}, {"name": "B"}],
        "images": [{"url": "u", "hierarchy": 2}],
        "countries": ["FR", "US"],
    }
    assert select_fields([DATA, DATA], build_trie([("title",)])) == [{"title": "T"}] * 2


def test_remove_drops_fields_wherever_they_are() -> None:
    """Withheld fields disappear (absent, not null), at every array element."""
    trie = build_trie(
        [("synopsis",), ("credits", "character"), ("content", "credits", "character")]
    )
    out = remove_fields(DATA, trie)
    assert "synopsis" not in out and out["content"]["synopsis"] == "Z"
    assert out["credits"] == [{"name": "A"}, {"name": "B"}]
    assert out["content"]["credits"] == [{"name": "C"}]
    assert DATA["credits"][0]["character"] == "X"  # the fixture itself is untouched


def test_a_shorter_path_covers_a_longer_one() -> None:
    """``credits`` and ``credits.name`` together mean all of credits, in either order."""
    assert build_trie([("credits", "name"), ("credits",)]) == {"credits": True}
    assert build_trie([("credits",), ("credits", "name")]) == {"credits": True}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00:00"),
        (59, "00:00:59"),
        (12656, "03:30:56"),
        (86399, "23:59:59"),
        (86400, "1.00:00:00"),
        (90061, "1.01:01:01"),
        (10 * 86400 + 5, "10.00:00:05"),
    ],
)
def test_timespan_is_dotnet_format(seconds: int, text: str) -> None:
    """hh:mm:ss, and d.hh:mm:ss past a day, as .NET writes a TimeSpan."""
    assert timespan(seconds) == text


def test_quota_message_matches_api_md() -> None:
    """The exact quota message of API.md section 4."""
    assert quota_message(12656) == (
        "Out of call volume quota. Quota will be replenished in 03:30:56."
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    state = State(tmp_path / "state.sqlite", usage_flush=0)
    return Gateway(load_accounts(BUNDLED), state, CONVENTIONS)


def test_identify_compares_every_candidate(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key lookup runs compare_digest over all keys, whether it matches early, late or never."""
    calls: list[Any] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    total = 2 * len(gateway.accounts)
    first = gateway.accounts[0].primary_key
    last = gateway.accounts[-1].secondary_key
    for key, expected in ((first, "full"), (last, "limited"), ("0" * 32, None)):
        calls.clear()
        found = gateway.identify(key)
        assert (found[0].name if found else None) == expected
        assert len(calls) == total


def test_regeneration_is_seen_by_another_state_on_the_same_file(tmp_path: Path) -> None:
    """Two State objects (as two workers) on one file: the other sees the new key at once."""
    first = Gateway(load_accounts(BUNDLED), State(tmp_path / "s.sqlite"), CONVENTIONS)
    second = Gateway(load_accounts(BUNDLED), State(tmp_path / "s.sqlite"), CONVENTIONS)
    old = first.current_keys("basic")[0]
    new = first.regenerate_key("basic", "primary")
    second.sync(second.state.generations().keys)
    assert second.identify(old) is None
    found = second.identify(new)
    assert found is not None and found[0].name == "basic" and found[1] == "primary"
    assert second.current_keys("basic")[0] == new
    with pytest.raises(ValueError, match="slot"):
        first.regenerate_key("basic", "tertiary")


def test_counters_are_shared_between_threads(tmp_path: Path) -> None:
    """Concurrent hits on one window lose no count (one connection per thread, WAL)."""
    state = State(tmp_path / "s.sqlite")

    def hammer() -> None:
        for _ in range(50):
            state.hit("full", "rate", 1)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.hit("full", "rate", 1) == 201


def test_usage_is_buffered_then_flushed(tmp_path: Path) -> None:
    """Buffered counts are written when usage is read; write-through when the flush is 0."""
    state = State(tmp_path / "s.sqlite", usage_flush=3600)
    other = State(tmp_path / "s.sqlite")
    for _ in range(3):
        state.record_call("full", "getContent", "primary")
    assert other.usage("full") == []
    assert [r.count for r in state.usage("full")] == [3]
    assert [r.count for r in other.usage("full")] == [3]
    state.close()
    other.close()


def test_fast_fixture_reader_equals_the_checked_one() -> None:
    """read_exchange's fast path (orjson, jsonschema-rs) builds the same exchanges as the
    checked construction from the file's JSON."""
    files = list(iter_fixture_files(BUNDLED.parent))
    assert files
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        expected = Exchange.from_dict(
            data, name=path.stem, operation_id=path.parent.name, file=path
        )
        assert read_exchange(path) == expected
