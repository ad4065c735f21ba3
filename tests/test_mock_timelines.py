"""Timelines over real sockets: the data as of a step, the updates operation consistent with
the steps and the date-time asked, the admin endpoints; and the example importer test that
catches a planted forgot-to-delete bug (pytester)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pivotkit.conformance import Conformance
from pivotkit.errors import ScenarioError
from pivotkit.harness import MockServer, make_app

from .conftest import FIXTURES, ROOT
from .helpers import BASIC, key_headers, path_of

TOKEN = "admin-token-for-timeline-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAME = "canal-plus-evening"
DAY_PATH = path_of("listBroadcasts", channelId=34, start="20241112", end="20241112")
T1, T2, T3 = "20241111180000", "20241112090000", "20241112150000"


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    state = tmp_path_factory.mktemp("timelines") / "state.sqlite"
    settings = {"PIVOT_STATE": str(state), "PIVOT_ADMIN_TOKEN": TOKEN}
    with MockServer(make_app(settings)) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(mock: MockServer) -> Iterator[None]:
    yield
    mock.reset()


def _data(mock: MockServer, path: str, key: str | None = None) -> Any:
    response = httpx.get(mock.url + path, headers=key_headers(key) if key else key_headers())
    assert response.status_code == 200, response.text
    Conformance().check(response)
    return response.json().get("data")


def _day(mock: MockServer) -> list[tuple[int, str]] | None:
    data = _data(mock, DAY_PATH)
    return None if data is None else [(b["id"], b["start"][11:16]) for b in data]


def _updates(mock: MockServer, since: str) -> list[tuple[int, str, str]]:
    data = _data(mock, path_of("listUpdates", since=since)) or []
    return [(u["channelId"], u["day"], u["lastUpdate"]) for u in data]


def test_not_started_a_timeline_changes_nothing(mock: MockServer) -> None:
    """Before its first step the day is the empty-200 and listUpdates answers its fixtures."""
    state = mock.timeline(NAME).state()
    assert (state.step, state.steps, state.at) == (0, 3, None)
    assert _day(mock) is None
    assert _updates(mock, "20241105060000")[0] == (34, "20241105", "2024-11-05T08:41:17.53")


def test_each_step_is_the_data_as_it_was_then(mock: MockServer) -> None:
    """Step 1 the schedule; step 2 a broadcast removed, one moved, a content edited; step 3
    a content-only change (the broadcasts as in step 2). Later steps win over earlier ones,
    and every answer keeps the contract."""
    timeline = mock.timeline(NAME)
    assert timeline.advance().step_name == "schedule"
    assert _day(mock) == [(901201, "21:10"), (901202, "22:05"), (901203, "23:00")]
    original = _data(mock, path_of("getContent", id=50311))["synopsis"]
    assert timeline.advance().step_name == "edits"
    assert _day(mock) == [(901201, "21:10"), (901202, "22:15")]
    edited = _data(mock, path_of("getContent", id=50311))["synopsis"]
    assert edited.startswith(original) and edited != original
    before = _data(mock, path_of("getContent", id=50312))["shortSynopsis"]
    assert timeline.advance().step_name == "content"
    assert _day(mock) == [(901201, "21:10"), (901202, "22:15")]
    after = _data(mock, path_of("getContent", id=50312))
    assert after["shortSynopsis"] != before
    assert _data(mock, DAY_PATH)[1]["content"] == after  # the day embeds the same content
    assert _data(mock, path_of("getContent", id=50311))["synopsis"] == edited  # step 2's


def test_updates_follow_the_steps_and_the_date_time_asked(mock: MockServer) -> None:
    """A channel/day is reported when a step up to the current one was published after the
    date-time asked, once, with the latest step's lastUpdate: later than a poll after step 1
    at step 2, earlier than a poll after step 2 at step 3; nothing new is the empty-200."""
    timeline = mock.timeline(NAME)
    timeline.advance()
    assert _updates(mock, "20241110000000") == [(34, "20241112", "2024-11-11T17:58:03.41")]
    assert _updates(mock, T1) == []
    timeline.advance()
    step2 = [(34, "20241112", "2024-11-12T08:47:12.205")]
    assert _updates(mock, T1) == step2 and _updates(mock, "20241110000000") == step2
    assert _updates(mock, T2) == []
    timeline.advance()
    assert _updates(mock, T2) == step2  # reported again, its lastUpdate now earlier than since
    assert _updates(mock, T1) == step2  # once, though two steps changed it
    assert _updates(mock, T3) == [] and _updates(mock, "20991231235959") == []
    assert _data(mock, path_of("listUpdates", since=T3)) is None
    vias = [r.answer for r in mock.find_requests("listUpdates")][-1]
    assert vias == f"timeline {NAME} step 3 (content): updates since {T3}"


def test_a_restricted_account_sees_its_fields_only(mock: MockServer) -> None:
    """The basic account sees the timeline's data without the fields it may not see."""
    mock.timeline(NAME).advance()
    broadcasts = _data(mock, DAY_PATH, key=BASIC)
    assert broadcasts and all("synopsis" not in b["content"] for b in broadcasts)
    assert "synopsis" in _data(mock, DAY_PATH)[0]["content"]


