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


# -- bounds at load: depth, size, headers that cannot be served -------------------------------


def _fixture_file(tmp_path: Path, blade_runner: dict[str, Any], text: str | None = None) -> Path:
    folder = tmp_path / "getContent"
    folder.mkdir(exist_ok=True)
    path = folder / "x.json"
    path.write_text(text if text is not None else json.dumps(blade_runner), encoding="utf-8")
    return path


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_deep_nesting_is_refused_with_the_file(
    tmp_path: Path, blade_runner: dict[str, Any], depth: int
) -> None:
    """JSON nested past MAX_DEPTH, however deep (past orjson's and the interpreter's own
    limits too), is a FixtureError naming the file, never a RecursionError."""
    text = json.dumps(blade_runner).replace('"Blade Runner"', "[" * depth + "]" * depth, 1)
    path = _fixture_file(tmp_path, blade_runner, text)
    with pytest.raises(FixtureError, match=rf"{path.name}: the JSON nests more than 64 levels"):
        read_exchange(path)


def test_nesting_up_to_the_bound_loads(tmp_path: Path, blade_runner: dict[str, Any]) -> None:
    """60 levels inside the envelope (under 64 in all) is an ordinary fixture."""
    blade_runner["response"]["body"]["data"]["extra"] = json.loads("[" * 60 + "]" * 60)
    assert read_exchange(_fixture_file(tmp_path, blade_runner)).response.status == 200


def test_size_is_bounded_before_reading(
    tmp_path: Path, blade_runner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over MAX_FIXTURE_BYTES is refused from its size, with the file named; the bytes
    given by a caller are bounded alike."""
    import pivotkit.fixtures as fixtures_module

    path = _fixture_file(tmp_path, blade_runner)
    monkeypatch.setattr(fixtures_module, "MAX_FIXTURE_BYTES", 1000)
    with pytest.raises(FixtureError, match=r"x\.json: the file is over 1,000 bytes"):
        read_exchange(path)
    with pytest.raises(FixtureError, match="over 1,000 bytes"):
        read_exchange(path, path.read_bytes())


@pytest.mark.parametrize(
    ("part", "name", "value", "reason"),
    [
        ("response", "x-note", "ok\r\nSet-Cookie: evil=1", "CR, LF or other control"),
        ("response", "x-note", "ok\nSet-Cookie: evil=1", "CR, LF or other control"),
        ("response", "x-note", "ok\rX: y", "CR, LF or other control"),
        ("response", "x-note", "nul\x00", "CR, LF or other control"),
        ("request", "x-note", "a\x7fb", "CR, LF or other control"),
        ("response", "x-note", "5 \u20ac", "outside ASCII"),
        ("response", "x-note", "caf\u00e9", "outside ASCII"),
        ("response", "bad name", "v", "is not an HTTP token"),
        ("response", "x-a:b", "v", "is not an HTTP token"),
        ("response", "", "v", "is not an HTTP token"),
    ],
)
def test_headers_that_cannot_be_served_are_refused(
    tmp_path: Path,
    blade_runner: dict[str, Any],
    part: str,
    name: str,
    value: str,
    reason: str,
) -> None:
    """A header value with CR/LF (it would become a second header) or a name that is not a
    token: FixtureError with the file and the header's pointer, on both reading paths."""
    blade_runner[part]["headers"] = {name: value}
    path = _fixture_file(tmp_path, blade_runner)
    with pytest.raises(FixtureError, match=reason) as found:
        read_exchange(path)
    assert found.value.path == path and found.value.pointer.startswith(f"/{part}/headers/")
    with pytest.raises(FixtureError, match=reason):
        Exchange.from_dict(blade_runner, name="x", operation_id="getContent")


def test_a_tab_in_a_header_value_is_fine(tmp_path: Path, blade_runner: dict[str, Any]) -> None:
    """Horizontal tab is legal inside a header value."""
    blade_runner["response"]["headers"] = {"x-note": "a\tb"}
    assert read_exchange(_fixture_file(tmp_path, blade_runner)).response.headers["x-note"]
