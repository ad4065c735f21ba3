"""`pivotkit serve` as a user starts it: the fast server by default, --dev, the address
bound, --port-file, a port in use, the refused-fixtures line, --strict, logs without keys,
a private state file. Real subprocesses and sockets."""

from __future__ import annotations

import re
import secrets
import socket
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from pivotkit.redact import encoded_forms
from tests.helpers import (
    FULL,
    KEY_HEADER,
    broken_fixtures,
    clean_env,
    path_of,
    pivotkit_command,
    serve_process,
    stop,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
CONTENT = path_of("getContent", id=7488)
SERVERS = {"fast": [], "dev": ["--dev", "--no-reload"]}


def _env(**extra: str) -> dict[str, str]:
    return clean_env(RUST_BACKTRACE="0", **extra)


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pivotkit_command(*args), capture_output=True, text=True, env=_env(), timeout=timeout
    )


def test_serve_starts_the_fast_server_by_default(tmp_path: Path) -> None:
    """No flag: granian in one process (one worker), keep-alive, gzip."""
    with serve_process(tmp_path, env=_env()) as (url, _, log):
        with httpx.Client(base_url=url, headers={KEY_HEADER: FULL}) as client:
            first = client.get(CONTENT)
            assert first.headers["content-encoding"] == "gzip"
            assert client.get(CONTENT).status_code == 200
        text = log.read_text(errors="replace")
    assert "(1 worker;" in text and "Starting granian" in text
    assert "development server" not in text