def test_the_admin_endpoints(mock: MockServer) -> None:
    """next (step 1 when not started; 409 at the last step), step/<n>, reset, and 404 for a
    timeline that does not exist; every answer says where the timeline is."""
    base = f"{mock.url}/__pivot/timelines"
    listed = httpx.get(base, headers=AUTH).json()["timelines"]
    assert [(t["name"], t["step"], t["names"]) for t in listed] == [
        (NAME, 0, ["schedule", "edits", "content"])
    ]
    assert httpx.post(f"{base}/{NAME}/next", headers=AUTH).json()["at"] == T1
    assert httpx.post(f"{base}/{NAME}/step/3", headers=AUTH).json()["stepName"] == "content"
    last = httpx.post(f"{base}/{NAME}/next", headers=AUTH)
    assert last.status_code == 409 and "at its last step (3 of 3)" in last.json()["error"]
    assert httpx.post(f"{base}/{NAME}/step/4", headers=AUTH).status_code == 409
    assert httpx.post(f"{base}/{NAME}/reset", headers=AUTH).json()["step"] == 0
    assert _day(mock) is None
    assert httpx.post(f"{base}/nope/next", headers=AUTH).status_code == 404
    assert httpx.post(f"{base}/{NAME}/next").status_code == 401


def test_the_python_handles(mock: MockServer) -> None:
    """timeline(name).advance(), go(n), reset(), step and at; an unknown name is refused at
    once, the last step's advance() says why."""
    timeline = mock.timeline(NAME)
    assert (timeline.step, timeline.at) == (0, None)
    assert timeline.go(2).at == T2 and timeline.step == 2
    timeline.go(3)
    with pytest.raises(ScenarioError, match="at its last step"):
        timeline.advance()
    assert timeline.reset().step == 0
    with pytest.raises(ScenarioError, match=f"no such timeline \\(known: {NAME}\\)"):
        mock.timeline("canal-plus")


def test_the_reset_stops_every_timeline(mock: MockServer) -> None:
    """The per-test reset puts every timeline back to not started."""
    mock.timeline(NAME).go(2)
    mock.reset()
    assert mock.timeline(NAME).step == 0 and _day(mock) is None


def test_a_broken_timeline_stops_the_start(tmp_path: Path) -> None:
    """A step folder holding an invalid fixture is refused with the timeline, the step and
    the file (a timeline is data a test relies on: nothing is left out quietly)."""
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, root)
    broken = root / "timelines" / NAME / "2-edits" / "getContent" / "50311.json"
    broken.write_text("{", "utf-8")
    with pytest.raises(
        ScenarioError, match=r"timeline 'canal-plus-evening' step 2 \(edits\).*50311.json"
    ):
        make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_FIXTURES": str(root)})
    shutil.rmtree(root / "timelines" / NAME / "2-edits")
    with pytest.raises(ScenarioError, match="/timelines/0/steps/1/fixtures"):
        make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_FIXTURES": str(root)})


def test_a_contract_without_the_updates_role_refuses_updates(
    tmp_path: Path, schemas_copy: Path
) -> None:
    """Without x-pivot-role: updates the mock cannot tell which operation to answer from the
    steps: a timeline that lists updates is refused at start, naming the mark to add."""
    openapi = schemas_copy / "openapi.yaml"
    openapi.write_text(
        openapi.read_text("utf-8").replace("      x-pivot-role: updates\n", ""), "utf-8"
    )
    with pytest.raises(ScenarioError, match="marks no operation x-pivot-role: updates"):
        make_app({"PIVOT_STATE": str(tmp_path / "s.sqlite"), "PIVOT_SCHEMAS": str(schemas_copy)})


def test_the_generator_writes_the_bundled_timeline() -> None:
    """tools/make_fixtures.py writes exactly fixtures/timelines/ and fixtures/scenarios.json
    (edit the script, not the JSON)."""
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", ROOT / "tools" / "make_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build_timeline(module.build())
    on_disk = {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "timelines").rglob("*.json")}
    assert set(built) == on_disk | {"scenarios.json"}
    for relative, data in built.items():
        text = (FIXTURES / relative).read_text("utf-8")
        assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n", relative


# -- the example importer test (examples/test_importer.py) ----------------------------------


def _example_project(pytester: pytest.Pytester, importer: str) -> None:
    examples = ROOT / "examples"
    for name in ("importer.py", "test_importer.py"):
        shutil.copy(examples / name, pytester.path / name)
    pytester.makeconftest(
        f"""
        import pytest
        from importer import {importer}

        @pytest.fixture
        def importer_class():
            return {importer}
        """
    )


def test_the_example_passes_with_the_correct_importer(pytester: pytest.Pytester) -> None:
    """The importer that re-imports each reported day in full passes, in process and over a
    socket."""
    _example_project(pytester, "Importer")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_example_catches_the_planted_forgot_to_delete_bug(pytester: pytest.Pytester) -> None:
    """ForgetfulImporter (upserts, never deletes) fails the example test at the removed
    broadcast, with the example's message, in process and over a socket."""
    _example_project(pytester, "ForgetfulImporter")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*AssertionError: La Haine (901203) was removed from the day: delete it*"]
    )
