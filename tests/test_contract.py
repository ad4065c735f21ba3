"""Tests of pivotkit.contract: loading, operations, tolerant and strict validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.readers import read_from_filename

from pivotkit.contract import Contract, load_contract
from pivotkit.errors import ContractFileError, UnknownOperation, UnresolvableRef

from .conftest import SCHEMAS

OPERATIONS = {
    "getContent",
    "listChannels",
    "getChannelCategories",
    "listProviderChannels",
    "listDays",
    "listUpdates",
    "listBroadcasts",
    "listCollections",
    "getPerson",
    "getPersonBiography",
    "getPersonImage",
    "getPersonAwards",
    "listCategories",
}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


def test_openapi_document_passes_openapi_spec_validator() -> None:
    """schemas/openapi.yaml is a valid OpenAPI 3.1 document."""
    spec, base_uri = read_from_filename(str(SCHEMAS / "openapi.yaml"))
    validate_openapi(spec, base_uri=base_uri)
    assert spec["openapi"].startswith("3.1")


def test_all_thirteen_operations_with_their_ids(contract: Contract) -> None:
    """The contract declares exactly the 13 operations of API.md §3."""
    assert set(contract.operations) == OPERATIONS


def test_only_get_content_path_is_documented(contract: Contract) -> None:
    """The one public path is tagged doc; every other path says it is assumed."""
    sources = {op.operation_id: op.path_source for op in contract.operations.values()}
    assert sources.pop("getContent") == "doc"
    assert set(sources.values()) == {"assumed"}
    assert contract.operation("getContent").path == "/v1/api/v1/contents/{id}"


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_every_operation_has_optional_lang_and_gateway_errors(
    contract: Contract, operation_id: str
) -> None:
    """lang is optional everywhere, and 200/401/403/404/429 are declared on every operation."""
    op = contract.operation(operation_id)
    lang = [p for p in op.parameters if p.name == "lang"]
    assert len(lang) == 1 and lang[0].location == "query" and not lang[0].required
    assert {200, 401, 403, 404, 429} <= set(op.statuses)
    assert (400 in op.statuses) == bool(op.path_parameters)


def test_security_schemes_header_and_query(contract: Contract) -> None:
    """The key travels as the APIM header or the subscription-key query parameter."""
    schemes = contract.openapi["components"]["securitySchemes"]
    assert {(s["in"], s["name"]) for s in schemes.values()} == {
        ("header", "Ocp-Apim-Subscription-Key"),
        ("query", "subscription-key"),
    }


@pytest.mark.parametrize(
    ("name", "raw", "ok"),
    [
        ("id", "7488", True),
        ("id", "0", False),
        ("id", "-5", False),
        ("id", "abc", False),
        ("id", "2147483648", False),
        ("id", "9" * 10_000, False),
        ("since", "20241105120000", True),
        ("since", "20241305120000", False),
        ("since", "2024110512", False),
        ("start", "20241105", True),
        ("start", "2024-11-05", False),
    ],
)
def test_path_parameters_are_typed_and_patterned(
    contract: Contract, name: str, raw: str, ok: bool
) -> None:
    """Ids are positive 32-bit ints; since is yyyyMMddHHmmss; start/end are yyyyMMdd."""
    params = {p.name: p for op in contract.operations.values() for p in op.path_parameters}
    assert (params[name].problems(raw) == []) is ok


def test_find_operation_and_expand(contract: Contract) -> None:
    """A concrete path maps back to its operation and raw parameters."""
    found = contract.find_operation("GET", "/v1/api/v1/broadcasts/192/20241105/20241106")
    assert found is not None
    op, params = found
    assert op.operation_id == "listBroadcasts"
    assert params == {"channelId": "192", "start": "20241105", "end": "20241106"}
    assert op.expand(**params) == "/v1/api/v1/broadcasts/192/20241105/20241106"
    assert contract.find_operation("POST", "/v1/api/v1/contents/7488") is None
    assert contract.find_operation("GET", "/v1/api/v1/contents/7488/extra") is None


def test_documented_sample_is_valid(contract: Contract, blade_runner: dict[str, Any]) -> None:
    """The provider's documented getContent answer fits the contract in both modes."""
    body = blade_runner["response"]["body"]
    assert contract.validate("getContent", 200, body) == []
    assert contract.validate("getContent", 200, body, mode="strict") == []


