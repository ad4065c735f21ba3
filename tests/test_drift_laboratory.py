"""The drift laboratory: drifts planted in all 13 operations of a loopback upstream serving the
bundled fixtures, and harmless changes that must give nothing; found / not found by class.

Where each plant goes is chosen from the fixtures and the contract (a field every answer has
and the contract leaves optional, an integer, a date-time, an enum...), so the laboratory
follows the corpus. Each class runs with the fixtures as baseline and with a history of one
clean run (no fixture) as baseline. The found/missed table is written to
``$PIVOT_ARTIFACTS`` (else ``reports/``) as ``drift-laboratory.md``.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pivotkit.contract import load_contract
from pivotkit.drift import DriftOptions, run_drift
from pivotkit.fixtures import FixtureSet
from pivotkit.observer import string_format
from pivotkit.schema_view import View, contract_view

from .conftest import FIXTURES, ROOT, SCHEMAS
from .drifting import DriftingUpstream

KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
CONTRACT = load_contract(SCHEMAS)
CORPUS = FixtureSet.load(FIXTURES)
OPERATIONS = sorted(CONTRACT.operations)
Found = set[tuple[str, str, str, str]]


@dataclass
class Roles:
    """Where plants go in one operation's answers, read from its fixtures and contract."""

    operation: str
    items: str  # "/data" (one object) or "/data/*" (a list of objects)
    optional: str | None = None
    required: str | None = None
    integer: str | None = None
    moment: str | None = None
    enum: str | None = None
    enum_values: list[Any] = field(default_factory=list)
    lists: bool = False


def _roles(op: str) -> Roles:
    samples = [
        ex.response.body
        for ex in CORPUS.for_operation(op)
        if ex.response.status == 200 and not CONTRACT.is_empty_result(ex.response.body)
    ]
    objects: list[dict[str, Any]] = []
    lists = True
    for body in samples:
        data = body["data"]
        if isinstance(data, dict):
            objects.append(data)
            lists = False
        else:
            objects += [x for x in data if isinstance(x, dict)]
            lists = lists and len(data) >= 2
    items = "/data" if isinstance(samples[0]["data"], dict) else "/data/*"
    view = contract_view(CONTRACT, op).at(items)
    assert view is not None
    common = sorted(set(objects[0]).intersection(*objects))

    def at(key: str) -> View | None:
        return view.at("/" + key)

    def first(test: Callable[[str], bool]) -> str | None:
        return next((k for k in common if test(k)), None)

    def declared(key: str) -> View:
        found = at(key)
        assert found is not None
        return found

    roles = Roles(op, items, lists=lists and items == "/data/*")
    roles.optional = first(
        lambda k: k in view.props and k not in view.required and not declared(k).allows_type("null")
    )
    roles.required = first(lambda k: k in view.required)
    roles.integer = first(
        lambda k: (
            all(type(o[k]) is int for o in objects) and k in view.props and declared(k).enum is None
        )
    )
    roles.moment = first(
        lambda k: (
            all(isinstance(o[k], str) and string_format(o[k]) for o in objects)
            and all(string_format(o[k]) != "url" for o in objects)
        )
    )
    roles.enum = first(lambda k: k in view.props and declared(k).enum is not None)
    if roles.enum is not None:
        roles.enum_values = list(declared(roles.enum).enum or [])
    return roles


ROLES = {op: _roles(op) for op in OPERATIONS}


def _objects(body: Any, roles: Roles) -> list[dict[str, Any]]:
    data = body["data"]
    return [data] if roles.items == "/data" else [x for x in data if isinstance(x, dict)]


def _other_format(value: str) -> str:
    kind = string_format(value)
    if kind == "local-date-time":
        return value[:19] + "+01:00"
    if kind == "yyyyMMdd":
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    if kind == "yyyy-MM-dd":
        return f"{value[8:10]}/{value[5:7]}/{value[:4]}"
    return value + "Z"


# -- the plants: (name, class, needs, change, expected findings) --------------------------------

Edit = Callable[[Any, Roles], Any]  # body -> new body (or None to answer with `status`)


@dataclass(frozen=True)
class Plant:
    """One planted drift: which class it belongs to, what it changes, what must be found."""

    name: str
    klass: str
    applies: Callable[[Roles], bool]
    edit: Edit
    expected: Callable[[Roles], Found]
    status: int = 200
    headers: Callable[[dict[str, str]], dict[str, str]] | None = None


