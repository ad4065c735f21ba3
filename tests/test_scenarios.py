"""The scenarios file: its format, one-line errors, the answers' shorthand and series, and its
checks against the contract (``pivotkit check``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pivotkit.cli import main
from pivotkit.errors import ScenarioError
from pivotkit.fixtures import FixtureSet
from pivotkit.scenarios import (
    Sequence,
    Step,
    answer_data,
    load_scenarios,
    parse_scenarios,
    parse_sequence,
    sequence_problems,
    timeline_problems,
)

from .conftest import FIXTURES
from .helpers import CONTRACT


def _sequence(*answers: dict[str, Any], then: str = "last", **match: Any) -> dict[str, Any]:
    return {
        "name": "s",
        "match": {"operation": "getContent", **match},
        "answers": list(answers),
        "then": then,
    }


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, "utf-8")
    return path


def test_the_bundled_file_loads() -> None:
    """fixtures/scenarios.json holds the bundled timeline, three steps forward in time."""
    scenarios = load_scenarios(FIXTURES / "scenarios.json")
    timeline = scenarios.timeline("canal-plus-evening")
    assert [s.name for s in timeline.steps] == ["schedule", "edits", "content"]
    assert [s.at for s in timeline.steps] == sorted(s.at for s in timeline.steps)
    assert all(s.fixtures is not None and s.fixtures.is_dir() for s in timeline.steps)
    assert scenarios.sequences == ()
    with pytest.raises(ScenarioError, match="known: canal-plus-evening"):
        scenarios.timeline("nope")


@pytest.mark.parametrize(
    ("data", "pointer", "words"),
    [
        ([], "", "sequences` and `timelines"),
        ({"sequence": []}, "", "sequences` and `timelines"),
        ({"sequences": {}}, "/sequences", "is a list"),
        ({"sequences": [{"name": "s", "answers": [{"status": 503}]}]}, "/sequences/0", "a match"),
        ({"sequences": [_sequence({"stauts": 503})]}, "/sequences/0/answers/0", "an answer is"),
        (
            {"sequences": [_sequence({"status": 99})]},
            "/sequences/0/answers/0/status",
            "HTTP status",
        ),
        (
            {"sequences": [_sequence({"answer": "fixtures"})]},
            "/sequences/0/answers/0/answer",
            "fixture (the",
        ),
        (
            {"sequences": [_sequence({"status": 503, "times": 0})]},
            "/sequences/0/answers/0/times",
            "1 to 1000",
        ),
        ({"sequences": [_sequence({"status": 503}, then="forever")]}, "/sequences/0/then", "cycle"),
        (
            {"sequences": [{**_sequence({"status": 503}), "name": "has space"}]},
            "/sequences/0/name",
            "goes in URLs",
        ),
        ({"sequences": [_sequence()]}, "/sequences/0/answers", "1 to 1000"),
        (
            {"timelines": [{"name": "t", "steps": [{"name": "a"}]}]},
            "/timelines/0/steps/0",
            "date-time",
        ),
    ],
)
def test_shape_errors_name_the_pointer(data: Any, pointer: str, words: str, tmp_path: Path) -> None:
    """Each shape error is one line with the file, the JSON pointer and what to write."""
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(_write(tmp_path, data))
    error = caught.value
    assert error.pointer == pointer
    assert words in error.reason
    assert str(tmp_path / "scenarios.json") in str(error) and "\n" not in str(error)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"answer": "empty", "status": 503}, "give answer or status"),
        ({"retryAfter": 2, "status": 503}, "retryAfter goes with status 429 or 403"),
        ({"retryAfter": 2}, "retryAfter goes with"),
        ({"fault": "status=503", "status": 503}, "not both"),
    ],
)
def test_contradictory_answers_are_refused(answer: dict[str, Any], words: str) -> None:
    """An answer that says two things is refused, naming both."""
    with pytest.raises(ScenarioError, match=words) as caught:
        parse_sequence(_sequence(answer))
    assert caught.value.pointer == "/answers/0"


def test_names_are_unique_and_steps_go_forward(tmp_path: Path) -> None:
    """Two sequences (or timelines, or steps) of one name, or a step not after the previous
    one, are refused with the pointer of the second."""
    twice = {"sequences": [_sequence({"status": 503}), _sequence({"status": 500})]}
    with pytest.raises(ScenarioError, match="two sequences are named 's'") as caught:
        load_scenarios(_write(tmp_path, twice))
    assert caught.value.pointer == "/sequences/1/name"
    steps = [{"name": "a", "at": "20241112090000"}, {"name": "b", "at": "20241112090000"}]
    with pytest.raises(ScenarioError, match="steps go forward in time") as caught:
        load_scenarios(_write(tmp_path, {"timelines": [{"name": "t", "steps": steps}]}))
    assert caught.value.pointer == "/timelines/0/steps/1/at"
    steps[1]["at"], steps[1]["name"] = "20241112100000", "a"
    with pytest.raises(ScenarioError, match="two steps are named 'a'"):
        load_scenarios(_write(tmp_path, {"timelines": [{"name": "t", "steps": steps}]}))


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    """A broken file says the line; a missing one says so; a file in another encoding too."""
    with pytest.raises(ScenarioError, match="invalid JSON") as caught:
        load_scenarios(_write(tmp_path, '{\n  "sequences": [\n'))
    assert caught.value.line == 3
    with pytest.raises(ScenarioError, match="cannot read it"):
        load_scenarios(tmp_path / "missing.json")
    path = tmp_path / "latin.json"
    path.write_bytes('{"description": "é"}'.encode("latin-1"))
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenarios(path)


@pytest.mark.parametrize(
    ("value", "data"),
    [
        (503, {"status": 503}),
        ("503", {"status": 503}),
        (200, {"answer": "fixture"}),
        ("fixture", {"answer": "fixture"}),
        ("empty", {"answer": "empty"}),
        ("dynamic", {"answer": "dynamic"}),
        ("static", {"answer": "static"}),
        ("status=429,retry-after=2", {"fault": "status=429,retry-after=2"}),
        ("latency=2s", {"fault": "latency=2s"}),
        ({"status": 429, "retry_after": 2}, {"status": 429, "retryAfter": 2}),
        ({"fixture": "7520", "times": 2}, {"fixture": "7520", "times": 2}),
    ],
)
def test_the_shorthand_of_tests(value: Any, data: dict[str, Any]) -> None:
    """What a test writes in pivot_mock.sequence(...) becomes the file's format."""
    assert answer_data(value) == data
    parse_sequence(_sequence(data))  # and the format accepts it


