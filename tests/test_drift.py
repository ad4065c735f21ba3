"""Tests of pivotkit.drift: a fake drifting upstream on loopback, findings, reports, exit codes."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from pivotkit.accounts import Rights, load_profile
from pivotkit.cli import main
from pivotkit.contract import load_contract
from pivotkit.drift import (
    Answer,
    DriftOptions,
    analyze,
    load_deviations,
    run_drift,
)
from pivotkit.drift.findings import CONTRACT_KINDS, KINDS
from pivotkit.drift.replay import REPLAYED_STATUSES
from pivotkit.errors import ConfigError
from pivotkit.fixtures import Exchange, FixtureSet
from pivotkit.plan import plan_from_fixtures, sample

from .conftest import FIXTURES, SCHEMAS
from .drifting import CONTENT, GATEWAY_404, Change, DriftingUpstream, Mutation, data_of, on
from .helpers import CONVENTIONS, KEY_HEADER, path_of, thread_server

load_account_profile = load_profile


def _replayable(fixtures: FixtureSet, contract: Any) -> list[Any]:
    """The plan drift replays by default: every sendable item of the fixtures."""
    items = plan_from_fixtures(fixtures, contract, replayed=REPLAYED_STATUSES)
    return [item for item in items if item.sendable]


KEY = "0123456789abcdef0123456789abcdef"
EMPTY = path_of("getContent", id=999999999)
BROADCASTS = path_of("listBroadcasts", channelId=192, start=20241105, end=20241105)
GATEWAY = CONVENTIONS.messages
QUOTA = GATEWAY.body(403, GATEWAY.quota_exhausted(12656))


def _on(path: str, change: Change) -> Mutation:
    return on(path, change)


def _data(change: Callable[[dict[str, Any]], None]) -> Mutation:
    return data_of(CONTENT, change)


def _write(root: Path, op: str, name: str, data: dict[str, Any]) -> None:
    target = root / op / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three fixtures: the documented content, an empty result and a broadcasts list."""
    root = tmp_path_factory.mktemp("fixtures")
    blade = json.loads((FIXTURES / "getContent" / "7488.json").read_text("utf-8"))
    _write(root, "getContent", "7488", blade)
    empty = copy.deepcopy(blade)
    empty["request"]["path"] = EMPTY
    empty["response"]["body"] = {}
    empty["meta"] = {
        "operationId": "getContent",
        "source": "synthetic",
        "recorded": "2024-11-07T08:30:00Z",
        "account": "full",
    }
    _write(root, "getContent", "empty-999999999", empty)
    broadcasts = copy.deepcopy(empty)
    broadcasts["request"]["path"] = BROADCASTS
    broadcasts["response"]["body"] = {
        "version": "v1",
        "statusCode": 200,
        "data": [
            {
                "id": 900101 + i,
                "channelId": 192,
                "contentId": 7488 + i,
                "start": f"2024-11-05T2{i}:10:00",
                "end": f"2024-11-05T2{i}:55:00.5",
            }
            for i in range(3)
        ],
    }
    broadcasts["meta"]["operationId"] = "listBroadcasts"
    _write(root, "listBroadcasts", "192-20241105", broadcasts)
    return root


@pytest.fixture(scope="module")
def _small_server(small_corpus: Path) -> Iterator[DriftingUpstream]:
    server = DriftingUpstream(small_corpus)
    yield server
    server.close()


@pytest.fixture
def upstream(_small_server: DriftingUpstream) -> DriftingUpstream:
    """The small-corpus upstream, reset: no mutation, no calls seen."""
    _small_server.mutate = None
    _small_server.seen_keys.clear()
    _small_server.calls = 0
    return _small_server


@pytest.fixture(scope="module")
def full_upstream() -> Iterator[DriftingUpstream]:
    """An upstream serving the whole fixture corpus as it is."""
    server = DriftingUpstream(FIXTURES)
    yield server
    server.close()


