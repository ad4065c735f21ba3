"""Tests of pivotkit.infer: the Observer, proposed schemas, and their diff with the contract."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from pivotkit.cli import main
from pivotkit.contract import load_contract
from pivotkit.errors import NoSamples, ProposalInContract, UnknownOperation
from pivotkit.fixtures import FixtureSet
from pivotkit.infer import diff, infer, write_proposal
from pivotkit.observer import Observer, string_format
from pivotkit.schema_view import contract_view

from .conftest import FIXTURES, SCHEMAS

CONTRACT = load_contract(SCHEMAS)
CORPUS = FixtureSet.load(FIXTURES)
INFERABLE = sorted(
    {
        ex.operation_id
        for ex in CORPUS
        if ex.response.status == 200
        and not CONTRACT.is_empty_result(ex.response.body)
        and ex.operation_id in CONTRACT.operations
    }
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20241105", "yyyyMMdd"),
        ("2024-11-05", "yyyy-MM-dd"),
        ("2024-09-27T07:48:30.677", "local-date-time"),
        ("2024-09-27T07:48:30", "local-date-time"),
        ("2024-09-27T07:48:30.677+02:00", "date-time"),
        ("2024-09-27T07:48:30Z", "date-time"),
        ("https://img.plurimedia.fr/a.jpg", "url"),
        ("Blade Runner", None),
        ("20241305", None),
        ("12345678901", None),
    ],
)
def test_string_formats(value: str, expected: str | None) -> None:
    """Dates, date-times with and without zone and URLs are told apart from free text."""
    assert string_format(value) == expected


def test_observer_types_required_nullable_formats_and_items() -> None:
    """Types, fields always present (required), null, formats with fraction digits and
    merged array items end up in the schema."""
    obs = Observer("t")
    obs.add(
        {
            "id": 1,
            "when": "2024-01-01T10:00:00.5",
            "tags": [{"a": 1}, {"a": 2, "b": "x"}],
            "note": None,
        }
    )
    obs.add({"id": 2, "when": "2024-01-02T10:00:00.123", "tags": [], "note": "n"})
    schema = obs.to_schema()
    props = schema["properties"]
    assert schema["required"] == ["id", "note", "tags", "when"]
    assert props["id"]["type"] == "integer"
    assert props["note"]["type"] == ["null", "string"]
    assert props["when"]["pattern"].endswith(r"\.\d{1,3}$")
    assert props["tags"]["items"]["required"] == ["a"]
    assert props["tags"]["items"]["properties"]["b"]["type"] == "string"
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"id": 3, "when": "2024-01-02T10:00:00.12", "tags": [], "note": None})
    assert not validator.is_valid({"id": "3", "when": "x", "tags": [], "note": None})


def test_small_enums_need_enough_samples() -> None:
    """Few distinct values over enough samples become an enum; few samples do not."""
    few = Observer()
    for v in ("a", "b", "a"):
        few.add({"k": v})
    assert "enum" not in few.to_schema()["properties"]["k"]
    many = Observer()
    for i in range(12):
        many.add({"k": "ab"[i % 2], "n": i})
    props = many.to_schema()["properties"]
    assert props["k"]["enum"] == ["a", "b"]
    assert "enum" not in props["n"]


def test_merge_equals_observing_everything_in_one() -> None:
    """Two observers merged give the schema of one observer that saw every body."""
    bodies = [
        ex.response.body for ex in CORPUS.for_operation("getContent") if ex.response.status == 200
    ]
    whole, left, right = Observer("x"), Observer("x"), Observer("x")
    for i, body in enumerate(bodies):
        whole.add(body)
        (left if i % 2 else right).add(body)
    assert left.merge(right).to_schema() == whole.to_schema()


def test_contract_view_follows_ref_if_else_and_allof() -> None:
    """The contract's response schema is resolved through the registry: $ref to the
    envelope and the content, the else branch, nested items."""
    view = contract_view(CONTRACT, "getContent")
    assert {"version", "statusCode", "data"} <= set(view.props)
    data = view.props["data"]()
    assert {"id", "title"} <= data.required
    assert data.props["lastUpdate"]().formats() == {"local-date-time"}
    credits = data.props["credits"]().items
    assert credits is not None and "personId" in credits().props
    assert view.props["statusCode"]().enum == [200]


@pytest.mark.parametrize("operation", INFERABLE)
def test_inferred_schema_accepts_every_fixture(operation: str) -> None:
    """The schema proposed from an operation's fixtures accepts each of their bodies."""
    result = infer(CONTRACT, CORPUS, operation)
    validator = Draft202012Validator(result.schema)
    Draft202012Validator.check_schema(result.schema)
    assert result.exchanges
    for ex in result.exchanges:
        errors = [e.message for e in validator.iter_errors(ex.response.body)]
        assert not errors, (ex.name, errors)


