"""The contract as the tools users already have read it, each run for real (tools/peers.py
installs the pinned versions into .peers/): Prism mock and proxy, openapi-python-client,
datamodel-code-generator, Postman's converter, Redocly and Spectral."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pivotkit.bundle import bundle, dumps
from pivotkit.contract import Contract
from pivotkit.fixtures import Exchange, FixtureSet
from pivotkit.harness import make_app
from tests.helpers import FULL, KEY_HEADER, free_port, stop, thread_server
from tools import peers

from .conftest import FIXTURES, ROOT, SCHEMAS

pytestmark = pytest.mark.peers
CONTRACT = Contract.load(SCHEMAS)
CORPUS = FixtureSet.load(FIXTURES, contract=CONTRACT)
PAYLOAD = CONTRACT.conventions.envelope.payload_field


def _need(install: Callable[[], Any]) -> Any:
    """Install a peer tool, or skip (fail when PIVOT_REQUIRE_PEERS=1, as in CI)."""
    try:
        return install()
    except peers.PeerMissing as exc:
        if os.environ.get("PIVOT_REQUIRE_PEERS") == "1":
            pytest.fail(f"peer tool missing: {exc}")
        pytest.skip(f"peer tool missing: {exc}")


@pytest.fixture(scope="module")
def npm() -> None:
    """Prism, Redocly, Spectral and Postman's converter, pinned (tools/peers.py)."""
    _need(
        lambda: peers.npm_tools(
            "@stoplight/prism-cli",
            "@redocly/cli",
            "@stoplight/spectral-cli",
            "openapi-to-postmanv2",
        )
    )


@pytest.fixture(scope="module")
def pytools() -> Path:
    """The virtual environment of openapi-python-client and datamodel-code-generator."""
    env: Path = _need(peers.python_tools)
    return env


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The pivotkit mock on a free loopback port (the upstream of every tool)."""
    app = make_app({"PIVOT_STATE": str(tmp_path_factory.mktemp("eco") / "state.sqlite")})
    with thread_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pivotkit export openapi --bundle` of the contract, as YAML and JSON."""
    out = tmp_path_factory.mktemp("bundle")
    document = bundle(CONTRACT)
    (out / "openapi.json").write_text(dumps(document, "json"), encoding="utf-8")
    (out / "openapi.yaml").write_text(dumps(document, "yaml"), encoding="utf-8")
    return out