def _run(
    upstream: DriftingUpstream,
    fixtures: Path,
    tmp_path: Path,
    sleep: Callable[[float], None] = time.sleep,
    **extra: Any,
) -> tuple[int, dict[str, Any], list[str]]:
    """Drift against ``upstream`` with DriftOptions ``extra``: exit code, JSON report, lines."""
    lines: list[str] = []
    options = DriftOptions(
        target=upstream.url,
        fixtures_dir=fixtures,
        schemas_dir=SCHEMAS,
        json_out=tmp_path / "drift.json",
        rate=1000.0,
        **extra,
    )
    code = run_drift(options, environ={"PIVOT_API_KEY": KEY}, echo=lines.append, sleep=sleep)
    report = json.loads((tmp_path / "drift.json").read_text("utf-8"))
    return code, report, lines


def _active(report: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(f["operation"], f["pointer"], f["kind"], f["severity"]) for f in report["findings"]}


# -- the drifting upstream -----------------------------------------------------------------------


PLANTED: list[tuple[str, Mutation, set[tuple[str, str, str, str]]]] = [
    (
        "field-removed",
        _data(lambda d: d.pop("typographicTitle")),
        {("getContent", "/data/typographicTitle", "field-removed", "breaking")},
    ),
    (
        "required-missing",
        _data(lambda d: d.pop("title")),
        {("getContent", "/data/title", "required-missing", "breaking")},
    ),
    (
        "type-changed",
        _data(lambda d: d.update(id="7488")),
        {("getContent", "/data/id", "type-changed", "breaking")},
    ),
    (
        "became-nullable",
        _data(lambda d: d.update(isFre=None)),
        {("getContent", "/data/isFre", "became-nullable", "breaking")},
    ),
    (
        "new-field",
        _data(lambda d: d.update(ageRating="12")),
        {("getContent", "/data/ageRating", "new-field", "info")},
    ),
    (
        "new-enum-value",
        _data(lambda d: d.update(csaRating=-14)),
        {("getContent", "/data/csaRating", "new-enum-value", "warning")},
    ),
    (
        "format-changed",
        _data(lambda d: d.update(lastUpdate="2024-09-27T07:48:30.677+02:00")),
        {("getContent", "/data/lastUpdate", "format-changed", "breaking")},
    ),
    (
        "date-format-changed",
        _data(lambda d: d.update(lastUpdate="27/09/2024 07:48:30")),
        {("getContent", "/data/lastUpdate", "format-changed", "breaking")},
    ),
    (
        "status-changed",
        _on(CONTENT, lambda s, h, b: (500, h, {"Message": "An error occurred."})),
        {("getContent", "", "status-changed", "breaking")},
    ),
    (
        "empty-200-became-error",
        _on(EMPTY, lambda s, h, b: (404, h, {"Message": "No content 999999999."})),
        {("getContent", "", "status-changed", "breaking")},
    ),
    (
        "envelope-changed",
        _on(CONTENT, lambda s, h, b: (s, h, {**b, "version": "v2"})),
        {("getContent", "/version", "envelope-changed", "breaking")},
    ),
    (
        "envelope-status-changed",
        _on(CONTENT, lambda s, h, b: (s, h, {**b, "statusCode": "OK"})),
        {("getContent", "/statusCode", "envelope-changed", "breaking")},
    ),
    (
        "content-type-changed",
        _on(CONTENT, lambda s, h, b: (s, {**h, "content-type": "text/plain; charset=utf-8"}, b)),
        {("getContent", "headers/content-type", "header-changed", "breaking")},
    ),
    (
        "charset-changed",
        _on(
            CONTENT,
            lambda s, h, b: (s, {**h, "content-type": "application/json; charset=iso-8859-1"}, b),
        ),
        {("getContent", "headers/content-type", "header-changed", "warning")},
    ),
    (
        "encoding-changed",
        _on(
            CONTENT, lambda s, h, b: (s, {k: v for k, v in h.items() if k != "content-encoding"}, b)
        ),
        {("getContent", "headers/content-encoding", "header-changed", "warning")},
    ),
    (
        "operation-gone",
        _on(BROADCASTS, lambda s, h, b: (404, {}, GATEWAY_404)),
        {("listBroadcasts", "", "operation-gone", "breaking")},
    ),
    (
        "array-item-field-removed",
        _on(
            BROADCASTS,
            lambda s, h, b: (
                s,
                h,
                {**b, "data": [{k: v for k, v in x.items() if k != "end"} for x in b["data"]]},
            ),
        ),
        {("listBroadcasts", "/data/*/end", "field-removed", "breaking")},
    ),
    (
        "array-item-type-changed",
        _on(
            BROADCASTS,
            lambda s, h, b: (
                s,
                h,
                {**b, "data": [{**x, "channelId": str(x["channelId"])} for x in b["data"]]},
            ),
        ),
        {("listBroadcasts", "/data/*/channelId", "type-changed", "breaking")},
    ),
    (
        "provider-header-dropped",
        _on(CONTENT, lambda s, h, b: (s, {k: v for k, v in h.items() if k != "x-powered-by"}, b)),
        {("getContent", "headers/x-powered-by", "header-removed", "warning")},
    ),
    (
        "provider-header-changed",
        _on(CONTENT, lambda s, h, b: (s, {**h, "cache-control": "max-age=60"}, b)),
        {("getContent", "headers/cache-control", "header-changed", "warning")},
    ),
    (
        "integer-written-as-float",
        _data(lambda d: d.update(duration=117.0)),
        {("getContent", "/data/duration", "integer-as-float", "warning")},
    ),
    (
        "result-emptied",
        _on(CONTENT, lambda s, h, b: (s, h, {**b, "data": None})),
        {("getContent", "", "result-emptied", "warning")},
    ),
    (
        "array-item-field-removed-from-some-items",
        _on(
            BROADCASTS,
            lambda s, h, b: (
                s,
                h,
                {
                    **b,
                    "data": [
                        {k: v for k, v in x.items() if k != "end" or x["id"] != 900102}
                        for x in b["data"]
                    ],
                },
            ),
        ),
        {("listBroadcasts", "/data/*/end", "field-removed", "breaking")},
    ),
]


