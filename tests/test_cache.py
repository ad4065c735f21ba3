"""pivotkit.cache: a cache bounded in bytes, and the mock's caches built on it."""

from __future__ import annotations

import threading

from mockserver.routing import Call, Router
from pivotkit.cache import BoundedCache
from tests.helpers import CONTRACT


def test_the_budget_holds_whatever_is_stored() -> None:
    """Entries are sized on the way in; the oldest go first; the bytes never pass the budget."""
    cache: BoundedCache[str, bytes] = BoundedCache(10_000, max_entry=2_000, sizer=len)
    for i in range(1_000):
        cache.put(f"k{i}", b"x" * 500)
        assert cache.nbytes <= 10_000
    assert "k999" in cache and "k0" not in cache
    assert 0 < len(cache) < 20


def test_an_entry_too_big_is_used_and_not_kept() -> None:
    """A huge key (or value) is returned to the caller and never stored."""
    cache: BoundedCache[str, bytes] = BoundedCache(1_000_000, max_entry=4_096, sizer=len)
    assert cache.put("a" * 65_536, b"v") == b"v"
    assert cache.put("k", b"v" * 10_000) == b"v" * 10_000
    assert len(cache) == 0 and cache.nbytes == 0
    cache.put("k", b"small")
    cache.put("k", b"smaller")  # replacing an entry does not count it twice
    assert len(cache) == 1 and cache.get("k", None) == b"smaller"


def test_with_lru_the_least_recently_read_goes_first() -> None:
    """With ``lru`` a read keeps an entry: the one neither read nor written for longest is
    dropped; without it, the oldest written is, read or not."""
    for lru, dropped in ((True, "b"), (False, "a")):
        cache: BoundedCache[str, bytes] = BoundedCache(3_000, max_entry=3_000, sizer=len, lru=lru)
        for key in "abc":
            cache.put(key, b"x" * 800)
        assert cache.get("a", None) == b"x" * 800
        assert cache.get("a", None) == b"x" * 800  # the newest already: nothing moves
        cache.put("d", b"x" * 800)
        assert dropped not in cache and len(cache) == 3 and cache.nbytes <= 3_000
        assert cache.get("zz", None) is None


def test_the_byte_count_is_exact_across_threads() -> None:
    """Eight threads storing and replacing: the count equals the sum of what is held."""
    cache: BoundedCache[int, bytes] = BoundedCache(50_000, max_entry=5_000, sizer=len)

    def fill(n: int) -> None:
        for i in range(2_000):
            cache.put((i * 7 + n) % 300, b"x" * (i % 400))

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.nbytes == sum(cache._sizes.values()) <= 50_000


def test_the_router_never_keeps_long_or_many_paths() -> None:
    """20,000 distinct unknown paths of 64 KB: 404 every time, and the router's cache holds
    none of them; 100,000 short ones stay within its byte budget."""
    router = Router(CONTRACT)
    for i in range(2_000):
        assert router.find(Call("GET", f"/v1/{i}" + "a" * 65_536)) is None
    assert len(router._cache) == 0
    for i in range(100_000):
        router.find(Call("GET", f"/v1/api/v1/contents/{i}"))
    assert router._cache.nbytes <= Router.CACHE_BYTES
    assert router.find(Call("GET", "/v1/api/v1/contents/7488")) is not None


def test_accept_encoding_is_parsed_without_keeping_long_values() -> None:
    """A 350 KB Accept-Encoding is parsed (gzip allowed or not) and not cached: the one parser
    (pivotkit.codings) keeps only values up to its bound, in a cache of bounded entries."""
    from pivotkit import codings

    before = codings._cached.cache_info().currsize
    long_value = "br;q=0.5, " * 35_000 + "gzip;q=0"
    assert codings.accepts_gzip(long_value) is False
    assert codings.accepts_gzip("x" * 300_000 + ", gzip") is True
    assert codings._cached.cache_info().currsize == before
    assert codings.accepts_gzip("gzip, deflate") is True
    info = codings._cached.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize
