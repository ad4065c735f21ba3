"""Editing an accounts file in place: add or replace an account, set its keys or password.

The TOML text is edited, not re-serialised: comments, blank lines and the other accounts stay
as they were written. Each edit is made twice: on the parsed content (what is meant, checked
by the one accounts model, :func:`pivotkit.accounts.parse_accounts`) and on the text; the new
text must read back as exactly what is meant, else nothing is written. The file is replaced
atomically and keeps its permissions (a new one is private: 0600). A JSON accounts file has no
comments to keep: it is written again from its content.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivotkit.accounts import SLOTS, parse_accounts, read_source, read_text
from pivotkit.errors import AccountExists, ConfigError, UnknownAccount
from pivotkit.locations import atomic_write_text, outside_package

_HEADER = re.compile(r"^\s*\[\[\s*accounts\s*\]\]\s*(?:#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_SUB_HEADER = re.compile(r"^\s*\[\[?\s*accounts\s*\.")
_STRING = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_NEW_FILE = (
    "# Accounts of the pivotkit mock (pivotkit serve --accounts FILE), written by\n"
    "# `pivotkit accounts`. Format: see fixtures/accounts.toml of pivotkit.\n"
)
_NEW_FILE_MODE = 0o600


def new_key(taken: Iterable[str] = ()) -> str:
    """A fresh subscription key of the accounts file's shape (32 lowercase hex), unused."""
    used = set(taken)
    while True:
        key = secrets.token_hex(16)
        if key not in used:
            return key