def _mutate(body: dict[str, Any], pointer: str, value: Any = ..., delete: bool = False) -> Any:
    out = copy.deepcopy(body)
    *parents, last = pointer.strip("/").split("/")
    node = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if delete:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


MUTATIONS = [
    # (id, pointer mutated, new value or DELETE, pointer expected in the violation)
    ("field-removed", "/data/title", "DELETE", "/data"),
    ("type-changed", "/data/id", "7488", "/data/id"),
    ("nested-type-changed", "/data/credits/1/personId", 1.5, "/data/credits/1/personId"),
    ("bad-date-format", "/data/lastUpdate", "2024-09-27 07:48:30", "/data/lastUpdate"),
    ("timezone-appeared", "/data/lastUpdate", "2024-09-27T07:48:30.677Z", "/data/lastUpdate"),
    (
        "eight-fraction-digits",
        "/data/lastUpdate",
        "2024-09-27T07:48:30.12345678",
        "/data/lastUpdate",
    ),
    ("status-code-differs", "/statusCode", 201, "/statusCode"),
    ("version-changed", "/version", "v2", "/version"),
    ("image-hierarchy-out-of-range", "/data/images/0/hierarchy", 5, "/data/images/0/hierarchy"),
    ("csa-rating-unknown", "/data/csaRating", -14, "/data/csaRating"),
    ("became-null", "/data/title", None, "/data/title"),
]


@pytest.mark.parametrize(
    ("pointer", "value", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_mutated_fixture_fails_with_exact_pointer(
    contract: Contract, blade_runner: dict[str, Any], pointer: str, value: Any, expected: str
) -> None:
    """Each mutation of the 7488 body is reported at the JSON pointer of what broke."""
    body = blade_runner["response"]["body"]
    if value == "DELETE":
        bad = _mutate(body, pointer, delete=True)
    else:
        bad = _mutate(body, pointer, value)
    for mode in ("tolerant", "strict"):
        violations = contract.validate("getContent", 200, bad, mode=mode)  # type: ignore[arg-type]
        assert [v.pointer for v in violations] == [expected], violations
        v = violations[0]
        assert v.operation_id == "getContent" and v.status == 200
        assert v.schema_path.startswith("#/") and v.message
        if value != "DELETE":
            assert v.value == value


def test_extra_field_passes_tolerant_and_fails_strict(
    contract: Contract, blade_runner: dict[str, Any]
) -> None:
    """An undeclared field is allowed by the contract, reported at its own pointer in strict."""
    body = _mutate(blade_runner["response"]["body"], "/data/credits/0/nickname", "Sir Ridley")
    body = _mutate(body, "/extraTop", 1)
    assert contract.validate("getContent", 200, body) == []
    strict = contract.validate("getContent", 200, body, mode="strict")
    assert [(v.pointer, v.kind, v.value) for v in strict] == [
        ("/data/credits/0/nickname", "undeclared", "Sir Ridley"),
        ("/extraTop", "undeclared", 1),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"version": "v1", "statusCode": 200, "data": None},
        {"version": "v1", "statusCode": 200, "data": []},
        {"version": "v1", "statusCode": 200, "data": {}},
    ],
    ids=["bare", "null", "array", "object"],
)
@pytest.mark.parametrize("mode", ["tolerant", "strict"])
def test_empty_200_shapes_are_accepted(contract: Contract, body: Any, mode: str) -> None:
    """The four empty-result shapes of API.md §2 pass for every operation, in both modes."""
    for op in contract.operations:
        assert contract.validate(op, 200, body, mode=mode) == []  # type: ignore[arg-type]


