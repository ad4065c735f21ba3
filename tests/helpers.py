"""Helpers shared by pivotkit's own tests: free ports, a thread server, `pivotkit serve` runs."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from pivotkit.client import demo_key
from pivotkit.contract import load_contract
from pivotkit.harness import MockServer, make_app
from pivotkit.operations import Operation

WSGI = Callable[[dict[str, Any], Any], Iterable[bytes]]
CONTRACT = load_contract()
CONVENTIONS = CONTRACT.conventions
KEY_HEADER = CONVENTIONS.key_header
FULL = demo_key("full").reveal()
BASIC = demo_key("basic").reveal()
LIMITED = demo_key("limited").reveal()


#: A value for each path parameter of the contract, that the bundled fixtures answer with a 200.
EXAMPLES = {
    "id": "7488",
    "channelId": "1",
    "since": "20241105000000",
    "start": "20241105",
    "end": "20241106",
}


def example_params(operation: Operation) -> dict[str, str]:
    """Example values of an operation's path parameters (see EXAMPLES)."""
    return {p.name: EXAMPLES[p.name] for p in operation.path_parameters}


def path_of(operation_id: str, **params: object) -> str:
    """The concrete path of an operation, from the contract."""
    return CONTRACT.operation(operation_id).expand(**params)


def key_headers(key: str = FULL) -> dict[str, str]:
    """The header that carries a key."""
    return {KEY_HEADER: key}


def address(url: str) -> tuple[str, int]:
    """The (host, port) of a base URL such as the ones ``thread_server`` yields."""
    parsed = httpx.URL(url)
    port = parsed.port
    assert port is not None, f"{url} names no port"
    return parsed.host, port


def connection(url: str, timeout: float = 10) -> http.client.HTTPConnection:
    """A raw HTTP/1.1 connection (http.client) to a base URL, for tests of the wire."""
    host, port = address(url)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class QuietHandler(WSGIRequestHandler):
    """Tests read results, not access logs."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing."""


@contextmanager
def thread_server(wsgi: WSGI, *, handler: type[WSGIRequestHandler] = QuietHandler) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PIVOT_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIVOT_")}
    env.update(extra)
    return env


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 60.0
) -> None:
    """Poll ``url``/__pivot/health until it answers 200 (fails if the process exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log is not None else ""
            pytest.fail(f"server exited {proc.returncode}: {text}")
        try:
            if httpx.get(f"{url}/__pivot/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    text = log.read_text(errors="replace") if log is not None else ""
    pytest.fail(f"server {url} not ready: {text}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate a process (by its pid) and wait; kill it if it does not end."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pivotkit_command(*args: str) -> list[str]:
    """The command line that runs ``pivotkit ARGS`` with this interpreter."""
    return [sys.executable, "-c", "from pivotkit.cli import main; main()", *args]


@contextmanager
def serve_process(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``pivotkit serve ARGS`` in a subprocess on a free port (``--state`` in ``tmp_path``
    unless given); yields (base URL, process, log file) once it answers, stops it after."""
    port = port or free_port()
    log = tmp_path / f"serve-{port}.log"
    port_file = tmp_path / f"serve-{port}.port"
    command = pivotkit_command("serve", "--port", str(port), "--port-file", str(port_file), *args)
    if "--state" not in args:
        command += ["--state", str(tmp_path / "state.sqlite")]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else clean_env(),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        # No connection before the server listens: a connect to a free port can pick that very
        # port as its source (a TCP self-connect) and take it from the server.
        deadline = time.monotonic() + 60
        while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        wait_ready(url, proc, log)
        yield url, proc, log
    finally:
        stop(proc)


def broken_fixtures(root: Path) -> dict[str, Path]:
    """Write one fixture of each kind the mock refuses into ``root`` (beside whatever is
    there), from the bundled getContent/7488: truncated JSON, nesting 100,000 deep, a header
    holding CR/LF, a body breaking the contract, and a duplicate of 7488. Returns them by kind.
    """
    import json

    source = Path(__file__).resolve().parent.parent / "fixtures" / "getContent" / "7488.json"
    text = source.read_text("utf-8")
    folder = root / "getContent"
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "truncated": folder / "truncated.json",
        "deep": folder / "deep.json",
        "crlf": folder / "crlf.json",
        "breaks": folder / "breaks.json",
        "duplicate": folder / "zz-copy-of-7488.json",
    }
    made["truncated"].write_text(text[: len(text) // 2], "utf-8")
    deep = "[" * 100_000 + "]" * 100_000
    made["deep"].write_text(text.replace('"Blade Runner"', deep, 1), "utf-8")
    data = json.loads(text)
    data["response"]["headers"] = {"x-note": "ok\r\nSet-Cookie: evil=1"}
    made["crlf"].write_text(json.dumps(data), "utf-8")
    data = json.loads(text)
    data["request"]["path"] = "/v1/api/v1/contents/7491"
    data["response"]["body"]["data"]["productionYear"] = "1982"
    made["breaks"].write_text(json.dumps(data), "utf-8")
    made["duplicate"].write_text(text, "utf-8")
    return made


@contextmanager
def mock_servers(tmp_path: Path, token: str) -> Iterator[Callable[..., MockServer]]:
    """A factory of mocks on free loopback ports (``start(**settings)``), each on its own
    state in ``tmp_path`` with the admin ``token``; every one is stopped afterwards."""
    servers: list[MockServer] = []

    def start(**config: Any) -> MockServer:
        settings = {
            "PIVOT_STATE": str(tmp_path / f"state-{len(servers)}.sqlite"),
            "PIVOT_ADMIN_TOKEN": token,
            **config,
        }
        servers.append(MockServer(make_app(settings)).start())
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


REDIS_SERVER = "/usr/bin/redis-server"


@contextmanager
def redis_server(tmp_path: Path, *, password: str | None = None) -> Iterator[str]:
    """A real ``redis-server`` on a free loopback port (no persistence, its files in
    ``tmp_path``), stopped by its pid afterwards; yields its URL (db 0). Skipped when
    redis-server is not installed, a failure instead when PIVOT_REQUIRE_REDIS=1 (CI)."""
    import shutil

    binary = REDIS_SERVER if Path(REDIS_SERVER).exists() else shutil.which("redis-server")
    if binary is None:
        if os.environ.get("PIVOT_REQUIRE_REDIS") == "1":
            pytest.fail("PIVOT_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    folder = tmp_path / f"redis-{port}"
    folder.mkdir()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--dir", str(folder), "--logfile", str(folder / "redis.log")]
    if password is not None:
        command += ["--requirepass", password]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"redis-server did not start: {(folder / 'redis.log').read_text()}")
        auth = f":{password}@" if password is not None else ""
        yield f"redis://{auth}127.0.0.1:{port}/0"
    finally:
        stop(proc)