@pytest.mark.parametrize("value", [True, None, 2.5, ["503"]])
def test_a_shorthand_that_is_no_answer(value: Any) -> None:
    """A boolean, None, a float or a list is not an answer."""
    with pytest.raises(ScenarioError, match="is not an answer"):
        answer_data(value)


@pytest.mark.parametrize(
    ("then", "played"),
    [
        ("last", ["503", "503", "empty", "fixture 7520", "fixture 7520", "fixture 7520"]),
        ("cycle", ["503", "503", "empty", "fixture 7520", "503", "503"]),
        ("fixture", ["503", "503", "empty", "fixture 7520", "fixture", "fixture"]),
    ],
)
def test_a_series_and_what_follows_it(then: str, played: list[str]) -> None:
    """``times`` repeats an answer; after the last one ``then`` repeats it, starts again, or
    gives the ordinary answer."""
    sequence = parse_sequence(
        _sequence({"status": 503, "times": 2}, {"answer": "empty"}, {"fixture": "7520"}, then=then)
    )
    assert sequence.length == 4
    assert [sequence.step_at(i).label() for i in range(6)] == played


def test_a_sequence_round_trips() -> None:
    """A parsed sequence gives back its data (what the mock stores and lists)."""
    data = _sequence({"status": 429, "retryAfter": 2}, {"answer": "fixture"}, params={"id": "7488"})
    assert parse_sequence(data).to_dict() == data
    assert Step(answer="fixture").ordinary and not Step(status=503).ordinary


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_sequence({"status": 503}, operation="getContnet"), "unknown operation 'getContnet'"),
        (_sequence({"status": 503}, params={"idd": "1"}), "getContent has no parameter 'idd'"),
        (_sequence({"status": 418}), "getContent does not answer 418"),
        (_sequence({"status": 201}), "does not answer 201"),
        (_sequence({"fault": "status=418"}), "status must be one of"),
        (_sequence({"fault": "jitter=5"}), "unknown fault"),
        (_sequence({"fixture": "7489"}), "getContent has no fixture '7489'"),
        (_sequence({"fixture": "7488", "status": 401}), "fixture '7488' answers 200, not 401"),
    ],
)
def test_the_contract_and_fixtures_check_a_sequence(data: dict[str, Any], words: str) -> None:
    """The operation, parameter names, statuses, fault specs and fixture names are checked."""
    fixtures = FixtureSet.load(FIXTURES)
    problems = sequence_problems(parse_sequence(data), CONTRACT, fixtures)
    assert problems and words in problems[0]