def hash_password(password: str) -> str:
    """The ``password_hash`` of a portal password (werkzeug's scrypt, what the mock checks)."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


@dataclass
class AccountsText:
    """An accounts file being edited: its text, its content, and the edits so far."""

    path: Path
    text: str
    data: dict[str, Any]
    known_operations: tuple[str, ...] | None = None
    original: str | None = None  # the text as read (None: a new file)
    mode: int | None = None
    _meant: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self._meant = copy.deepcopy(self.data)

    @classmethod
    def open(
        cls,
        path: Path,
        known_operations: Iterable[str] | None = None,
        *,
        create: bool = False,
        option: str = "--file",
    ) -> AccountsText:
        """Read (and validate) the file; a missing one is an empty new file when ``create``."""
        outside_package(path, option)
        known = tuple(known_operations) if known_operations is not None else None
        if not path.exists():
            if not create:
                raise ConfigError(str(path), "no such accounts file")
            text = "{}\n" if path.suffix == ".json" else _NEW_FILE
            return cls(path, text, {}, known, None, _NEW_FILE_MODE)
        text = read_source(path)
        data = read_text(text, path)
        parse_accounts(data, path, known)
        return cls(path, text, data, known, text, path.stat().st_mode & 0o7777)

    # -- what the file holds -------------------------------------------------------------

    @property
    def accounts(self) -> list[dict[str, Any]]:
        """The account tables as meant so far."""
        raw = self._meant.get("accounts", [])
        return raw if isinstance(raw, list) else []

    @property
    def demo_keys(self) -> bool:
        """Whether the file says its keys are public demo keys."""
        return self._meant.get("demo_keys") is True

    def index(self, name: str) -> int | None:
        """The position of the account ``name`` (None when there is none)."""
        for i, table in enumerate(self.accounts):
            if isinstance(table, dict) and table.get("name") == name:
                return i
        return None

    def keys_in_use(self) -> set[str]:
        """Every key of every account."""
        return {
            str(t[f"{slot}_key"])
            for t in self.accounts
            if isinstance(t, dict)
            for slot in SLOTS
            if f"{slot}_key" in t
        }

    # -- edits ---------------------------------------------------------------------------

    def add(self, table: dict[str, Any], *, force: bool = False) -> None:
        """Add the account ``table`` at the end, or replace the one of its name (``force``)."""
        name = str(table.get("name"))
        at = self.index(name)
        if at is not None and not force:
            raise AccountExists(self.path, name)
        meant = copy.deepcopy(self._meant)
        accounts = meant.setdefault("accounts", [])
        if at is None:
            accounts.append(table)
        else:
            accounts[at] = table
        self._check_model(meant)
        if self.path.suffix != ".json":
            block = ["[[accounts]]\n", *(f"{k} = {_toml(v)}\n" for k, v in table.items())]
            lines = self.text.splitlines(keepends=True)
            if at is None:
                if lines and not lines[-1].endswith("\n"):
                    lines[-1] += "\n"
                lines += ["\n"] if lines and lines[-1].strip() else []
                lines += block
            else:
                start, end = self._block(lines, at)
                lines[start:end] = block
            self._apply("".join(lines), meant)
        else:
            self._apply(json.dumps(meant, indent=2, ensure_ascii=False) + "\n", meant)

    def set(self, name: str, values: Mapping[str, Any]) -> None:
        """Set settings of the account ``name`` (its keys, its password hash), in place."""
        at = self.index(name)
        if at is None:
            raise UnknownAccount(name, (str(t.get("name")) for t in self.accounts))
        meant = copy.deepcopy(self._meant)
        meant["accounts"][at].update(values)
        self._check_model(meant)
        if self.path.suffix == ".json":
            self._apply(json.dumps(meant, indent=2, ensure_ascii=False) + "\n", meant)
            return
        lines = self.text.splitlines(keepends=True)
        start, end = self._block(lines, at)
        for key, value in values.items():
            pattern = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)({_STRING})?(.*)$", re.S)
            for i in range(start + 1, end):
                if _SUB_HEADER.match(lines[i]):
                    break
                found = pattern.match(lines[i])
                if found:
                    rest = found.group(3) if found.group(2) else "\n"
                    lines[i] = f"{found.group(1)}{_toml(value)}{rest}"
                    break
            else:
                after = next(
                    (i for i in range(start + 1, end) if re.match(r"^\s*name\s*=", lines[i])),
                    start,
                )
                lines.insert(after + 1, f"{key} = {_toml(value)}\n")
                end += 1
        self._apply("".join(lines), meant)

    def save(self) -> None:
        """Write the edited text atomically, unless the file changed since it was read."""
        current = self.path.read_text(encoding="utf-8") if self.path.exists() else None
        if current != self.original:
            raise ConfigError(str(self.path), "the file changed while it was edited; run again")
        atomic_write_text(self.path, self.text, mode=self.mode)
        self.original = self.text

    # -- the checks ----------------------------------------------------------------------

    def _check_model(self, meant: dict[str, Any]) -> None:
        parse_accounts(meant, self.path, self.known_operations)

    def _apply(self, text: str, meant: dict[str, Any]) -> None:
        try:
            read_back = read_text(text, self.path)
        except ConfigError as exc:
            read_back = {"error": str(exc)}
        if read_back != meant:
            raise self._unsafe()
        self.text, self._meant = text, meant

    def _unsafe(self) -> ConfigError:
        return ConfigError(
            str(self.path),
            "cannot edit this file in place safely (its accounts are not each written as one "
            "[[accounts]] table); edit it by hand",
        )

    def _block(self, lines: list[str], at: int) -> tuple[int, int]:
        """The lines of the ``at``-th ``[[accounts]]`` table: from its header to its last
        setting (comments and blank lines before the next table stay with that one)."""
        headers = [i for i, line in enumerate(lines) if _HEADER.match(line)]
        if len(headers) != len(self.accounts):
            raise self._unsafe()
        start = headers[at]
        end = next(
            (
                i
                for i in range(start + 1, len(lines))
                if _ANY_HEADER.match(lines[i]) and not _SUB_HEADER.match(lines[i])
            ),
            len(lines),
        )
        while end - 1 > start and (
            not lines[end - 1].strip() or lines[end - 1].lstrip()[:1] == "#"
        ):
            end -= 1
        return start, end
