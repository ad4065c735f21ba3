"""The repository holds no secret: every fixture and every JSON/TOML file is scanned."""

from __future__ import annotations

import json
import secrets
import shutil
import tomllib
from pathlib import Path

from pivotkit.client import demo_key
from pivotkit.redact import KEY_PLACEHOLDER
from pivotkit.scanner import demo_keys, files_to_scan, scan_secrets
from tests.helpers import KEY_HEADER, key_headers

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = ROOT / "fixtures" / "accounts.toml"


def _plant(root: Path, text: str, rel: str = "fixtures/getContent/planted.json") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_holds_no_secret() -> None:
    """No fixture, JSON or TOML file of the checkout holds anything key-shaped."""
    scanned = list(files_to_scan(ROOT))
    assert ROOT / "fixtures" / "getContent" / "7488.json" in scanned
    assert ROOT / "pyproject.toml" in scanned
    assert not any(".venv" in p.parts for p in scanned)
    findings = scan_secrets(ROOT)
    assert findings == [], "\n".join(map(str, findings))


def test_demo_keys_are_exactly_the_derived_ones() -> None:
    """Every key of the shipped accounts file is sha256("pivotkit-demo-<account>-<slot>")[:32]."""
    data = tomllib.loads(ACCOUNTS.read_text("utf-8"))
    assert data["demo_keys"] is True
    allowed = demo_keys(ACCOUNTS)
    for account in data["accounts"]:
        assert {f for f in account if f.endswith("_key")} == {"primary_key", "secondary_key"}
        for slot in ("primary", "secondary"):
            assert account[f"{slot}_key"] == demo_key(account["name"], slot).reveal()
            assert account[f"{slot}_key"] in allowed


def test_scanner_fails_on_a_planted_key(tmp_path: Path) -> None:
    """A real-looking key in a fixture is found, named by file and line, never printed."""
    key = secrets.token_hex(16)
    path = _plant(tmp_path, json.dumps({"request": {"headers": key_headers(key)}}, indent=2))
    findings = scan_secrets(tmp_path)
    assert [(f.path, f.line) for f in findings] == [(path, 4)]
    assert key not in str(findings[0])
    assert "pivotkit record redacts" in str(findings[0])


def test_scanner_finds_non_hex_key_assignments(tmp_path: Path) -> None:
    """``subscription-key=`` or the key header with any non-placeholder value is a finding."""
    _plant(tmp_path, '{"url": "https://api.plurimedia.fr/v1/api/v1/days?subscription-key=S3cr3t"}')
    _plant(tmp_path, f"{KEY_HEADER}: hunter2-hunter2\n", "fixtures/notes.txt")
    kinds = sorted(f.kind for f in scan_secrets(tmp_path))
    assert kinds == [f"{KEY_HEADER} with a value", "subscription-key with a value"]


def test_scanner_looks_at_json_and_toml_outside_fixtures(tmp_path: Path) -> None:
    """A key in any JSON or TOML file of the checkout is found; other files are not read."""
    key = secrets.token_hex(16)
    _plant(tmp_path, f'key = "{key}"\n', "config/local.toml")
    _plant(tmp_path, f"KEY = '{key}'\n", "src/app.py")
    _plant(tmp_path, f'key = "{key}"\n', ".venv/lib/site.toml")
    assert [f.path.name for f in scan_secrets(tmp_path)] == ["local.toml"]


def test_placeholders_pass(tmp_path: Path) -> None:
    """Placeholders, hashes and GUIDs are not keys."""
    _plant(
        tmp_path,
        json.dumps(
            {
                KEY_HEADER: KEY_PLACEHOLDER,
                "zeros": "0" * 32,
                "url": "/x?subscription-key=<your key>",
                "sha256": secrets.token_hex(32),
                "guid": "573995c4-a10b-48e5-b5b5-78ad0699dd05",
                "upper": secrets.token_hex(16).upper(),
            }
        ),
    )
    assert scan_secrets(tmp_path) == []


def test_demo_keys_need_the_flag_and_the_right_derivation(tmp_path: Path) -> None:
    """Without ``demo_keys = true``, or with a changed value, demo-looking keys are findings."""
    real = demo_key("full", "primary").reveal()
    accounts = '[[accounts]]\nname = "full"\nprimary_key = "{}"\n'
    _plant(tmp_path, "demo_keys = true\n" + accounts.format(real), "fixtures/accounts.toml")
    assert scan_secrets(tmp_path) == []
    _plant(tmp_path, accounts.format(real), "fixtures/accounts.toml")
    assert len(scan_secrets(tmp_path)) == 1
    forged = secrets.token_hex(16)
    _plant(tmp_path, "demo_keys = true\n" + accounts.format(forged), "fixtures/accounts.toml")
    assert len(scan_secrets(tmp_path)) == 1


def test_shipped_accounts_file_with_a_planted_key_fails(tmp_path: Path) -> None:
    """The real accounts file passes as is, and fails once one key is replaced."""
    target = tmp_path / "fixtures" / "accounts.toml"
    target.parent.mkdir()
    shutil.copy(ACCOUNTS, target)
    assert scan_secrets(tmp_path) == []
    planted = secrets.token_hex(16)
    real = demo_key("full", "primary").reveal()
    target.write_text(target.read_text("utf-8").replace(real, planted), "utf-8")
    findings = scan_secrets(tmp_path)
    assert len(findings) == 1
    assert planted in target.read_text("utf-8").splitlines()[findings[0].line - 1]