def test_list_operation_wants_an_array(contract: Contract) -> None:
    """A list operation's data must be an array of its entity."""
    bad = {"version": "v1", "statusCode": 200, "data": {"id": 1, "name": "TF1"}}
    assert [v.pointer for v in contract.validate("listChannels", 200, bad)] == ["/data"]
    good = {"version": "v1", "statusCode": 200, "data": [{"id": 1, "name": "TF1"}]}
    assert contract.validate("listChannels", 200, good) == []


MISSING = (
    "Access denied due to missing subscription key. Make sure to include subscription key "
    "when making requests to an API."
)


@pytest.mark.parametrize(
    ("status", "body", "ok"),
    [
        (401, {"statusCode": 401, "message": MISSING}, True),
        (401, {"statusCode": 401, "message": "Access denied"}, False),
        (401, {"statusCode": 403, "message": MISSING}, False),
        (404, {"statusCode": 404, "message": "Resource not found"}, True),
        (404, {"version": "v1", "statusCode": 404, "message": "Resource not found"}, False),
        (
            429,
            {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 60 seconds."},
            True,
        ),
        (
            403,
            {
                "statusCode": 403,
                "message": "Out of call volume quota. Quota will be replenished in 03:30:56.",
            },
            True,
        ),
        (
            403,
            {
                "statusCode": 403,
                "message": "Out of call volume quota. Quota will be replenished in 1.03:30:56.",
            },
            True,
        ),
        (403, {"statusCode": 403, "message": "Out of call volume quota."}, False),
        (400, {"Message": "The request is invalid."}, True),
        (400, {"message": "The request is invalid."}, False),
    ],
)
def test_gateway_and_aspnet_errors(contract: Contract, status: int, body: Any, ok: bool) -> None:
    """Error bodies must be exactly the gateway's or ASP.NET's documented shapes."""
    assert (contract.validate("getContent", status, body) == []) is ok


def test_unknown_operation_and_status_name_the_known_ones(contract: Contract) -> None:
    """Asking for an undeclared operation or status says what exists."""
    with pytest.raises(UnknownOperation, match="getContent"):
        contract.validate("getContnet", 200, {})
    with pytest.raises(UnknownOperation, match="declares no response 500"):
        contract.validate("getContent", 500, {})
    with pytest.raises(ValueError, match="mode"):
        contract.validate("getContent", 200, {}, mode="lenient")  # type: ignore[arg-type]


def test_validators_are_built_once(contract: Contract) -> None:
    """Validating does not rebuild validators: the same object serves every call."""
    first = contract.validator("getContent", 200)
    contract.validate("getContent", 200, {"x": 1})
    assert contract.validator("getContent", 200) is first
    assert contract.validator("getContent", 200, "strict") is not first


def test_invalid_json_schema_file_names_file_and_line(schemas_copy: Path) -> None:
    """A broken schema file is reported with its path and line, not a traceback."""
    target = schemas_copy / "person.json"
    lines = target.read_text().splitlines()
    lines[3] = lines[3] + " oops"
    target.write_text("\n".join(lines))
    with pytest.raises(ContractFileError) as info:
        Contract.load(schemas_copy)
    assert info.value.path == target and info.value.line == 4
    assert str(info.value).startswith(f"{target}:4:")


def test_invalid_yaml_names_file_and_line(schemas_copy: Path) -> None:
    """A broken openapi.yaml is reported with its path and line."""
    target = schemas_copy / "openapi.yaml"
    text = target.read_text().replace("openapi: 3.1.0", "openapi: [3.1.0", 1)
    target.write_text(text)
    with pytest.raises(ContractFileError) as info:
        Contract.load(schemas_copy)
    assert info.value.path == target and info.value.line is not None


def test_missing_ref_names_the_ref_and_the_file(schemas_copy: Path) -> None:
    """A $ref to a schema that does not exist names the $ref, the file and where it sits."""
    target = schemas_copy / "broadcast.json"
    schema = json.loads(target.read_text())
    schema["properties"]["content"]["$ref"] = "contnet.json"
    target.write_text(json.dumps(schema))
    with pytest.raises(UnresolvableRef) as info:
        Contract.load(schemas_copy)
    assert info.value.ref == "contnet.json" and info.value.path == target
    assert info.value.pointer == "/properties/content"
    assert "contnet.json" in str(info.value) and "broadcast.json" in str(info.value)


def test_a_schema_is_known_by_its_file_name(schemas_copy: Path) -> None:
    """Schema files carry no $id (the JavaScript tools misread any): each is registered under
    its file name, and an $id that names another file is refused."""
    contract = Contract.load(schemas_copy)
    assert contract.resolve(contract.base_uri + "day.json")["title"] == "Day"
    target = schemas_copy / "day.json"
    schema = json.loads(target.read_text())
    schema["$id"] = "https://example.org/other.json"
    target.write_text(json.dumps(schema))
    with pytest.raises(ContractFileError, match=r"day\.json.*\$id"):
        Contract.load(schemas_copy)


def test_every_schema_file_is_2020_12_with_description_examples() -> None:
    """Each entity schema declares the 2020-12 dialect, a description and examples, and no
    $id (it is known by its file name)."""
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path
        assert "$id" not in schema, path
        assert schema.get("description"), path
        if path.name != "common.json":
            assert schema.get("examples"), path


# -- the two engines agree --------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["2024-09-27T07:48:30.677", "20241105", "v1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _pointers(node: Any, prefix: str = "") -> list[str]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _pointers(value, f"{prefix}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _pointers(value, f"{prefix}/{i}")
    return out


@pytest.fixture(scope="module")
def python_engine() -> Contract:
    return Contract.load(engine="python")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), mode=st.sampled_from(["tolerant", "strict"]))
