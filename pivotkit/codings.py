"""Content codings: what an ``Accept-Encoding`` value accepts (RFC 9110, section 12.5.3).

The one reading of the header: the mock chooses gzip or identity with it, and
:class:`pivotkit.conformance.Conformance` checks a response's encoding against it.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: A q-value: a decimal number from 0 to 1 (RFC 9110 writes at most three decimals; more are
#: read too). Anything else (``bogus``, ``1.5``, ``nan``, ``1e-3``) refuses the coding.
_QVALUE = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
#: Names that mean the same coding (RFC 9110, 8.4.1.3: ``x-gzip`` is ``gzip``).
_ALIASES = {"x-gzip": "gzip", "x-compress": "compress"}
#: Longer header values are read without the cache, which stays bounded in bytes.
_CACHED_LENGTH = 256


def _weight(params: list[str]) -> float:
    """The q-value of one list member's parameters: 1 when absent, 0 when malformed."""
    for param in params:
        name, eq, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            q = float(value) if eq and _QVALUE.fullmatch(value) else 0.0
            return q if q <= 1 else 0.0
    return 1.0


def qualities(accept_encoding: str) -> dict[str, float]:
    """Each coding the value names (lowercase, aliases folded, ``*`` included) -> its q-value.

    Members are split on commas, names and parameters compared without case and spaces;
    empty members are skipped; a coding named twice keeps its highest q-value.
    """
    out: dict[str, float] = {}
    for coding, params in _members(accept_encoding):
        out[coding] = max(out.get(coding, 0.0), _weight(params))
    return out


def applied(content_encoding: str | None) -> tuple[str, ...]:
    """The codings a ``Content-Encoding`` value says were applied, in order (lowercase,
    aliases folded; ``identity`` and empty members dropped): ``()`` for an unencoded body."""
    return tuple(c for c, _ in _members(content_encoding or "") if c != "identity")


def _members(value: str) -> list[tuple[str, list[str]]]:
    """(coding, parameters) of each non-empty member of a comma-separated list of codings."""
    out = []
    for member in value.split(","):
        coding, *params = member.split(";")
        coding = coding.strip().lower()
        if coding:
            out.append((_ALIASES.get(coding, coding), params))
    return out


def accepts(accept_encoding: str | None, coding: str) -> bool:
    """Whether a response in ``coding`` (``gzip``, ``identity``...) is acceptable.

    A coding the value names is acceptable when its q-value is above 0; one it does not name
    takes the q-value of ``*``; without either, only ``identity`` is acceptable. No header at
    all (None) accepts identity only: the API answers identity then [assumed, API.md].
    """
    coding = coding.strip().lower()
    return _lookup(accept_encoding, _ALIASES.get(coding, coding))


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether the value allows a gzip body (``gzip;q=0`` does not, ``*`` does)."""
    return _lookup(accept_encoding, "gzip")  # the mock's hot path: no name to fold


def _lookup(accept_encoding: str | None, coding: str) -> bool:
    if accept_encoding is None:
        return coding == "identity"
    if len(accept_encoding) <= _CACHED_LENGTH:
        return _cached(accept_encoding, coding)
    return _accepts(qualities(accept_encoding), coding)


@lru_cache(maxsize=512)
def _cached(accept_encoding: str, coding: str) -> bool:
    return _accepts(qualities(accept_encoding), coding)


def _accepts(weights: dict[str, float], coding: str) -> bool:
    if coding in weights:
        return weights[coding] > 0
    if "*" in weights:
        return weights["*"] > 0
    return coding == "identity"