def test_production_is_a_no_op_alias_and_help_says_so() -> None:
    """--production is still accepted (old scripts), and --help says it changes nothing."""
    help_text = _run("serve", "--help").stdout
    assert re.search(r"--production\s+Accepted for compatibility and ignored", help_text)
    for option in ("--dev", "--no-reload", "--workers", "--port-file", "--strict"):
        assert option in help_text
    bad = _run("serve", "--dev", "--workers", "2")
    assert bad.returncode == 2 and "--dev runs one process" in bad.stderr


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_port_zero_prints_and_writes_the_bound_port(tmp_path: Path, server: str) -> None:
    """--port 0: the banner shows the port actually bound, and --port-file holds it (written
    once connections are accepted, removed when the server stops)."""
    port_file = tmp_path / "port"
    log = tmp_path / "serve.log"
    command = pivotkit_command(
        "serve",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--state",
        str(tmp_path / "s"),
        *SERVERS[server],
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env())
    try:
        for _ in range(600):
            if port_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        port = int(port_file.read_text().strip())
        assert port > 0
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, log)
        assert httpx.get(url + CONTENT, headers={KEY_HEADER: FULL}).status_code == 200
        assert f"pivotkit mock on http://127.0.0.1:{port} (" in log.read_text(errors="replace")
        assert ":0 " not in log.read_text(errors="replace")
    finally:
        stop(proc)
    assert not port_file.exists()


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_port_in_use_is_one_line_before_any_banner(tmp_path: Path, server: str) -> None:
    """Someone listens already: one line naming the port, exit 2, no banner, nothing started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("serve", "--port", str(port), "--state", str(tmp_path / "s"), *SERVERS[server])
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == [
        f"Error: cannot listen on 127.0.0.1:{port}: already in use; choose another --port "
        "(--port 0 picks a free one)"
    ]


def test_refused_fixtures_are_counted_at_start_and_strict_refuses(tmp_path: Path) -> None:
    """Truncated, 100,000 deep, a CR/LF header, a body breaking the contract, a duplicate: the
    server starts, serves the rest, and prints one line counting them by reason and naming
    pivotkit check, which lists them all; --strict refuses to start (exit 2)."""
    fixtures = tmp_path / "fixtures"
    (fixtures / "getContent").mkdir(parents=True)
    (fixtures / "getContent" / "7488.json").write_text(
        (ROOT / "fixtures" / "getContent" / "7488.json").read_text("utf-8"), "utf-8"
    )
    made = broken_fixtures(fixtures)
    with serve_process(tmp_path, "--fixtures", str(fixtures), env=_env()) as (url, _, log):
        served = httpx.get(url + CONTENT, headers={KEY_HEADER: FULL})
        assert served.json()["data"]["title"] == "Blade Runner"
        assert "set-cookie" not in served.headers
        text = log.read_text(errors="replace")
    assert (
        "5 fixtures refused (invalid file: 3, body breaks the contract: 1, duplicate: 1): "
        f"pivotkit check --fixtures {fixtures} lists them all (--strict refuses to start)"
    ) in text
    assert "Traceback" not in text and "recursion" not in text
    check = _run("check", "--fixtures", str(fixtures))
    assert check.returncode == 1
    for path in made.values():
        assert f"FAIL  {path}" in check.stdout + check.stderr
    strict = _run("serve", "--fixtures", str(fixtures), "--strict", "--port", "0")
    assert strict.returncode == 2
    assert "5 fixtures refused" in strict.stderr and "pivotkit mock on" not in strict.stdout


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_no_log_line_holds_a_key(tmp_path: Path, server: str) -> None:
    """Keys sent every way a URL spells them (named after percent-decoding, percent-encoded,
    upper case, in the path, in a malformed request line): no log line of the server holds
    the key in any encoding."""
    key = secrets.token_hex(16)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        (ROOT / "fixtures" / "accounts.toml")
        .read_text("utf-8")
        .replace("demo_keys = true", "demo_keys = false")
        .replace(FULL, key),
        "utf-8",
    )
    encoded = "".join(f"%{b:02X}" for b in key.encode())
    targets = [
        f"{CONTENT}?subscription%2Dkey={key}",
        f"{CONTENT}?subscription-key={encoded}",
        f"{CONTENT}?SUBSCRIPTION-KEY={key.upper()}",
        f"/v1/api/v1/contents/{key}",
        f"/portal/login?next=/{key}",
    ]
    args = ("--accounts", str(accounts), *SERVERS[server])
    with serve_process(tmp_path, *args, env=_env()) as (url, _, log):
        port = int(url.rsplit(":", 1)[1])
        for target in targets:
            assert httpx.get(url + target).status_code < 500
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET {CONTENT}?subscription-key={key} HTTP/1.1 junk\r\n\r\n".encode())
            sock.recv(4096)
        time.sleep(0.3)
        text = log.read_text(errors="replace")
    pattern = re.compile("|".join(encoded_forms(key)))
    assert not pattern.search(text), [line for line in text.splitlines() if pattern.search(line)]
    if server == "dev":
        assert text.count("***") >= len(targets)


def test_the_state_file_and_its_companions_are_private(tmp_path: Path) -> None:
    """--state (it holds the admin token and the session secret) and its -wal, -shm and .gen
    files are created 0600; an existing 0644 file is tightened."""
    state = tmp_path / "state.sqlite"
    state.touch(mode=0o644)
    state.chmod(0o644)
    with serve_process(tmp_path, "--state", str(state), env=_env()) as (url, _, _):
        assert httpx.get(url + CONTENT, headers={KEY_HEADER: FULL}).status_code == 200
        files = [p for p in tmp_path.iterdir() if p.name.startswith("state.sqlite")]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {"state.sqlite", "state.sqlite-wal", "state.sqlite-shm", "state.sqlite.gen"} <= set(
        modes
    )
    assert set(modes.values()) == {0o600}, modes


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_header_injection_through_next_is_refused(tmp_path: Path, server: str) -> None:
    """next=/\\r\\nX: y on the login page and the language switch: never a 5xx, never a
    second header; a safe redirect instead."""
    with (
        serve_process(tmp_path, *SERVERS[server], env=_env()) as (url, _, _),
        httpx.Client(base_url=url, follow_redirects=False) as client,
    ):
        page = client.get("/portal/login", params={"next": "/\r\nX: y"})
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        login = client.post(
            "/portal/login",
            data={
                "account": "full",
                "password": "full-demo",
                "csrf_token": token.group(1),
                "next": "/\r\nX: y",
            },
        )
        assert login.status_code == 302 and "x" not in login.headers
        assert login.headers["location"].endswith("/portal/profile")
        profile = client.get("/portal/profile")
        token = re.search(r'name="csrf_token" value="([^"]+)"', profile.text)
        assert token is not None
        switched = client.post(
            "/portal/language",
            data={"ui": "fr", "next": "/portal/profile\r\nX: y", "csrf_token": token.group(1)},
        )
        assert switched.status_code == 302 and "x" not in switched.headers
        assert "\r" not in switched.headers["location"]


def test_dev_restarts_when_a_fixture_changes(tmp_path: Path) -> None:
    """--dev: editing a fixture restarts the server on the same port, with the same state and
    admin token; stopping the parent stops its child."""
    fixtures = tmp_path / "fixtures"
    (fixtures / "getContent").mkdir(parents=True)
    served = fixtures / "getContent" / "7488.json"
    served.write_text((ROOT / "fixtures" / "getContent" / "7488.json").read_text("utf-8"))
    env = _env(PIVOT_ADMIN_TOKEN="token-for-the-reload-test")
    with serve_process(tmp_path, "--dev", "--fixtures", str(fixtures), env=env) as (url, proc, _):
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        before = httpx.get(url + CONTENT, headers={KEY_HEADER: FULL}, timeout=5)
        titles = {before.json()["data"]["title"]}  # prepared: served until the restart
        time.sleep(1.2)  # the reloader's first look at the files' times
        served.write_text(served.read_text("utf-8").replace("Blade Runner", "Blade Runner 2"))
        for _ in range(150):
            try:
                r = httpx.get(url + CONTENT, headers={KEY_HEADER: FULL}, timeout=5)
                titles.add(r.json()["data"]["title"])
            except httpx.HTTPError:
                pass
            if "Blade Runner 2" in titles:
                break
            time.sleep(0.1)
        assert titles == {"Blade Runner", "Blade Runner 2"}
        auth = {"Authorization": "Bearer token-for-the-reload-test"}
        assert httpx.get(url + "/__pivot/fixtures", headers=auth).status_code == 200
        child = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert all(not Path(f"/proc/{pid}").exists() for pid in child + children)


def test_an_admin_token_from_the_config_file_is_used_and_not_printed(tmp_path: Path) -> None:
    """`--config` naming admin_token: the banner says it comes from the configuration (no
    "(generated)", no token printed), and it is the one the admin API accepts."""
    token = "token-from-the-config-" + secrets.token_hex(8)
    config = tmp_path / "mock.toml"
    config.write_text(f'admin_token = "{token}"\n', "utf-8")
    with serve_process(tmp_path, "--config", str(config), env=_env()) as (url, _, log):
        assert (
            httpx.get(
                f"{url}/__pivot/requests", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
        assert (
            httpx.get(f"{url}/__pivot/requests", headers={"Authorization": "Bearer no"}).status_code
            == 401
        )
        text = log.read_text(errors="replace")
    assert "admin token: from configuration" in text
    assert "(generated)" not in text and token not in text


def test_the_banner_shows_only_demo_keys_in_clear(tmp_path: Path) -> None:
    """A file that says demo_keys = true but holds a key of its own: that key is masked in
    the banner, the demo keys beside it are shown."""
    from pivotkit.client import demo_key

    real = secrets.token_hex(16)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        'demo_keys = true\n\n[[accounts]]\nname = "full"\n'
        f'primary_key = "{demo_key("full").reveal()}"\nsecondary_key = "{real}"\n'
        'operations = ["*"]\nfields = ["*"]\n',
        "utf-8",
    )
    with serve_process(tmp_path, "--accounts", str(accounts), env=_env()) as (_, _, log):
        text = log.read_text(errors="replace")
    assert demo_key("full").reveal() in text
    assert real not in text and real[:8] not in text
