"""Benchmark: drift analysis of 10,000 recorded answers in-process (no HTTP); time and memory,
without a history and with a history of 100 earlier runs.

Run: ``python bench/bench_drift.py [--answers 10000] [--drift 0.01] [--history-runs 100]
[--pure-python]``. The answers are the fixtures' own exchanges, replayed in turn with their
free texts and date-times changed (values that differ between runs), and a share of them
drifted (a field dropped, a type changed, a new field). Building them is not timed, nor is
filling the history (each earlier run stored as a real run: what each request showed, the
observed schemas, findings every tenth run).
With the history, the timed part is a whole run after the replay: the history's baseline
read, the analysis against it, the findings, the run stored with each finding's life (one
transaction, then trimmed to --keep runs), and the HTML page rendered.
"""

from __future__ import annotations

import argparse
import copy
import gc
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from pivotkit.contract import Contract, load_contract
from pivotkit.drift.analysis import DriftAnalysis
from pivotkit.drift.history import History
from pivotkit.drift.page import render
from pivotkit.drift.replay import REPLAYED_STATUSES, Answer
from pivotkit.drift.report import RunPoint, build_report
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


def _store(history: History, analysis: DriftAnalysis, started: str) -> int:
    report = build_report(analysis, target="bench", started=started)
    return history.record(
        target="bench",
        started=started,
        finished=started,
        findings=report.findings,
        summary=report.summary(),
        operations=dict(report.answers),
        seen=analysis.seen,
        observed={op: obs.to_schema() for op, obs in analysis.observers.items()},
    ).run


def fill_history(path: Path, runs: int, answers: list[Answer], keep: int) -> float:
    """``runs`` earlier runs in a history file (one per plan's worth of answers, a drifted
    plan every tenth run); returns the seconds it took (not part of the measure)."""
    contract = load_contract()
    plan_size = len(
        {(a.request.method, a.request.path, tuple(a.request.query.items())) for a in answers}
    )
    clean = DriftAnalysis(contract)
    drifted = DriftAnalysis(contract)
    for answer in answers[:plan_size]:
        clean.add(answer)
    for answer in build_answers(plan_size, 0.2):
        drifted.add(answer)
    start = time.perf_counter()
    with History(path, keep=keep) as history:
        for n in range(runs):
            _store(
                history,
                drifted if n % 10 == 9 else clean,
                f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
            )
    return time.perf_counter() - start


def run_with_history(answers: list[Answer], path: Path, keep: int) -> dict[str, float]:
    """One run after the replay, against the history: seconds per phase."""
    contract = load_contract()
    times: dict[str, float] = {}
    with History(path, keep=keep) as history:
        start = time.perf_counter()
        baseline = history.baseline("bench")
        times["baseline"] = time.perf_counter() - start
        analysis = DriftAnalysis(contract, history=baseline)
        start = time.perf_counter()
        for answer in answers:
            analysis.add(answer)
        report = build_report(analysis, target="bench", started="2024-02-01T00:00:00Z")
        times["analysis"] = time.perf_counter() - start
        start = time.perf_counter()
        recorded = history.record(
            target="bench",
            started=report.started,
            finished=report.finished,
            findings=report.findings,
            summary=report.summary(),
            operations=dict(report.answers),
            seen=analysis.seen,
            observed={op: obs.to_schema() for op, obs in analysis.observers.items()},
        )
        times["record"] = time.perf_counter() - start
        start = time.perf_counter()
        report.findings, report.resolved, report.run = (
            recorded.findings,
            recorded.resolved,
            recorded.run,
        )
        report.series = [RunPoint(r.id, r.started, r.summary) for r in history.runs("bench", 30)]
        render(report)
        times["html"] = time.perf_counter() - start
        times["findings"] = len(report.findings)
        times["new"] = sum(f.status == "new" for f in report.findings)
    return times


def main() -> None:
    """Print time per 1,000 answers, total time and peak memory, then the same with a
    history of earlier runs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--drift", type=float, default=0.01, help="share of drifted answers")
    parser.add_argument("--history-runs", type=int, default=100, help="earlier runs kept")
    parser.add_argument("--keep", type=int, default=100, help="runs the history keeps")
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
    print("## without a history")
    print(f"total: {seconds:.2f} s; per 1,000 answers: {seconds / len(answers) * 1000:.3f} s")
    print(f"peak traced memory of the analysis: {peak / 2**20:.1f} MiB")
    print(
        f"findings: {len(active)} ({sum(f.severity == 'breaking' for f in active)} breaking), "
        f"{analysis.preexisting} preexisting"
    )
    if args.history_runs:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "history.sqlite"
            filled = fill_history(path, args.history_runs, answers, args.keep)
            size = path.stat().st_size
            again = Path(tmp) / "again.sqlite"
            again.write_bytes(path.read_bytes())
            gc.collect()
            times = run_with_history(answers, path, args.keep)
            after = path.stat().st_size
            tracemalloc.start()
            run_with_history(answers, again, args.keep)
            _, peak_history = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        total = sum(v for k, v in times.items() if k in ("baseline", "analysis", "record", "html"))
        print(f"## with a history of {args.history_runs} runs (keep {args.keep})")
        print(
            f"history file: {size / 2**20:.2f} MiB before, {after / 2**20:.2f} MiB after "
            f"(filled in {filled:.1f} s, not timed)"
        )
        print(
            f"total: {total:.2f} s = baseline {times['baseline']:.3f} s + analysis "
            f"{times['analysis']:.2f} s + record {times['record']:.3f} s + html "
            f"{times['html']:.3f} s"
        )
        print(f"peak traced memory of the run: {peak_history / 2**20:.1f} MiB")
        print(f"findings: {int(times['findings'])} ({int(times['new'])} new)")
    verdict = "met" if seconds * 10_000 / len(answers) < 5 else "MISSED"
    print(
        f"process peak RSS (answers included): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    print(f"target (< 5 s for 10,000 without a history): {verdict}")


if __name__ == "__main__":
    main()
