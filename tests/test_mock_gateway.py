"""The gateway layer's pieces: field rights, TimeSpan, key lookup in constant time, state."""

from __future__ import annotations

import hmac
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from mockserver.gateway import Gateway
from mockserver.state import State, Window
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


@pytest.mark.parametrize("sliding", [True, False], ids=["sliding", "fixed"])
def test_admissions_are_exact_between_threads(tmp_path: Path, sliding: bool) -> None:
    """200 concurrent calls against a limit of 120: exactly 120 admitted, and the 80 refused
    are not counted (one transaction per call, one connection per thread, WAL)."""
    state = State(tmp_path / "s.sqlite")
    window = Window("rate", 120, 3600, sliding)
    admitted: list[bool] = []

    def hammer() -> None:
        for _ in range(50):
            admitted.append(state.admit("full", [window]) is None)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 120 and admitted.count(False) == 80
    bigger = Window("rate", 121, 3600, sliding)
    assert state.admit("full", [bigger]) is None  # the refused calls left no trace
    assert state.admit("full", [bigger]) is not None


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


@pytest.mark.parametrize("boundary", [10.0, 20.0, 1_000_000_000.0])
def test_sliding_rate_limit_holds_at_every_boundary(tmp_path: Path, boundary: float) -> None:
    """5 calls per 10 s, called 5 times just before a boundary of the old fixed windows and 5
    times just after: the second five are refused (no window boundary doubles the limit),
    with the wait until the first call leaves the window; they are not counted."""
    now = [boundary - 0.5]
    state = State(tmp_path / "s.sqlite")
    window = [Window("rate", 5, 10, True)]
    clock = lambda: now[0]  # noqa: E731
    assert [state.admit("limited", window, clock) for _ in range(5)] == [None] * 5
    now[0] = boundary + 0.5
    refusals = [state.admit("limited", window, clock) for _ in range(5)]
    assert all(r is not None and r.kind == "rate" and r.wait == 9 for r in refusals)
    now[0] = boundary + 9.6  # the first five left the window (t - 10 s); no refusal counted
    got = [state.admit("limited", window, clock) for _ in range(6)]
    assert got[:5] == [None] * 5 and got[5] is not None
    state.close()


def test_quota_renews_at_fixed_boundaries_and_refusals_do_not_count(tmp_path: Path) -> None:
    """A quota of 3 per hour window: the 4th call is refused with the wait to the window's end;
    refused calls (by the rate limit or the quota) are never counted; the next window starts
    afresh."""
    now = [7200.0 + 100]
    state = State(tmp_path / "s.sqlite")
    clock = lambda: now[0]  # noqa: E731
    quota = [Window("quota", 3, 3600, False)]
    assert [state.admit("limited", quota, clock) for _ in range(3)] == [None] * 3
    refused = state.admit("limited", quota, clock)
    assert refused is not None and (refused.kind, refused.wait) == ("quota", 3500)
    both = [Window("rate", 1, 10, True), Window("quota", 5, 3600, False)]
    now[0] = 10_800.0  # a new quota window
    assert state.admit("basic", both, clock) is None
    for _ in range(10):  # refused by the rate limit: the quota does not see them
        assert state.admit("basic", both, clock) is not None
    now[0] += 10
    assert state.admit("basic", both, clock) is None
    state.close()
