"""Tests of pivotkit.record and ``pivotkit record`` against a fake upstream on loopback."""

from __future__ import annotations

import datetime
import email.utils
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from click.testing import CliRunner

from pivotkit.cli import main
from pivotkit.contract import load_contract
from pivotkit.errors import ConfigError
from pivotkit.fixtures import Request, read_exchange
from pivotkit.plan import PlanItem, load_plan, plan_from_fixtures, plan_from_options
from pivotkit.recorder import Outcome, Recorder
from pivotkit.redact import KEY_PLACEHOLDER, request_context_placeholder, scan_secrets
from tests.helpers import (
    FULL,
    KEY_HEADER,
    clean_env,
    free_port,
    key_headers,
    path_of,
    serve_process,
)
from tests.upstream import FakeUpstream, Reply, envelope, fake_upstream

ROOT = Path(__file__).resolve().parent.parent
EXEMPLAR = ROOT / "fixtures" / "getContent" / "7488.json"
BODY: dict[str, Any] = json.loads(EXEMPLAR.read_text("utf-8"))["response"]["body"]
KEY = secrets.token_hex(16)


def _content(content_id: object) -> str:
    """The getContent path of an id, from the contract."""
    return path_of("getContent", id=content_id)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """A fake upstream serving the documented getContent/7488 body, gzipped."""
    with fake_upstream() as up:
        up.route(_content(7488), Reply(body=BODY))
        yield up


def _item(content_id: int, **kw: Any) -> PlanItem:
    return PlanItem("getContent", {"id": str(content_id)}, **kw)


def _recorder(url: str, out: Path, **kw: Any) -> Recorder:
    kw.setdefault("sleep", lambda s: None)
    return Recorder(url, KEY, out, **kw)


def _assert_clean(out: Path) -> None:
    """No partial file, no key, nothing key-shaped in the output directory."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp")]
    assert not [p for p in files if KEY in p.read_text("utf-8")]
    assert scan_secrets(out, files) == []


def _without_recorded(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    del data["meta"]["recorded"]
    return data


# -- recording -------------------------------------------------------------------------------


def test_records_a_gzip_payload(upstream: FakeUpstream, tmp_path: Path) -> None:
    """A gzip answer becomes a valid live fixture: decoded body, provider headers, meta."""
    with _recorder(upstream.url + "/", tmp_path, account="full") as rec:
        report = rec.run([_item(7488)])
    assert report.summary() == (
        "recorded 1, unchanged 0, skipped 0, failed 0 (1 requests, 1 upstream calls)"
    )
    assert report.exit_code == 0
    ex = read_exchange(tmp_path / "getContent" / "7488.json")
    assert ex.response.body == BODY
    assert load_contract().validate("getContent", 200, ex.response.body) == []
    assert dict(ex.meta) == {
        "operationId": "getContent",
        "source": "live",
        "recorded": ex.meta["recorded"],
        "account": "full",
        "upstream": upstream.url,
    }
    assert ex.meta["recorded"].endswith("Z")
    assert ex.request.headers == {
        "Cache-Control": "no-cache",
        KEY_HEADER: KEY_PLACEHOLDER,
    }
    assert ex.response.headers["content-encoding"] == "gzip"
    assert ex.response.headers["request-context"] == request_context_placeholder()
    assert "date" not in ex.response.headers
    [seen] = upstream.seen
    assert seen.headers[KEY_HEADER.lower()] == KEY
    assert seen.headers["accept-encoding"] == "gzip"
    _assert_clean(tmp_path)


def test_names_follow_parameters_and_lang(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Path parameters and lang joined by ``-``; ``all`` with neither."""
    broadcasts = path_of("listBroadcasts", channelId=1, start=20241105, end=20241106)
    upstream.route(broadcasts, Reply(body=envelope([])))
    upstream.route(path_of("listChannels"), Reply(body=envelope([])))
    items = plan_from_options(
        ["listBroadcasts"],
        ["channelId=1", "start=20241105", "end=20241106"],
        ["en"],
        load_contract(),
    )
    items += [PlanItem("listChannels"), PlanItem("listChannels", lang="en")]
    with _recorder(upstream.url, tmp_path) as rec:
        report = rec.run(items)
    assert [o.path for o in report.outcomes] == [
        tmp_path / "listBroadcasts" / "1-20241105-20241106-en.json",
        tmp_path / "listChannels" / "all.json",
        tmp_path / "listChannels" / "en.json",
    ]
    assert read_exchange(report.outcomes[0].path).request.lang == "en"  # type: ignore[arg-type]
    assert upstream.seen[0].query == {"lang": "en"}


