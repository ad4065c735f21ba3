"""Shared fixtures of pivotkit's own tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def schemas_copy(tmp_path: Path) -> Path:
    """A private copy of schemas/ that a test may break."""
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target)
    return target


@pytest.fixture
def blade_runner() -> dict[str, Any]:
    """The documented getContent/7488 exchange, as a fresh dictionary."""
    data: dict[str, Any] = json.loads((FIXTURES / "getContent" / "7488.json").read_text("utf-8"))
    return data


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PIVOT_API_KEY or PIVOT_TARGET leaks in from the environment."""
    monkeypatch.delenv("PIVOT_API_KEY", raising=False)
    monkeypatch.delenv("PIVOT_TARGET", raising=False)
