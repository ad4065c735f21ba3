"""Benchmark: drift analysis of 10,000 recorded answers in-process (no HTTP); time and memory.

Run: ``python bench/bench_drift.py [--answers 10000] [--drift 0.01] [--pure-python]``.
The answers are the fixtures' own exchanges, replayed in turn with their free texts and
date-times changed (values that differ between runs), and a share of them drifted
(a field dropped, a type changed, a new field). Building them is not timed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import resource
import time
import tracemalloc
from typing import Any

from pivotkit.contract import Contract, load_contract
from pivotkit.drift.analysis import DriftAnalysis
from pivotkit.drift.replay import REPLAYED_STATUSES, Answer
from pivotkit.fixtures import FixtureSet
from pivotkit.observer import string_format
from pivotkit.plan import plan_from_fixtures


def _vary(value: Any, n: int) -> Any:
    """The same shape with other values: texts and date-times change, the rest stays."""
    if isinstance(value, dict):
        return {k: _vary(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_vary(v, n) for v in value]
    if isinstance(value, str):
        fmt = string_format(value)
        if fmt == "local-date-time":
            return value[:19] + ("" if n % 3 == 0 else "." + str(n % 997 + 1).rstrip("0"))
        if fmt is None and len(value) > 12:
            return f"{value} ({n})"
    return value


def _drift(body: Any, n: int) -> Any:
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict) and data:
        key = sorted(data)[n % len(data)]
        if n % 3 == 0:
            data.pop(key)
        elif n % 3 == 1:
            data[key] = str(data[key])
        else:
            data["addedField"] = n
    return body


def build_answers(count: int, drift_share: float) -> list[Answer]:
    """``count`` answers cycling over the fixture plan; every 1/drift_share-th one drifted."""
    contract = load_contract()
    plan = [
        item
        for item in plan_from_fixtures(FixtureSet.load(), contract, replayed=REPLAYED_STATUSES)
        if item.sendable
    ]
    every = int(1 / drift_share) if drift_share > 0 else 0
    out = []
    for n in range(count):
        item = plan[n % len(plan)]
        ex = item.baseline
        assert ex is not None
        body = copy.deepcopy(ex.response.body)
        if ex.response.status == 200:  # an error's message is fixed text, not a value
            body = _vary(body, n)
        if every and n % every == every - 1:
            body = _drift(body, n)
        out.append(
            Answer(
                item.operation_id,
                item.request(contract),
                ex.response.status,
                {k.lower(): v for k, v in ex.response.headers.items()},
                body,
                ex,
            )
        )
    return out


def run(answers: list[Answer], *, pure_python: bool) -> tuple[DriftAnalysis, float]:
    """Feed every answer to a fresh analysis and compute its findings; returns the seconds."""
    contract = Contract.load(engine="python") if pure_python else load_contract()
    analysis = DriftAnalysis(contract)
    start = time.perf_counter()
    for answer in answers:
        analysis.add(answer)
    analysis.findings()
    return analysis, time.perf_counter() - start


def main() -> None:
    """Print time per 1,000 answers, total time and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--drift", type=float, default=0.01, help="share of drifted answers")
    parser.add_argument(
        "--pure-python",
        action="store_true",
        help="validate with the contract's Python validator only",
    )
    args = parser.parse_args()
    answers = build_answers(args.answers, args.drift)
    gc.collect()
    analysis, seconds = run(answers, pure_python=args.pure_python)
    active, _ = analysis.findings()
    tracemalloc.start()
    run(answers, pure_python=args.pure_python)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    engine = analysis.contract.engine
    print(f"answers: {len(answers)} ({args.drift:.1%} drifted), validator fast path: {engine}")
    print(f"total: {seconds:.2f} s; per 1,000 answers: {seconds / len(answers) * 1000:.3f} s")
    print(f"peak traced memory of the analysis: {peak / 2**20:.1f} MiB")
    print(
        f"findings: {len(active)} ({sum(f.severity == 'breaking' for f in active)} breaking), "
        f"{analysis.preexisting} preexisting"
    )
    verdict = "met" if seconds * 10_000 / len(answers) < 5 else "MISSED"
    print(
        f"process peak RSS (answers included): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    print(f"target (< 5 s for 10,000): {verdict}")


if __name__ == "__main__":
    main()
