"""The peer tools pivotkit is measured and tested against, installed on demand into ``.peers/``.

npm packages go to ``.peers/node_modules`` (run with the machine's node, directly, never through
npx); Python tools to their own virtual environment ``.peers/venv`` (their dependencies must not
mix with pivotkit's). Versions are pinned: a run says which tool version gave which result.
Used by the tests (tests/test_ecosystem.py) and by ``nox -s bench``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("PIVOT_PEERS_DIR", ROOT / ".peers"))

NPM = {
    "@stoplight/prism-cli": "5.14.2",  # newer needs Node 24
    "@redocly/cli": "2.77.0",
    "@stoplight/spectral-cli": "6.16.3",
    "openapi-to-postmanv2": "6.3.3",
    "wiremock": "3.13.2",
}
PYTHON = {
    "openapi-python-client": "0.29.1",
    "datamodel-code-generator": "0.89.0",
}


class PeerMissing(RuntimeError):
    """A peer tool could not be installed (no node/npm, no network): the message says which."""


def _install(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        raise PeerMissing(f"installing {what} failed: {result.stderr[-2000:]}")


def _installed_version(name: str) -> str | None:
    package = PEERS / "node_modules" / name / "package.json"
    if not package.is_file():
        return None
    return str(json.loads(package.read_text(encoding="utf-8")).get("version"))


def npm_tools(*names: str) -> None:
    """Install the npm packages ``names`` (pinned versions) unless they are there already."""
    wanted = [n for n in names if _installed_version(n) != NPM[n]]
    if not wanted:
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise PeerMissing(f"node and npm are needed for {', '.join(wanted)}")
    PEERS.mkdir(parents=True, exist_ok=True)
    package = PEERS / "package.json"
    if not package.exists():
        package.write_text('{"name": "pivotkit-peers", "private": true}\n', encoding="utf-8")
    specs = [f"{n}@{NPM[n]}" for n in wanted]
    _install(
        [
            npm,
            "install",
            "--prefix",
            str(PEERS),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            *specs,
        ],
        " ".join(specs),
    )


def npm_bin(name: str) -> Path:
    """The script of an installed npm tool's executable (``prism``, ``redocly``...)."""
    path = PEERS / "node_modules" / ".bin" / name
    if not path.exists():
        raise PeerMissing(f"{name} is not installed in {PEERS}")
    return path


def node_command(name: str) -> list[str]:
    """How to start an npm tool with the machine's node (no npx)."""
    node = shutil.which("node")
    if node is None:
        raise PeerMissing("node is not installed")
    return [node, str(npm_bin(name).resolve())]


def python_tools() -> Path:
    """The virtual environment holding the Python peer tools (created and filled once)."""
    env = PEERS / "venv"
    python = env / "bin" / "python"
    marker = env / "pivotkit-peers.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == PYTHON:
        return env
    if not python.exists():
        venv.create(env, with_pip=True)
    specs = [f"{n}=={v}" for n, v in PYTHON.items()]
    _install([str(python), "-m", "pip", "install", "-q", *specs], " ".join(specs))
    marker.write_text(json.dumps(PYTHON), encoding="utf-8")
    return env


if __name__ == "__main__":  # python tools/peers.py: install everything (CI warms the cache)
    npm_tools(*NPM)
    python_tools()
    sys.stdout.write(f"peer tools ready in {PEERS}\n")
