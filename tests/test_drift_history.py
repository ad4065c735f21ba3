"""The drift history (``--history``): runs kept in SQLite, each finding new / ongoing /
resolved, ``--alert-on``, the webhook fired once, ``pivotkit drift history``, bounds, secrets,
through the CLI in a subprocess and in-process against a drifting upstream on loopback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from pivotkit.drift import DriftOptions, run_drift
from pivotkit.drift.history import DEFAULT_PATH, History

from .conftest import FIXTURES, SCHEMAS
from .drifting import CONTENT, DriftingUpstream, data_of
from .helpers import clean_env, pivotkit_command

KEY = "00112233445566778899aabbccddeeff"


@pytest.fixture(scope="module")
def upstream() -> Iterator[DriftingUpstream]:
    """The bundled fixtures, served as they are unless a test plants a mutation."""
    server = DriftingUpstream(FIXTURES, key=KEY)
    yield server
    server.close()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback: its URL and the JSON bodies it got."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()
    server.server_close()
    thread.join(5)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pivotkit ARGS`` in a subprocess, in ``tmp_path``, with the upstream's key."""
    return subprocess.run(
        pivotkit_command(*args),
        cwd=tmp_path,
        env=clean_env(PIVOT_API_KEY=KEY),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _drift_cli(
    tmp_path: Path, upstream: DriftingUpstream, *extra: str
) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "drift.json"
    done = _cli(
        tmp_path,
        "drift",
        "--target",
        upstream.url,
        "--fixtures",
        str(FIXTURES),
        "--schemas",
        str(SCHEMAS),
        "--rate",
        "1000",
        "--json",
        str(out),
        *extra,
    )
    return done.returncode, json.loads(out.read_text("utf-8")), done.stdout + done.stderr


def test_a_drift_planted_between_runs_2_and_3_is_new_then_ongoing_then_resolved(
    upstream: DriftingUpstream, tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """Two unchanged runs: 0 findings. A field removed before run 3: new in run 3 (exit 1,
    the webhook fires), ongoing in run 4 (since run 3, 2 runs; exit 0, no webhook under
    --alert-on new), resolved in run 5 once it is back. The webhook fired once in all."""
    url, posts = receiver
    history = tmp_path / "h.sqlite"
    args = ["--history", str(history), "--alert-on", "new", "--webhook", url]
    statuses = []
    for run in range(1, 6):
        upstream.mutate = data_of(CONTENT, lambda d: d.pop("title")) if run in (3, 4) else None
        code, report, output = _drift_cli(tmp_path, upstream, *args)
        upstream.mutate = None
        assert report["run"] == run
        found = {(f["pointer"], f["kind"]): f for f in report["findings"]}
        if run in (1, 2, 5):
            assert found == {}, output
            assert code == 0
        else:
            (finding,) = found.values()
            assert (finding["pointer"], finding["kind"]) == ("/data/title", "required-missing")
            statuses.append((finding["status"], finding["since"], finding["runs"]))
            assert code == (1 if run == 3 else 0), output
        if run == 5:
            assert [(f["pointer"], f["status"]) for f in report["resolved"]] == [
                ("/data/title", "resolved")
            ]
            assert "(resolved) getContent /data/title required-missing" in output
    assert statuses == [("new", 3, 1), ("ongoing", 3, 2)]
    assert len(posts) == 1
    assert posts[0]["run"] == 3 and posts[0]["findings"][0]["status"] == "new"

    listing = _cli(tmp_path, "drift", "history", "--history", str(history))
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == ["5", "4", "3", "2", "1"]
    assert [row[6] for row in rows] == ["1", "0", "0", "0", "0"]  # resolved
    assert [row[7] for row in rows] == ["no", "no", "yes", "no", "no"]  # alerted
    life = _cli(tmp_path, "drift", "history", "--history", str(history), "--pointer", "/data/title")
    assert life.returncode == 0, life.stderr
    assert life.stdout.splitlines()[0] == "getContent /data/title required-missing"
    assert [line.split(": ")[-1] for line in life.stdout.splitlines()[1:]] == [
        "new",
        "ongoing",
        "resolved",
    ]


def test_alert_on_breaking_pages_every_run_and_any_pages_on_info(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """--alert-on breaking (the default) exits 1 on an ongoing break too; --alert-on any
    exits 1 on an info finding that breaking and new let pass."""
    history = ["--history", str(tmp_path / "h.sqlite")]
    upstream.mutate = data_of(CONTENT, lambda d: d.update(id="7488"))
    try:
        assert _drift_cli(tmp_path, upstream, *history)[0] == 1
        assert _drift_cli(tmp_path, upstream, *history)[0] == 1
        assert _drift_cli(tmp_path, upstream, *history, "--alert-on", "new")[0] == 0
        upstream.mutate = data_of(CONTENT, lambda d: d.update(addedField=1))
        code, report, _ = _drift_cli(tmp_path, upstream, "--alert-on", "new")
        assert (code, report["findings"][0]["kind"]) == (0, "new-field")
        assert _drift_cli(tmp_path, upstream, "--alert-on", "any")[0] == 1
    finally:
        upstream.mutate = None


def test_a_run_that_did_not_check_an_operation_resolves_none_of_its_findings(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """A finding of an operation the next run did not ask for stays open: the run after
    that still sees it ongoing, not new."""
    history = tmp_path / "h.sqlite"
    only_person = tmp_path / "plan.yaml"
    only_person.write_text("- operationId: getPerson\n  params: {id: 1001}\n", "utf-8")
    upstream.mutate = data_of(CONTENT, lambda d: d.pop("title"))
    try:
        _drift_cli(tmp_path, upstream, "--history", str(history))
        _, report, _ = _drift_cli(
            tmp_path, upstream, "--history", str(history), "--plan", str(only_person)
        )
        assert report["resolved"] == [] and report["findings"] == []
        _, report, _ = _drift_cli(tmp_path, upstream, "--history", str(history))
    finally:
        upstream.mutate = None
    (finding,) = report["findings"]
    assert (finding["status"], finding["since"], finding["runs"]) == ("ongoing", 1, 2)


def test_a_bare_history_flag_uses_the_project_folder_and_the_variable(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """``--history`` alone writes ./.pivotkit/drift-history.sqlite; $PIVOT_DRIFT_HISTORY
    moves it."""
    code, report, _ = _drift_cli(tmp_path, upstream, "--history")
    assert code == 0 and report["run"] == 1
    assert (tmp_path / DEFAULT_PATH).is_file()
    elsewhere = tmp_path / "cache" / "drift.sqlite"
    done = subprocess.run(
        pivotkit_command("drift", "--target", upstream.url, "--rate", "1000", "--history"),
        cwd=tmp_path,
        env=clean_env(PIVOT_API_KEY=KEY, PIVOT_DRIFT_HISTORY=str(elsewhere)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert elsewhere.is_file()
    with History(tmp_path / DEFAULT_PATH) as kept:
        assert len(kept.runs()) == 1


def test_a_file_that_is_no_history_is_exit_2_before_any_request(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """A text file given as the history: one error line naming it, exit 2, no call sent,
    the file untouched."""
    bogus = tmp_path / "notes.txt"
    bogus.write_text("my notes\n" * 200, "utf-8")
    upstream.calls = 0
    done = _cli(tmp_path, "drift", "--target", upstream.url, "--history", str(bogus))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "notes.txt" in done.stderr
    assert upstream.calls == 0
    assert bogus.read_text("utf-8") == "my notes\n" * 200
    missing = _cli(tmp_path, "drift", "history", "--history", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 2 and "no drift history" in missing.stderr


def test_the_history_keeps_the_newest_runs_of_each_target(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """--history-keep 2 after four runs: the runs 3 and 4 are left, nothing of the others."""
    history = tmp_path / "h.sqlite"
    for _ in range(4):
        _drift_cli(tmp_path, upstream, "--history", str(history), "--history-keep", "2")
    with History(history) as kept:
        assert [r.id for r in kept.runs()] == [4, 3]
    db = sqlite3.connect(history)
    try:
        for table in ("answers", "observed", "findings"):
            runs = {r[0] for r in db.execute(f"SELECT run FROM {table}")}
            assert runs <= {3, 4}, table
    finally:
        db.close()


def test_the_history_file_stays_under_its_byte_bound(tmp_path: Path) -> None:
    """Past ``max_bytes`` the oldest runs go (never the newest), and the pages are freed."""
    path = tmp_path / "h.sqlite"
    with History(path, max_bytes=300_000) as history:
        for n in range(12):
            history.record(
                target="t",
                started=f"2024-01-{n + 1:02d}T00:00:00Z",
                finished="",
                findings=[],
                summary={},
                operations={"getContent": 1},
                seen={},
                observed={"getContent": {"noise": os.urandom(40_000).hex()}},
            )
        ids = [r.id for r in history.runs()]
        assert ids[0] == 12 and len(ids) < 12
        assert history.size() <= 300_000
    assert path.stat().st_size <= 400_000


def test_a_run_that_fails_while_being_recorded_leaves_nothing(tmp_path: Path) -> None:
    """A run is one transaction: an error while storing it leaves the history as it was."""
    path = tmp_path / "h.sqlite"
    with History(path) as history:
        with pytest.raises(TypeError):
            history.record(
                target="t",
                started="s",
                finished="f",
                findings=[],
                summary={},
                operations={"getContent": 1},
                seen={},
                observed={"getContent": {"not json": object()}},
            )
        assert history.runs() == []
        db = sqlite3.connect(path)
        assert db.execute("SELECT count(*) FROM answers").fetchone() == (0,)
        db.close()


def test_secrets_never_reach_the_history(upstream: DriftingUpstream, tmp_path: Path) -> None:
    """The key echoed in a value and as a field name is in no byte of the file, compressed
    blobs included."""
    history = tmp_path / "h.sqlite"
    upstream.mutate = data_of(CONTENT, lambda d: d.update({"token": KEY, KEY: 1}))
    try:
        _drift_cli(tmp_path, upstream, "--history", str(history))
    finally:
        upstream.mutate = None
    raw = history.read_bytes()
    assert KEY.encode() not in raw
    db = sqlite3.connect(history)
    try:
        blobs = [r[0] for r in db.execute("SELECT schema FROM observed")]
        blobs += [r[0] for r in db.execute("SELECT data FROM expectations")]
        texts = [r[0] for r in db.execute("SELECT body FROM findings")]
    finally:
        db.close()
    assert blobs and texts
    assert not any(KEY in zlib.decompress(b).decode() for b in blobs)
    assert not any(KEY in t for t in texts)


def test_the_history_shows_an_observed_schema_and_json(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """`drift history --schema OP` prints the operation's observed schema of the last run;
    `--json` lists the runs for tools."""
    history = tmp_path / "h.sqlite"
    _drift_cli(tmp_path, upstream, "--history", str(history))
    shown = _cli(tmp_path, "drift", "history", "--history", str(history), "--schema", "getPerson")
    assert shown.returncode == 0, shown.stderr
    schema = json.loads(shown.stdout)
    assert "firstName" in schema["properties"]["data"]["properties"]
    listed = json.loads(
        _cli(tmp_path, "drift", "history", "--history", str(history), "--json").stdout
    )
    assert [r["id"] for r in listed] == [1]
    assert listed[0]["operations"]["getContent"] > 0


def test_in_process_runs_share_the_history_with_the_cli(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """run_drift with ``history=`` is the same store: a run there continues the CLI's."""
    history = tmp_path / "h.sqlite"
    _drift_cli(tmp_path, upstream, "--history", str(history))
    options = DriftOptions(
        target=upstream.url,
        fixtures_dir=FIXTURES,
        schemas_dir=SCHEMAS,
        rate=1000.0,
        history=history,
        json_out=tmp_path / "d.json",
    )
    assert run_drift(options, environ={"PIVOT_API_KEY": KEY}, echo=lambda _: None) == 0
    assert json.loads((tmp_path / "d.json").read_text("utf-8"))["run"] == 2


def test_the_example_workflow_drift_step_runs(
    upstream: DriftingUpstream, tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """The nightly drift step of examples/github-workflow.yml, with a loopback upstream for
    live and a receiver for the webhook secret: exit 0, every report written, the history in
    the cached folder, no webhook (nothing new and breaking)."""
    import shlex

    import yaml

    from .conftest import ROOT

    url, posts = receiver
    jobs = yaml.safe_load((ROOT / "examples" / "github-workflow.yml").read_text("utf-8"))["jobs"]
    cached = [s["with"]["path"] for s in jobs["drift"]["steps"] if "cache" in s.get("uses", "")]
    (line,) = [
        s["run"] for s in jobs["drift"]["steps"] if s.get("run", "").startswith("pivotkit drift")
    ]
    words = shlex.split(line.replace("${{ secrets.DRIFT_WEBHOOK }}", url))
    words[words.index("--target") + 1] = upstream.url
    done = _cli(tmp_path, *words[1:], "--rate", "1000")  # the live rate (5/s) is no test's
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("drift.html", "drift.md", "drift.json", "drift.xml"):
        assert (tmp_path / "reports" / name).is_file()
    assert cached == [".pivotkit"] and (tmp_path / DEFAULT_PATH).is_file()
    assert posts == []


def test_history_reads_the_file_and_target_given_before_it(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """`pivotkit drift --history FILE [--target T] history` reads FILE (and keeps to T), as
    `pivotkit drift history --history FILE` does."""
    history = tmp_path / "h.sqlite"
    _drift_cli(tmp_path, upstream, "--history", str(history))
    before = _cli(tmp_path, "drift", "--history", str(history), "history")
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines()[1].split()[0] == "1"
    other = _cli(
        tmp_path, "drift", "--history", str(history), "--target", "http://elsewhere", "history"
    )
    assert other.returncode == 0 and other.stdout.strip() == "no run kept yet"


def test_another_sqlite_file_is_refused_and_left_untouched(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """The mock's own state file given as a history (to drift or to `drift history`):
    exit 2 naming it, and not one byte of it changed."""
    from mockserver.state import State

    state = tmp_path / "state.sqlite"
    State(state).close()
    before = state.read_bytes()
    for args in (
        ["drift", "--target", upstream.url, "--history", str(state)],
        ["drift", "history", "--history", str(state)],
    ):
        done = _cli(tmp_path, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "not a pivotkit drift history" in done.stderr
    assert state.read_bytes() == before


def test_a_removal_seen_only_by_the_history_stays_ongoing_until_the_field_is_back(
    upstream: DriftingUpstream, tmp_path: Path
) -> None:
    """No fixture: the history alone is the baseline. An optional field gone in runs 3 and 4
    is new, then ongoing (the runs that reported it are no evidence that it is gone for good),
    then resolved in run 5 once it is back; a run 6 without it again is new again."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("- operationId: getContent\n  params: {id: 7488}\n", "utf-8")
    (tmp_path / "none").mkdir()
    options = DriftOptions(
        target=upstream.url,
        fixtures_dir=tmp_path / "none",
        schemas_dir=SCHEMAS,
        plan=plan,
        rate=1000.0,
        history=tmp_path / "h.sqlite",
        json_out=tmp_path / "d.json",
    )
    life = []
    for run in range(1, 7):
        gone = run in (3, 4, 6)
        upstream.mutate = data_of(CONTENT, lambda d: d.pop("typographicTitle")) if gone else None
        try:
            run_drift(options, environ={"PIVOT_API_KEY": KEY}, echo=lambda _: None)
        finally:
            upstream.mutate = None
        report = json.loads((tmp_path / "d.json").read_text("utf-8"))
        found = [(f["pointer"], f["kind"], f["status"]) for f in report["findings"]]
        resolved = [(f["pointer"], f["status"]) for f in report["resolved"]]
        life.append((found, resolved))
    removal = "/data/typographicTitle", "field-removed"
    assert life == [
        ([], []),
        ([], []),
        ([(*removal, "new")], []),
        ([(*removal, "ongoing")], []),
        ([], [(removal[0], "resolved")]),
        ([(*removal, "new")], []),
    ]