def test_statuses_a_sequence_may_script() -> None:
    """200, every status the operation declares, and any 5xx."""
    fixtures = FixtureSet.load(FIXTURES)
    for status in (200, 400, 401, 403, 404, 429, 500, 502, 503, 504, 599):
        sequence: Sequence = parse_sequence(_sequence({"status": status}))
        assert sequence_problems(sequence, CONTRACT, fixtures) == [], status


def _timeline(tmp_path: Path, **step: Any) -> Any:
    data = {"timelines": [{"name": "t", "steps": [{"name": "a", "at": "20241112090000", **step}]}]}
    return parse_scenarios(data, "t.json", tmp_path).timelines[0]


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ({"at": "2024-11-12"}, "/steps/0/at: since"),
        ({"at": "20241312090000"}, "/steps/0/at: since"),
        (
            {"updates": [{"channelId": 34, "day": "20241112"}]},
            "/steps/0/updates/0: 'lastUpdate' is a required",
        ),
        (
            {
                "updates": [
                    {"channelId": "34", "day": "20241112", "lastUpdate": "2024-11-12T08:00:00"}
                ]
            },
            "/steps/0/updates/0/channelId",
        ),
        (
            {
                "updates": [
                    {"channelId": 34, "day": "20241112", "lastUpdate": "2024-11-12T08:00:00"}
                ]
                * 2
            },
            "/steps/0/updates/1: 34/20241112 is reported twice",
        ),
        ({"fixtures": "nowhere"}, "/steps/0/fixtures: "),
    ],
)
def test_the_contract_checks_a_timeline(tmp_path: Path, step: dict[str, Any], words: str) -> None:
    """Step times are the updates operation's date-time, update items its items, one per
    channel/day, and fixture folders exist."""
    problems = timeline_problems(_timeline(tmp_path, **step), CONTRACT)
    assert problems and words in problems[0], problems


def test_a_timeline_step_may_not_hold_updates_fixtures(tmp_path: Path) -> None:
    """The updates operation is answered from the steps, never from a fixture of a step."""
    (tmp_path / "step" / "listUpdates").mkdir(parents=True)
    problems = timeline_problems(_timeline(tmp_path, fixtures="step"), CONTRACT)
    assert any("listUpdates fixtures are not used in a timeline" in p for p in problems)


def _copy_fixtures(tmp_path: Path) -> Path:
    target = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, target)
    return target


def test_check_passes_the_bundled_scenarios() -> None:
    """`pivotkit check` lists scenarios.json and every timeline fixture, and they pass."""
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "ok    " in result.output and "scenarios.json" in result.output
    assert "timelines/canal-plus-evening/2-edits/listBroadcasts/34-20241112.json" in result.output


def test_check_fails_on_a_broken_scenarios_file(tmp_path: Path) -> None:
    """A scenarios file the contract contradicts, or a broken timeline fixture, fails check
    (exit 1) with the file and the pointer."""
    root = _copy_fixtures(tmp_path)
    scenarios = json.loads((root / "scenarios.json").read_text("utf-8"))
    scenarios["timelines"][0]["steps"][1]["at"] = "20241112095960"  # no 60th second
    scenarios["sequences"] = [_sequence({"status": 418})]
    (root / "scenarios.json").write_text(json.dumps(scenarios), "utf-8")
    broken = root / "timelines/canal-plus-evening/1-schedule/listBroadcasts/34-20241112.json"
    data = json.loads(broken.read_text("utf-8"))
    data["response"]["body"]["data"][0]["start"] = 2024
    broken.write_text(json.dumps(data), "utf-8")
    result = CliRunner().invoke(main, ["check", "--fixtures", str(root), "-q"])
    assert result.exit_code == 1
    assert "/sequences/0/answers/0/status: getContent does not answer 418" in result.output
    assert "/timelines/0/steps/1/at" in result.output
    assert f"FAIL  {broken} /data/0/start" in result.output


def test_check_reports_an_unreadable_scenarios_file(tmp_path: Path) -> None:
    """Invalid JSON in scenarios.json is one failed file with its line, not a traceback."""
    root = _copy_fixtures(tmp_path)
    (root / "scenarios.json").write_text("{\n  nope\n}", "utf-8")
    result = CliRunner().invoke(main, ["check", "--fixtures", str(root), "-q"])
    assert result.exit_code == 1
    assert "scenarios.json: line 2: invalid JSON" in result.output
