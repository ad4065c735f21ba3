"""Tests of dev.py, the README's two commands: a fresh virtual environment, then the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import dev  # the script at the root of the checkout

from .conftest import ROOT
from .helpers import FULL, clean_env, free_port, key_headers, path_of, stop, wait_ready

pytestmark = pytest.mark.slow


def _dev(*args: str, venv: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`python3 dev.py ARGS` in a subprocess, its output in a log file beside the venv."""
    log = venv.parent / f"dev-{len(list(venv.parent.glob('dev-*.log')))}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "dev.py"), *args],
            cwd=venv.parent,
            env=clean_env(PIVOTKIT_VENV=str(venv)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


def _pip_failed(output: str) -> None:
    if "pip install" in output and os.environ.get("PIVOT_REQUIRE_PEERS") != "1":
        pytest.skip(f"cannot install from the package index: {output[-500:]}")


def test_serve_makes_a_venv_then_is_the_mock(tmp_path: Path) -> None:
    """`python3 dev.py serve ARGS` from anywhere: creates the environment ($PIVOTKIT_VENV),
    installs the checkout, then becomes `pivotkit serve ARGS` (same pid: stopping it stops the
    mock), which answers the public path; the next run installs nothing."""
    venv = tmp_path / "venv"
    port = free_port()
    process, log = _dev(
        "serve", "--port", str(port), "--state", str(tmp_path / "s.sqlite"), venv=venv
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, process, timeout=300)
        except pytest.fail.Exception:
            _pip_failed(log.read_text(errors="replace"))
            raise
        answer = httpx.get(url + path_of("getContent", id=7488), headers=key_headers(FULL))
        assert answer.status_code == 200
        assert (venv / "bin" / "pivotkit").is_file()
    finally:
        stop(process)
    with pytest.raises(httpx.ConnectError):  # dev.py was the mock: nothing is left behind
        httpx.get(f"{url}/__pivot/health", timeout=5)
    text = log.read_text(errors="replace")
    assert f"dev.py: creating {venv}" in text and "pivotkit mock on" in text
    again, again_log = _dev("serve", "--help", venv=venv)
    assert again.wait(120) == 0
    out = again_log.read_text()
    assert "Usage: pivotkit serve" in out
    assert "dev.py:" not in out  # neither created nor installed again


def test_a_python_without_ensurepip_still_gets_a_venv_with_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's python3 without python3-venv cannot run ensurepip: the environment is made
    without it and pip is brought in by the system's pip, into the environment only."""

    def debian_ensurepip(self: object, context: object) -> None:
        raise subprocess.CalledProcessError(1, ["python", "-m", "ensurepip"])

    monkeypatch.setattr(dev.venv.EnvBuilder, "_setup_pip", debian_ensurepip)
    env = tmp_path / "venv"
    try:
        dev.make_venv(env)
    except subprocess.CalledProcessError as exc:
        _pip_failed(f"pip install: {exc}")
        raise
    python = env / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import pip, sys; print(pip.__file__); print(sys.prefix)"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(env) and Path(where[1]) == env


def test_usage() -> None:
    """No command or an unknown one: the usage and exit 2; --help: exit 0."""
    for args, code in (([], 2), (["deploy"], 2), (["--help"], 0)):
        result = subprocess.run(
            [sys.executable, str(ROOT / "dev.py"), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == code
        assert "usage: python3 dev.py COMMAND" in result.stdout + result.stderr
