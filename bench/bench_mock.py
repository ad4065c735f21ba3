"""Mock-server throughput, latency, start-up and memory: pivotkit side by side with its peers.

Issue 3. Every server answers ``GET /v1/api/v1/contents/7488`` (``Accept-Encoding: gzip``, a
valid ``Ocp-Apim-Subscription-Key``) with the body of ``fixtures/getContent/7488.json`` over
loopback, and the SAME load generator (wrk, one Lua script, the same threads, connections and
duration) drives each of them in turn:

- ``pivotkit dev``         ``pivotkit serve --dev --no-reload`` (the development server);
- ``pivotkit production``  ``pivotkit serve --production --workers N`` (if the command has it);
- ``pivotkit production, 10k fixtures``  the same over 10,000 generated fixtures;
- ``pivotkit production, journal off``  the same with ``--no-journal`` (issue 16): the
  journal's cost on throughput, in the same rounds, and its memory (the ring's bytes used,
  records kept and forgotten, the file's size: bounded by ``--journal-bytes``);
- ``WireMock 3.13``        the standalone jar bundled by the npm package ``wiremock``, one stub
  mapping with the same body and headers, matched on the key header, gzip by WireMock itself;
- ``Prism 5.14``           ``prism mock`` on a generated, self-contained OpenAPI 3.1 document whose
  example is the same body (the key header is declared as its apiKey security scheme).

Every server is started, checked (status 200, the fixture's body once decoded, whether it is
gzipped), then the runs go in interleaved rounds (a rotating order per round, one warm-up run per
server before the first round) so the noise of a shared machine hits all of them alike. The
tables report the median round of each server and the ratios pivotkit/WireMock and
pivotkit/Prism. A second phase starts ``pivotkit serve`` repeatedly to time the first 200 answer
and read the resident memory (VmRSS summed over the process and its children) with the bundled
fixtures and with 10,000 generated ones.

This is a benchmark, not a test: it reports the targets (>= 1.5x WireMock's throughput, p99 no
worse, start-up under 1 s, RSS under 200 MB) and asserts none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.peers import NPM, PEERS  # noqa: E402 (the repository root is on the path now)

RESULTS = ROOT / "bench" / "results"
FIXTURES = ROOT / "fixtures"
FIXTURE = FIXTURES / "getContent" / "7488.json"
PATH = "/v1/api/v1/contents/7488"
# The demo account "full" of fixtures/accounts.toml: a public demo key, not a secret.
KEY = hashlib.sha256(b"pivotkit-demo-full-primary").hexdigest()[:32]
WIREMOCK_VERSION = NPM["wiremock"]
PRISM_VERSION = NPM["@stoplight/prism-cli"]
# Headers the server computes itself: never copied from the fixture into a peer's stub.
COMPUTED = {"content-encoding", "content-length", "date", "transfer-encoding"}

TARGETS = {
    "throughput_vs_wiremock": 1.5,
    "p99_vs_wiremock": 1.0,
    "startup_s": 1.0,
    "rss_mb": 200.0,
}

_WRK_LUA = """\
wrk.method = "GET"
wrk.headers["Accept-Encoding"] = "gzip"
wrk.headers["Cache-Control"] = "no-cache"
wrk.headers["Ocp-Apim-Subscription-Key"] = "%(key)s"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"bytes\\":%%d," ..
    "\\"connect\\":%%d,\\"read\\":%%d,\\"write\\":%%d,\\"status\\":%%d,\\"timeout\\":%%d," ..
    "\\"p50_us\\":%%d,\\"p90_us\\":%%d,\\"p99_us\\":%%d,\\"max_us\\":%%d,\\"mean_us\\":%%.1f}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


