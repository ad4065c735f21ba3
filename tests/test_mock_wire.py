"""Tests of mockserver.wire: serialisation and compression done once, and done right."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from mockserver import wire

from .conftest import FIXTURES


def _bodies() -> list[object]:
    return [
        json.loads(p.read_text("utf-8"))["response"]["body"]
        for p in sorted(FIXTURES.glob("*/*.json"))
    ]


@pytest.mark.parametrize("size", [0, 1, 300, 1_195, 4_096, 40_000, 300_000])
def test_gzip_round_trips_deterministically_and_as_small_as_the_stdlib(size: int) -> None:
    """Any body size decompresses to itself, twice the same bytes, no bigger than gzip's own."""
    rng = random.Random(size)
    words = [b"Blade", b"Runner", b"Deckard", b"\xc3\xa9t\xc3\xa9", b"2019", b" ", b","]
    data = b"".join(rng.choice(words) for _ in range(size))[:size]
    packed = wire.gzip_bytes(data)
    assert gzip.decompress(packed) == data
    assert wire.gzip_bytes(data) == packed
    assert packed[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header
    assert len(packed) <= len(gzip.compress(data, compresslevel=6, mtime=0)) + 16


def test_dumps_is_compact_utf8_and_round_trips() -> None:
    """Bodies are written compact, in UTF-8 (not \\u escapes), and read back equal."""
    for body in _bodies():
        data = wire.dumps(body)
        assert json.loads(data) == body
    assert wire.dumps({"t": "été", "n": [1, 2]}) == '{"t":"été","n":[1,2]}'.encode()
