"""Fault specs: what parses, what is refused, and how latency and probability behave."""

from __future__ import annotations

import random

import pytest

from mockserver.faults import NO_FAULT, Fault, parse_fault
from pivotkit.errors import FaultSpecError


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("", NO_FAULT),
        ("latency=200ms", Fault(latency_ms=(200.0, 200.0))),
        ("latency=1.5s", Fault(latency_ms=(1500.0, 1500.0))),
        ("latency=50..300ms", Fault(latency_ms=(50.0, 300.0))),
        ("latency=1..2s", Fault(latency_ms=(1000.0, 2000.0))),
        ("status=503", Fault(status=503)),
        ("status=429, retry-after=5", Fault(status=429, retry_after=5)),
        ("drop", Fault(drop=True)),
        ("truncate; latency=10ms", Fault(truncate=True, latency_ms=(10.0, 10.0))),
        ("INVALID-JSON", Fault(invalid_json=True)),
        ("status=500,p=0.25", Fault(status=500, probability=0.25)),
    ],
)
def test_specs_parse(spec: str, fault: Fault) -> None:
    """Every documented item parses into the expected fault."""
    assert parse_fault(spec) == fault


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("explode", "unknown fault"),
        ("status=418", "status must be one of"),
        ("status=abc", "status must be"),
        ("latency=fast", "not a duration"),
        ("latency=300..50ms", "in order"),
        ("latency=90s", "0 to 60s"),
        ("p=2", "probability"),
        ("p=x", "probability"),
        ("retry-after=0", "positive"),
        ("drop,truncate", "choose one"),
        ("drop=1", "unknown fault"),
    ],
)
def test_bad_specs_say_what_is_allowed(spec: str, match: str) -> None:
    """A bad spec raises FaultSpecError (a ConfigError) naming the spec."""
    with pytest.raises(FaultSpecError, match=match) as info:
        parse_fault(spec)
    assert repr(spec) in str(info.value)


def test_latency_range_and_probability_use_the_given_random() -> None:
    """Random latency stays in its range; p=0 never applies, p=1 always does."""
    rng = random.Random(7)
    fault = parse_fault("latency=50..300ms")
    delays = [fault.delay(rng) for _ in range(200)]
    assert all(0.05 <= d <= 0.3 for d in delays) and len(set(delays)) > 1
    assert not any(parse_fault("status=500,p=0").applies(rng) for _ in range(100))
    assert all(parse_fault("status=500").applies(rng) for _ in range(100))
    assert NO_FAULT.empty and not fault.empty and NO_FAULT.delay() == 0.0