# -- processes -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children() -> dict[int, list[int]]:
    """ppid -> pids, from /proc."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        out.setdefault(ppid, []).append(int(entry))
    return out


def _tree(pid: int) -> list[int]:
    children = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_mb(pid: int) -> float:
    """VmRSS of a process and all its descendants (gunicorn workers, forked servers), in MB."""
    total_kb = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if m:
            total_kb += int(m.group(1))
    return total_kb / 1024


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process tree, in seconds (from /proc/<pid>/stat): what
    the server spent, whatever else the machine runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def pss_mb(pid: int) -> float | None:
    """Proportional set size of a process tree in MB: shared pages (a forked master's,
    copy-on-write) are counted once, split between the processes that share them.
    None where /proc/<pid>/smaps_rollup is not readable."""
    total_kb = 0
    for p in _tree(pid):
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            return None
        m = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
        if m is None:
            return None
        total_kb += int(m.group(1))
    return total_kb / 1024


def _get(port: int, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "GET",
            PATH,
            headers={
                "Accept-Encoding": "gzip",
                "Cache-Control": "no-cache",
                "Ocp-Apim-Subscription-Key": KEY,
            },
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@dataclass
class Server:
    """One server under test: how to start it, and its process once started."""

    name: str
    kind: str  # "pivotkit" or "peer"
    argv: list[str]
    port: int
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout: float = 90.0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, logdir: Path) -> float:
        """Start, and return the seconds until the first 200 answer of the 7488 request."""
        self.log = logdir / (re.sub(r"\W+", "-", self.name).strip("-") + ".log")
        env = {**os.environ, **self.env}
        with open(self.log, "ab") as log:
            started = time.perf_counter()
            # A session of its own: stop() ends the server and its workers by this one pid.
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + self.ready_timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; "
                    f"see {self.log}:\n{self._tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if _get(self.port, timeout=2.0)[0] == 200:
                    return time.perf_counter() - started
            time.sleep(0.01)
        raise RuntimeError(
            f"{self.name} gave no 200 within {self.ready_timeout:.0f} s; "
            f"see {self.log}:\n{self._tail()}"
        )

    def _tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid) if self.proc else 0.0

    def pss_mb(self) -> float | None:
        return pss_mb(self.proc.pid) if self.proc else None

    def settle(
        self, window: float = 2.0, tolerance: float = 0.02, limit: float = 120.0
    ) -> tuple[float, float]:
        """Wait until the RSS stops growing (workers still loading after the first answer).

        Returns (seconds until the RSS reached its final level, that RSS in MB): the RSS moved
        less than ``tolerance`` over the last ``window`` seconds, or ``limit`` passed.
        """
        started = time.perf_counter()
        samples: list[tuple[float, float]] = []
        while True:
            now = time.perf_counter()
            samples.append((now, self.rss_mb()))
            recent = [mb for t, mb in samples if t >= now - window]
            stable = max(recent) - min(recent) <= tolerance * max(recent)
            if (now - started >= window and stable) or now - started >= limit:
                break
            time.sleep(0.25)
        final = samples[-1][1]
        first = len(samples) - 1
        while first > 0 and abs(samples[first - 1][1] - final) <= tolerance * final:
            first -= 1
        return samples[first][0] - started, final

    def stop(self) -> None:
        """SIGTERM to the server's process group (its own pid), SIGKILL after 10 s."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Workers left behind by a master that died first share the group: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc = None


@contextlib.contextmanager
def running(servers: list[Server], logdir: Path) -> Iterator[dict[str, float]]:
    """Start every server (their start-up times, by name), and stop them all on the way out."""
    startup: dict[str, float] = {}
    try:
        for server in servers:
            startup[server.name] = server.start(logdir)
        yield startup
    finally:
        for server in servers:
            server.stop()


# -- the servers -----------------------------------------------------------------------------


def _fixture() -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads(FIXTURE.read_text("utf-8"))
    return fixture


def _peer_headers(fixture: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in fixture["response"]["headers"].items() if k.lower() not in COMPUTED}


def wiremock_jar() -> Path | None:
    build = PEERS / "node_modules" / "wiremock" / "build"
    jars = sorted(build.glob("wiremock-standalone-*.jar")) if build.is_dir() else []
    return jars[-1] if jars else None


def prism_entry() -> Path | None:
    entry = PEERS / "node_modules" / "@stoplight" / "prism-cli" / "dist" / "index.js"
    return entry if entry.is_file() else None