def _blade_runner() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "getContent" / "7488.json").read_text("utf-8"))[
        "response"
    ]["body"]
    return body


def test_diff_names_each_difference_with_the_contract() -> None:
    """Observed bodies that differ from the contract in every way give one named
    difference per pointer and kind."""
    obs = Observer()
    for i in range(12):
        body = copy.deepcopy(_blade_runner())
        data = body["data"]
        data["id"] = str(data["id"])  # type differs
        data["typographicTitle"] = None  # nullable
        data["lastUpdate"] = "2024-09-27T07:48:30+02:00"  # format differs
        data["csaRating"] = -14  # new enum value
        data["ageRating"] = "12"  # only observed
        if i % 2:
            del data["title"]  # required, not always there
        obs.add(body)
    found = {(d.pointer, d.kind) for d in diff(obs, contract_view(CONTRACT, "getContent"))}
    assert {
        ("/data/id", "type-differs"),
        ("/data/typographicTitle", "nullable-observed"),
        ("/data/lastUpdate", "format-differs"),
        ("/data/csaRating", "enum-new-values"),
        ("/data/ageRating", "only-observed"),
        ("/data/title", "required-in-contract-missing-in-observed"),
        ("/data/seriesId", "only-in-contract"),
        ("/data/isFre", "required-observed-optional-in-contract"),
        ("/data/images/*/type", "enum-observed"),
    } <= found


def test_no_difference_when_observed_fits_the_contract_exactly() -> None:
    """Kinds that flag contract trouble stay quiet when bodies fit the contract."""
    obs = Observer()
    obs.add(_blade_runner())
    kinds = {d.kind for d in diff(obs, contract_view(CONTRACT, "getContent"))}
    assert not kinds & {
        "type-differs",
        "nullable-observed",
        "format-differs",
        "enum-new-values",
        "only-observed",
    }


def test_infer_refuses_unknown_operations_and_operations_without_samples(tmp_path: Path) -> None:
    """An unknown id lists the known ones; no usable fixture says how to get some."""
    with pytest.raises(UnknownOperation):
        infer(CONTRACT, CORPUS, "getNothing")
    with pytest.raises(NoSamples, match="pivotkit record"):
        infer(CONTRACT, FixtureSet([], tmp_path), "getContent")


def test_write_proposal_never_writes_into_the_contract(tmp_path: Path, schemas_copy: Path) -> None:
    """Proposals are written atomically elsewhere; schemas/ is refused."""
    target = write_proposal(
        {"type": "object"}, tmp_path / "p" / "x.schema.json", schemas_dir=schemas_copy
    )
    assert json.loads(target.read_text("utf-8")) == {"type": "object"}
    with pytest.raises(ProposalInContract):
        write_proposal({}, schemas_copy / "content.json", schemas_dir=schemas_copy)


def test_cli_infer_prints_the_diff_and_writes_the_proposal(tmp_path: Path) -> None:
    """``pivotkit infer getContent --out F`` prints differences and writes a 2020-12 schema."""
    out = tmp_path / "getContent.schema.json"
    result = CliRunner().invoke(
        main,
        [
            "infer",
            "getContent",
            "--fixtures",
            str(FIXTURES),
            "--schemas",
            str(SCHEMAS),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("getContent 200: ")
    assert "only in contract" in result.output
    schema = json.loads(out.read_text("utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    bad = CliRunner().invoke(
        main, ["infer", "getNothing", "--fixtures", str(FIXTURES), "--out", str(out)]
    )
    assert bad.exit_code == 2 and "getNothing" in bad.output  # an unknown operation: usage