@pytest.mark.parametrize(
    ("mutation", "expected"), [(m, e) for _, m, e in PLANTED], ids=[name for name, _, _ in PLANTED]
)
def test_each_planted_drift_is_found_once_with_its_pointer_and_severity(
    upstream: DriftingUpstream,
    small_corpus: Path,
    tmp_path: Path,
    mutation: Mutation,
    expected: set[tuple[str, str, str, str]],
) -> None:
    """Every kind of drift planted in the upstream is the one finding of the run, with the
    right operation, pointer, kind and severity, and the exit code follows the severity."""
    upstream.mutate = mutation
    code, report, _ = _run(upstream, small_corpus, tmp_path)
    assert _active(report) == expected
    breaking = any(sev == "breaking" for *_, sev in expected)
    assert code == (1 if breaking else 0)
    assert report["findings"][0]["count"] == 1


def test_every_kind_is_planted_and_has_a_severity() -> None:
    """The planted drifts cover every kind a live drift run can report (deviation-expired and
    constraint-violated have their own tests; the rest only a contract diff gives)."""
    planted = {kind for _, _, e in PLANTED for _, _, kind, _ in e}
    assert planted | {"deviation-expired", "constraint-violated"} == set(KINDS) - CONTRACT_KINDS
    assert set(KINDS.values()) == {"breaking", "warning", "info"}


