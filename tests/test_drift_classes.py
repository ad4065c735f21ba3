"""Drift's former blind spots, by class, against a drifting upstream on loopback: each case
runs with the bundled (mostly synthetic) fixtures as baseline, and again with no fixture but
a history of one clean run as baseline; both must find the same findings."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pivotkit.drift import DriftOptions, run_drift

from .conftest import FIXTURES, SCHEMAS
from .drifting import CONTENT, DriftingUpstream, Mutation, data_of, on

KEY = "fedcba9876543210fedcba9876543210"
EMPTY = "/v1/api/v1/contents/999999999"
BROADCASTS = "/v1/api/v1/broadcasts/192/20241103/20241103"
PERSON = "/v1/api/v1/persons/1001"
PLAN = [
    {"operationId": "getContent", "params": {"id": 7488}},
    {"operationId": "getContent", "params": {"id": 999999999}},
    {
        "operationId": "listBroadcasts",
        "params": {"channelId": 192, "start": "20241103", "end": "20241103"},
    },
    {"operationId": "getPerson", "params": {"id": 1001}},
]

Found = set[tuple[str, str, str, str]]


@pytest.fixture(scope="module")
def upstream() -> Iterator[DriftingUpstream]:
    """The bundled fixtures served as they are, unless a test plants a mutation."""
    server = DriftingUpstream(FIXTURES, key=KEY)
    yield server
    server.close()


def _drift(
    upstream: DriftingUpstream, tmp_path: Path, baseline: str, mutation: Mutation | None
) -> tuple[int, dict[str, Any]]:
    """One run with ``mutation`` planted, after a clean run when the baseline is a history."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN), "utf-8")
    empty = tmp_path / "no-fixtures"
    empty.mkdir(exist_ok=True)
    options = DriftOptions(
        target=upstream.url,
        fixtures_dir=FIXTURES if baseline == "fixtures" else empty,
        schemas_dir=SCHEMAS,
        plan=plan,
        rate=1000.0,
        json_out=tmp_path / "drift.json",
        history=tmp_path / "history.sqlite" if baseline == "history" else None,
    )
    env = {"PIVOT_API_KEY": KEY}
    if baseline == "history":
        upstream.mutate = None
        assert run_drift(options, environ=env, echo=lambda _: None) == 0
        first = json.loads((tmp_path / "drift.json").read_text("utf-8"))
        assert first["findings"] == [], "an unchanged upstream gives no finding"
    upstream.mutate = mutation
    try:
        code = run_drift(options, environ=env, echo=lambda _: None)
    finally:
        upstream.mutate = None
    return code, json.loads((tmp_path / "drift.json").read_text("utf-8"))


def _found(report: dict[str, Any]) -> Found:
    return {(f["operation"], f["pointer"], f["kind"], f["severity"]) for f in report["findings"]}


def _content(change: Callable[[dict[str, Any]], None]) -> Mutation:
    return data_of(CONTENT, change)


def _body(path: str, make: Callable[[Any], Any]) -> Mutation:
    return on(path, lambda s, h, b: (s, h, make(copy.deepcopy(b))))


def _rename(d: dict[str, Any]) -> None:
    d["summary"] = d.pop("shortSynopsis")


def _drop_in_one(items: str, index: int, key: str) -> Callable[[Any], None]:
    def change(d: Any) -> None:
        d[items][index].pop(key)

    return change


