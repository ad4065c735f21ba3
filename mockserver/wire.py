"""The wire format: bodies serialised and gzipped once, the provider's headers, encoding choice."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pivotkit.cache import BoundedCache

if TYPE_CHECKING:
    from pivotkit.conventions import Conventions

# Recorded headers the mock recomputes instead of replaying.
_RECOMPUTED = frozenset(
    {
        "content-length",
        "content-encoding",
        "date",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "set-cookie",
    }
)


def dumps(body: Any) -> bytes:
    """Compact UTF-8 JSON, as Json.NET writes it.

    (orjson would be faster, but its results hold about 6 KB more memory per 1 KB body: with
    10,000 fixtures, 67 MB for 0.1 s of start-up. The standard library it is.)
    """
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no timestamp in the header).

    The window is the smallest power of two that holds the body (at most zlib's 32 KiB): the
    output is as small as with the default window, and setting up a 32 KiB window for a 1 KiB
    body was most of the cost of compressing it.
    """
    wbits = min(15, max(9, len(data).bit_length()))
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + wbits)
    return compressor.compress(data) + compressor.flush()


def status_line(status: int) -> str:
    """``200 OK`` and the like (``599 Unknown`` for unnamed statuses)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


# Accept-Encoding values seen, cached in bytes; a value longer than this is parsed every time.
_CACHED_ACCEPT = 256
_ACCEPT_CACHE: BoundedCache[str, bool] = BoundedCache(
    256 * 1024, max_entry=_CACHED_ACCEPT * 4, sizer=lambda _: 0
)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (q-values honoured: ``gzip;q=0`` is no).

    Cached by value in a cache bounded in bytes: long values are parsed and not stored.
    """
    found = _ACCEPT_CACHE.get(accept_encoding, None)
    if found is None:
        found = _parse_accept(accept_encoding)
        if len(accept_encoding) <= _CACHED_ACCEPT:
            _ACCEPT_CACHE.put(accept_encoding, found)
    return found


def _parse_accept(accept_encoding: str) -> bool:
    gzip_q: float | None = None
    star_q: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = item.strip().split(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


class HttpDate:
    """The current ``date`` header value, formatted at most once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._value = formatdate(now, usegmt=True)
            self._second = now
        return self._value


@dataclass(frozen=True, slots=True)
class Prepared:
    """A response ready to send: status line, both bodies, both header lists (without date)."""

    status: int
    status_line: str
    identity: bytes
    gzipped: bytes | None
    identity_headers: tuple[tuple[str, str], ...]
    gzip_headers: tuple[tuple[str, str], ...]

    def pick(self, gzip_ok: bool) -> tuple[bytes, tuple[tuple[str, str], ...]]:
        """The body and headers for a client that does (or does not) accept gzip."""
        if gzip_ok and self.gzipped is not None:
            return self.gzipped, self.gzip_headers
        return self.identity, self.identity_headers


def provider_headers(
    conventions: Conventions,
    recorded: Mapping[str, str] | None,
    request_context: str,
    extra: Iterable[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The provider's header set (the contract's), recorded values winning, plus ``extra``."""
    headers = dict(conventions.provider_headers)
    if conventions.request_context_header:
        headers[conventions.request_context_header] = request_context
    for name, value in (recorded or {}).items():
        if name.lower() not in _RECOMPUTED:
            headers[name.lower()] = value
    out = sorted(headers.items())
    out.extend(extra)
    return out


def prepare_backend(
    status: int, body: bytes, headers: Iterable[tuple[str, str]], *, compress: bool = True
) -> Prepared:
    """A backend answer (provider headers), gzipped once when ``compress``."""
    base = tuple(headers)
    identity_headers = (*base, ("content-length", str(len(body))))
    if not compress:
        return Prepared(status, status_line(status), body, None, identity_headers, identity_headers)
    packed = gzip_bytes(body)
    gzip_headers = (*base, ("content-encoding", "gzip"), ("content-length", str(len(packed))))
    return Prepared(status, status_line(status), body, packed, identity_headers, gzip_headers)


def prepare_gateway(
    status: int, body: Any, content_type: str, extra: Iterable[tuple[str, str]] = ()
) -> Prepared:
    """A gateway answer: the gateway's content type, identity encoding."""
    data = dumps(body)
    headers = (("content-type", content_type), *extra, ("content-length", str(len(data))))
    return Prepared(status, status_line(status), data, None, headers, headers)