def wiremock_server(work: Path, jar: Path) -> Server:
    """WireMock standalone with one stub: the 7488 body and headers, matched on the key."""
    fixture = _fixture()
    root = work / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "__files").mkdir(exist_ok=True)
    mapping = {
        "request": {
            "method": "GET",
            "urlPath": PATH,
            "headers": {"Ocp-Apim-Subscription-Key": {"equalTo": KEY}},
        },
        "response": {
            "status": 200,
            "headers": _peer_headers(fixture),
            # Compact, as pivotkit and Prism serialise it: the same bytes on the wire.
            "body": json.dumps(
                fixture["response"]["body"], ensure_ascii=False, separators=(",", ":")
            ),
        },
    }
    (root / "mappings" / "getContent-7488.json").write_text(json.dumps(mapping, indent=2), "utf-8")
    port = _free_port()
    return Server(
        name=f"WireMock {jar.stem.rsplit('-', 1)[-1]}",
        kind="peer",
        argv=[
            "java",
            "-jar",
            str(jar),
            "--port",
            str(port),
            "--bind-address",
            "127.0.0.1",
            "--root-dir",
            str(root),
            "--no-request-journal",
            "--disable-request-logging",
            "--disable-banner",
        ],
        port=port,
    )


def prism_openapi(fixture: dict[str, Any]) -> dict[str, Any]:
    """A self-contained OpenAPI 3.1 document whose 200 example is the fixture's body."""
    headers = {
        name: {"schema": {"type": "string"}, "example": value}
        for name, value in _peer_headers(fixture).items()
        if name.lower() != "content-type"
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "pivotkit bench: getContent/7488 for Prism", "version": "v1"},
        "servers": [{"url": "http://127.0.0.1"}],
        "components": {
            "securitySchemes": {
                "key": {"type": "apiKey", "in": "header", "name": "Ocp-Apim-Subscription-Key"}
            }
        },
        "security": [{"key": []}],
        "paths": {
            "/v1/api/v1/contents/{id}": {
                "get": {
                    "operationId": "getContent",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The 7488 envelope.",
                            "headers": headers,
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object"},
                                    "example": fixture["response"]["body"],
                                }
                            },
                        }
                    },
                }
            }
        },
    }


def prism_server(work: Path, entry: Path) -> Server:
    doc = work / "prism" / "openapi.yaml"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(
        yaml.safe_dump(prism_openapi(_fixture()), allow_unicode=True, sort_keys=False), "utf-8"
    )
    port = _free_port()
    version = json.loads((entry.parent.parent / "package.json").read_text())["version"]
    return Server(
        name=f"Prism {version}",
        kind="peer",
        argv=[
            "node",
            str(entry),
            "mock",
            str(doc),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-v",
            "silent",
        ],
        port=port,
    )


def pivotkit_command() -> list[str]:
    exe = Path(sys.executable).parent / "pivotkit"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("pivotkit")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; from pivotkit.cli import main; sys.argv[0] = 'pivotkit'; main()",
    ]


