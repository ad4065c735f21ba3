"""The secret scanner: files under a root searched for anything key-shaped, raw or encoded
(base64, hex, percent, JSON escapes), the demo keys an accounts file declares aside."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus

from pivotkit.client import demo_key
from pivotkit.errors import ConfigError
from pivotkit.redact import (
    KEY_PLACEHOLDER,
    KEY_SHAPED,
    is_placeholder,
    key_assignment,
    key_names,
)


def demo_keys(accounts_file: Path) -> frozenset[str]:
    """The demo keys an accounts file may hold: none unless it says ``demo_keys = true``.

    Recomputed from each account's ``name`` for both slots (:func:`pivotkit.client.demo_key`).
    """
    if not accounts_file.is_file():
        return frozenset()
    try:
        data = tomllib.loads(accounts_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(accounts_file), f"not valid TOML: {exc}") from None
    if data.get("demo_keys") is not True:
        return frozenset()
    accounts = data.get("accounts", [])
    if isinstance(accounts, dict):
        accounts = [{"name": k, **v} for k, v in accounts.items() if isinstance(v, dict)]
    allowed: set[str] = set()
    for account in accounts:
        if not isinstance(account, dict) or not isinstance(account.get("name"), str):
            continue
        allowed |= {
            demo_key(account["name"], "primary").reveal(),
            demo_key(account["name"], "secondary").reveal(),
        }
    return frozenset(allowed)


@dataclass(frozen=True)
class SecretFinding:
    """Something key-shaped in a file: where, and a masked hint of what (never the value)."""

    path: Path
    line: int
    kind: str
    hint: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.kind} ({self.hint}); replace it with "
            f"{KEY_PLACEHOLDER[:4]}... (pivotkit record redacts keys) or remove the file"
        )


_SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        ".nox",
        ".tox",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        "build",
        "dist",
        "reports",
        ".peers",
    }
)


def files_to_scan(root: Path) -> Iterator[Path]:
    """Every file under ``root/fixtures`` and every ``*.json``/``*.toml`` of the checkout."""
    seen: set[Path] = set()
    fixtures = root / "fixtures"
    candidates = list(fixtures.rglob("*")) if fixtures.is_dir() else []
    candidates += [p for ext in ("json", "toml") for p in root.rglob(f"*.{ext}")]
    for path in sorted(candidates):
        rel = path.relative_to(root).parts
        if any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in rel[:-1]):
            continue
        if path.is_file() and path not in seen:
            seen.add(path)
            yield path


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_JSON_ESCAPE = re.compile(r"\\u00([0-9A-Fa-f]{2})")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){32,}(?![0-9A-Fa-f])")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")


def _decoded_views(line: str) -> Iterator[tuple[str, str]]:
    """The line as a key could hide in it once decoded: (how, text), for percent-encoding,
    JSON escapes, hex of the bytes and base64 / base64url (each alignment)."""
    if _PERCENT.search(line):
        yield "percent-encoded", unquote_plus(unquote_plus(line))
    if "\\u00" in line:
        yield "JSON-escaped", _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), line)
    for m in _HEX_RUN.finditer(line):
        with contextlib.suppress(ValueError):
            yield "hex-encoded", bytes.fromhex(m.group(0)).decode("latin-1")
    for m in _BASE64_RUN.finditer(line):
        run = m.group(0).rstrip("=").replace("-", "+").replace("_", "/")
        for start in range(4):
            piece = run[start:]
            piece = piece[:-1] if len(piece) % 4 == 1 else piece
            piece += "=" * (-len(piece) % 4)
            with contextlib.suppress(binascii.Error, ValueError):
                yield "base64-encoded", base64.b64decode(piece, validate=True).decode("latin-1")


def scan_text(text: str, path: Path, allowed: frozenset[str] = frozenset()) -> list[SecretFinding]:
    """Every key-shaped value in ``text`` that is neither a placeholder nor an allowed demo
    key, written plainly or encoded (percent, JSON escapes, hex, base64, base64url)."""
    found: list[SecretFinding] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        plain = set(KEY_SHAPED.findall(line))
        for how, view in _decoded_views(line):
            for m in KEY_SHAPED.finditer(view):
                key = m.group(0)
                if key not in plain and key not in allowed and not is_placeholder(key):
                    plain.add(key)
                    found.append(SecretFinding(path, lineno, f"a key, {how}", f"{key[:2]}..."))
        for m in KEY_SHAPED.finditer(line):
            if m.group(0) not in allowed and not is_placeholder(m.group(0)):
                found.append(
                    SecretFinding(
                        path,
                        lineno,
                        "32 lowercase hex characters",
                        f"{m.group(0)[:2]}...{len(m.group(0))} chars",
                    )
                )
        for m in key_assignment(key_names()).finditer(line):
            value = m.group(2)
            if (
                not is_placeholder(value)
                and value not in allowed
                and not KEY_SHAPED.fullmatch(value)
            ):
                found.append(
                    SecretFinding(path, lineno, f"{m.group(1)} with a value", f"{len(value)} chars")
                )
    return found


def scan_secrets(root: Path, files: Iterable[Path] | None = None) -> list[SecretFinding]:
    """Scan a checkout (or some files) for secrets; demo keys of fixtures/accounts.toml pass."""
    allowed = demo_keys(root / "fixtures" / "accounts.toml")
    found: list[SecretFinding] = []
    for path in files if files is not None else files_to_scan(root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found.extend(scan_text(text, path, allowed))
    return found
