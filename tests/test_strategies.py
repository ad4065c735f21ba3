"""Strategies from the contract: valid values fit the schemas, invalid ones break them."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pivotkit.contract import load_contract
from pivotkit.fixtures import FixtureSet
from pivotkit.strategies import (
    RequestSpec,
    date_format,
    extra_query,
    invalid_values,
    known_path_params,
    parameter_values,
    periods,
    requests,
)

CONTRACT = load_contract()
PARAMS = [p for op in CONTRACT.operations.values() for p in op.path_parameters]


@settings(max_examples=60, database=None)
@given(data=st.data())
def test_parameter_values_fit_their_schema(data: st.DataObject) -> None:
    """Every generated valid value of every path parameter passes its schema."""
    param = data.draw(st.sampled_from(PARAMS))
    raw = data.draw(parameter_values(param))
    assert param.problems(raw) == [], (param.name, raw)
    assert "/" not in raw and raw.strip() == raw


@settings(max_examples=60, database=None)
@given(data=st.data())
def test_invalid_values_break_their_schema(data: st.DataObject) -> None:
    """Every generated invalid value breaks its parameter's schema and stays one segment."""
    param = data.draw(st.sampled_from(PARAMS))
    raw = data.draw(invalid_values(param))
    assert param.problems(raw), (param.name, raw)
    assert "/" not in raw and "?" not in raw and "#" not in raw


def test_date_format_read_from_examples() -> None:
    """Day and date-time parameters are recognised from their examples; ids are not."""
    by_name = {
        (op.operation_id, p.name): p
        for op in CONTRACT.operations.values()
        for p in op.path_parameters
    }
    assert date_format(by_name["listBroadcasts", "start"]) == "%Y%m%d"
    assert date_format(by_name["listUpdates", "since"]) == "%Y%m%d%H%M%S"
    assert date_format(by_name["getContent", "id"]) is None


@settings(max_examples=40, database=None)
@given(pair=periods(reversed_ok=False, max_days=7))
def test_periods_are_real_ordered_days(pair: tuple[str, str]) -> None:
    """Periods are real calendar days, start no later than end (when not reversed)."""
    start, end = (datetime.strptime(day, "%Y%m%d") for day in pair)
    assert 0 <= (end - start).days <= 7


@settings(max_examples=40, database=None)
@given(spec=requests("listBroadcasts", invalid=False))
def test_valid_requests_route_to_their_operation(spec: RequestSpec) -> None:
    """A valid request's path routes back to its operation with the same parameters."""
    found = CONTRACT.find_operation("GET", spec.path)
    assert found is not None
    assert found[0].operation_id == "listBroadcasts"
    assert found[1] == spec.path_params
    assert spec.valid
    assert found[0].parameter_problems(found[1]) == []


@settings(max_examples=40, database=None)
@given(spec=requests("getContent", invalid=True, extras=False))
def test_invalid_requests_are_flagged(spec: RequestSpec) -> None:
    """An invalid request's id breaks the contract and says so."""
    assert not spec.valid
    assert CONTRACT.operation("getContent").parameter_problems(spec.path_params)


@settings(max_examples=40, database=None)
@given(query=extra_query())
def test_extra_query_never_touches_lang_or_key(query: dict[str, str]) -> None:
    """Undeclared query parameters never set lang or the key."""
    assert not {"lang", "subscription-key"} & set(query)


def test_known_path_params_only_from_200s() -> None:
    """Recorded parameters come from 200 fixtures only (not the 400's 'abc', not the
    gateway-condition fixtures)."""
    op = CONTRACT.operation("getContent")
    known = known_path_params(op, FixtureSet.load())
    assert {"id": "7488"} in known
    assert {"id": "abc"} not in known
    assert {"id": "8343"} not in known