def _broadcasts(change: Callable[[list[dict[str, Any]]], None]) -> Mutation:
    def inner(status: int, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        change(body["data"])
        return status, headers, body

    return on(BROADCASTS, inner)


CASES: list[tuple[str, str, Mutation, Found, str | None]] = [
    # 1. provenance: a removal is seen whatever the fixture's meta says
    (
        "provenance",
        "synthetic-optional-field-removed",
        _content(lambda d: d.pop("synopsis")),
        {("getContent", "/data/synopsis", "field-removed", "breaking")},
        None,
    ),
    (
        "provenance",
        "field-renamed",
        _content(_rename),
        {
            ("getContent", "/data/shortSynopsis", "field-removed", "breaking"),
            ("getContent", "/data/summary", "new-field", "info"),
        },
        None,
    ),
    (
        "provenance",
        "person-field-removed",
        data_of(PERSON, lambda d: d.pop("birthPlace")),
        {("getPerson", "/data/birthPlace", "field-removed", "breaking")},
        None,
    ),
    # 2. presence per item of arrays
    (
        "per-item",
        "field-missing-from-one-credit",
        _content(_drop_in_one("credits", 1, "order")),
        {("getContent", "/data/credits/*/order", "field-removed", "breaking")},
        "absent from 1 of 4 objects",
    ),
    (
        "per-item",
        "field-missing-from-one-broadcast",
        _broadcasts(lambda items: items[0].pop("duration")),
        {("listBroadcasts", "/data/*/duration", "field-removed", "breaking")},
        None,
    ),
    (
        "per-item",
        "nested-field-missing-from-one-image",
        _broadcasts(lambda items: items[-1]["images"][0].pop("width")),
        {("listBroadcasts", "/data/*/images/*/width", "field-removed", "breaking")},
        None,
    ),
    # 3. strictness never changes the branch an answer is judged by
    (
        "one-branch",
        "extra-top-level-field-with-null-data",
        _body(EMPTY, lambda b: {"version": "v1", "statusCode": 200, "data": None, "extra": 1}),
        {("getContent", "/extra", "new-field", "info")},
        None,
    ),
    (
        "one-branch",
        "extra-top-level-field-beside-data",
        _body(CONTENT, lambda b: {**b, "paging": {"page": 1}}),
        {("getContent", "/paging", "new-field", "info")},
        None,
    ),
    (
        "one-branch",
        "version-changed",
        _body(CONTENT, lambda b: {**b, "version": "v2"}),
        {("getContent", "/version", "envelope-changed", "breaking")},
        '"v2"',
    ),
    (
        "one-branch",
        "version-changed-on-an-empty-result",
        _body(EMPTY, lambda b: {"version": "v2", "statusCode": 200, "data": None}),
        {("getContent", "/version", "envelope-changed", "breaking")},
        None,
    ),
    # 4. one finding per root cause, with the right observed type
    (
        "root-cause",
        "data-became-a-string",
        _body(CONTENT, lambda b: {**b, "data": "Blade Runner"}),
        {("getContent", "/data", "envelope-changed", "breaking")},
        "string",
    ),
    (
        "root-cause",
        "data-became-a-list",
        _body(CONTENT, lambda b: {**b, "data": [b["data"]]}),
        {("getContent", "/data", "envelope-changed", "breaking")},
        "array",
    ),
    (
        "root-cause",
        "long-array-became-an-object",
        _content(lambda d: d.update(credits={"cast": d["credits"] * 4})),
        {("getContent", "/data/credits", "type-changed", "breaking")},
        "object",
    ),
    (
        "root-cause",
        "array-items-became-strings",
        _content(lambda d: d.update(images=[i["url"] for i in d["images"]])),
        {("getContent", "/data/images/*", "type-changed", "breaking")},
        "string",
    ),
    (
        "root-cause",
        "person-array-became-null",
        data_of(PERSON, lambda d: d.update(nationalities=None)),
        {("getPerson", "/data/nationalities", "became-nullable", "breaking")},
        "null",
    ),
    # 5. an integral float where the contract says integer is a warning
    (
        "integral-float",
        "integer-written-as-float",
        _content(lambda d: d.update(duration=117.0)),
        {("getContent", "/data/duration", "integer-as-float", "warning")},
        "integral number now written as a float",
    ),
    (
        "integral-float",
        "integers-of-array-items-written-as-floats",
        _broadcasts(lambda items: [x.update(duration=float(x["duration"])) for x in items]),
        {("listBroadcasts", "/data/*/duration", "integer-as-float", "warning")},
        None,
    ),
    (
        "integral-float",
        "a-fraction-is-no-integer",
        _content(lambda d: d.update(duration=117.5)),
        {("getContent", "/data/duration", "type-changed", "breaking")},
        "number",
    ),
]


@pytest.mark.parametrize("baseline", ["fixtures", "history"])
@pytest.mark.parametrize(
    ("mutation", "expected", "observed"),
    [(m, e, o) for _, _, m, e, o in CASES],
    ids=[f"{cls}-{name}" for cls, name, _, _, _ in CASES],
)
def test_each_class_is_found_once_with_its_cause(
    upstream: DriftingUpstream,
    tmp_path: Path,
    baseline: str,
    mutation: Mutation,
    expected: Found,
    observed: str | None,
) -> None:
    """The planted change gives exactly its findings (kind, pointer, severity), the observed
    text names what came back, and the exit code follows the severity, whichever baseline."""
    code, report = _drift(upstream, tmp_path, baseline, mutation)
    assert _found(report) == expected
    assert code == (1 if any(sev == "breaking" for *_, sev in expected) else 0)
    if observed is not None:
        first = next(f for f in report["findings"] if f["kind"] != "new-field")
        assert observed in first["observed"], first
    assert "401" not in json.dumps(report["summary"])


@pytest.mark.parametrize(
    ("baseline", "source"), [("fixtures", "fixture getContent/7488"), ("history", "history")]
)
def test_a_removal_says_which_baseline_had_the_field(
    upstream: DriftingUpstream, tmp_path: Path, baseline: str, source: str
) -> None:
    """The expected side of a removal names its evidence: the fixture, or the history."""
    _, report = _drift(upstream, tmp_path, baseline, _content(lambda d: d.pop("isFre")))
    (finding,) = report["findings"]
    assert finding["kind"] == "field-removed"
    assert source in finding["expected"]
