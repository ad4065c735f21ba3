"""Validations per second of the getContent/7488 envelope: pivotkit side by side with its peers.

Issue 2. Every candidate checks the same body (``fixtures/getContent/7488.json`` response.body)
against the same schema (the 200 response of getContent in ``schemas/openapi.yaml``: the empty
result, else the envelope whose ``data`` is content.json), in tolerant mode:

- ``pivotkit validate``   ``load_contract().validate(...)``: the full list of violations;
- ``pivotkit is_valid``   ``load_contract().is_valid(...)``: the yes/no fast path;
- ``jsonschema naive``    what a user writes without pivotkit: a ``referencing.Registry`` built
  from the schema documents and a ``Draft202012Validator`` built on every call, then
  ``validate()`` (the documents are parsed once; file reading is left out of the timing);
- ``jsonschema compiled once``  for reference: one ``Draft202012Validator`` over pivotkit's
  registry, built once (the pure-Python engine alone, without any fast path);
- ``jsonschema-rs is_valid`` / ``jsonschema-rs iter_errors``  jsonschema-rs, compiled once with
  a ``jsonschema_rs.Registry`` holding the same documents.

The candidates run in interleaved rounds (a batch of each, in a rotating order, per round), so
the noise of a shared machine hits all of them alike; the table reports the median and the best
batch of each, and the ratios of the medians. This is a benchmark, not a test: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FIXTURE = ROOT / "fixtures" / "getContent" / "7488.json"
OPERATION, STATUS = "getContent", 200


def _documents(schemas: Path) -> dict[str, Any]:
    """Every schema document of the contract by its URI, parsed once (as a user would)."""
    from pivotkit.contract import OPENAPI_NAME, OPENAPI_URI

    openapi = yaml.safe_load((schemas / OPENAPI_NAME).read_text("utf-8"))
    docs: dict[str, Any] = {OPENAPI_URI: openapi}
    for path in sorted(schemas.glob("*.json")):
        schema = json.loads(path.read_text("utf-8"))
        docs[schema["$id"]] = schema
    return docs


def _candidates(schemas: Path) -> dict[str, Callable[[Any], bool]]:
    """name -> a callable that validates one body and says whether it fits."""
    import jsonschema_rs
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    from pivotkit.contract import load_contract

    contract = load_contract(schemas)
    ref = contract.schema_ref(OPERATION, STATUS)
    docs = _documents(schemas)

    def pivotkit_validate(body: Any) -> bool:
        return not contract.validate(OPERATION, STATUS, body)

    def pivotkit_is_valid(body: Any) -> bool:
        return contract.is_valid(OPERATION, STATUS, body)

    def jsonschema_naive(body: Any) -> bool:
        registry = Registry().with_resources(
            (uri, DRAFT202012.create_resource(doc)) for uri, doc in docs.items()
        )
        validator = Draft202012Validator({"$ref": ref}, registry=registry)
        try:
            validator.validate(body)
        except ValidationError:
            return False
        return True

    compiled = Draft202012Validator({"$ref": ref}, registry=contract.registry)

    def jsonschema_once(body: Any) -> bool:
        try:
            compiled.validate(body)
        except ValidationError:
            return False
        return True

    # The pointer holds "{id}": jsonschema-rs wants it percent-encoded (a valid URI); quoting
    # leaves an already encoded "%7Bid%7D" alone.
    base, fragment = ref.split("#", 1)
    rs_ref = base + "#" + urllib.parse.quote(fragment, safe="/~%")
    rs_registry = jsonschema_rs.Registry(list(docs.items()), draft=jsonschema_rs.Draft202012)
    rs_validator = jsonschema_rs.Draft202012Validator({"$ref": rs_ref}, registry=rs_registry)

    def rs_is_valid(body: Any) -> bool:
        return bool(rs_validator.is_valid(body))

    def rs_iter_errors(body: Any) -> bool:
        return not list(rs_validator.iter_errors(body))

    return {
        "pivotkit validate": pivotkit_validate,
        "pivotkit is_valid": pivotkit_is_valid,
        "jsonschema naive (per call)": jsonschema_naive,
        "jsonschema compiled once": jsonschema_once,
        "jsonschema-rs is_valid": rs_is_valid,
        "jsonschema-rs iter_errors": rs_iter_errors,
    }


def _bad_bodies(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """Bodies every candidate must reject, so they are known to check the same schema."""
    out: list[tuple[str, Any]] = []
    edits: tuple[tuple[str, Callable[[Any], object]], ...] = (
        ("empty title", lambda b: b["data"].__setitem__("title", "")),
        ("lowercase country", lambda b: b["data"].__setitem__("countries", ["usa"])),
        (
            "lastUpdate with a zone",
            lambda b: b["data"].__setitem__("lastUpdate", "2024-09-27T07:48:30Z"),
        ),
        ("statusCode 201", lambda b: b.__setitem__("statusCode", 201)),
        ("no data", lambda b: b.pop("data")),
    )
    for name, edit in edits:
        bad = copy.deepcopy(body)
        edit(bad)
        out.append((name, bad))
    return out


def _agree(candidates: dict[str, Callable[[Any], bool]], body: Any) -> None:
    """Refuse to time candidates that do not give the same answers."""
    problems = [f"{name}: rejects the 7488 body" for name, fn in candidates.items() if not fn(body)]
    for case, bad in _bad_bodies(body):
        problems += [f"{name}: accepts {case}" for name, fn in candidates.items() if fn(bad)]
    if problems:
        raise SystemExit("candidates disagree, nothing timed:\n  " + "\n  ".join(problems))


def _batch(fn: Callable[[Any], bool], body: Any, number: int) -> float:
    """Validations per second over ``number`` calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn(body)
    return number / (time.perf_counter() - start)


