"""The fixture store at scale (issue 17): start-up, memory, first answers, hot throughput.

A corpus of N generated fixtures (``bench/scale_corpus.py``: getContent answers of about 2 KB and,
one in twenty, listBroadcasts schedules of 100 KB or more), made once into a cache folder and
reused, is served by ``pivotkit serve --workers 2`` (production, granian):

- **start-up and memory** over each size: the first start on an empty state folder builds the
  index (every file read and checked once: *cold*), the next ones reuse it (*warm*: the index
  and a stat of every file); time from the command to the first 200 of getContent/7488 and PSS
  (``/proc/<pid>/smaps_rollup``, the server and its workers) once the memory settled, and the
  index counters from ``/__pivot/fixtures`` (files read, lines reused) that say which it was;
- **first answers** on the largest corpus, warm: ``--cold`` fixtures never asked before (half
  small, half large), one request each over a kept-alive connection (gzip), then the same ones
  again (prepared): median and p99 in ms;
- **hot throughput**: wrk on getContent/7488 (gzip), the store against the previous design
  (commit ``--baseline``, run from a ``git worktree`` of it with this interpreter), both on the
  bundled fixtures, and the store on the largest corpus, in interleaved rounds
  (bench_mock.throughput);
- the previous design's start-up and memory on the sizes up to ``--baseline-max``.

This is a benchmark, not a test: it prints the targets (first 200 < 1 s and PSS < 300 MB with
100,000 fixtures; a first answer < 5 ms; hot throughput within 10 % of the previous design) and
asserts none of them. Results: bench/results/scale-<time>.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_mock as bm  # noqa: E402
import scale_corpus  # noqa: E402

TARGETS = {"first_200_s": 1.0, "pss_mb": 300.0, "first_answer_ms": 5.0, "hot_vs_previous": 0.9}
BASELINE = "4ffe7d2"


def baseline_tree(commit: str, where: Path) -> Path:
    """A ``git worktree`` of ``commit`` (made once, reused)."""
    if not (where / "mockserver").is_dir():
        subprocess.run(
            ["git", "-C", str(bm.ROOT), "worktree", "add", "--detach", str(where), commit],
            check=True,
            capture_output=True,
        )
    return where


def server(
    name: str, fixtures: Path | None, state: Path, workers: int, tree: Path | None = None
) -> bm.Server:
    """``pivotkit serve --workers N --state STATE``, from this checkout or from ``tree``."""
    srv = bm.pivotkit_server(name, ["--workers", str(workers), "--state", str(state)], fixtures)
    if tree is not None:
        srv.argv[: len(bm.pivotkit_command())] = [
            sys.executable,
            "-c",
            "import sys; from pivotkit.cli import main; sys.argv[0] = 'pivotkit'; main()",
        ]
        srv.env["PYTHONPATH"] = str(tree)
        srv.cwd = tree
    srv.ready_timeout = 900.0
    return srv


def _admin(port: int, what: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "GET", f"/__pivot/{what}", headers={"Authorization": f"Bearer {bm.ADMIN_TOKEN}"}
        )
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def start_once(srv: bm.Server, logdir: Path) -> dict[str, Any]:
    """One start: seconds to the first 200, PSS and RSS once settled, the index counters."""
    try:
        first = srv.start(logdir)
        waited, rss = srv.settle()
        pss = srv.pss_mb() or 0.0
        index = _admin(srv.port, "fixtures").get("index")
        return {
            "first_200_s": first,
            "settled_s": first + waited,
            "rss_mb": rss,
            "pss_mb": pss,
            "index": index,
        }
    finally:
        srv.stop()


def startup_table(
    sizes: list[int],
    corpora: dict[int, Path],
    work: Path,
    args: argparse.Namespace,
    tree: Path | None,
) -> list[dict[str, Any]]:
    logdir = work / "logs"
    rows = []
    for n in sizes:
        state = work / f"state-{n}"
        state.mkdir()
        cold = start_once(
            server(f"store {n} cold", corpora[n], state / "s.sqlite", args.workers), logdir
        )
        warm = [
            start_once(
                server(f"store {n} warm", corpora[n], state / "s.sqlite", args.workers), logdir
            )
            for _ in range(args.repeat)
        ]
        index_file = next((state / "fixture-index").glob("*.sqlite"), None)
        row: dict[str, Any] = {
            "fixtures": n,
            "cold": cold,
            "warm_runs": warm,
            "warm_first_200_s": statistics.median(w["first_200_s"] for w in warm),
            "warm_pss_mb": statistics.median(w["pss_mb"] for w in warm),
            "warm_rss_mb": statistics.median(w["rss_mb"] for w in warm),
            "index_bytes": index_file.stat().st_size if index_file else None,
            "corpus_bytes": sum(p.stat().st_size for p in corpora[n].glob("*/*.json")),
        }
        if tree is not None and n <= args.baseline_max:
            base_state = work / f"state-base-{n}"
            base_state.mkdir()
            row["previous"] = start_once(
                server(f"previous {n}", corpora[n], base_state / "s.sqlite", args.workers, tree),
                logdir,
            )
        rows.append(row)
        print(
            f"   {n:,}: cold {cold['first_200_s']:.2f} s / {cold['pss_mb']:.0f} MB, warm "
            f"{row['warm_first_200_s']:.2f} s / {row['warm_pss_mb']:.0f} MB"
            + (
                f", previous {row['previous']['first_200_s']:.2f} s / "
                f"{row['previous']['pss_mb']:.0f} MB"
                if "previous" in row
                else ""
            ),
            file=sys.stderr,
        )
    return rows


def _timed_get(conn: http.client.HTTPConnection, path: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    conn.request(
        "GET", path, headers={"Accept-Encoding": "gzip", "Ocp-Apim-Subscription-Key": bm.KEY}
    )
    response = conn.getresponse()
    body = response.read()
    return (time.perf_counter() - started) * 1000, response.status, len(body)


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "median_ms": statistics.median(ordered),
        "p99_ms": p99,
        "max_ms": ordered[-1],
        "n": len(ordered),
    }


def first_answers(corpus: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Fixtures never asked before, one request each, then again (prepared)."""
    small = sorted(corpus.glob("getContent/*.json"))[1 : 1 + args.cold // 2]
    large = sorted(corpus.glob("listBroadcasts/*.json"))[: args.cold - len(small)]
    paths = []
    for file in [*small, *large]:
        paths.append((file.parent.name, json.loads(file.read_bytes())["request"]["path"]))
    state = _state(work, args.largest, corpus, args)
    srv = server("store first answers", corpus, state / "s.sqlite", args.workers)
    logdir = work / "logs"
    try:
        srv.start(logdir)
        srv.settle()
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        _timed_get(conn, bm.PATH)
        first: dict[str, list[float]] = {"getContent": [], "listBroadcasts": []}
        again: dict[str, list[float]] = {"getContent": [], "listBroadcasts": []}
        sizes: dict[str, list[int]] = {"getContent": [], "listBroadcasts": []}
        for op, path in paths:
            ms, status, size = _timed_get(conn, path)
            assert status == 200 and size > 10, (path, status, size)
            first[op].append(ms)
            sizes[op].append(size)
        for op, path in paths:
            again[op].append(_timed_get(conn, path)[0])
        conn.close()
        cache = _admin(srv.port, "health").get("fixtureCache")
    finally:
        srv.stop()
    out: dict[str, Any] = {"cache_after": cache}
    for op in first:
        if first[op]:
            out[op] = {
                "first": _stats(first[op]),
                "prepared": _stats(again[op]),
                "gzip_bytes_median": statistics.median(sizes[op]),
            }
    out["all"] = {"first": _stats(first["getContent"] + first["listBroadcasts"])}
    print(f"   first answers: {json.dumps(out)}", file=sys.stderr)
    return out


def _state(work: Path, n: int, corpus: Path, args: argparse.Namespace) -> Path:
    """The state folder of size ``n`` with its index built (by the start-up phase, or now)."""
    state = work / f"state-{n}"
    if not state.is_dir():
        state.mkdir()
        srv = server(f"store {n} cold", corpus, state / "s.sqlite", args.workers)
        srv.start(work / "logs")
        srv.stop()
    return state


def hot(corpus: Path, work: Path, args: argparse.Namespace, tree: Path | None) -> dict[str, Any]:
    state = _state(work, args.largest, corpus, args)
    servers = [server("store, bundled", None, work / "hot-a" / "s.sqlite", args.workers)]
    if tree is not None:
        servers.append(
            server("previous, bundled", None, work / "hot-b" / "s.sqlite", args.workers, tree)
        )
    big = server(f"store, {args.largest:,}", corpus, state / "s.sqlite", args.workers)
    servers.append(big)
    for srv in servers:
        Path(srv.argv[srv.argv.index("--state") + 1]).parent.mkdir(exist_ok=True)
    load = bm.Load(args.threads, args.connections, args.duration, args.warmup)
    result = bm.throughput(servers, load, args.rounds, work)
    rows = {r["server"]: r for r in result["rows"]}
    summary = {
        name: {k: rows[name][k] for k in ("rps", "p50_ms", "p99_ms", "errors")} for name in rows
    }
    if tree is not None:
        summary["ratio_store_vs_previous"] = (
            rows["store, bundled"]["rps"] / rows["previous, bundled"]["rps"]
        )
    print(f"   hot: {json.dumps(summary)}", file=sys.stderr)
    return {"summary": summary, "runs": {n: rows[n]["runs"] for n in rows}}


def _read_count(run: dict[str, Any]) -> str:
    index = run.get("index") or {}
    return f"{index['read']:,}" if "read" in index else "?"


def _pair(run: dict[str, Any] | None) -> str:
    return "" if run is None else f"{run['first_200_s']:.2f} s / {run['pss_mb']:.0f} MB"


def render(result: dict[str, Any]) -> str:
    lines = [
        "| fixtures (5 % of 100 KB+) | corpus | index file | cold start: first 200 / PSS "
        "| warm start: first 200 / PSS (RSS summed) | files read cold / warm "
        "| previous design: first 200 / PSS |",
        "|---:|---:|---:|---|---|---|---|",
    ]
    for row in result.get("startup", []):
        cold, warm = row["cold"], row["warm_runs"][0]
        prev = row.get("previous")
        lines.append(
            f"| {row['fixtures']:,} | {row['corpus_bytes'] / 1e6:,.0f} MB "
            f"| {(row['index_bytes'] or 0) / 1e6:.1f} MB "
            f"| {cold['first_200_s']:.2f} s / {cold['pss_mb']:.0f} MB "
            f"| {row['warm_first_200_s']:.2f} s / {row['warm_pss_mb']:.0f} MB "
            f"({row['warm_rss_mb']:.0f}) "
            f"| {_read_count(cold)} / {_read_count(warm)} | {_pair(prev)} |"
        )
    first = result.get("first_answers")
    if first:
        lines += [
            "",
            "| first answer (gzip, warm start) | median | p99 | max | once prepared: median |",
            "|---|---:|---:|---:|---:|",
        ]
        for op in ("getContent", "listBroadcasts"):
            if op in first:
                f, p = first[op]["first"], first[op]["prepared"]
                lines.append(
                    f"| {op} ({f['n']}, {first[op]['gzip_bytes_median'] / 1000:.0f} KB gzipped) "
                    f"| {f['median_ms']:.2f} ms | {f['p99_ms']:.2f} ms | {f['max_ms']:.2f} ms "
                    f"| {p['median_ms']:.2f} ms |"
                )
    hot_result = result.get("hot")
    if hot_result:
        lines += ["", "| hot fixture (wrk, gzip) | req/s | p50 | p99 |", "|---|---:|---:|---:|"]
        for name, row in hot_result["summary"].items():
            if isinstance(row, dict):
                lines.append(
                    f"| {name} | {row['rps']:,.0f} | {row['p50_ms']:.2f} ms "
                    f"| {row['p99_ms']:.2f} ms |"
                )
        if "ratio_store_vs_previous" in hot_result["summary"]:
            lines.append(
                f"\nstore / previous: {hot_result['summary']['ratio_store_vs_previous']:.3f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="warm starts per size")
    parser.add_argument("--cold", type=int, default=200, help="fixtures asked once, cold")
    parser.add_argument("--cache", type=Path, default=bm.RESULTS, help="where corpora are kept")
    parser.add_argument("--baseline", default=BASELINE, help="the previous design's commit")
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="a checkout of it (default: made)"
    )
    parser.add_argument("--baseline-max", type=int, default=10_000)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", action="append", default=[], help="startup, first, hot")
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000; 1 round of 3 s")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat, args.rounds, args.duration, args.cold = "1000,10000", 1, 1, 3, 40
    sizes = sorted(int(s) for s in args.sizes.split(","))
    args.largest = sizes[-1]
    corpora = {n: scale_corpus.cached(n, n // 20, args.cache) for n in sizes}
    result: dict[str, Any] = {
        "benchmark": "scale",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "targets": TARGETS,
        "workers": args.workers,
        "loadavg_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="pivotkit-scale-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        tree = None
        if not args.no_baseline:
            tree = baseline_tree(
                args.baseline, args.baseline_tree or bm.RESULTS / f"baseline-{args.baseline}"
            )
        with contextlib.suppress(KeyboardInterrupt):
            if "startup" not in args.skip:
                print("start-up and memory:", file=sys.stderr)
                result["startup"] = startup_table(sizes, corpora, work, args, tree)
            if "first" not in args.skip:
                print("first answers:", file=sys.stderr)
                result["first_answers"] = first_answers(corpora[args.largest], work, args)
            if "hot" not in args.skip:
                print("hot throughput:", file=sys.stderr)
                result["hot"] = hot(corpora[args.largest], work, args, tree)
    result["loadavg_after"] = os.getloadavg()
    print(render(result))
    out = args.out or bm.RESULTS / f"scale-{result['when'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
