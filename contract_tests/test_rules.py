"""Client rules the data must support: lowest image hierarchy, and updates' lastUpdate."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from contract_tests.cases import CONTRACT, CONVENTIONS, FIXTURES, case_id, params
from contract_tests.conftest import Probe
from pivotkit.conformance import Conformance

PAYLOAD = CONVENTIONS.envelope.payload_field
BROADCASTS = [ex for ex in FIXTURES.for_operation("listBroadcasts") if ex.response.status == 200]
UPDATES = [ex for ex in FIXTURES.for_operation("listUpdates") if ex.response.status == 200]


def _local(text: str) -> datetime:
    """A date-time (0 to 7 fraction digits, with or without a UTC offset) as the naive
    date-time of its own clock, the one a ``since`` is written in."""
    match = re.fullmatch(r"([^.]+?)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text)
    if match is None:
        raise ValueError(f"not a date-time: {text!r}")
    whole, digits, zone = match.groups()
    fraction = f".{(digits + '000000')[:6]}" if digits else ""
    moment = datetime.fromisoformat(whole + fraction + (zone or "").replace("Z", "+00:00"))
    return moment.replace(tzinfo=None)


def _since(path: str) -> datetime:
    """The ``since`` of a listUpdates request, in the format its parameter's examples show."""
    op = CONTRACT.operation("listUpdates")
    values = op.match(path) or {}
    param = next(p for p in op.path_parameters if p.date_format is not None)
    return datetime.strptime(values[param.name], str(param.date_format))


def _data(target: Probe, pivot_contract: Conformance, op_id: str, path: str) -> list[Any]:
    body = pivot_contract.check(target.get(path), op_id, expect=200, headers=False)
    data = body.get(PAYLOAD) if isinstance(body, dict) else None
    return data if isinstance(data, list) else []


@pytest.mark.parametrize("exchange", params(((case_id(ex), ex) for ex in BROADCASTS), "images"))
def test_lowest_image_hierarchy_exists(
    target: Probe, pivot_contract: Conformance, exchange: Any
) -> None:
    """Every broadcast with images has a hierarchy on each image and one lowest image."""
    data = _data(target, pivot_contract, "listBroadcasts", exchange.request.path)
    for i, broadcast in enumerate(data):
        images = broadcast.get("images") or []
        levels = [image.get("hierarchy") for image in images]
        for j, level in enumerate(levels):
            assert level in (1, 2, 3, 4), (
                f"listBroadcasts at /data/{i}/images/{j}/hierarchy: not 1 to 4 (value: {level!r})"
            )
        if levels:
            lowest = min(levels)
            assert levels.count(lowest) == 1, (
                f"listBroadcasts at /data/{i}/images: {levels.count(lowest)} images share the "
                f"lowest hierarchy {lowest}, the client cannot choose (value: {levels})"
            )


@pytest.mark.pivot_check(operation="listBroadcasts", check="images")
def test_data_exercises_the_image_rule() -> None:
    """The fixtures hold a broadcast with several images whose lowest hierarchy is not listed
    first, so a client that takes the first image is caught (read offline: live data need
    not contain such a case)."""
    for exchange in BROADCASTS:
        for broadcast in (exchange.response.body or {}).get(PAYLOAD) or []:
            levels = [image.get("hierarchy") for image in broadcast.get("images") or []]
            if len(set(levels)) > 1 and levels[0] != min(levels):
                return
    pytest.fail(
        "listBroadcasts at /data/*/images: no broadcast with images in an order "
        "where the first is not the lowest hierarchy (value: none found)"
    )


@pytest.mark.parametrize("exchange", params(((case_id(ex), ex) for ex in UPDATES), "updates"))
def test_updates_can_be_reimported(
    target: Probe, pivot_contract: Conformance, exchange: Any
) -> None:
    """Every channel/day of an update is a distinct pair whose broadcasts can be re-imported
    in full for that very day."""
    since = exchange.request.path.rsplit("/", 1)[1]
    items = _data(target, pivot_contract, "listUpdates", exchange.request.path)
    pairs = [(item["channelId"], item["day"]) for item in items]
    assert len(pairs) == len(set(pairs)), (
        f"listUpdates at /data: a channel/day is reported twice since {since} (value: {pairs})"
    )
    budgeted = items[:1] if target.target.kind == "live" else items
    for item in budgeted:
        path = f"/v1/api/v1/broadcasts/{item['channelId']}/{item['day']}/{item['day']}"
        response = target.get(path)
        pivot_contract.check(response, "listBroadcasts", expect=200, headers=False)


@pytest.mark.pivot_check(operation="listUpdates", check="updates")
def test_data_exercises_both_update_cases() -> None:
    """The fixtures hold both cases of lastUpdate: later than ``since`` (broadcasts changed)
    and earlier (only programme data changed), read offline."""
    later = earlier = 0
    for exchange in UPDATES:
        since = _since(exchange.request.path)
        for item in (exchange.response.body or {}).get(PAYLOAD) or []:
            if _local(item["lastUpdate"]) >= since:
                later += 1
            else:
                earlier += 1
    assert later and earlier, (
        f"listUpdates at /data/*/lastUpdate: {later} later and "
        f"{earlier} earlier than since; both are needed (value: "
        f"{later}/{earlier})"
    )