def _calibrate(fn: Callable[[Any], bool], body: Any, seconds: float) -> int:
    """How many calls fill about ``seconds``."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn(body)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.05:
            return max(1, int(number * seconds / elapsed))
        number *= 4


def run(rounds: int, seconds: float, schemas: Path) -> dict[str, Any]:
    """Time every candidate; the result is JSON-ready."""
    body = json.loads(FIXTURE.read_text("utf-8"))["response"]["body"]
    candidates = _candidates(schemas)
    _agree(candidates, body)
    numbers = {name: _calibrate(fn, body, seconds) for name, fn in candidates.items()}
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(_batch(candidates[name], body, numbers[name]))
    rows: list[dict[str, Any]] = []
    for name in names:
        median = statistics.median(rates[name])
        rows.append(
            {
                "candidate": name,
                "median_per_s": median,
                "best_per_s": max(rates[name]),
                "median_us_per_call": 1e6 / median,
                "batches": rates[name],
                "calls_per_batch": numbers[name],
            }
        )
    by: dict[str, float] = {row["candidate"]: row["median_per_s"] for row in rows}
    naive = by["jsonschema naive (per call)"]
    ratios = {
        "pivotkit validate / jsonschema naive": by["pivotkit validate"] / naive,
        "pivotkit is_valid / jsonschema naive": by["pivotkit is_valid"] / naive,
        "pivotkit validate / jsonschema-rs iter_errors": by["pivotkit validate"]
        / by["jsonschema-rs iter_errors"],
        "pivotkit is_valid / jsonschema-rs is_valid": by["pivotkit is_valid"]
        / by["jsonschema-rs is_valid"],
    }
    return {
        "benchmark": "validate",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "fixture": str(FIXTURE.relative_to(ROOT)),
        "body_bytes": len(json.dumps(body, ensure_ascii=False).encode()),
        "rounds": rounds,
        "seconds_per_batch": seconds,
        "environment": _environment(),
        "rows": rows,
        "ratios": ratios,
    }


def _environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for dist in ("pivotkit", "jsonschema", "referencing", "jsonschema-rs"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "versions": versions,
    }


def render(result: dict[str, Any]) -> str:
    """The result as a Markdown table and a list of ratios."""
    env = result["environment"]
    lines = [
        f"validate getContent/7488 ({result['body_bytes']} bytes), {result['rounds']} interleaved"
        f" rounds, {env['cpus']} CPUs, load {env['loadavg'][0]:.2f}",
        "",
        "| candidate | median /s | best /s | µs per call |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['candidate']} | {row['median_per_s']:,.0f} | {row['best_per_s']:,.0f}"
            f" | {row['median_us_per_call']:,.1f} |"
        )
    lines.append("")
    lines += [f"- {name}: {_ratio(value)}" for name, value in result["ratios"].items()]
    return "\n".join(lines)


def _ratio(value: float) -> str:
    """A ratio readable on both sides of 1: ``0.0031x (324x slower)``."""
    if value >= 1:
        return f"{value:.2f}x"
    return f"{value:.3g}x ({1 / value:,.1f}x slower)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.5,
        help="target length of one batch in seconds (default 0.5)",
    )
    parser.add_argument("--schemas", type=Path, default=ROOT / "schemas")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.1 s: a smoke run")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON file (default: bench/results/validate-<time>.json and validate.json)",
    )
    args = parser.parse_args(argv)
    rounds, seconds = (3, 0.1) if args.quick else (args.rounds, args.seconds)
    result = run(rounds, seconds, args.schemas)
    print(render(result))
    _write(result, args.out, "validate")
    return 0


def _write(result: dict[str, Any], out: Path | None, stem: str) -> None:
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = result["when"].replace(":", "").replace("-", "")
        paths = [RESULTS / f"{stem}-{stamp}.json", RESULTS / f"{stem}.json"]
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        paths = [out]
    for path in paths:
        path.write_text(text, "utf-8")
    print(f"\nresults: {', '.join(str(p) for p in paths)}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
