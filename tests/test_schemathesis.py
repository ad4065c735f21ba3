"""Schemathesis, a peer tool, with the repository's schemathesis.toml, finds nothing wrong with
the mock against the contract: every phase runs, the stateful one through the contract's links."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pivotkit.harness import MockServer

from .conftest import ROOT, SCHEMAS

pytest.importorskip("schemathesis")


def _st() -> str:
    beside = Path(sys.executable).with_name("st")
    found = str(beside) if beside.exists() else shutil.which("st")
    if found is None:
        pytest.skip("the schemathesis CLI (st) is not installed")
    return found


def _run(pivot_mock: MockServer, tmp_path: Path, *args: str) -> str:
    # cwd: Schemathesis keeps a .schemathesis/ replay cache in its working directory; the
    # shipped configuration is named explicitly (a plain run from the checkout finds it).
    command = [
        _st(),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        str(SCHEMAS / "openapi.yaml"),
        "--url",
        pivot_mock.url,
        "--seed",
        "1",
        "--workers",
        "1",
        "--no-color",
        *args,
    ]
    env = {**os.environ, "PIVOT_API_KEY": pivot_mock.key("full").reveal()}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path, env=env
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "No issues found" in out
    assert pivot_mock.key("full").reveal() not in out
    return out


def test_a_plain_run_with_the_shipped_config_passes_every_phase(
    pivot_mock: MockServer, tmp_path: Path
) -> None:
    """`schemathesis run schemas/openapi.yaml --url <mock>` with schemathesis.toml: examples,
    coverage, fuzzing and stateful all pass; the stateful phase follows the links."""
    out = _run(pivot_mock, tmp_path, "--max-examples", "10")
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        line = next(
            (
                ln
                for ln in out.splitlines()
                if ln.strip().startswith(("✅", "❌", "⏭")) and phase in ln
            ),
            "",
        )
        assert line.strip().startswith("✅"), (phase, out[-3000:])
    assert "not applicable" not in out.lower()


def test_every_check_and_mode_passes(pivot_mock: MockServer, tmp_path: Path) -> None:
    """Every check (authentication and negative data included, positive and negative modes)
    but unsupported_method, which the config explains (the gateway answers 404, no 405)."""
    _run(
        pivot_mock,
        tmp_path,
        "--checks",
        "all",
        "--exclude-checks",
        "unsupported_method",
        "--mode",
        "all",
        "--max-examples",
        "20",
        "--phases",
        "examples,coverage,fuzzing",
    )
