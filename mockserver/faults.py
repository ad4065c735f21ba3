"""Faults for consumers' resilience tests: latency, error statuses, drops, truncation, bad JSON.

A fault spec is a comma-separated list of items, given by configuration (``PIVOT_FAULTS``,
applied to every API call) or per request in the ``x-pivot-fault`` header:

================================  ===============================================================
``latency=200ms``                 wait 200 ms before answering (``s`` also accepted: ``1.5s``)
``latency=50..300ms``             wait a random time in the range
``status=500``                    ASP.NET's 500 (``x-pivot-wire.serverErrorBody``)
``status=503``                    the gateway's 503 (backend unavailable)
``status=429``                    the gateway's rate-limit 429 with ``Retry-After``
``status=403``                    the gateway's quota 403 (TimeSpan message) with ``Retry-After``
``retry-after=5``                 the wait announced by 429/403 (default 60)
``drop``                          close the connection without answering
``truncate``                      send half of the body, then close the connection
``invalid-json``                  a 200 whose body is not JSON
``p=0.25``                        apply the spec to a quarter of the calls only
================================  ===============================================================
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from pivotkit.errors import FaultSpecError

FAULT_HEADER = "x-pivot-fault"
STATUSES = (403, 429, 500, 502, 503, 504)
_DURATION = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,6})?)(ms|s)?")


_DIGITS = re.compile(r"[0-9]{1,8}")  # ASCII only (str.isdigit accepts "²"), bounded
_PROBABILITY = re.compile(r"(0|1)?(\.[0-9]{1,6})?")
MAX_SPEC = 200  # characters; a longer header is refused before it is parsed


def _duration_ms(text: str, spec: str) -> float:
    m = _DURATION.fullmatch(text.strip())
    if m is None or len(text) > 16:
        raise FaultSpecError(spec, f"{text[:20]!r} is not a duration (200ms, 1.5s)")
    value = float(m.group(1))
    return value * 1000 if m.group(2) == "s" else value


@dataclass(frozen=True)
class Fault:
    """A parsed fault spec; the empty spec is :data:`NO_FAULT`."""

    latency_ms: tuple[float, float] | None = None
    status: int | None = None
    retry_after: int = 60
    drop: bool = False
    truncate: bool = False
    invalid_json: bool = False
    probability: float = 1.0

    @property
    def empty(self) -> bool:
        """Whether the spec changes nothing."""
        return self == NO_FAULT

    def applies(self, rng: random.Random | None = None) -> bool:
        """Whether this call is one of the faulty ones (``p=``)."""
        if self.probability >= 1.0:
            return True
        return (rng or random).random() < self.probability

    def delay(self, rng: random.Random | None = None) -> float:
        """The latency to add, in seconds."""
        if self.latency_ms is None:
            return 0.0
        low, high = self.latency_ms
        return ((rng or random).uniform(low, high) if high > low else low) / 1000.0


NO_FAULT = Fault()


def _latency(value: str, spec: str) -> dict[str, object]:
    low, sep, high = value.partition("..")
    if sep:
        unit = "s" if high.endswith("s") and not high.endswith("ms") else "ms"
        low_ms = _duration_ms(low if low.endswith(("ms", "s")) else low + unit, spec)
        high_ms = _duration_ms(high, spec)
    else:
        low_ms = high_ms = _duration_ms(value, spec)
    if high_ms < low_ms or high_ms > 60_000:
        raise FaultSpecError(spec, "latency must be 0 to 60s, low..high in order")
    return {"latency_ms": (low_ms, high_ms)}


def _status(value: str, spec: str) -> dict[str, object]:
    if not _DIGITS.fullmatch(value) or int(value) not in STATUSES:
        raise FaultSpecError(spec, f"status must be one of {STATUSES}")
    return {"status": int(value)}


def _retry_after(value: str, spec: str) -> dict[str, object]:
    if not _DIGITS.fullmatch(value) or not 0 < int(value) <= 10**7:
        raise FaultSpecError(
            spec, "retry-after must be a positive number of seconds (at most 10000000)"
        )
    return {"retry_after": int(value)}


def _probability(value: str, spec: str) -> dict[str, object]:
    if not value or not _PROBABILITY.fullmatch(value) or not 0.0 <= float(value) <= 1.0:
        raise FaultSpecError(spec, "p must be a probability from 0 to 1")
    return {"probability": float(value)}


_VALUED = {"latency": _latency, "status": _status, "retry-after": _retry_after, "p": _probability}
_FLAGS = ("drop", "truncate", "invalid-json")


def _item(item: str, spec: str) -> dict[str, object]:
    name, _, value = item.partition("=")
    name, value = name.strip(), value.strip()
    if name in _FLAGS and not value:
        return {name.replace("-", "_"): True}
    parse = _VALUED.get(name)
    if parse is None or not value:
        raise FaultSpecError(
            spec,
            f"unknown fault {item[:40]!r}; use latency=200ms, latency=50..300ms, "
            f"status=<{'|'.join(map(str, STATUSES))}>, retry-after=N, drop, truncate, "
            "invalid-json, p=0.5",
        )
    return parse(value, spec)


def parse_fault(spec: str) -> Fault:
    """Parse a fault spec (see the module docstring); FaultSpecError says what is wrong."""
    if len(spec) > MAX_SPEC:
        raise FaultSpecError(spec[:40] + "...", f"a fault spec has at most {MAX_SPEC} characters")
    fields: dict[str, object] = {}
    for raw in spec.replace(";", ",").split(","):
        item = raw.strip().lower()
        if item:
            fields.update(_item(item, spec))
    outcomes = sum(bool(fields.get(k)) for k in ("status", "drop", "truncate", "invalid_json"))
    if outcomes > 1:
        raise FaultSpecError(spec, "choose one of status=, drop, truncate, invalid-json")
    return Fault(**fields)  # type: ignore[arg-type]