def test_rerecording_an_unchanged_upstream_changes_nothing(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Same directory: ``unchanged``, same bytes. Fresh directory: equal but for the date."""
    first, fresh = tmp_path / "a", tmp_path / "b"
    with _recorder(upstream.url, first, now=lambda: "2026-01-01T00:00:00Z") as rec:
        rec.run([_item(7488)])
    before = (first / "getContent" / "7488.json").read_bytes()
    with _recorder(upstream.url, first, now=lambda: "2026-02-02T00:00:00Z") as rec:
        report = rec.run([_item(7488)])
    assert [o.status for o in report.outcomes] == ["unchanged"]
    assert (first / "getContent" / "7488.json").read_bytes() == before
    with _recorder(upstream.url, fresh, now=lambda: "2026-03-03T00:00:00Z") as rec:
        rec.run([_item(7488)])
    new = fresh / "getContent" / "7488.json"
    assert new.read_bytes() != before
    assert _without_recorded(new) == _without_recorded(first / "getContent" / "7488.json")
    _assert_clean(tmp_path)


def test_a_changed_answer_is_kept_beside_unless_overwrite(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A different answer goes to ``<name>-2.json`` with a summary; --overwrite replaces."""
    with _recorder(upstream.url, tmp_path) as rec:
        rec.run([_item(7488)])
    original = (tmp_path / "getContent" / "7488.json").read_bytes()
    changed = json.loads(json.dumps(BODY))
    changed["data"]["title"] = "Blade Runner (Final Cut)"
    upstream.route(_content(7488), Reply(body=changed))
    with _recorder(upstream.url, tmp_path) as rec:
        [outcome] = rec.run([_item(7488)]).outcomes
    assert outcome.status == "recorded"
    assert outcome.path == tmp_path / "getContent" / "7488-2.json"
    assert "7488.json differs (~/response/body/data/title, " in outcome.message
    assert (tmp_path / "getContent" / "7488.json").read_bytes() == original
    with _recorder(upstream.url, tmp_path) as rec:
        [again] = rec.run([_item(7488)]).outcomes
    assert (again.status, again.path) == ("unchanged", tmp_path / "getContent" / "7488-2.json")
    with _recorder(upstream.url, tmp_path, overwrite=True) as rec:
        [forced] = rec.run([_item(7488)]).outcomes
    assert (forced.status, forced.path) == ("recorded", tmp_path / "getContent" / "7488.json")
    assert forced.message.startswith("overwritten (~/response/body/data/title")
    assert read_exchange(tmp_path / "getContent" / "7488.json").response.body == changed
    _assert_clean(tmp_path)


# -- upstream failures -------------------------------------------------------------------------

HTML = b"<html><head><title>Service Unavailable</title></head><body>IIS</body></html>"
FAILURES = {
    "reset": (Reply(body=BODY, mode="reset"), "connection broken mid-response"),
    "timeout": (Reply(mode="hang"), "timed out"),
    "500": (
        Reply(500, {"Message": "An error has occurred."}),
        "HTTP 500 from upstream: An error has occurred.",
    ),
    "truncated-gzip": (Reply(body=BODY, mode="truncate"), "truncated or corrupt gzip body"),
    "invalid-json": (Reply(raw=b'{"version": "v1", "data": {'), "invalid JSON (HTTP 200)"),
    "html-200": (
        Reply(raw=HTML, headers={"content-type": "text/html"}),
        "HTML page instead of JSON (HTTP 200, text/html) 'Service Unavailable'",
    ),
    "html-502": (
        Reply(502, raw=HTML, gzip=False, headers={"content-type": "text/html"}),
        "HTTP 502 from upstream",
    ),
    "latin-1": (Reply(raw='{"title": "Les Misérables"}'.encode("latin-1")), "body is not UTF-8"),
    "403-not-quota": (
        Reply(403, {"statusCode": 403, "message": "Forbidden"}),
        "HTTP 403: Forbidden",
    ),
    "401": (
        Reply(
            401, {"statusCode": 401, "message": "Access denied due to invalid subscription key."}
        ),
        "HTTP 401: Access denied due to invalid",
    ),
}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_an_upstream_failure_leaves_no_fixture_and_the_run_goes_on(
    upstream: FakeUpstream, tmp_path: Path, kind: str
) -> None:
    """Each failure is reported on its request; the next request is still recorded."""
    reply, message = FAILURES[kind]
    upstream.route(_content(1), reply)
    with _recorder(upstream.url, tmp_path, timeout=0.3) as rec:
        report = rec.run([_item(1), _item(7488)])
    failed, ok = report.outcomes
    assert failed.status == "failed" and message in failed.message
    assert failed.path is None and failed.exchange is None
    assert ok.status == "recorded"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["7488.json", "getContent"]
    assert report.exit_code == 1
    _assert_clean(tmp_path)


def test_an_unreachable_upstream_exits_3(tmp_path: Path) -> None:
    """Connection refused on every request: all failed, exit code 3, nothing written."""
    with _recorder(f"http://127.0.0.1:{free_port()}", tmp_path) as rec:
        report = rec.run([_item(1), _item(2)])
    assert [o.status for o in report.outcomes] == ["failed", "failed"]
    assert all("cannot connect" in o.message for o in report.outcomes)
    assert report.all_unreachable and report.exit_code == 3
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_429_waits_for_retry_after_then_retries(upstream: FakeUpstream, tmp_path: Path) -> None:
    """A 429 is waited out (Retry-After, capped by max_wait) and the request retried."""
    limited = Reply(
        429,
        {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."},
        headers={"retry-after": "1"},
    )
    long = Reply(
        429,
        {"statusCode": 429, "message": "Rate limit is exceeded."},
        headers={"retry-after": "120"},
    )
    upstream.route(_content(1), limited, Reply(body=envelope({"id": 1})))
    upstream.route(_content(2), long, Reply(body=envelope({"id": 2})))
    waits: list[float] = []
    with _recorder(upstream.url, tmp_path, sleep=waits.append, max_wait=5) as rec:
        report = rec.run([_item(1), _item(2)])
    # One Retry-After rule for every command (the client's): a wait past --max-wait is not
    # made, the 429 is the answer.
    assert [o.status for o in report.outcomes] == ["recorded", "failed"]
    assert "--max-wait" in report.outcomes[1].message
    assert waits == [1.0]
    assert report.calls == 3


def test_429_gives_up_after_the_retries(upstream: FakeUpstream, tmp_path: Path) -> None:
    """A request still limited after ``retries`` retries fails; the run goes on."""
    upstream.route(
        _content(1),
        Reply(
            429, {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 3 seconds."}
        ),
    )
    waits: list[float] = []
    with _recorder(upstream.url, tmp_path, sleep=waits.append, retries=2) as rec:
        report = rec.run([_item(1), _item(7488)])
    assert report.outcomes[0].status == "failed"
    assert "rate limited (429) 3 times" in report.outcomes[0].message
    assert waits == [3.0, 3.0]
    assert report.outcomes[1].status == "recorded"
    assert report.exit_code == 1


def test_403_quota_stops_cleanly_and_keeps_what_was_recorded(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The quota answer stops the run: earlier fixtures kept, the rest skipped, exit 3."""
    upstream.route(
        _content(2),
        Reply(
            403,
            {
                "statusCode": 403,
                "message": "Out of call volume quota. Quota will be replenished in 03:30:56.",
            },
            headers={"retry-after": "12656"},
        ),
    )
    with _recorder(upstream.url, tmp_path) as rec:
        report = rec.run([_item(7488), _item(2), _item(3)])
    assert [o.status for o in report.outcomes] == ["recorded", "skipped", "skipped"]
    assert "Out of call volume quota" in report.stopped
    assert len(upstream.seen) == 2
    assert report.exit_code == 3
    assert (tmp_path / "getContent" / "7488.json").is_file()
    _assert_clean(tmp_path)


def test_budget_limits_upstream_calls(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Past the budget nothing is sent; the rest is skipped and the run exits 0."""
    upstream.route(_content(1), Reply(body=envelope({"id": 1})))
    with _recorder(upstream.url, tmp_path, budget=2) as rec:
        report = rec.run([_item(7488), _item(1), _item(2)])
    assert [o.status for o in report.outcomes] == ["recorded", "recorded", "skipped"]
    assert "budget of 2 calls is spent" in report.outcomes[2].message
    assert len(upstream.seen) == 2 and report.exit_code == 0


def test_rate_spaces_the_calls(upstream: FakeUpstream, tmp_path: Path) -> None:
    """At 4 calls per second each call after the first waits its quarter second."""
    clock = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    with _recorder(upstream.url, tmp_path, rate=4, sleep=sleep, clock=lambda: clock[0]) as rec:
        rec.run([_item(7488)] * 3)
    assert waits == [0.25, 0.25]


def test_invalid_parameters_fail_without_a_call(upstream: FakeUpstream, tmp_path: Path) -> None:
    """A parameter the contract refuses is a failure before anything is sent."""
    with _recorder(upstream.url, tmp_path) as rec:
        report = rec.run(
            [_item(0), PlanItem("getContent", {"id": "1", "x": "2"}), PlanItem("nope")]
        )
    assert [o.status for o in report.outcomes] == ["failed"] * 3
    assert "x: not a path parameter" in report.outcomes[1].message
    assert "unknown operation 'nope'" in report.outcomes[2].message
    assert upstream.seen == []


# -- plans -----------------------------------------------------------------------------------


def test_plan_files_in_yaml_and_json(tmp_path: Path) -> None:
    """A plan is a list (or {requests: list}) of operationId, params, lang, name."""
    yml = tmp_path / "plan.yaml"
    yml.write_text(
        "- operationId: getContent\n  params: {id: 7488}\n  lang: en\n"
        "- {operationId: listDays, name: today}\n",
        "utf-8",
    )
    js = tmp_path / "plan.json"
    js.write_text(json.dumps({"requests": [{"operationId": "getPerson", "params": {"id": 1}}]}))
    assert load_plan(yml) == [
        PlanItem("getContent", {"id": "7488"}, "en"),
        PlanItem("listDays", {}, None, "today"),
    ]
    assert load_plan(js) == [PlanItem("getPerson", {"id": "1"})]
    bad = tmp_path / "bad.yaml"
    for text, message in [
        ("{a: 1}", "a plan is a list"),
        ("- [1]", "request 1"),
        ("- {operationId: x, extra: 1}", "unknown keys"),
        ("- {operationId: x, params: [1]}", "params must be a mapping"),
    ]:
        bad.write_text(text, "utf-8")
        with pytest.raises(ConfigError, match=message):
            load_plan(bad)


def test_plan_from_options_combines_values() -> None:
    """Each --op gets every combination of its parameters' values and langs."""
    contract = load_contract()
    items = plan_from_options(["getPerson", "getPersonAwards"], ["id=1", "id=2"], [], contract)
    assert [i.label() for i in items] == [
        "getPerson id=1",
        "getPerson id=2",
        "getPersonAwards id=1",
        "getPersonAwards id=2",
    ]
    with pytest.raises(ConfigError, match="getContent needs id"):
        plan_from_options(["getContent"], [], [], contract)
    with pytest.raises(ConfigError, match="no --op takes channelId"):
        plan_from_options(["listDays"], ["channelId=1"], [], contract)
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        plan_from_options(["getContent"], ["7488"], [], contract)


def test_from_fixtures_rerecords_beside_a_doc_fixture(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Every fixture is a request; a live answer differing from a doc fixture is kept beside;
    error fixtures are skipped and unreadable ones fail."""
    root = tmp_path / "fixtures"
    (root / "getContent").mkdir(parents=True)
    shutil.copy(EXEMPLAR, root / "getContent" / "7488.json")
    error = json.loads(EXEMPLAR.read_text("utf-8"))
    error["response"] = {"status": 401, "body": {"statusCode": 401, "message": "Access denied"}}
    (root / "getContent" / "401-missing-key.json").write_text(json.dumps(error), "utf-8")
    (root / "getContent" / "broken.json").write_text("{", "utf-8")
    items = plan_from_fixtures(root, load_contract())
    assert items[1] == _item(7488, name="7488")
    with _recorder(upstream.url, root) as rec:
        report = rec.run(items)
    assert [o.status for o in report.outcomes] == ["skipped", "recorded", "failed"]
    assert "a 401 answer is not re-recorded" in report.outcomes[0].message
    assert "unreadable fixture" in report.outcomes[2].message
    assert report.outcomes[1].path == root / "getContent" / "7488-2.json"
    assert "only meta differs" not in report.outcomes[1].message
    assert (root / "getContent" / "7488.json").read_bytes() == EXEMPLAR.read_bytes()
    assert len(upstream.seen) == 1


def test_every_shipped_fixture_can_be_planned() -> None:
    """Each fixture of the corpus fits an operation: a request, or a named skip (non-2xx)."""
    items = plan_from_fixtures(ROOT / "fixtures", load_contract())
    assert items and not [i.error for i in items if i.error]
    for item in items:
        op = load_contract().operation(item.operation_id)
        assert item.skip or not op.parameter_problems(item.params), item.label()


# -- the command -----------------------------------------------------------------------------


def _record_command(*args: str) -> list[str]:
    """``pivotkit record ARGS`` through the installed console script."""
    return [str(Path(sys.executable).parent / "pivotkit"), "record", *args]


def _content_args(upstream: str, out: Path, *ids: int) -> list[str]:
    """``record`` arguments: getContent of each id, from ``upstream`` into ``out``."""
    params = [arg for content_id in ids for arg in ("--param", f"id={content_id}")]
    return ["--upstream", upstream, "--out", str(out), "--op", "getContent", *params]


def _cli(
    *args: str, key: str | None = KEY, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PIVOT_API_KEY", "PIVOT_FIXTURES")}
    if key is not None:
        env["PIVOT_API_KEY"] = key
    env.update(extra)
    script = Path(sys.executable).parent / "pivotkit"
    return subprocess.run(
        [str(script), "record", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_never_shows_the_key(upstream: FakeUpstream, tmp_path: Path) -> None:
    """The key echoed by the upstream reaches neither files, stdout nor stderr."""
    upstream.route(
        _content(1),
        Reply(body=envelope({"id": 1, "echo": "{key}"}), headers={"set-cookie": "s={key}; Path=/"}),
    )
    # the whole key, and a fragment of it in another case: neither may reach a terminal
    upstream.route(_content(2), Reply(500, {"Message": "bad key {key} near " + KEY[4:16].upper()}))
    upstream.route(
        _content(3),
        Reply(raw=b"<title>Denied {key}</title>", headers={"content-type": "text/html"}),
    )
    upstream.route(
        _content(4),
        Reply(
            429,
            {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."},
            headers={"retry-after": "1"},
        ),
        Reply(body=envelope({"id": 4})),
    )
    out = tmp_path / "out"
    result = _cli(
        "--upstream",
        f"{upstream.url}/?subscription-key={KEY}",
        "--out",
        str(out),
        "--op",
        "getContent",
        *(f"--param=id={i}" for i in (7488, 1, 2, 3, 4)),
    )
    assert result.returncode == 1, result.stderr
    assert KEY not in result.stdout and KEY not in result.stderr
    assert "HTTP 500 from upstream: bad key *** near ***" in result.stderr
    assert KEY[4:16].upper() not in result.stderr and KEY[4:16] not in result.stderr
    assert result.stdout.splitlines()[-1] == (
        "recorded 3, unchanged 0, skipped 0, failed 2 (5 requests, 6 upstream calls)"
    )
    assert sorted(p.name for p in (out / "getContent").iterdir()) == [
        "1.json",
        "4.json",
        "7488.json",
    ]
    assert (
        json.loads((out / "getContent" / "1.json").read_text())["meta"]["upstream"] == upstream.url
    )
    assert all(s.headers[KEY_HEADER.lower()] == KEY for s in upstream.seen)
    _assert_clean(out)


def test_cli_default_out_is_the_projects_fixtures(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Without --out: $PIVOT_FIXTURES, else ./fixtures of the current directory; with
    neither, one line and exit 2 before any call. A directory inside the pivotkit package
    (its bundled data) is refused whichever way it is named."""
    import pivotkit

    record = ("--upstream", upstream.url, "--op", "getContent", "--param", "id=7488")
    bare = tmp_path / "bare"
    bare.mkdir()
    refused = _cli(*record, cwd=bare)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"Error: --out: no ./fixtures directory in {bare}: say where to write the recorded "
        "fixtures with --out DIR (record never writes into the installed package)"
    ]
    assert upstream.seen == [] and list(bare.iterdir()) == []

    project = tmp_path / "project"
    (project / "fixtures").mkdir(parents=True)
    assert _cli(*record, cwd=project).returncode == 0
    assert (project / "fixtures" / "getContent" / "7488.json").is_file()
    elsewhere = tmp_path / "elsewhere"
    assert _cli(*record, cwd=bare, PIVOT_FIXTURES=str(elsewhere)).returncode == 0
    assert (elsewhere / "getContent" / "7488.json").is_file()

    package = Path(pivotkit.__file__).resolve().parent
    calls = len(upstream.seen)
    for result in (
        _cli(*record, "--out", str(package / "_bundled" / "fixtures"), cwd=bare),
        _cli(*record, "--out", str(package / ".." / "pivotkit"), cwd=bare),
        _cli(*record, cwd=bare, PIVOT_FIXTURES=str(package)),
        _cli(*record, cwd=package),  # ./fixtures would be the package's own
    ):
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.splitlines()
        assert "is inside the installed pivotkit package" in line or "no ./fixtures" in line
    assert len(upstream.seen) == calls
    assert not (package / "_bundled" / "fixtures" / "getContent" / "7488.json").exists()


def test_cli_exit_3_when_nothing_answers(tmp_path: Path) -> None:
    """An unreachable upstream: exit code 3 and the summary on stdout."""
    result = _cli(
        "--upstream", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path), "--op", "listDays"
    )
    assert result.returncode == 3
    assert "cannot connect" in result.stderr
    assert result.stdout.startswith("recorded 0, unchanged 0, skipped 0, failed 1")


def test_cli_plain_lines_without_a_tty(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Off a TTY each request gets a plain line (no progress bar), then the summary."""
    upstream.route(_content(1), Reply(body=BODY))
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["record", *_content_args(upstream.url, tmp_path, 7488, 1)],
        env={"PIVOT_API_KEY": KEY},
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"recorded  {tmp_path / 'getContent' / '7488.json'}",
        f"recorded  {tmp_path / 'getContent' / '1.json'}",
        "recorded 2, unchanged 0, skipped 0, failed 0 (2 requests, 2 upstream calls)",
    ]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_cli_progress_bar_on_a_tty(upstream: FakeUpstream, tmp_path: Path) -> None:
    """On a TTY a progress bar replaces the per-request lines."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "PIVOT_API_KEY": KEY}
    proc = subprocess.run(
        _record_command(*_content_args(upstream.url, tmp_path, 7488, 7488)),
        env=env,
        stdout=follower,
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "recording" in text and "100%" in text
    assert "recorded  " not in text.replace("unchanged  ", "")
    assert "recorded 1, unchanged 1, skipped 0, failed 0" in text


def test_cli_usage_errors() -> None:
    """No plan, a stray --param or an empty key are usage errors (exit 2)."""
    runner = CliRunner()
    base = ["record", "--upstream", "http://127.0.0.1:9"]
    cases = [
        ([], "say what to record"),
        (["--plan", __file__, "--param", "id=1"], "--param and --lang go with --op"),
        (["--op", "listDays"], "PIVOT_API_KEY is empty"),
    ]
    for extra, message in cases:
        result = runner.invoke(main, base + extra, env={"PIVOT_API_KEY": ""})
        assert result.exit_code == 2 and message in result.output
    result = runner.invoke(main, [*base, "--op", "getContent"], env={"PIVOT_API_KEY": KEY})
    assert result.exit_code == 2 and "getContent needs id" in result.output


# -- record-through for the mock ---------------------------------------------------------------


def _record_app(tmp_path: Path, **settings: Any) -> flask.Flask:
    mockserver = pytest.importorskip("mockserver")
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "fixtures" / "accounts.toml", fixtures / "accounts.toml")
    config = {
        "PIVOT_STATE": str(tmp_path / "state.sqlite"),
        "PIVOT_USAGE_FLUSH": 0,
        "PIVOT_FIXTURES": str(fixtures),
        **settings,
    }
    app: flask.Flask = mockserver.create_app(config)
    return app


def test_record_through_from_the_settings(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PIVOT_RECORD_* settings build the mock's record-through; it forwards with the upstream
    key, never the client's, and replays what it recorded from memory."""
    upstream.route(_content(7488), Reply(body=BODY))
    monkeypatch.setenv("PIVOT_TEST_UPSTREAM_KEY", KEY)
    assert _record_app(tmp_path / "off").extensions["pivot"].record_through is None
    out = tmp_path / "out"
    app = _record_app(
        tmp_path,
        PIVOT_RECORD_FROM=upstream.url,
        PIVOT_RECORD_KEY_ENV="PIVOT_TEST_UPSTREAM_KEY",
        PIVOT_RECORD_OUT=str(out),
        PIVOT_RECORD_ACCOUNT="basic",
        PIVOT_RECORD_REDACT_FIELDS="/data/synopsis",
    )
    hook = app.extensions["pivot"].record_through
    assert hook is not None
    op = load_contract().operation("getContent")
    client_key = secrets.token_hex(16)
    asked = Request("GET", _content(7488), {"lang": "en", "subscription-key": client_key})
    ex = hook(op, asked)
    assert ex is not None and ex.file == out / "getContent" / "7488-en.json"
    assert ex.meta["account"] == "basic" and ex.request.query == {"lang": "en"}
    assert ex.response.body["data"]["synopsis"] != BODY["data"]["synopsis"]
    assert len(ex.response.body["data"]["synopsis"]) == len(BODY["data"]["synopsis"])
    [seen] = upstream.seen
    assert seen.headers[KEY_HEADER.lower()] == KEY and seen.query == {"lang": "en"}
    assert hook(op, Request("GET", _content(7488), {"lang": "en"})) is ex
    assert len(upstream.seen) == 1
    failed = hook(op, Request("GET", _content(5)))
    assert isinstance(failed, Outcome) and failed.status == "failed" and "404" in failed.message
    hook.recorder.close()  # type: ignore[attr-defined]
    _assert_clean(out)


def test_record_through_needs_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured without the key in the environment: a ConfigError naming the variable."""
    monkeypatch.delenv("PIVOT_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$PIVOT_API_KEY"):
        _record_app(tmp_path, PIVOT_RECORD_FROM="http://127.0.0.1:9")


def test_the_mock_records_through(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mock, asked for an unrecorded id, answers from the upstream and keeps the fixture."""
    from pivotkit.client import demo_key

    monkeypatch.setenv("PIVOT_API_KEY", KEY)
    app = _record_app(tmp_path, PIVOT_RECORD_FROM=upstream.url, PIVOT_RECORD_ACCOUNT="full")
    hook = app.extensions["pivot"].record_through
    client_key = demo_key("full", "primary").reveal()
    try:
        resp = app.test_client().get(_content(7488), headers=key_headers(client_key))
    finally:
        hook.recorder.close()  # type: ignore[union-attr]
    assert resp.status_code == 200
    assert resp.get_json()["data"]["title"] == BODY["data"]["title"]
    [seen] = upstream.seen
    assert seen.headers[KEY_HEADER.lower()] == KEY
    fixtures = tmp_path / "fixtures"
    ex = read_exchange(fixtures / "getContent" / "7488.json")
    assert ex.meta["account"] == "full" and ex.response.body == BODY
    _assert_clean(fixtures / "getContent")


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    """A key too short to scrub safely is refused before any call."""
    with pytest.raises(ConfigError, match="32 hexadecimal"):
        Recorder("http://127.0.0.1:9", "abc", tmp_path)
    with pytest.raises(ConfigError, match="http"):
        Recorder("ftp://example.org", KEY, tmp_path)


def test_retry_after_as_an_http_date(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Retry-After may be an HTTP date; the wait is what remains until then."""
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    later = {"retry-after": email.utils.format_datetime(soon, usegmt=True)}
    upstream.route(
        _content(1),
        Reply(429, {"statusCode": 429, "message": "slow down"}, headers=later),
        Reply(body=envelope({"id": 1})),
    )
    waits: list[float] = []
    with _recorder(upstream.url, tmp_path, sleep=waits.append, max_wait=7) as rec:
        report = rec.run([_item(1)])
    assert len(waits) == 1 and 3 <= waits[0] <= 5 and report.exit_code == 0


def test_an_unwritable_output_fails_that_request_only(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A fixture that cannot be written is a failure of its request; the run goes on."""
    upstream.route(path_of("listDays"), Reply(body=envelope([])))
    (tmp_path / "getContent").write_text("not a directory", "utf-8")
    with _recorder(upstream.url, tmp_path) as rec:
        report = rec.run([_item(7488), PlanItem("listDays")])
    assert [o.status for o in report.outcomes] == ["failed", "recorded"]
    assert report.outcomes[0].message.startswith("not written: ")
    _assert_clean(tmp_path)


def test_a_fixture_off_the_contract_cannot_be_planned(tmp_path: Path) -> None:
    """A fixture whose path fits no operation is a failed item that says what to fix."""
    target = tmp_path / "getContent" / "odd.json"
    target.parent.mkdir()
    data = json.loads(EXEMPLAR.read_text("utf-8"))
    data["request"]["path"] = "/v2/contents/7488"
    target.write_text(json.dumps(data), "utf-8")
    [item] = plan_from_fixtures(tmp_path, load_contract())
    assert "fits no operation of the contract" in item.error


def test_a_body_off_the_contract_is_recorded_with_a_note(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The recording is evidence, so it is kept; the line says where it breaks the contract."""
    upstream.route(
        _content(1), Reply(body={"version": "v1", "statusCode": 200, "data": {"id": "one"}})
    )
    with _recorder(upstream.url, tmp_path) as rec:
        [outcome] = rec.run([_item(1)]).outcomes
    assert outcome.status == "recorded"
    assert outcome.message.startswith("breaks the contract at ")
    assert outcome.message.endswith("(run pivotkit check)")
    assert read_exchange(tmp_path / "getContent" / "1.json").response.body["data"] == {"id": "one"}


def test_an_interrupted_run_keeps_what_it_wrote(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Ctrl-C between requests: the finished fixtures stay, the report says so, exit 130."""

    def interrupt(outcome: Any) -> None:
        raise KeyboardInterrupt

    with _recorder(upstream.url, tmp_path) as rec:
        report = rec.run([_item(7488), _item(1)], interrupt)
    assert [o.status for o in report.outcomes] == ["recorded"]
    assert report.stopped == "interrupted" and report.exit_code == 130
    assert (tmp_path / "getContent" / "7488.json").is_file()
    _assert_clean(tmp_path)


def test_serve_record_from_records_through_a_real_server(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """`pivotkit serve --record-from URL` answers an unrecorded id from upstream and keeps it."""
    import httpx

    upstream.route(_content(424242), Reply(200, {**BODY, "data": {**BODY["data"], "id": 424242}}))
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    shutil.copy(ROOT / "fixtures" / "accounts.toml", fixtures / "accounts.toml")
    served = serve_process(
        tmp_path,
        "--fixtures",
        str(fixtures),
        "--record-from",
        upstream.url,
        env=clean_env(PIVOT_API_KEY=KEY),
    )
    with served as (url, _, log):
        resp = httpx.get(
            f"{url}{_content(424242)}",
            headers=key_headers(FULL),
        )
    assert resp.status_code == 200 and resp.json()["data"]["id"] == 424242
    assert [s.path for s in upstream.seen] == [_content(424242)]
    assert upstream.seen[0].headers[KEY_HEADER.lower()] == KEY
    ex = read_exchange(fixtures / "getContent" / "424242.json")
    assert ex.meta["source"] == "live" and ex.response.body["data"]["id"] == 424242
    assert KEY not in log.read_text(errors="replace")
    _assert_clean(fixtures / "getContent")


# -- upstream failures, sizes, whole-exchange timeouts, encoded keys ------------------------------


def _record_7488(upstream: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`pivotkit record` of getContent 7488 in a subprocess, the key in the environment."""
    return subprocess.run(
        [
            *(sys.executable, "-c", "from pivotkit.cli import main; main()", "record"),
            *("--upstream", upstream, "--op", "getContent", "--param", "id=7488"),
            *("--out", str(out), *extra),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PIVOT_API_KEY": KEY},
        timeout=120,
    )


_HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("reply", "status", "named"),
    [
        (Reply(body=BODY, mode="reset"), 502, "connection broken"),
        (Reply(500, {"Message": "An error has occurred."}), 502, "HTTP 500 from upstream"),
        (Reply(raw=_HTML, headers={"content-type": "text/html"}), 502, "HTML page"),
        (
            Reply(raw=b'{"data": ', headers={"content-type": "application/json"}),
            502,
            "invalid JSON",
        ),
        (Reply(body=BODY, mode="truncate"), 502, "truncated or corrupt gzip"),
        (Reply(body=BODY, mode="hang"), 504, "timed out"),
        (Reply(raw=b"{}" * 10, gzip=False, mode="drip", drip=0.3), 504, "timed out"),
        (
            Reply(
                429, {"statusCode": 429, "message": "Rate limit"}, headers={"Retry-After": "99999"}
            ),
            502,
            "rate limited",
        ),
    ],
    ids=["reset", "500", "html", "invalid-json", "truncated", "hang", "drip", "429-99999"],
)
def test_record_through_failures_are_gateway_errors(
    tmp_path: Path, reply: Reply, status: int, named: str
) -> None:
    """`pivotkit serve --record-from`: an upstream that fails is the gateway's 502 (504 when
    the whole exchange outlasts PIVOT_RECORD_TIMEOUT), marked x-pivot-mock, with the failure
    in the body and one log line; a 429 asking a longer wait than PIVOT_RECORD_MAX_WAIT is not
    waited (one upstream call); nothing is written."""
    from tests.helpers import FULL, KEY_HEADER, clean_env, serve_process

    out = tmp_path / "recorded"
    with fake_upstream() as up:
        up.route(_content(7777), reply)
        env = clean_env(PIVOT_API_KEY=KEY, PIVOT_RECORD_TIMEOUT="1", PIVOT_RECORD_OUT=str(out))
        args = ("--record-from", up.url, "--fixtures", str(tmp_path / "fx"))
        shutil.copytree(ROOT / "fixtures", tmp_path / "fx")
        with serve_process(tmp_path, *args, env=env) as (url, _, log):
            import httpx

            answer = httpx.get(url + _content(7777), headers={KEY_HEADER: FULL}, timeout=30)
            text = log.read_text(errors="replace")
        seen = len(up.seen)
    assert answer.status_code == status
    assert answer.headers["x-pivot-mock"] == "record-through-failed"
    assert named in answer.json()["message"]
    assert f"record-through of GET {_content(7777)} failed" in text and named in text
    assert seen == 1
    assert KEY not in text and KEY not in answer.text
    assert not out.exists() or not list(out.rglob("*.json"))


def test_a_decompression_bomb_is_stopped_while_it_streams(tmp_path: Path) -> None:
    """A 64 MB gzip of zeros (64 KB on the wire) with --max-size 1M: stopped at 1 MB decoded,
    nothing written, exit 1, and the recorder never held more than a few MB."""
    import gzip
    import tracemalloc

    bomb = gzip.compress(b'{"data": "' + b"0" * (64 * 1024 * 1024) + b'"}', 1)
    with fake_upstream() as up:
        up.route(_content(7488), Reply(raw=bomb, gzip=False, headers={"content-encoding": "gzip"}))
        tracemalloc.start()
        with _recorder(up.url, tmp_path, max_size=1024 * 1024) as rec:
            report = rec.run([_item(7488)])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    (outcome,) = report.outcomes
    assert outcome.status == "failed" and "over 1,048,576 bytes once decoded" in outcome.message
    assert peak < 8 * 1024 * 1024, peak
    assert not list(tmp_path.rglob("*.json"))


def test_a_huge_declared_body_is_refused_unread(tmp_path: Path) -> None:
    """Content-Length: 2 GB (identity) over --max-size: refused from the header, at once;
    the CLI exits 1 with the reason and writes nothing."""
    with fake_upstream() as up:
        up.route(
            _content(7488),
            Reply(raw=b"0" * 65536, gzip=False, mode="repeat", length=2 * 1024**3),
        )
        result = _record_7488(up.url, tmp_path, "--max-size", "16M")
    assert result.returncode == 1, result.stderr
    assert "2,147,483,648 bytes (content-length), over --max-size 16,777,216" in (
        result.stdout + result.stderr
    )
    assert not list(tmp_path.rglob("*.json"))


def test_timeout_bounds_the_whole_exchange(tmp_path: Path) -> None:
    """A body dripped a byte every 0.2 s (60 s in all) with --timeout 1: a failure saying the
    exchange timed out, exit 3 (nothing reachable in time), no file; each read was quick, so
    only a whole-exchange deadline stops it."""
    body = json.dumps(BODY).encode()[:300]
    with fake_upstream() as up:
        up.route(_content(7488), Reply(raw=body, gzip=False, mode="drip", drip=0.2))
        result = _record_7488(up.url, tmp_path, "--timeout", "1")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "timed out: no whole answer within --timeout 1 s" in result.stdout + result.stderr
    assert not list(tmp_path.rglob("*.json"))


def test_an_echoed_key_is_scrubbed_in_every_encoding(tmp_path: Path) -> None:
    """The upstream echoes the key as base64, base64url, hex (both cases), percent-encoded
    and inside a longer base64 blob, in headers and in the body: none reaches the file, and
    the scanner finds nothing left."""
    import base64
    import re

    from pivotkit.redact import encoded_forms

    body = json.loads(json.dumps(BODY))
    body["data"]["echo"] = {
        "b64": "{key_b64}",
        "b64url": "{key_b64url}",
        "hex": "{key_hex}",
        "HEX": "{key_HEX}",
        "pct": "/x?subscription-key={key_pct}",
        "upper": "{key_upper}",
    }
    blob = base64.b64encode(b"user:" + KEY.encode() + b":2026").decode()
    headers = {
        "x-echo-b64": "{key_b64}",
        "x-echo-hex": "{key_HEX}",
        "authorization": "Basic " + blob,
    }
    with fake_upstream() as up:
        up.route(_content(7488), Reply(body=body, headers=headers))
        with _recorder(up.url, tmp_path) as rec:
            (outcome,) = rec.run([_item(7488)]).outcomes
    assert outcome.status == "recorded", outcome.message
    text = (tmp_path / "getContent" / "7488.json").read_text("utf-8")
    assert not re.search("|".join(encoded_forms(KEY)), text)
    assert base64.b64encode(KEY.encode()).decode()[:20] not in text
    _assert_clean(tmp_path)


def test_a_header_the_mock_could_not_serve_is_left_out(tmp_path: Path) -> None:
    """An upstream header outside ASCII (one server would send it as UTF-8, the other not at
    all) is left out of the fixture, the outcome says so, and the fixture loads."""
    with fake_upstream() as up:
        up.route(_content(7488), Reply(body=BODY, headers={"x-note": "caf\u00e9"}))
        with _recorder(up.url, tmp_path) as rec:
            (outcome,) = rec.run([_item(7488)]).outcomes
    assert outcome.status == "recorded" and "left out header(s) x-note" in outcome.message
    loaded = read_exchange(tmp_path / "getContent" / "7488.json")
    assert "x-note" not in loaded.response.headers
