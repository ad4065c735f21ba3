"""pivotkit.codings: the one reading of Accept-Encoding (the mock's and the conformance check's)."""

from __future__ import annotations

import pytest

from pivotkit.codings import accepts, accepts_gzip, applied, qualities


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip, deflate, br", {"gzip": 1.0, "deflate": 1.0, "br": 1.0}),
        ("GZIP;Q=0.5 , *;q=0", {"gzip": 0.5, "*": 0.0}),
        ("x-gzip;q=0.2, gzip;q=0.7", {"gzip": 0.7}),
        ("gzip;q=0, gzip;q=0.3", {"gzip": 0.3}),
        ("br;level=5;q=0.4", {"br": 0.4}),
        ("gzip;q=", {"gzip": 0.0}),
        ("gzip;q", {"gzip": 0.0}),
        (
            "gzip;q=nan, br;q=inf, zstd;q=1e-3, deflate;q=-0",
            {
                "gzip": 0.0,
                "br": 0.0,
                "zstd": 0.0,
                "deflate": 0.0,
            },
        ),
        ("identity;q=.5", {"identity": 0.5}),
        (",, ;q=1,", {}),
        ("", {}),
    ],
)
def test_qualities_fold_case_aliases_and_malformed_weights(
    value: str, expected: dict[str, float]
) -> None:
    """Names without case or spaces, x-gzip as gzip, the highest q of a repeated coding; a
    malformed or out-of-range q refuses; empty members are skipped."""
    assert qualities(value) == expected


@pytest.mark.parametrize(
    ("value", "gzip", "identity"),
    [
        (None, False, True),  # no header: identity only [assumed, API.md]
        ("", False, True),
        ("gzip", True, True),
        ("gzip;q=0", False, True),
        ("*", True, True),
        ("*;q=0", False, False),
        ("*;q=0, identity", False, True),
        ("gzip, identity;q=0", True, False),
        ("identity;q=0", False, False),
        ("gzip;q=0, *", False, True),
        ("br", False, True),
        ("gzip;q=0.0001", True, True),
        ("gzip;q=1.0000", True, True),
        ("gzip;q=0.000", False, True),
    ],
)
def test_accepts_follows_rfc_9110(value: str | None, gzip: bool, identity: bool) -> None:
    """A named coding by its own q, another by ``*``'s, identity acceptable unless refused
    by name or by ``*;q=0``."""
    assert accepts_gzip(value) is gzip
    assert accepts(value, "gzip") is gzip
    assert accepts(value, "X-GZIP") is gzip  # the asked coding is folded too
    assert accepts(value, "identity") is identity


def test_a_long_value_is_read_without_the_cache() -> None:
    """A header value too long to cache (a client may send kilobytes) is read all the same,
    and the cache keeps nothing of it."""
    from pivotkit import codings

    long_value = ", ".join(f"coding{i};q=0.5" for i in range(500)) + ", gzip;q=0"
    before = codings._cached.cache_info().currsize
    assert accepts_gzip(long_value) is False
    assert accepts_gzip(long_value.replace("gzip;q=0", "gzip")) is True
    assert codings._cached.cache_info().currsize == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ("", ()),
        ("identity", ()),
        ("gzip", ("gzip",)),
        (" GZIP ", ("gzip",)),
        ("x-gzip", ("gzip",)),
        ("deflate, gzip", ("deflate", "gzip")),
    ],
)
def test_applied_lists_the_codings_of_a_content_encoding(
    value: str | None, expected: tuple[str, ...]
) -> None:
    """Content-Encoding as coding names, in order, identity dropped."""
    assert applied(value) == expected