def _each(change: Callable[[dict[str, Any], Roles], None]) -> Edit:
    def edit(body: Any, roles: Roles) -> Any:
        for obj in _objects(body, roles):
            change(obj, roles)
        return body

    return edit


def _last(change: Callable[[dict[str, Any], Roles], None]) -> Edit:
    def edit(body: Any, roles: Roles) -> Any:
        change(_objects(body, roles)[-1], roles)
        return body

    return edit


def _at(roles: Roles, key: str | None, kind: str, severity: str) -> Found:
    return {(roles.operation, f"{roles.items}/{key}", kind, severity)}


def _rename(obj: dict[str, Any], roles: Roles) -> None:
    obj["renamed" + str(roles.optional)] = obj.pop(str(roles.optional))


def _enum_value(roles: Roles) -> Any:
    return 99 if isinstance(roles.enum_values[0], int) else "never-seen-before"


def _restyle(body: Any, roles: Roles) -> Any:
    body["data"] = [body["data"]] if roles.items == "/data" else {"items": body["data"]}
    return body


PLANTS = [
    Plant(
        "optional field removed",
        "1-removal",
        lambda r: r.optional is not None,
        _each(lambda o, r: o.pop(str(r.optional))),
        lambda r: _at(r, r.optional, "field-removed", "breaking"),
    ),
    Plant(
        "optional field renamed",
        "1-removal",
        lambda r: r.optional is not None,
        _each(_rename),
        lambda r: (
            _at(r, r.optional, "field-removed", "breaking")
            | _at(r, f"renamed{r.optional}", "new-field", "info")
        ),
    ),
    Plant(
        "field missing from the last item only",
        "2-per-item",
        lambda r: r.lists and (r.optional or r.required) is not None,
        _last(lambda o, r: o.pop(str(r.optional or r.required))),
        lambda r: _at(
            r,
            r.optional or r.required,
            "field-removed" if r.optional else "required-missing",
            "breaking",
        ),
    ),
    Plant(
        "required field removed",
        "2-per-item",
        lambda r: r.required is not None,
        _each(lambda o, r: o.pop(str(r.required))),
        lambda r: _at(r, r.required, "required-missing", "breaking"),
    ),
    Plant(
        "extra top-level field",
        "3-one-branch",
        lambda r: True,
        lambda b, r: {**b, "requestId": "abc"},
        lambda r: {(r.operation, "/requestId", "new-field", "info")},
    ),
    Plant(
        "version changed",
        "3-one-branch",
        lambda r: True,
        lambda b, r: {**b, "version": "v2"},
        lambda r: {(r.operation, "/version", "envelope-changed", "breaking")},
    ),
    Plant(
        "integer became a string",
        "4-root-cause",
        lambda r: r.integer is not None,
        _each(lambda o, r: o.update({str(r.integer): str(o[str(r.integer)])})),
        lambda r: _at(r, r.integer, "type-changed", "breaking"),
    ),
    Plant(
        "data changed shape",
        "4-root-cause",
        lambda r: True,
        _restyle,
        lambda r: {(r.operation, "/data", "envelope-changed", "breaking")},
    ),
    Plant(
        "optional field became null",
        "4-root-cause",
        lambda r: r.optional is not None,
        _each(lambda o, r: o.update({str(r.optional): None})),
        lambda r: _at(r, r.optional, "became-nullable", "breaking"),
    ),
    Plant(
        "integer written as a float",
        "5-integral-float",
        lambda r: r.integer is not None,
        _each(lambda o, r: o.update({str(r.integer): float(o[str(r.integer)])})),
        lambda r: _at(r, r.integer, "integer-as-float", "warning"),
    ),
    Plant(
        "date format changed",
        "other",
        lambda r: r.moment is not None,
        _each(lambda o, r: o.update({str(r.moment): _other_format(o[str(r.moment)])})),
        lambda r: _at(r, r.moment, "format-changed", "breaking"),
    ),
    Plant(
        "new enum value",
        "other",
        lambda r: r.enum is not None,
        _each(lambda o, r: o.update({str(r.enum): _enum_value(r)})),
        lambda r: _at(r, r.enum, "new-enum-value", "warning"),
    ),
    Plant(
        "new field in the payload",
        "other",
        lambda r: True,
        _each(lambda o, r: o.update(addedByTheProvider=True)),
        lambda r: _at(r, "addedByTheProvider", "new-field", "info"),
    ),
    Plant(
        "answer became the empty result",
        "other",
        lambda r: True,
        lambda b, r: {**b, "data": None},
        lambda r: {(r.operation, "", "result-emptied", "warning")},
    ),
    Plant(
        "status became 500",
        "other",
        lambda r: True,
        lambda b, r: {"Message": "An error has occurred."},
        lambda r: {(r.operation, "", "status-changed", "breaking")},
        status=500,
    ),
    Plant(
        "content type became text/html",
        "other",
        lambda r: True,
        lambda b, r: b,
        lambda r: {(r.operation, "headers/content-type", "header-changed", "breaking")},
        headers=lambda h: {**h, "content-type": "text/html; charset=utf-8"},
    ),
    Plant(
        "charset changed",
        "other",
        lambda r: True,
        lambda b, r: b,
        lambda r: {(r.operation, "headers/content-type", "header-changed", "warning")},
        headers=lambda h: {**h, "content-type": "application/json; charset=iso-8859-1"},
    ),
    Plant(
        "gzip dropped",
        "other",
        lambda r: True,
        lambda b, r: b,
        lambda r: {(r.operation, "headers/content-encoding", "header-changed", "warning")},
        headers=lambda h: {k: v for k, v in h.items() if k != "content-encoding"},
    ),
    Plant(
        "provider header dropped",
        "other",
        lambda r: True,
        lambda b, r: b,
        lambda r: {(r.operation, "headers/x-powered-by", "header-removed", "warning")},
        headers=lambda h: {k: v for k, v in h.items() if k != "x-powered-by"},
    ),
    Plant(
        "provider header changed",
        "other",
        lambda r: True,
        lambda b, r: b,
        lambda r: {(r.operation, "headers/cache-control", "header-changed", "warning")},
        headers=lambda h: {**h, "cache-control": "public, max-age=60"},
    ),
    Plant(
        "operation gone (the gateway's 404)",
        "other",
        lambda r: True,
        lambda b, r: {"statusCode": 404, "message": "Resource not found"},
        lambda r: {(r.operation, "", "operation-gone", "breaking")},
        status=404,
    ),
]