def test_unchanged_upstream_gives_zero_findings_over_repeated_runs(
    full_upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """The upstream serving every fixture as it is yields no finding, run after run."""
    for run in range(2):
        code, report, _ = _run(full_upstream, FIXTURES, tmp_path / str(run))
        assert report["findings"] == [], report["findings"]
        assert code == 0
        assert report["summary"]["answers"] == len(
            _replayable(FixtureSet.load(FIXTURES), load_contract(SCHEMAS))
        )


def test_values_that_differ_between_runs_are_not_findings(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """New dates, counts, texts and ids (same types and formats) are never findings."""

    def change(d: dict[str, Any]) -> None:
        d.update(
            title="Blade Runner (Final Cut)",
            lastUpdate="2026-11-27T05:00:01.1",
            duration=118,
            productionYear=2007,
            synopsis="Autre texte.",
        )
        d["credits"] = d["credits"][:1]  # the director only: no credit has a character

    upstream.mutate = _data(change)
    code, report, _ = _run(upstream, small_corpus, tmp_path)
    assert report["findings"] == []
    assert code == 0


def test_a_synthetic_field_of_a_fixture_is_a_baseline_for_removal_like_any_other(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """Provenance does not decide whether a removal is seen: a field the fixture marks as
    made up (meta.synthetic) that disappears is a breaking removal, as a documented one is."""
    upstream.mutate = _data(lambda d: [d.pop("synopsis"), d.pop("typographicTitle")])
    code, report, _ = _run(upstream, small_corpus, tmp_path)
    assert _active(report) == {
        ("getContent", "/data/synopsis", "field-removed", "breaking"),
        ("getContent", "/data/typographicTitle", "field-removed", "breaking"),
    }
    assert code == 1


def test_the_account_profile_withholds_fields(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """A field absent because the account has no right to it is not a finding when the
    profile says so (dotted path relative to data); without the profile it is."""
    upstream.mutate = _data(lambda d: [d.pop("typographicTitle"), d.pop("title")])
    profile = tmp_path / "profile.toml"
    profile.write_text('name = "basic"\nwithheld = ["typographicTitle", "/title"]\n', "utf-8")
    code, report, _ = _run(upstream, small_corpus, tmp_path, account_profile=profile)
    assert report["findings"] == []
    assert code == 0
    _, report, _ = _run(upstream, small_corpus, tmp_path)
    assert {f["kind"] for f in report["findings"]} == {"field-removed", "required-missing"}


def test_account_profile_from_the_mocks_accounts_file() -> None:
    """The mock's accounts file is a valid profile source: --account picks the account."""
    profile = load_account_profile(FIXTURES / "accounts.toml", "basic").rights
    assert profile.withholds(["credits", "*", "character"])
    assert not profile.withholds(["credits", "*", "name"])
    assert not profile.may_call("getPerson")
    with pytest.raises(ConfigError, match="--account"):
        load_account_profile(FIXTURES / "accounts.toml")


def test_allowed_fields_withhold_everything_else() -> None:
    """A profile listing allowed ``fields`` withholds what is outside them (parents stay)."""
    profile = Rights.from_specs(fields=["credits.name", "title"])
    assert profile.withholds(["synopsis"])
    assert not profile.withholds(["credits"])
    assert not profile.withholds(["credits", "*", "name"])
    assert profile.withholds(["credits", "*", "character"])


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The project's own mock (every account of fixtures/accounts.toml) on a free port."""
    from mockserver.app import create_app

    state = tmp_path_factory.mktemp("mock") / "state.sqlite"
    app = create_app({"TESTING": True, "PIVOT_STATE": str(state)})
    with thread_server(app) as url:
        yield url


@pytest.mark.parametrize("account", ["full", "basic"])
def test_drift_against_the_mock_is_clean_with_the_accounts_profile(
    mock_url: str, account: str, tmp_path: Path
) -> None:
    """The mock serving the fixtures under an account's rights gives no finding when drift
    knows the account's profile (the mock's own accounts file); the restricted account
    without it shows its withheld fields and operations as drift."""
    from pivotkit.client import demo_key

    env = {"PIVOT_API_KEY": demo_key(account).reveal()}
    options = DriftOptions(
        target=mock_url,
        fixtures_dir=FIXTURES,
        schemas_dir=SCHEMAS,
        rate=1000.0,
        account_profile=FIXTURES / "accounts.toml",
        account=account,
        json_out=tmp_path / "d.json",
    )
    assert run_drift(options, environ=env, echo=lambda _: None) == 0
    assert json.loads((tmp_path / "d.json").read_text("utf-8"))["findings"] == []
    if account == "basic":
        bare = dataclasses.replace(
            options, account_profile=None, account=None, json_out=tmp_path / "bare.json"
        )
        assert run_drift(bare, environ=env, echo=lambda _: None) == 1
        kinds = {
            f["kind"] for f in json.loads((tmp_path / "bare.json").read_text("utf-8"))["findings"]
        }
        assert {"status-changed", "field-removed"} <= kinds


# -- known deviations ----------------------------------------------------------------------------


DEVIATIONS = """\
deviations:
  - operation: getContent
    pointer: /data/csa*
    kind: new-enum-value
    reason: the provider is adding the -14 rating
    owner: metadata-team@example.org
    expires: 2026-12-31
"""


def test_known_deviation_suppresses_until_it_expires(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """A matching entry suppresses the finding until its date; the day after, the finding
    is back and the lapsed entry is reported as info."""
    upstream.mutate = _data(lambda d: d.update(csaRating=-14))
    file = tmp_path / "known.yaml"
    file.write_text(DEVIATIONS, "utf-8")
    _, report, _ = _run(
        upstream, small_corpus, tmp_path, known_deviations=file, today=dt.date(2026, 12, 31)
    )
    assert report["findings"] == []
    assert [s["suppressed"]["owner"] for s in report["suppressed"]] == ["metadata-team@example.org"]
    _, report, _ = _run(
        upstream, small_corpus, tmp_path, known_deviations=file, today=dt.date(2027, 1, 1)
    )
    assert report["suppressed"] == []
    assert _active(report) == {
        ("getContent", "/data/csaRating", "new-enum-value", "warning"),
        ("getContent", "/data/csa*", "deviation-expired", "info"),
    }


def test_known_deviations_in_toml(tmp_path: Path) -> None:
    """The same entries may be written in TOML (dates native or quoted)."""
    file = tmp_path / "known.toml"
    file.write_text(
        '[[deviations]]\noperation = "get*"\nreason = "r"\nowner = "o"\nexpires = 2027-01-31\n',
        "utf-8",
    )
    (entry,) = load_deviations(file)
    assert (entry.pointer, entry.kind, entry.expires) == ("*", "*", dt.date(2027, 1, 31))


@pytest.mark.parametrize(
    "text",
    [
        "deviations:\n  - operation: getContent\n    reason: r\n    expires: 2027-01-01\n",
        "deviations:\n  - operation: x\n    reason: r\n    owner: o\n    expires: soon\n",
        "deviations: [1, 2\n",
    ],
)
def test_a_bad_known_deviations_file_is_a_usage_error(
    text: str, tmp_path: Path, full_upstream: DriftingUpstream
) -> None:
    """A missing owner, a date that is none, broken YAML: exit 2 naming the file."""
    file = tmp_path / "known.yaml"
    file.write_text(text, "utf-8")
    result = CliRunner().invoke(
        main,
        ["drift", "--target", full_upstream.url, "--known-deviations", str(file)],
        env={"PIVOT_API_KEY": KEY},
    )
    assert result.exit_code == 2
    assert "known.yaml" in result.output


# -- the run: budget, 429, quota, unreachable ----------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """A 429 is retried after its Retry-After; the run then finds nothing."""
    hits: list[int] = []

    def limited(
        full: str, status: int, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        hits.append(1)
        if len(hits) == 1:
            return 429, {"retry-after": "7"}, GATEWAY.body(429, GATEWAY.rate_limited(7))
        return status, headers, body

    upstream.mutate = limited
    waits: list[float] = []
    code, report, _ = _run(upstream, small_corpus, tmp_path, concurrency=1, sleep=waits.append)
    assert 7.0 in waits
    assert code == 0 and report["findings"] == []
    assert report["summary"]["calls"] == 4


def test_a_429_that_outlasts_max_wait_is_an_error_not_a_finding(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """A Retry-After beyond --max-wait is not waited for: the request is listed as an error,
    and the run reports no drift for it."""
    upstream.mutate = _on(
        CONTENT,
        lambda s, h, b: (
            429,
            {"retry-after": "3600"},
            GATEWAY.body(429, GATEWAY.rate_limited(3600)),
        ),
    )
    code, report, _ = _run(upstream, small_corpus, tmp_path, max_wait=5.0)
    assert report["findings"] == []
    assert code == 0
    assert any("429" in e for e in report["errors"])


def test_a_key_refused_everywhere_is_a_configuration_error(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """401 on every request means the key, not the API: exit 2, nothing reported as drift."""
    upstream.mutate = lambda full, s, h, b: (401, {}, GATEWAY.body(401, GATEWAY.invalid_key))
    result = CliRunner().invoke(
        main,
        ["drift", "--target", upstream.url, "--fixtures", str(small_corpus), "--rate", "1000"],
        env={"PIVOT_API_KEY": KEY},
    )
    assert result.exit_code == 2
    assert "401 to every request" in result.output
    assert KEY not in result.output


def test_quota_exhausted_stops_with_exit_3(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """A 403 quota answer stops the run: exit 3, the report says why."""
    upstream.mutate = lambda full, s, h, b: (403, {"retry-after": "12656"}, QUOTA)
    code, report, _ = _run(upstream, small_corpus, tmp_path, concurrency=1)
    assert code == 3
    assert "quota" in report["stopped"]
    assert upstream.calls == 1


def test_the_budget_bounds_the_calls(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """--budget 2 sends two requests and says the budget stopped the run."""
    code, report, _ = _run(upstream, small_corpus, tmp_path, budget=2, concurrency=1)
    assert upstream.calls == 2
    assert report["summary"]["answers"] == 2
    assert "budget" in report["stopped"]
    assert code == 0


def test_an_unreachable_target_is_one_line_and_exit_3(small_corpus: Path) -> None:
    """Nothing listening on the port: one line naming the target, exit 3, and nothing else
    (no banner, no error per request, no "no drift" summary)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        main,
        ["drift", "--target", f"http://127.0.0.1:{port}", "--fixtures", str(small_corpus)],
        env={"PIVOT_API_KEY": KEY},
    )
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: http://127.0.0.1:{port} is unreachable")
    assert KEY not in result.output


def test_a_plan_file_replays_its_requests_against_their_fixtures(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """--plan (record's format) replays only its requests; the matching fixture is the
    baseline, so a removed field is still found."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("- operationId: getContent\n  params: {id: '7488'}\n", "utf-8")
    upstream.mutate = _data(lambda d: d.pop("typographicTitle"))
    code, report, _ = _run(upstream, small_corpus, tmp_path, plan=plan)
    assert upstream.calls == 1
    assert _active(report) == {
        ("getContent", "/data/typographicTitle", "field-removed", "breaking")
    }
    assert code == 1


def test_sample_with_seed_is_reproducible() -> None:
    """--sample N --seed S picks the same N requests every time, in file order."""
    fixtures, contract = FixtureSet.load(FIXTURES), load_contract(SCHEMAS)
    a = sample(_replayable(fixtures, contract), 5, 7)
    b = sample(_replayable(fixtures, contract), 5, 7)
    assert [p.label() for p in a] == [p.label() for p in b]
    assert len(a) == 5


def test_the_key_is_sent_but_never_written(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """The key goes in the header; reports, examples and re-recorded fixtures never hold it,
    even when the upstream echoes it in a body."""
    upstream.mutate = _data(lambda d: d.update(echo=f"key={KEY}"))
    out = tmp_path / "review"
    _, report, lines = _run(
        upstream,
        small_corpus,
        tmp_path,
        markdown=tmp_path / "d.md",
        junit=tmp_path / "d.xml",
        update_fixtures=out,
    )
    assert upstream.seen_keys and set(upstream.seen_keys) == {KEY}
    texts = [
        p.read_text("utf-8")
        for p in [*tmp_path.rglob("*.json"), *tmp_path.rglob("*.md"), *tmp_path.rglob("*.xml")]
    ]
    assert texts and not any(KEY in t for t in [*texts, *lines])
    assert _active(report) == {("getContent", "/data/echo", "new-field", "info")}


def test_live_without_a_key_is_a_usage_error() -> None:
    """--target live with no $PIVOT_API_KEY exits 2 before any request."""
    result = CliRunner().invoke(main, ["drift", "--target", "live"], env={"PIVOT_API_KEY": ""})
    assert result.exit_code == 2
    assert "PIVOT_API_KEY" in result.output


def test_a_malformed_key_is_refused_without_showing_it() -> None:
    """A key of the wrong shape exits 2 and is not echoed."""
    result = CliRunner().invoke(
        main, ["drift", "--target", "live"], env={"PIVOT_API_KEY": "NOT-A-KEY-secretvalue"}
    )
    assert result.exit_code == 2
    assert "secretvalue" not in result.output


# -- reports ------------------------------------------------------------------------------------


def test_reports_markdown_json_junit_and_step_summary(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """The CLI writes the three reports and appends the Markdown to $GITHUB_STEP_SUMMARY;
    exit 1 on a breaking finding; JUnit has one test case per operation."""
    upstream.mutate = _data(lambda d: d.pop("title"))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", "utf-8")
    result = CliRunner().invoke(
        main,
        [
            "drift",
            "--target",
            upstream.url,
            "--fixtures",
            str(small_corpus),
            "--schemas",
            str(SCHEMAS),
            "--rate",
            "1000",
            "--markdown",
            str(tmp_path / "d.md"),
            "--json",
            str(tmp_path / "d.json"),
            "--junit",
            str(tmp_path / "d.xml"),
        ],
        env={"PIVOT_API_KEY": KEY, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 1, result.output
    assert "[breaking] getContent /data/title: required-missing" in result.output
    report = json.loads((tmp_path / "d.json").read_text("utf-8"))
    assert report["format"] == "pivotkit-drift/1"
    assert set(report) >= {"target", "summary", "operations", "findings", "suppressed"}
    assert report["summary"]["breaking"] == 1
    markdown = (tmp_path / "d.md").read_text("utf-8")
    assert (
        "| breaking | getContent | `/data/title` | required-missing | required | absent |"
        in markdown
    )
    assert summary.read_text("utf-8").startswith("earlier step\n## pivotkit drift")
    suite = ElementTree.parse(tmp_path / "d.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"getContent", "listBroadcasts"}
    assert cases["getContent"].find("failure") is not None
    assert cases["listBroadcasts"].find("failure") is None


def test_webhook_posts_json_with_a_text_summary(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """The webhook receives one POST: JSON with a one-paragraph ``text`` and the findings."""
    received: list[tuple[str, dict[str, Any]]] = []

    def receiver(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ["CONTENT_LENGTH"])
        received.append((environ["CONTENT_TYPE"], json.loads(environ["wsgi.input"].read(length))))
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    with thread_server(receiver) as hook:
        upstream.mutate = _data(lambda d: d.update(id="7488"))
        code, _, _ = _run(upstream, small_corpus, tmp_path, webhook=f"{hook}/hook")
    assert code == 1
    ((content_type, payload),) = received
    assert content_type == "application/json"
    assert payload["format"] == "pivotkit-drift/1"
    assert "BREAKING" in payload["text"] and "/data/id type-changed" in payload["text"]
    assert "\n" not in payload["text"]
    assert payload["findings"][0]["pointer"] == "/data/id"


def test_update_fixtures_writes_drifted_answers_never_overwriting(
    upstream: DriftingUpstream, small_corpus: Path, tmp_path: Path
) -> None:
    """Drifted answers become new live fixtures for review; a second run adds, never
    overwrites; the contract's directory is refused."""
    upstream.mutate = _data(lambda d: d.update(id="7488", title="Changed"))
    out = tmp_path / "review"
    _run(upstream, small_corpus, tmp_path, update_fixtures=out)
    (first,) = list(out.glob("getContent/*.json"))
    saved = json.loads(first.read_text("utf-8"))
    assert saved["meta"]["source"] == "live"
    assert saved["response"]["body"]["data"]["id"] == "7488"
    before = first.read_text("utf-8")
    upstream.mutate = _data(lambda d: d.update(id="7488", title="Changed again"))
    _run(upstream, small_corpus, tmp_path, update_fixtures=out)
    assert len(list(out.glob("getContent/*.json"))) == 2
    assert first.read_text("utf-8") == before
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    with pytest.raises(ConfigError, match="inside the contract"):
        run_drift(
            DriftOptions(
                target=upstream.url,
                fixtures_dir=small_corpus,
                schemas_dir=schemas,
                rate=1000.0,
                update_fixtures=schemas / "x",
            ),
            environ={},
            echo=lambda _: None,
        )


# -- in-process analysis -------------------------------------------------------------------------


def test_analysis_in_process_of_recorded_answers(blade_runner: dict[str, Any]) -> None:
    """Answers at hand (no HTTP) go through the same analysis; a constraint outside the
    contract is a warning."""

    baseline = Exchange.from_dict(blade_runner, name="7488")
    body = copy.deepcopy(blade_runner["response"]["body"])
    body["data"]["duration"] = -5
    answer = Answer(
        baseline.operation_id,
        baseline.request,
        200,
        dict(baseline.response.headers),
        body,
        baseline,
    )
    report = analyze(load_contract(SCHEMAS), [answer])
    assert [(f.pointer, f.kind, f.severity) for f in report.findings] == [
        ("/data/duration", "constraint-violated", "warning")
    ]
    assert report.exit_code == 0


def test_record_then_drift_over_the_recorded_fixtures(tmp_path: Path) -> None:
    """`pivotkit record` from a loopback upstream that checks the key, then `pivotkit drift`
    over that folder: the recorded request headers hold the redacted placeholder, drift
    sends the real key with every request (built from the plan, not from the recording),
    no 401, zero findings, exit 0."""
    import subprocess

    from .helpers import clean_env, pivotkit_command

    server = DriftingUpstream(FIXTURES, key=KEY)
    out = tmp_path / "recorded"
    env = clean_env(PIVOT_API_KEY=KEY)
    try:
        record = subprocess.run(
            pivotkit_command(
                "record",
                "--upstream",
                server.url,
                "--from-fixtures",
                "--fixtures",
                str(FIXTURES),
                "--out",
                str(out),
                "--rate",
                "1000",
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert record.returncode == 0, record.stdout + record.stderr
        recorded = [json.loads(p.read_text("utf-8")) for p in out.rglob("*.json")]
        assert len(recorded) >= 60
        placeholders = {
            v for r in recorded for k, v in r["request"]["headers"].items() if k == KEY_HEADER
        }
        assert placeholders and KEY not in placeholders
        server.seen_keys.clear()
        drift = subprocess.run(
            pivotkit_command(
                "drift",
                "--target",
                server.url,
                "--fixtures",
                str(out),
                "--rate",
                "1000",
                "--json",
                str(tmp_path / "drift.json"),
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.close()
    assert drift.returncode == 0, drift.stdout + drift.stderr
    report = json.loads((tmp_path / "drift.json").read_text("utf-8"))
    assert report["findings"] == []
    assert report["summary"]["answers"] == len(
        [r for r in recorded if r["response"]["status"] in REPLAYED_STATUSES]
    )
    assert set(server.seen_keys) == {KEY}
    assert all("401" not in op["statuses"] for op in report["operations"])


def test_a_deviations_file_without_its_top_level_key_says_so(tmp_path: Path) -> None:
    """Entries written as a bare list (no `deviations:` key): one line saying where they go."""
    from pivotkit.drift.deviations import load_deviations

    file = tmp_path / "known.yaml"
    file.write_text(
        "- operation: getContent\n  reason: r\n  owner: o\n  expires: 2030-01-01\n", "utf-8"
    )
    with pytest.raises(ConfigError, match="top-level `deviations:` key") as caught:
        load_deviations(file)
    assert "\n" not in str(caught.value)
