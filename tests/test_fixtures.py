"""Tests of pivotkit.fixtures: loading, matching, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pivotkit.errors import FixtureError, FixtureExists, FixtureNotFound
from pivotkit.fixtures import (
    Exchange,
    FixtureSet,
    read_exchange,
    safe_name,
    write_exchange,
)


def _exchange(body: Any, *, name: str = "7488", lang: str | None = None) -> Exchange:
    query = {"lang": lang} if lang else {}
    return Exchange.from_dict(
        {
            "request": {"method": "GET", "path": "/v1/api/v1/contents/7488", "query": query},
            "response": {"status": 200, "body": body},
            "meta": {
                "operationId": "getContent",
                "source": "synthetic",
                "recorded": "2026-01-01",
                "account": "full",
            },
        },
        name=name,
    )


def test_bundled_fixture_loads_as_a_frozen_exchange() -> None:
    """The bundled corpus loads; an exchange cannot be mutated."""
    fixtures = FixtureSet.load()
    ex = fixtures.get("GET", "/v1/api/v1/contents/7488")
    assert ex.operation_id == "getContent" and ex.response.status == 200
    assert ex.response.body["data"]["title"] == "Blade Runner"
    with pytest.raises(AttributeError):
        ex.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ex.response.headers["x"] = "y"  # type: ignore[index]


def test_lang_matching_and_french_fallback() -> None:
    """lang selects the fixture; absent means fr; an unknown lang falls back to French."""
    fr, en = _exchange({"v": "fr"}, name="a"), _exchange({"v": "en"}, name="b", lang="en")
    fixtures = FixtureSet([fr, en])
    path = "/v1/api/v1/contents/7488"
    assert fixtures.match("GET", path) is fr
    assert fixtures.match("GET", path, "en") is en
    assert fixtures.match("get", path, "xx") is fr
    assert fixtures.match("GET", path + "9") is None


def test_unmatched_request_lists_the_closest_paths() -> None:
    """FixtureNotFound is a LookupError naming the closest recorded paths."""
    fixtures = FixtureSet([_exchange({})])
    with pytest.raises(LookupError) as info:
        fixtures.get("GET", "/v1/api/v1/contents/7489")
    assert isinstance(info.value, FixtureNotFound)
    assert info.value.candidates == ["/v1/api/v1/contents/7488"]


def test_invalid_json_fixture_names_file_and_line(tmp_path: Path) -> None:
    """A broken fixture file is reported with its path and line."""
    target = tmp_path / "getContent" / "bad.json"
    target.parent.mkdir()
    target.write_text('{\n  "request": {\n    "method": "GET",,\n  }\n}\n')
    with pytest.raises(FixtureError) as info:
        read_exchange(target)
    assert info.value.path == target and info.value.line == 3
    assert str(info.value).startswith(f"{target}:3")


def test_fixture_format_violation_names_the_pointer(tmp_path: Path) -> None:
    """A fixture that breaks the file format says where."""
    target = tmp_path / "getContent" / "bad.json"
    target.parent.mkdir()
    target.write_text(
        json.dumps(
            {
                "request": {"method": "GET", "path": "/x"},
                "response": {"status": "200", "body": {}},
                "meta": {
                    "operationId": "getContent",
                    "source": "doc",
                    "recorded": "2024-01-01",
                    "account": "full",
                },
            }
        )
    )
    with pytest.raises(FixtureError) as info:
        read_exchange(target)
    assert info.value.pointer == "/response/status"


def test_operation_directory_must_match_meta(tmp_path: Path) -> None:
    """meta.operationId and the directory name must agree."""
    target = tmp_path / "getPerson" / "7488.json"
    target.parent.mkdir()
    target.write_text(_exchange({}).dumps())
    with pytest.raises(FixtureError, match="differs from the directory"):
        read_exchange(target)


def test_write_is_atomic_and_round_trips(tmp_path: Path) -> None:
    """A written fixture reads back equal, and no temporary file is left behind."""
    ex = _exchange({"version": "v1", "statusCode": 200, "data": {"id": 7488, "title": "é"}})
    path = write_exchange(ex, tmp_path)
    assert path == tmp_path / "getContent" / "7488.json"
    assert read_exchange(path).to_dict() == ex.to_dict()
    assert sorted(p.name for p in path.parent.iterdir()) == ["7488.json"]
    assert "é" in path.read_text("utf-8")


def test_existing_fixture_is_never_silently_overwritten(tmp_path: Path) -> None:
    """Same content is a no-op; different content raises with a summary, unless overwrite."""
    write_exchange(_exchange({"a": 1, "b": 2}), tmp_path)
    write_exchange(_exchange({"a": 1, "b": 2}), tmp_path)
    with pytest.raises(FixtureExists) as info:
        write_exchange(_exchange({"a": 1, "c": 3}), tmp_path)
    assert info.value.summary == "-/response/body/b, +/response/body/c"
    kept = json.loads((tmp_path / "getContent" / "7488.json").read_text())
    assert kept["response"]["body"] == {"a": 1, "b": 2}
    write_exchange(_exchange({"a": 1, "c": 3}), tmp_path, overwrite=True)
    kept = json.loads((tmp_path / "getContent" / "7488.json").read_text())
    assert kept["response"]["body"] == {"a": 1, "c": 3}


def test_crash_during_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the rename never happens, the old fixture is intact and the temp file is gone."""
    write_exchange(_exchange({"old": True}), tmp_path)

    def boom(src: str, dst: str) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk vanished"):
        write_exchange(_exchange({"new": True}), tmp_path, overwrite=True)
    directory = tmp_path / "getContent"
    assert sorted(p.name for p in directory.iterdir()) == ["7488.json"]
    assert json.loads((directory / "7488.json").read_text())["response"]["body"] == {"old": True}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7488", "7488"),
        ("../../etc/passwd", "-..-etc-passwd"),
        ("a/b\\c\x00", "a-b-c-"),
    ],
)
def test_safe_name_keeps_files_inside_the_directory(raw: str, expected: str) -> None:
    """Names never carry path separators or a leading dot."""
    assert safe_name(raw) == expected
    with pytest.raises(ValueError):
        safe_name("...")


def test_error_exchanges_are_kept_but_never_matched() -> None:
    """A recorded gateway error stays in the set, yet match() never serves it."""
    error = Exchange.from_dict(
        {
            "request": {"method": "GET", "path": "/v1/api/v1/contents/1"},
            "response": {"status": 401, "body": {"statusCode": 401, "message": "x"}},
            "meta": {
                "operationId": "getContent",
                "source": "synthetic",
                "recorded": "2026-01-01",
                "account": "none",
            },
        },
        name="401",
    )
    fixtures = FixtureSet([error])
    assert fixtures.for_operation("getContent") == [error]
    assert fixtures.match("GET", "/v1/api/v1/contents/1") is None