# -- harmless changes -------------------------------------------------------------------------

_MOMENT = re.compile(r"^(\d{4})")


def _walk(value: Any, view: View | None, change: Callable[[Any, View | None], Any]) -> Any:
    """Apply ``change`` to every scalar, knowing the contract's view at its place."""
    if isinstance(value, dict):
        return {
            k: _walk(
                v, view.at("/" + k.replace("~", "~0").replace("/", "~1")) if view else None, change
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_walk(v, view.at("/*") if view else None, change) for v in value]
    return change(value, view)


def _text(value: Any, view: View | None) -> Any:
    free = view is not None and view.enum is None and not view.patterns
    if isinstance(value, str) and free and string_format(value) is None:
        return value + " (mis à jour)"
    return value


def _dates(value: Any, view: View | None) -> Any:
    if isinstance(value, str) and string_format(value) in (
        "local-date-time",
        "yyyyMMdd",
        "yyyy-MM-dd",
    ):
        return _MOMENT.sub(lambda m: str(int(m.group(1)) + 1), value)
    return value


def _counts(value: Any, view: View | None) -> Any:
    if type(value) is int and view is not None and view.enum is None:
        top = view.bounds.get("maximum")
        return value + 1 if top is None or value + 1 <= top else value - 1
    return value


def _payload(change: Callable[[Any, View | None], Any]) -> Callable[[Any, str], Any]:
    def edit(body: Any, op: str) -> Any:
        return {
            **body,
            "data": _walk(body["data"], contract_view(CONTRACT, op).at("/data"), change),
        }

    return edit


def _arrays(change: Callable[[list[Any]], list[Any]]) -> Callable[[Any, str], Any]:
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return change([walk(v) for v in value])
        return value

    return lambda body, op: walk(body)


def _key_order(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _key_order(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_key_order(v) for v in value]
    return value


HARMLESS: list[tuple[str, Callable[[Any, str], Any]]] = [
    ("texts", _payload(_text)),
    ("dates", _payload(_dates)),
    ("counts", _payload(_counts)),
    ("array order", _arrays(lambda items: items[::-1])),
    ("fewer items", _arrays(lambda items: items[:-1] if len(items) > 1 else items)),
    ("more items", _arrays(lambda items: [*items, copy.deepcopy(items[0])] if items else items)),
    ("key order", lambda body, op: _key_order(body)),
]
ENCODINGS: list[tuple[str, Callable[[Any], bytes], int]] = [
    ("whitespace", lambda b: json.dumps(b, indent=4, ensure_ascii=False).encode(), 9),
    ("unicode escapes", lambda b: json.dumps(b, ensure_ascii=True).encode(), 9),
    ("recompression", lambda b: json.dumps(b, ensure_ascii=False).encode(), 1),
]


# -- the runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[DriftingUpstream]:
    """The bundled corpus on loopback, checking the key."""
    server = DriftingUpstream(FIXTURES, key=KEY)
    yield server
    server.close()


@pytest.fixture(scope="module")
def setting(
    tmp_path_factory: pytest.TempPathFactory, upstream: DriftingUpstream
) -> dict[str, Path]:
    """The plan (every replayable fixture's request), an empty fixtures folder, and a history
    of one clean run against the unchanged upstream."""
    root = tmp_path_factory.mktemp("laboratory")
    plan = [
        {
            "operationId": ex.operation_id,
            "params": CONTRACT.operation(ex.operation_id).match(ex.request.path),
            **({"lang": ex.request.query["lang"]} if "lang" in ex.request.query else {}),
        }
        for ex in CORPUS
        if ex.response.status == 200
    ]
    (root / "plan.json").write_text(json.dumps(plan), "utf-8")
    (root / "none").mkdir()
    code, report = _run(upstream, root, "history", root / "clean.sqlite")
    assert (code, report["findings"]) == (0, [])
    return {"root": root, "plan": root / "plan.json", "clean": root / "clean.sqlite"}


def _run(
    upstream: DriftingUpstream, root: Path, baseline: str, history: Path | None = None
) -> tuple[int, dict[str, Any]]:
    options = DriftOptions(
        target=upstream.url,
        fixtures_dir=FIXTURES if baseline == "fixtures" else root / "none",
        schemas_dir=SCHEMAS,
        plan=root / "plan.json",
        rate=1000.0,
        json_out=root / "drift.json",
        history=history,
    )
    code = run_drift(options, environ={"PIVOT_API_KEY": KEY}, echo=lambda _: None)
    return code, json.loads((root / "drift.json").read_text("utf-8"))


def _drift(
    upstream: DriftingUpstream, setting: dict[str, Path], baseline: str, tmp_path: Path
) -> tuple[int, dict[str, Any]]:
    history = None
    if baseline == "history":
        history = tmp_path / "history.sqlite"
        shutil.copy(setting["clean"], history)
    shutil.copy(setting["plan"], tmp_path / "plan.json")
    (tmp_path / "none").mkdir(exist_ok=True)
    return _run(upstream, tmp_path, baseline, history)


def _body_mutation(
    edit: Callable[[Any, str], Any],
    status: int = 200,
    change_headers: Callable[[dict[str, str]], dict[str, str]] | None = None,
) -> Callable[[str, int, dict[str, str], Any], tuple[int, dict[str, str], Any]]:
    def mutate(
        full: str, st: int, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        found = CONTRACT.find_operation("GET", full)
        if found is None or st != 200 or CONTRACT.is_empty_result(body):
            return st, headers, body
        new = edit(copy.deepcopy(body), found[0].operation_id)
        if change_headers is not None:
            headers = change_headers(headers)
        return status, headers, new

    return mutate


TABLE: dict[tuple[str, str, str], dict[str, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    """Write the found/missed table once the module ran."""
    yield
    if not TABLE:
        return
    folder = Path(os.environ.get("PIVOT_ARTIFACTS") or ROOT / "reports")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Drift laboratory",
        "",
        "| class | change | baseline | " + " | ".join(OPERATIONS) + " |",
        "|---|---|---|" + "---|" * len(OPERATIONS),
    ]
    for (klass, name, baseline), cells in sorted(TABLE.items()):
        row = " | ".join(cells.get(op, "n/a") for op in OPERATIONS)
        lines.append(f"| {klass} | {name} | {baseline} | {row} |")
    (folder / "drift-laboratory.md").write_text("\n".join(lines) + "\n", "utf-8")


@pytest.mark.parametrize("baseline", ["fixtures", "history"])
@pytest.mark.parametrize("plant", PLANTS, ids=[p.name.replace(" ", "-") for p in PLANTS])
def test_a_planted_drift_is_found_in_every_operation_it_applies_to(
    upstream: DriftingUpstream,
    setting: dict[str, Path],
    tmp_path: Path,
    plant: Plant,
    baseline: str,
) -> None:
    """Planted in every operation at once: each operation's findings are exactly the plant's
    (kind, pointer, severity), whichever the baseline."""
    applies = {op for op in OPERATIONS if plant.applies(ROLES[op])}
    assert applies, plant.name

    def edit(body: Any, op: str) -> Any:
        return plant.edit(body, ROLES[op]) if op in applies else body

    upstream.mutate = _body_mutation(edit, plant.status, plant.headers)
    try:
        code, report = _drift(upstream, setting, baseline, tmp_path)
    finally:
        upstream.mutate = None
    found: Found = {
        (f["operation"], f["pointer"], f["kind"], f["severity"]) for f in report["findings"]
    }
    cells = TABLE.setdefault((plant.klass, plant.name, baseline), {})
    missed = {}
    for op in sorted(applies):
        expected = plant.expected(ROLES[op])
        mine = {f for f in found if f[0] == op}
        cells[op] = "found" if mine == expected else ("missed" if not mine & expected else "noisy")
        if mine != expected:
            missed[op] = (sorted(expected), sorted(mine))
    assert {f for f in found if f[0] not in applies} == set()
    assert missed == {}
    breaking = any(sev == "breaking" for *_, sev in found)
    assert code == (1 if breaking else 0)


@pytest.mark.parametrize("baseline", ["fixtures", "history"])
@pytest.mark.parametrize("change", [h for _, h in HARMLESS], ids=[n for n, _ in HARMLESS])
def test_a_harmless_change_gives_no_finding(
    upstream: DriftingUpstream,
    setting: dict[str, Path],
    tmp_path: Path,
    change: Callable[[Any, str], Any],
    baseline: str,
) -> None:
    """Texts, dates, counts, array order and length, key order: no finding, exit 0."""
    upstream.mutate = _body_mutation(change)
    try:
        code, report = _drift(upstream, setting, baseline, tmp_path)
    finally:
        upstream.mutate = None
    name = next(n for n, h in HARMLESS if h is change)
    TABLE[("harmless", name, baseline)] = {
        op: ("quiet" if not any(f["operation"] == op for f in report["findings"]) else "NOISY")
        for op in OPERATIONS
    }
    assert report["findings"] == []
    assert code == 0


@pytest.mark.parametrize("baseline", ["fixtures", "history"])
@pytest.mark.parametrize(
    ("encode", "level"), [(e, lv) for _, e, lv in ENCODINGS], ids=[n for n, _, _ in ENCODINGS]
)
def test_a_harmless_encoding_gives_no_finding(
    upstream: DriftingUpstream,
    setting: dict[str, Path],
    tmp_path: Path,
    encode: Callable[[Any], bytes],
    level: int,
    baseline: str,
) -> None:
    """Whitespace, \\u escapes, another gzip level: the same answers, no finding."""
    upstream.encode, upstream.compresslevel = encode, level
    try:
        code, report = _drift(upstream, setting, baseline, tmp_path)
    finally:
        upstream.encode = lambda b: json.dumps(b, ensure_ascii=False).encode()
        upstream.compresslevel = 9
    name = next(n for n, e, _ in ENCODINGS if e is encode)
    TABLE[("harmless", name, baseline)] = {
        op: ("quiet" if not any(f["operation"] == op for f in report["findings"]) else "NOISY")
        for op in OPERATIONS
    }
    assert report["findings"] == []
    assert code == 0
    assert gzip.compress(b"x", compresslevel=level)  # the level is one gzip accepts


def test_the_laboratory_reaches_every_operation() -> None:
    """Every operation gets at least seven of the plants (the rest need a field it lacks)."""
    counts = {op: sum(1 for p in PLANTS if p.applies(ROLES[op])) for op in OPERATIONS}
    assert min(counts.values()) >= 7, counts
    assert len(OPERATIONS) == 13