def test_fast_engine_agrees_with_reference(
    contract: Contract,
    python_engine: Contract,
    blade_runner: dict[str, Any],
    data: st.DataObject,
    mode: str,
) -> None:
    """jsonschema-rs (fast path) and jsonschema (violations) agree on mutated bodies.

    The health check is suppressed because the fixtures are read-only and shared on purpose.
    """
    body = blade_runner["response"]["body"]
    pointer = data.draw(st.sampled_from(_pointers(body)))
    mutated = _mutate(body, pointer, data.draw(_json))
    fast = contract.is_valid("getContent", 200, mutated, mode=mode)  # type: ignore[arg-type]
    reference = python_engine.validate("getContent", 200, mutated, mode=mode)  # type: ignore[arg-type]
    assert fast == (reference == []), (pointer, mutated, reference)
    assert contract.engine == "rust" and python_engine.engine == "python"


def test_engine_choice_is_validated() -> None:
    """An unknown engine name is refused with the valid choices."""
    with pytest.raises(ValueError, match="auto, rust or python"):
        Contract.load(engine="java")


@pytest.mark.parametrize(
    "body",
    [
        {"version": "v1", "statusCode": 200, "data": None, "extra": 1},
        {"version": "v1", "statusCode": 200, "data": [], "extra": {"a": 1}},
        {"extra": True, "version": "v1", "statusCode": 200, "data": {}},
    ],
)
def test_strict_mode_reports_an_extra_field_of_the_empty_result_as_undeclared(
    body: dict[str, Any],
) -> None:
    """An empty result with an extra top-level field is judged by the empty-result
    alternative in both modes: tolerant accepts it, strict names the field, once, as
    undeclared (never an anyOf failure of the whole body)."""
    contract = load_contract()
    assert contract.validate("getContent", 200, body) == []
    violations = contract.validate("getContent", 200, body, mode="strict")
    assert [(v.pointer, v.kind) for v in violations] == [("/extra", "undeclared")]