def serve_help() -> str | None:
    """``pivotkit serve --help``, or None while the command does not exist."""
    proc = subprocess.run(
        [*pivotkit_command(), "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    return proc.stdout if proc.returncode == 0 else None


ADMIN_TOKEN = "bench-admin-token"  # every pivotkit server: the journal's stats are read with it


def pivotkit_server(name: str, extra: list[str], fixtures: Path | None = None) -> Server:
    port = _free_port()
    argv = [*pivotkit_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *extra]
    argv += ["--admin-token", ADMIN_TOKEN]
    if fixtures is not None:
        argv += ["--fixtures", str(fixtures)]
    return Server(name=name, kind="pivotkit", argv=argv, port=port, ready_timeout=60.0)


def generate_fixtures(target: Path, count: int) -> Path:
    """``count`` getContent fixtures copied from 7488 with new ids (7488 itself included)."""
    source = _fixture()
    folder = target / "getContent"
    folder.mkdir(parents=True, exist_ok=True)
    for other in FIXTURES.iterdir():  # accounts, scenarios and any non-fixture file come along
        if other.is_file():
            shutil.copy2(other, target / other.name)
    if (FIXTURES / "timelines").is_dir():  # the scenarios' timelines with them
        shutil.copytree(FIXTURES / "timelines", target / "timelines")
    ids = [7488, *range(1_000_000, 1_000_000 + count - 1)]
    for content_id in ids:
        data = json.loads(json.dumps(source))
        data["request"]["path"] = f"/v1/api/v1/contents/{content_id}"
        data["response"]["body"]["data"]["id"] = content_id
        (folder / f"{content_id}.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return target


# -- the load generator ----------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    duration: int
    warmup: int


def wrk(port: int, load: Load, duration: int, script: Path) -> dict[str, Any]:
    argv = [
        "wrk",
        "-t",
        str(load.threads),
        "-c",
        str(load.connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK-JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    raw = json.loads(line.removeprefix("WRK-JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "rps": raw["requests"] / seconds,
        "ok_rps": (raw["requests"] - raw["status"]) / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "requests": raw["requests"],
        "errors": errors,
        "non_2xx": raw["status"],
        "mb_per_s": raw["bytes"] / seconds / 1e6,
    }


def check(server: Server) -> dict[str, Any]:
    """What one answer looks like: status, encoding, size, and whether the body is 7488's."""
    status, headers, raw = _get(server.port)
    encoding = headers.get("content-encoding", "identity")
    body = gzip.decompress(raw) if encoding == "gzip" else raw
    try:
        same = json.loads(body) == _fixture()["response"]["body"]
    except ValueError:
        same = False
    return {
        "status": status,
        "content_encoding": encoding,
        "wire_bytes": len(raw),
        "body_bytes": len(body),
        "same_body": same,
        "content_type": headers.get("content-type", ""),
    }


def mapped_mb(pid: int, suffix: str) -> tuple[float, float]:
    """RSS and PSS, in MB, of the mappings of files named ``*suffix`` in a process tree (the
    journal's shared file: what the journal costs in memory)."""
    rss = pss = 0
    for p in _tree(pid):
        try:
            smaps = Path(f"/proc/{p}/smaps").read_text()
        except OSError:
            continue
        inside = False
        for line in smaps.splitlines():
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                inside = len(fields) >= 6 and fields[-1].endswith(suffix)
            elif inside and fields[:1] == ["Rss:"]:
                rss += int(fields[1])
            elif inside and fields[:1] == ["Pss:"]:
                pss += int(fields[1])
    return rss / 1024, pss / 1024


def journal_stats(server: Server) -> dict[str, Any] | None:
    """The journal of a pivotkit server: capacity, bytes used, records kept, forgotten, total,
    and its file's size; None when it is off (or the server is a peer)."""
    if server.kind != "pivotkit":
        return None
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            "GET", "/__pivot/requests?limit=1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        return None
    stats: dict[str, Any] = json.loads(body)["journal"]
    if stats["kept"]:
        stats["bytes_per_record"] = stats["used"] / stats["kept"]
    if server.proc is not None:
        stats["mapped_rss_mb"], stats["mapped_pss_mb"] = mapped_mb(server.proc.pid, ".journal")
    return stats


# -- the phases ------------------------------------------------------------------------------


def throughput(servers: list[Server], load: Load, rounds: int, work: Path) -> dict[str, Any]:
    script = work / "bench.lua"
    script.write_text(_WRK_LUA % {"key": KEY}, "utf-8")
    logdir = work / "logs"
    logdir.mkdir(exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
    info: dict[str, dict[str, Any]] = {}
    with running(servers, logdir) as startup:
        for server in servers:
            info[server.name] = {
                "startup_s": startup[server.name],
                "check": check(server),
                "rss_idle_mb": server.settle()[1],
                "argv": server.argv,
                "kind": server.kind,
            }
            if not info[server.name]["check"]["same_body"]:
                print(
                    f"!! {server.name} does not answer the 7488 body: {info[server.name]['check']}",
                    file=sys.stderr,
                )
            print(
                f"   {server.name}: up in {startup[server.name]:.2f} s, "
                f"{info[server.name]['check']}",
                file=sys.stderr,
            )
        for server in servers:  # warm-up: JIT, caches, connection pools
            print(f"   warm-up {server.name} ({load.warmup} s)", file=sys.stderr)
            wrk(server.port, load, load.warmup, script)
        for r in range(rounds):
            order = servers[r % len(servers) :] + servers[: r % len(servers)]
            for server in order:
                time.sleep(1)
                spent = cpu_seconds(server.proc.pid) if server.proc else 0.0
                result = wrk(server.port, load, load.duration, script)
                if server.proc and result["requests"]:
                    spent = cpu_seconds(server.proc.pid) - spent
                    result["cpu_us_per_request"] = spent / result["requests"] * 1e6
                result["rss_mb"] = server.rss_mb()
                runs[server.name].append(result)
                print(
                    f"   round {r + 1}/{rounds} {server.name}: {result['rps']:,.0f} req/s, "
                    f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                    f"{result['errors']} errors",
                    file=sys.stderr,
                )
        for server in servers:  # while they run: the journal after every round's load
            info[server.name]["journal"] = journal_stats(server)
            info[server.name]["pss_loaded_mb"] = server.pss_mb()
    rows = []
    for server in servers:
        rs = runs[server.name]
        rows.append(
            {
                "server": server.name,
                **info[server.name],
                "rps": statistics.median(r["rps"] for r in rs),
                "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
                "rss_loaded_mb": max(r["rss_mb"] for r in rs),
                "cpu_us_per_request": statistics.median(
                    r.get("cpu_us_per_request", 0.0) for r in rs
                ),
                "runs": rs,
            }
        )
    return {"rows": rows, "ratios": _ratios(rows), "journal": _journal_pairs(rows)}


JOURNAL_OFF = ", journal off"


def _journal_pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each server measured with the journal on and off, side by side."""
    by_name = {r["server"]: r for r in rows}
    out = []
    for off in (r for r in rows if r["server"].endswith(JOURNAL_OFF)):
        on = by_name.get(off["server"].removesuffix(JOURNAL_OFF))
        if on is None:
            continue
        out.append(
            {
                "server": on["server"],
                "rps_on": on["rps"],
                "rps_off": off["rps"],
                "throughput": on["rps"] / off["rps"],
                "cpu_on_us": on["cpu_us_per_request"],
                "cpu_off_us": off["cpu_us_per_request"],
                "p99_on_ms": on["p99_ms"],
                "p99_off_ms": off["p99_ms"],
                "pss_on_mb": on.get("pss_loaded_mb"),
                "pss_off_mb": off.get("pss_loaded_mb"),
                "rss_on_mb": on["rss_loaded_mb"],
                "rss_off_mb": off["rss_loaded_mb"],
                "journal": on.get("journal"),
            }
        )
    return out


def _ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    peers = [r for r in rows if r["kind"] == "peer"]
    out = []
    for mine in (r for r in rows if r["kind"] == "pivotkit"):
        for peer in peers:
            out.append(
                {
                    "pivotkit": mine["server"],
                    "peer": peer["server"],
                    "throughput": mine["rps"] / peer["rps"],
                    "p99": mine["p99_ms"] / peer["p99_ms"],
                    "p50": mine["p50_ms"] / peer["p50_ms"],
                }
            )
    return out


def startup(
    variants: list[tuple[str, list[str]]],
    fixture_sets: list[tuple[str, Path | None]],
    repeat: int,
    work: Path,
) -> list[dict[str, Any]]:
    """Time ``pivotkit serve`` to its first 200 answer, and read its memory, ``repeat`` times."""
    logdir = work / "logs"
    logdir.mkdir(exist_ok=True)
    rows = []
    for label, extra in variants:
        for fixtures_label, fixtures in fixture_sets:
            times, settled, first_rss, rss, pss = [], [], [], [], []
            for _ in range(repeat):
                server = pivotkit_server(f"{label} ({fixtures_label})", extra, fixtures)
                try:
                    times.append(server.start(logdir))
                    first_rss.append(server.rss_mb())
                    # Other workers may still be loading: wait for the memory to stop growing.
                    waited, mb = server.settle()
                    settled.append(times[-1] + waited)
                    rss.append(mb)
                    pss.append(server.pss_mb() or 0.0)
                finally:
                    server.stop()
            rows.append(
                {
                    "server": label,
                    "fixtures": fixtures_label,
                    "startup_s": statistics.median(times),
                    "startup_runs": times,
                    "settled_s": statistics.median(settled),
                    "settled_runs": settled,
                    "rss_first_200_mb": statistics.median(first_rss),
                    "rss_mb": statistics.median(rss),
                    "rss_runs": rss,
                    "pss_mb": statistics.median(pss),
                    "pss_runs": pss,
                }
            )
            print(
                f"   {label}, {fixtures_label}: first 200 after "
                f"{statistics.median(times):.2f} s, RSS {statistics.median(rss):.0f} MB, "
                f"PSS {statistics.median(pss):.0f} MB "
                f"(settled after {statistics.median(settled):.1f} s)",
                file=sys.stderr,
            )
    return rows


def journal_cost(notes: int = 100_000) -> dict[str, Any]:
    """CPU time of writing one request in the journal (``Journal.note``), by one process and
    by two at once, and of answering it (``Dispatcher.answer``) for scale: CPU time, not wall
    time, so the figure holds on a loaded machine."""
    from mockserver import create_app

    with tempfile.TemporaryDirectory(prefix="pivotkit-journal-") as tmp:
        app = create_app({"PIVOT_STATE": str(Path(tmp) / "state.sqlite")})
        mock = app.extensions["pivot"]
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": PATH,
            "QUERY_STRING": "",
            "HTTP_OCP_APIM_SUBSCRIPTION_KEY": KEY,
            "HTTP_ACCEPT_ENCODING": "gzip",
        }
        answer = mock.dispatcher.answer(environ)
        started = time.process_time()
        for _ in range(notes // 10):
            mock.dispatcher.answer(environ)
        answer_us = (time.process_time() - started) / (notes // 10) * 1e6
        out: dict[str, Any] = {"answer_cpu_us": answer_us, "notes": notes}
        for processes in (1, 2):
            reads, children = [], []
            for _ in range(processes):
                read, write = os.pipe()
                pid = os.fork()
                if pid == 0:  # a worker: note, then say how long it took
                    os.close(read)
                    begun = time.process_time()
                    for _ in range(notes):
                        mock.journal.note(answer)
                    os.write(write, str(time.process_time() - begun).encode())
                    os._exit(0)
                os.close(write)
                reads.append(read)
                children.append(pid)
            spent = []
            for read, pid in zip(reads, children, strict=True):
                os.waitpid(pid, 0)
                spent.append(float(os.read(read, 64)))
                os.close(read)
            out[f"note_cpu_us_{processes}"] = max(spent) / notes * 1e6
        stats = mock.journal.stats()
        out["lost"] = notes * 3 - stats.total  # every note is kept or counted as forgotten
        mock.journal.close()
    return out


# -- output ----------------------------------------------------------------------------------


def _render_throughput(result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "| server | req/s | p50 ms | p99 ms | errors | encoding | wire bytes | start-up s "
        "| RSS idle MB | RSS loaded MB |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in result["throughput"]["rows"]:
        c = row["check"]
        lines.append(
            f"| {row['server']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['errors']} | {c['content_encoding']} | {c['wire_bytes']} "
            f"| {row['startup_s']:.2f} | {row['rss_idle_mb']:.0f} | {row['rss_loaded_mb']:.0f} |"
        )
    lines += [
        "",
        "| pivotkit | vs | throughput | p50 | p99 | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in result["throughput"]["ratios"]:
        target = ""
        if r["peer"].startswith("WireMock"):
            met = (
                r["throughput"] >= TARGETS["throughput_vs_wiremock"]
                and r["p99"] <= TARGETS["p99_vs_wiremock"]
            )
            target = "met" if met else "missed"
        lines.append(
            f"| {r['pivotkit']} | {r['peer']} | {r['throughput']:.2f}x "
            f"| {r['p50']:.2f}x | {r['p99']:.2f}x | {target} |"
        )
    lines.append("")
    lines.append(
        "Ratios are pivotkit/peer: throughput > 1 is better, latency < 1 is better. "
        "Targets (reported, not asserted): throughput >= "
        f"{TARGETS['throughput_vs_wiremock']}x WireMock, p99 <= WireMock's."
    )
    return lines


def _render_journal(result: dict[str, Any]) -> list[str]:
    pairs = result["throughput"].get("journal") or []
    if not pairs:
        return []
    lines = [
        "",
        "| journal (issue 16) | req/s on | req/s off | on/off | server CPU us/req on | off "
        "| p99 on ms | p99 off ms | PSS on MB | PSS off MB | bound | used | kept | forgotten "
        "| bytes/record | journal mapped RSS / PSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pair in pairs:
        j = pair["journal"] or {}
        lines.append(
            f"| {pair['server']} | {pair['rps_on']:,.0f} | {pair['rps_off']:,.0f} "
            f"| {pair['throughput']:.2f}x | {pair['cpu_on_us']:.1f} | {pair['cpu_off_us']:.1f} "
            f"| {pair['p99_on_ms']:.2f} | {pair['p99_off_ms']:.2f} "
            f"| {pair['pss_on_mb'] or 0:.0f} | {pair['pss_off_mb'] or 0:.0f} "
            f"| {j.get('capacity', 0) / 2**20:.1f} MiB | {j.get('used', 0) / 2**20:.2f} MiB "
            f"| {j.get('kept', 0):,} | {j.get('evicted', 0):,} "
            f"| {j.get('bytes_per_record', 0):.0f} "
            f"| {j.get('mapped_rss_mb', 0):.1f} / {j.get('mapped_pss_mb', 0):.1f} |"
        )
    lines.append("")
    lines.append(
        "Same rounds, same load: on/off is the journal's cost on throughput (1.00x: none); "
        "the server's CPU time per request (its processes' user + system time over the "
        "requests wrk counted) is the steadier figure on a shared machine. "
        "The journal is a ring in shared memory (/dev/shm, else a file beside the state), "
        "mapped by every worker: its size is the bound whatever the load (used <= bound; "
        "the oldest records are forgotten); the last column is what its mapping takes in the "
        "processes (RSS counts the shared pages once per process, PSS once in all)."
    )
    return lines


def _render_journal_cost(result: dict[str, Any]) -> list[str]:
    cost = result.get("journal_cost")
    if not cost:
        return []
    return [
        "",
        f"Journal.note, CPU time per request: {cost['note_cpu_us_1']:.2f} us (one process), "
        f"{cost['note_cpu_us_2']:.2f} us (two at once); Dispatcher.answer itself: "
        f"{cost['answer_cpu_us']:.1f} us; {cost['lost']} of {3 * cost['notes']:,} notes lost.",
    ]


def _render_startup(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if result.get("startup"):
        lines += [
            "",
            "| pivotkit serve | fixtures | first 200 after (s) "
            "| memory settled after (s) | RSS (MB) | PSS (MB) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in result["startup"]:
            lines.append(
                f"| {row['server']} | {row['fixtures']} | {row['startup_s']:.2f} "
                f"| {row['settled_s']:.1f} | {row['rss_mb']:.0f} "
                f"| {row.get('pss_mb', 0):.0f} |"
            )
        lines.append("")
        lines.append(
            f"Targets (reported, not asserted): start-up < {TARGETS['startup_s']:.0f} s, "
            f"RSS < {TARGETS['rss_mb']:.0f} MB (summed over the processes). "
            "Settled: the RSS moved < 2 % over 2 s, i.e. every worker has loaded "
            "(the first 200 comes from the first worker ready). RSS sums VmRSS, so "
            "pages a forked master shares with its workers count once per process; "
            "PSS counts them once in all."
        )
    return lines


def render(result: dict[str, Any]) -> str:
    load = result["load"]
    env = result["environment"]
    lines = [
        f"GET {PATH} (gzip, valid key) over loopback; wrk -t{load['threads']} "
        f"-c{load['connections']} -d{load['duration']}s, {result['rounds']} interleaved rounds "
        f"(median shown), warm-up {load['warmup']} s each; {env['cpus']} CPUs shared, "
        f"load {env['loadavg_before'][0]:.2f} before",
    ]
    if "throughput" in result:
        lines += _render_throughput(result)
        lines += _render_journal(result)
    lines += _render_journal_cost(result)
    lines += _render_startup(result)
    for note in result.get("notes", []):
        lines.append(f"- note: {note}")
    return "\n".join(lines)


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        out["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(
            "\n"
        )[0]
    with contextlib.suppress(Exception):
        out["java"] = subprocess.run(
            ["java", "-version"], capture_output=True, text=True
        ).stderr.split("\n")[0]
    with contextlib.suppress(Exception):
        out["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True
        ).stdout.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=20,
        help="warm-up seconds per server, before the first round (default 20:"
        " the JVM's JIT needs it)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument(
        "--workers", type=int, default=2, help="workers of pivotkit serve --production (default 2)"
    )
    parser.add_argument(
        "--generated",
        type=int,
        default=10_000,
        help="fixtures generated for the memory/start-up phase (default 10000)",
    )
    parser.add_argument(
        "--startup-repeat", type=int, default=3, help="start-ups per pivotkit variant (default 3)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        help="run only servers whose name contains this (repeatable)",
    )
    parser.add_argument("--skip-startup", action="store_true", help="skip the start-up phase")
    parser.add_argument("--skip-throughput", action="store_true", help="skip the throughput phase")
    parser.add_argument(
        "--skip-journal-cost", action="store_true", help="skip the journal's CPU-time phase"
    )
    parser.add_argument(
        "--wait-for-serve",
        type=int,
        default=0,
        metavar="SECONDS",
        help="poll this long for `pivotkit serve --help` to work (default 0)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 round of 3 s, 1 s warm-up, 1,000 fixtures",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON file (default bench/results/mock-<time>.json + mock.json)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
        args.generated, args.startup_repeat = 1000, 1

    if shutil.which("wrk") is None:
        print(
            "wrk is missing: `apt-get install -y wrk` (as root), or run `nox -s bench` as root "
            "to have it installed. No other load generator is used: a Python one saturates "
            "before the servers do.",
            file=sys.stderr,
        )
        return 2

    # SIGTERM unwinds like Ctrl-C, so every server started so far is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    notes: list[str] = []
    help_text = serve_help()
    deadline = time.monotonic() + args.wait_for_serve
    while help_text is None and time.monotonic() < deadline:
        time.sleep(15)
        help_text = serve_help()

    load = Load(args.threads, args.connections, args.duration, args.warmup)
    result: dict[str, Any] = {
        "benchmark": "mock",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": {"method": "GET", "path": PATH, "accept_encoding": "gzip"},
        "load": load.__dict__,
        "rounds": args.rounds,
        "targets": TARGETS,
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": os.getloadavg(),
            "versions": _versions(),
        },
        "notes": notes,
    }

    with tempfile.TemporaryDirectory(prefix="pivotkit-bench-") as tmp:
        work = Path(tmp)
        variants: list[tuple[str, list[str]]] = []
        if help_text is None:
            notes.append("`pivotkit serve` does not exist yet: pivotkit's mock was not measured")
        else:
            # Since the fast server became the default, the development one is --dev.
            variants.append(
                ("pivotkit dev", ["--dev", "--no-reload"] if "--dev" in help_text else [])
            )
            if "--production" in help_text:
                prod = ["--production"]
                if "--workers" in help_text:
                    prod += ["--workers", str(args.workers)]
                variants.append((f"pivotkit production ({args.workers} workers)", prod))
            else:
                notes.append("`pivotkit serve` has no --production flag: dev server only")
        generated = None
        if variants:
            generated = generate_fixtures(work / "fixtures-generated", args.generated)

        servers: list[Server] = []
        for label, extra in variants:
            servers.append(pivotkit_server(label, extra))
        if variants and generated is not None:
            label, extra = variants[-1]
            servers.append(
                pivotkit_server(f"{label}, {args.generated:,} fixtures", extra, generated)
            )
        if variants and help_text is not None and "--no-journal" in help_text:
            label, extra = variants[-1]
            servers.append(pivotkit_server(label + JOURNAL_OFF, [*extra, "--no-journal"]))
        jar = wiremock_jar()
        if jar is None:
            notes.append(f"WireMock missing: npm install wiremock@{WIREMOCK_VERSION} in .peers/")
        else:
            servers.append(wiremock_server(work, jar))
        entry = prism_entry()
        if entry is None:
            notes.append(
                f"Prism missing: npm install @stoplight/prism-cli@{PRISM_VERSION} in .peers/"
            )
        else:
            servers.append(prism_server(work, entry))
        if args.only:
            servers = [s for s in servers if any(o.lower() in s.name.lower() for o in args.only)]

        if help_text is not None and not args.skip_journal_cost:
            print("journal cost (CPU time):", file=sys.stderr)
            result["journal_cost"] = journal_cost(10_000 if args.quick else 100_000)
        if not args.skip_throughput:
            print(f"throughput: {', '.join(s.name for s in servers)}", file=sys.stderr)
            result["throughput"] = throughput(servers, load, args.rounds, work)
        if variants and not args.skip_startup:
            print("start-up and memory:", file=sys.stderr)
            sets: list[tuple[str, Path | None]] = [("bundled", None)]
            if generated is not None:
                sets.append((f"{args.generated:,} generated", generated))
            result["startup"] = startup(variants, sets, args.startup_repeat, work)

    print(render(result))
    _write(result, args.out)
    return 0


def _write(result: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = result["when"].replace(":", "").replace("-", "")
        paths = [RESULTS / f"mock-{stamp}.json", RESULTS / "mock.json"]
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        paths = [out]
    for path in paths:
        path.write_text(text, "utf-8")
    print(f"\nresults: {', '.join(str(p) for p in paths)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