def _python(env: Path, script: str, cwd: Path) -> str:
    """Run a script with the peer tools' Python (their packages, not pivotkit's); its stdout."""
    run = subprocess.run(
        [str(env / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=cwd,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def _representative(operation_id: str) -> Exchange:
    for ex in CORPUS.for_operation(operation_id):
        if ex.response.status == 200 and not CONTRACT.is_empty_result(ex.response.body):
            return ex
    raise AssertionError(f"no 200 fixture with data for {operation_id}")


def _url(base: str, ex: Exchange) -> str:
    return base + ex.request.path


def _start(command: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """A peer server started directly (never through npx), ready when its port answers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{command[1]} exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    stop(proc)
    pytest.fail(f"{command[1]} did not listen on {port}: {log.read_text()[-2000:]}")


# -- Prism --------------------------------------------------------------------------------


def test_prism_mock_answers_every_operation_with_a_fixture_envelope(
    npm: None, tmp_path: Path
) -> None:
    """`prism mock schemas/openapi.yaml` starts on the multi-file contract and answers every
    operation with a non-empty envelope taken from the fixtures, without a bogus
    Content-Encoding over a plain body."""
    port = free_port()
    proc = _start(
        [
            *peers.node_command("prism"),
            "mock",
            str(SCHEMAS / "openapi.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        port,
        tmp_path / "prism.log",
    )
    try:
        for op in CONTRACT.operations.values():
            ex = _representative(op.operation_id)
            response = httpx.get(
                _url(f"http://127.0.0.1:{port}", ex), headers={KEY_HEADER: FULL}, timeout=10
            )
            assert response.status_code == 200, (op.operation_id, response.text[:300])
            body = response.json()
            assert body.get(PAYLOAD), (op.operation_id, body)
            assert not CONTRACT.validate(op.operation_id, 200, body), op.operation_id
            assert "content-encoding" not in response.headers
    finally:
        stop(proc)


def _breaking(app: Any) -> Any:
    """The mock, with each answer's envelope broken as the request's x-break header asks."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        environ["HTTP_ACCEPT_ENCODING"] = "identity"
        how = environ.get("HTTP_X_BREAK", "")
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *a: Any) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        raw = b"".join(app(environ, capture))
        body = json.loads(raw)
        conv = CONTRACT.conventions.envelope
        if how == "version":
            body[conv.version_field] = 1
        elif how == "status":
            body[conv.status_field] = "200"
        data = json.dumps(body).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("content-length", str(len(data)))])
        return [data]

    return wsgi


def test_prism_proxy_passes_the_fixtures_and_flags_broken_envelopes(
    npm: None, tmp_path: Path
) -> None:
    """`prism proxy schemas/openapi.yaml <the mock> --errors`: every 200 fixture's request goes
    through unchanged; a `version` integer or a `statusCode` string is flagged for each of the
    13 operations."""
    app = make_app({"PIVOT_STATE": str(tmp_path / "state.sqlite")})
    port = free_port()
    with thread_server(_breaking(app)) as upstream:
        proc = _start(
            [
                *peers.node_command("prism"),
                "proxy",
                str(SCHEMAS / "openapi.yaml"),
                upstream,
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            port,
            tmp_path / "proxy.log",
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for ex in CORPUS:
                if ex.response.status != 200:
                    continue
                through = httpx.get(
                    _url(base, ex),
                    params=dict(ex.request.query),
                    headers={KEY_HEADER: FULL},
                    timeout=10,
                )
                direct = httpx.get(
                    _url(upstream, ex),
                    params=dict(ex.request.query),
                    headers={KEY_HEADER: FULL},
                    timeout=10,
                )
                assert through.status_code == 200, (ex.name, through.text[:300])
                assert "sl-violations" not in through.headers, (ex.name, through.headers)
                assert through.json() == direct.json(), ex.name
            for op in CONTRACT.operations.values():
                ex = _representative(op.operation_id)
                for how in ("version", "status"):
                    broken = httpx.get(
                        _url(base, ex), headers={KEY_HEADER: FULL, "x-break": how}, timeout=10
                    )
                    flagged = broken.status_code >= 500 or "sl-violations" in broken.headers
                    assert flagged, (op.operation_id, how, broken.status_code, broken.text[:200])
        finally:
            stop(proc)


# -- generated clients ----------------------------------------------------------------------


def test_openapi_python_client_gives_a_typed_client(
    pytools: Path, mock_url: str, tmp_path: Path
) -> None:
    """openapi-python-client generates from the mock's served bundle (/__pivot/openapi.json;
    the tool reads no multi-file document); `get_content.sync(id=7488)` against the mock
    returns a typed envelope whose `.data.title` is "Blade Runner", and every response of
    every operation is typed (no warning)."""
    out = tmp_path / "client"
    result = subprocess.run(
        [
            str(pytools / "bin" / "openapi-python-client"),
            "generate",
            "--url",
            f"{mock_url}/__pivot/openapi.json",
            "--output-path",
            str(out),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
        # its post-hooks run `ruff` (its own dependency, in the same venv) from PATH
        env={**os.environ, "PATH": f"{pytools / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    package = out.name
    (module,) = out.rglob("get_content.py")
    dotted = ".".join(module.relative_to(out.parent).with_suffix("").parts)
    script = textwrap.dedent(f"""
        import {package}
        from {package} import Client
        from {dotted} import sync
        client = Client(base_url={mock_url!r}, headers={{{KEY_HEADER!r}: {FULL!r}}})
        answer = sync(id=7488, client=client)
        print(type(answer).__name__, type(answer.data).__name__, answer.data.title)
    """)
    printed = _python(pytools, script, out.parent)
    assert printed.split() == ["ContentEnvelope", "Content", "Blade", "Runner"]


def test_datamodel_code_generator_types_every_200(
    pytools: Path, bundled: Path, tmp_path: Path
) -> None:
    """datamodel-code-generator on the bundle: every 200 is a typed union of its envelope and
    the empty result (never RootModel[Any]), and the models read a fixture body."""
    models = tmp_path / "models.py"
    result = subprocess.run(
        [
            str(pytools / "bin" / "datamodel-codegen"),
            "--input",
            str(bundled / "openapi.yaml"),
            "--input-file-type",
            "openapi",
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--output",
            str(models),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = models.read_text(encoding="utf-8")
    for op in CONTRACT.operations.values():
        name = op.operation_id[0].upper() + op.operation_id[1:] + "Ok"
        found = re.search(rf"class {name}\(RootModel\[(.+?)\]\):", text)
        assert found and "Any" not in found.group(1), (name, found and found.group(1))
    sample = _representative("getContent").response.body
    body = json.dumps(sample)
    script = (
        f"import json, models; ok = models.GetContentOk.model_validate(json.loads({body!r}))"
        f"; print(ok.root.{PAYLOAD}.title)"
    )
    assert _python(pytools, script, tmp_path).strip() == sample[PAYLOAD]["title"]


# -- Postman ------------------------------------------------------------------------------


def _items(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in node.get("item", []):
        if "item" in item:
            yield from _items(item)
        else:
            yield item


def test_postman_examples_are_fixture_bodies(npm: None, bundled: Path, tmp_path: Path) -> None:
    """openapi-to-postmanv2 on the bundle: every operation has saved responses, and every
    saved 200 body is a real fixture body (never `{}` or a faked `<string>`)."""
    out = tmp_path / "collection.json"
    result = subprocess.run(
        [
            *peers.node_command("openapi2postmanv2"),
            "-s",
            str(bundled / "openapi.json"),
            "-o",
            str(out),
            "-p",
            "-O",
            "parametersResolution=Example",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    collection = json.loads(out.read_text(encoding="utf-8"))
    bodies = [ex.response.body for ex in CORPUS]
    seen = set()
    for item in _items(collection):
        ok = [r for r in item.get("response", []) if r.get("code") == 200]
        assert ok, item["name"]
        for saved in ok:
            assert json.loads(saved["body"]) in bodies, (item["name"], saved["body"][:200])
        seen.add(item["request"]["url"]["path"][-1] if item["request"]["url"]["path"] else "")
    assert len(list(_items(collection))) == len(CONTRACT.operations)


# -- linters ------------------------------------------------------------------------------


def test_redocly_lint_is_clean(npm: None, tmp_path: Path) -> None:
    """`redocly lint schemas/openapi.yaml` (its recommended rules): 0 errors, 0 warnings."""
    result = subprocess.run(
        [*peers.node_command("redocly"), "lint", str(SCHEMAS / "openapi.yaml"), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
    )
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, result.stdout[-3000:]
    assert result.returncode == 0


def test_spectral_lint_is_clean(npm: None) -> None:
    """`spectral lint schemas/openapi.yaml` with spectral:oas (the repository's .spectral.yaml,
    which turns nothing off): no problem at all."""
    result = subprocess.run(
        [
            *peers.node_command("spectral"),
            "lint",
            str(SCHEMAS / "openapi.yaml"),
            "-r",
            str(ROOT / ".spectral.yaml"),
            "-f",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    problems = json.loads(result.stdout or "[]")
    assert problems == [], json.dumps(problems, indent=1)[:3000]
    assert result.returncode == 0
