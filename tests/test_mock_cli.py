"""``pivotkit serve`` through click's CliRunner: options reach the app, errors are clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

import mockserver.server as server_module
from mockserver.config import FIELDS
from pivotkit.cli import main
from tests.helpers import FULL, free_port


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*FIELDS, "CONFIG"):
        monkeypatch.delenv(f"PIVOT_{name}", raising=False)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """granian's runner replaced by a recorder: the command returns instead of serving."""
    calls: list[dict[str, Any]] = []

    def fake_run(settings: Any, **kwargs: Any) -> None:
        app: Flask | None = server_module._PREBUILT
        calls.append({"app": app, "settings": settings, **kwargs})

    monkeypatch.setattr(server_module, "run_granian", fake_run)
    monkeypatch.setattr(server_module, "_PREBUILT", None)
    return calls


def test_serve_passes_options_and_prints_keys(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    """Flags become settings; the banner shows the demo keys and the generated admin token."""
    port = free_port()
    result = CliRunner().invoke(
        main,
        [
            "serve",
            "--port",
            str(port),
            "--dynamic",
            "--state",
            str(tmp_path / "s.sqlite"),
            "--faults",
            "latency=1ms",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{port}" in result.output
    assert FULL in result.output and "admin token (generated)" in result.output
    assert "dynamic mode" in result.output
    (call,) = runs
    assert call["port"] == port and call["host"] == "127.0.0.1" and call["workers"] == 1
    mock = call["app"].extensions["pivot"]
    assert mock.settings.dynamic is True and mock.settings.sources["DYNAMIC"] == "flags"
    assert mock.admin_token in result.output


def test_serve_masks_keys_that_are_not_demo_keys(
    tmp_path: Path, runs: list[dict[str, Any]]
) -> None:
    """Without ``demo_keys = true`` the banner never prints a whole key."""
    accounts = tmp_path / "accounts.toml"
    key = "0123456789abcdef0123456789abcdef"
    accounts.write_text(
        f'[[accounts]]\nname = "t"\nprimary_key = "{key}"\n'
        'secondary_key = "fedcba9876543210fedcba9876543210"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main,
        [
            "serve",
            "--accounts",
            str(accounts),
            "--state",
            str(tmp_path / "s.sqlite"),
            "--admin-token",
            "given-admin-token",
        ],
    )
    assert result.exit_code == 0, result.output
    assert key not in result.output and "0123...ef" in result.output
    assert "given-admin-token" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "explode"], "unknown fault"),
        (["--record-from", "not-a-url"], "PIVOT_RECORD_FROM"),
        (["--admin-token", "short"], "8+ characters"),
    ],
)
def test_serve_reports_bad_settings(
    tmp_path: Path, runs: list[dict[str, Any]], args: list[str], message: str
) -> None:
    """A bad setting exits 1 with the setting's name and what is wrong, before serving."""
    result = CliRunner().invoke(main, ["serve", "--state", str(tmp_path / "s.sqlite"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert runs == []


def test_serve_help_lists_the_options() -> None:
    """--help documents every option of the issue."""
    result = CliRunner().invoke(main, ["serve", "--help"])
    for option in (
        "--host",
        "--port",
        "--fixtures",
        "--accounts",
        "--workers",
        "--dynamic",
        "--record-from",
        "--production",
        "--state",
        "--admin-token",
        "--faults",
    ):
        assert option in result.output


def test_serve_maps_the_new_flags_to_settings(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    """--strict, --trust-proxy and --workers reach the app and granian; --production changes
    nothing."""
    result = CliRunner().invoke(
        main,
        [
            "serve",
            "--port",
            str(free_port()),
            "--state",
            str(tmp_path / "s.sqlite"),
            "--strict",
            "--trust-proxy",
            "1",
            "--workers",
            "3",
            "--production",
        ],
    )
    assert result.exit_code == 0, result.output
    (call,) = runs
    settings = call["app"].extensions["pivot"].settings
    assert settings.strict_fixtures is True and settings.trust_proxy == 1
    assert call["workers"] == 3 and "(3 workers;" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-reload"], "--no-reload goes with --dev"),
        (["--dev", "--workers", "2"], "--dev runs one process"),
        (["--trust-proxy", "9"], "--trust-proxy"),
    ],
)
def test_serve_refuses_flag_mixes(
    tmp_path: Path, runs: list[dict[str, Any]], args: list[str], message: str
) -> None:
    """Flags that do not go together are a usage error (exit 2) naming them."""
    result = CliRunner().invoke(main, ["serve", "--state", str(tmp_path / "s.sqlite"), *args])
    assert result.exit_code == 2 and message in result.output and runs == []
