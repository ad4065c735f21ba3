"""Accounts: keys, rights (operations and fields) and limits; one model for the mock and drift.

An accounts file (TOML, ``fixtures/accounts.toml`` documents it) lists ``[[accounts]]``; the
mock needs each account's keys, drift only its rights (a *profile*: one account's table, or an
accounts file and the name of one account). Field rights use JSON pointers (``/credits``) or
dotted paths (``credits.character``) relative to the payload, applied to every element of
arrays; a field outside the rights is absent, not null.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from pivotkit.errors import ConfigError, UnknownAccount
from pivotkit.pointers import ITEMS, parse_field

SLOTS = ("primary", "secondary")
KEY_SHAPE = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SETTINGS = frozenset(
    {
        "name",
        "password_hash",
        "primary_key",
        "secondary_key",
        "operations",
        "fields",
        "withheld",
        "rate_limit",
        "quota",
    }
)

# A field trie: name -> True (the whole subtree) or a deeper trie.
Trie = dict[str, Union[bool, "Trie"]]


def parse_field_path(text: str) -> tuple[str, ...]:
    """``/credits/character`` (JSON pointer) or ``credits.character`` (dotted) as parts;
    ``*`` segments (array levels) are dropped: rights apply to every element anyway."""
    try:
        parts = parse_field(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a field path (use /a/b or a.b)") from None
    kept = tuple(p for p in parts if p != ITEMS)
    if not kept:
        raise ValueError(f"{text!r} is not a field path (use /a/b or a.b)")
    return kept


def build_trie(paths: Iterable[tuple[str, ...]]) -> Trie:
    """The trie of field paths; a shorter path covers everything below it."""
    root: Trie = {}
    for parts in paths:
        node = root
        for i, part in enumerate(parts):
            current = node.get(part)
            if current is True:
                break
            if i == len(parts) - 1:
                node[part] = True
                break
            if not isinstance(current, dict):
                current = {}
                node[part] = current
            node = current
    return root


def select_fields(value: Any, trie: Trie | bool) -> Any:
    """Keep only the fields in ``trie`` (applied to each element of arrays)."""
    if trie is True:
        return value
    if isinstance(value, list):
        return [select_fields(v, trie) for v in value]
    if isinstance(value, dict) and isinstance(trie, dict):
        return {k: select_fields(v, trie[k]) for k, v in value.items() if k in trie}
    return value


def remove_fields(value: Any, trie: Trie) -> Any:
    """Drop the fields in ``trie`` (absent, not null), in each element of arrays."""
    if isinstance(value, list):
        return [remove_fields(v, trie) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = trie.get(k)
            if sub is True:
                continue
            out[k] = remove_fields(v, sub) if isinstance(sub, dict) else v
        return out
    return value


def _covered(trie: Trie, path: Sequence[str]) -> bool | None:
    """True when a path of the trie covers ``path``; None when ``path`` leads to one (it is
    a parent of a path of the trie); False otherwise."""
    node: Trie | bool = trie
    for part in path:
        if node is True:
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True if node is True else None


@dataclass(frozen=True)
class Rights:
    """What an account may call and see."""

    operations: frozenset[str] | None = None  # None: every operation
    fields: Trie | None = None  # None: every field
    withheld: Trie = field(default_factory=dict)
    field_specs: tuple[str, ...] = ("*",)
    withheld_specs: tuple[str, ...] = ()

    @classmethod
    def from_specs(
        cls,
        *,
        operations: Sequence[str] = ("*",),
        fields: Sequence[str] = ("*",),
        withheld: Sequence[str] = (),
    ) -> Rights:
        """Rights from the accounts file's notation (``["*"]`` for everything)."""
        chosen = [f for f in fields if f != "*"]
        return cls(
            operations=None if "*" in operations else frozenset(operations),
            fields=None if "*" in fields else build_trie(parse_field_path(f) for f in chosen),
            withheld=build_trie(parse_field_path(f) for f in withheld if f != "*"),
            field_specs=tuple(fields),
            withheld_specs=tuple(withheld),
        )

    def may_call(self, operation_id: str) -> bool:
        """Whether the rights include this operation."""
        return self.operations is None or operation_id in self.operations

    @property
    def restricted(self) -> bool:
        """Whether payloads are filtered for this account."""
        return self.fields is not None or bool(self.withheld)

    def filter(self, payload: Any) -> Any:
        """The payload with the fields outside the rights removed."""
        if self.fields is not None:
            payload = select_fields(payload, self.fields)
        if self.withheld:
            payload = remove_fields(payload, self.withheld)
        return payload

    def withholds(self, path: Sequence[str]) -> bool:
        """Whether a field (payload-relative segments; array levels ``*`` ignored) is kept
        from the account: withheld, or outside the allowed fields (their parents stay)."""
        parts = [p for p in path if p != ITEMS]
        if not parts:
            return False
        if self.withheld and _covered(self.withheld, parts) is True:
            return True
        return self.fields is not None and _covered(self.fields, parts) is False


@dataclass(frozen=True)
class Limit:
    """``calls`` allowed per ``period`` seconds (the mock counts a rate limit in a sliding
    window, a quota in fixed windows renewed every ``period``)."""

    calls: int
    period: int


@dataclass(frozen=True)
class Account:
    """One account of the accounts file: keys, rights and limits."""

    name: str
    password_hash: str = ""
    primary_key: str = ""
    secondary_key: str = ""
    rights: Rights = field(default_factory=Rights)
    rate_limit: Limit | None = None
    quota: Limit | None = None

    @property
    def operations(self) -> frozenset[str] | None:
        """The operations the account may call (None: every one)."""
        return self.rights.operations

    def may_call(self, operation_id: str) -> bool:
        """Whether the account's rights include this operation."""
        return self.rights.may_call(operation_id)

    @property
    def restricted(self) -> bool:
        """Whether payloads are filtered for this account."""
        return self.rights.restricted

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary without secrets (no keys, no hash)."""
        ops = self.rights.operations
        return {
            "name": self.name,
            "operations": sorted(ops) if ops is not None else ["*"],
            "fields": list(self.rights.field_specs),
            "withheld": list(self.rights.withheld_specs),
            "rateLimit": None if self.rate_limit is None else vars(self.rate_limit),
            "quota": None if self.quota is None else vars(self.quota),
        }


@dataclass(frozen=True)
class AccountsFile:
    """The parsed accounts file."""

    path: Path
    accounts: tuple[Account, ...]
    demo_keys: bool

    def account(self, name: str) -> Account:
        """The account of that name (UnknownAccount lists the known ones)."""
        for account in self.accounts:
            if account.name == name:
                return account
        raise UnknownAccount(name, (a.name for a in self.accounts))


def _limit(raw: Any, where: str) -> Limit | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or set(raw) != {"calls", "period"}
        or not all(
            isinstance(raw[k], int) and not isinstance(raw[k], bool) and raw[k] > 0
            for k in ("calls", "period")
        )
    ):
        raise ValueError(f"{where}: must be {{ calls = N, period = seconds }} with positive ints")
    return Limit(int(raw["calls"]), int(raw["period"]))


def _str_list(raw: Any, where: str, default: list[str]) -> list[str]:
    if raw is None:
        return default
    if raw == "*":
        return ["*"]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise ValueError(f'{where}: must be a list of non-empty strings (or "*")')
    return list(raw)


def _rights(raw: Mapping[str, Any], where: str, known: Iterable[str] | None) -> Rights:
    ops = _str_list(raw.get("operations"), f"{where}.operations", ["*"])
    if "*" not in ops and known is not None:
        known_set = set(known)
        unknown = [o for o in ops if o not in known_set]
        if unknown:
            raise ValueError(
                f"{where}.operations: unknown {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known_set))}"
            )
    try:
        return Rights.from_specs(
            operations=ops,
            fields=_str_list(raw.get("fields"), f"{where}.fields", ["*"]),
            withheld=_str_list(raw.get("withheld"), f"{where}.withheld", []),
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _keys(raw: Mapping[str, Any], where: str, *, required: bool) -> list[str]:
    keys = []
    for slot in SLOTS:
        key = raw.get(f"{slot}_key")
        if key is None and not required:
            keys.append("")
            continue
        if not isinstance(key, str) or not KEY_SHAPE.fullmatch(key):
            raise ValueError(f"{where}.{slot}_key: must be 32 lowercase hexadecimal characters")
        keys.append(key)
    return keys


def parse_account(
    raw: Any, i: int, known_operations: Iterable[str] | None = None, *, keys: bool = True
) -> Account:
    """One ``[[accounts]]`` table; ValueError names the account and the setting.
    ``keys=False`` (a drift profile) lets the keys and the password out."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"accounts[{i}]: must be a table")
    name = raw.get("name", "default" if not keys else None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"accounts[{i}].name: must be 1-64 characters of [A-Za-z0-9_.-]")
    where = f"accounts[{i}] ({name})"
    extra = sorted(set(raw) - _SETTINGS)
    if extra:
        raise ValueError(
            f"{where}: unknown setting(s) {', '.join(extra)}; "
            f"allowed: {', '.join(sorted(_SETTINGS))}"
        )
    primary, secondary = _keys(raw, where, required=keys)
    password_hash = raw.get("password_hash", "")
    if not isinstance(password_hash, str):
        raise ValueError(f"{where}.password_hash: must be a werkzeug password hash string")
    return Account(
        name=name,
        password_hash=password_hash,
        primary_key=primary,
        secondary_key=secondary,
        rights=_rights(raw, where, known_operations),
        rate_limit=_limit(raw.get("rate_limit"), f"{where}.rate_limit"),
        quota=_limit(raw.get("quota"), f"{where}.quota"),
    )


def read_source(path: Path, raw: bytes | None = None) -> str:
    """The text of an accounts file (``raw``: its bytes when read already); ConfigError when
    it cannot be read or is not UTF-8."""
    try:
        return (path.read_bytes() if raw is None else raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "the accounts file is not UTF-8") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the accounts file ({exc.strerror})") from None


def _read(path: Path, raw: bytes | None = None) -> dict[str, Any]:
    return read_text(read_source(path, raw), path)


def read_text(text: str, path: Path) -> dict[str, Any]:
    """The content of an accounts file's text: JSON when ``path`` ends in .json, else TOML."""
    source = str(path)
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ConfigError(source, f"invalid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(source, "an accounts file is a table (object)")
    return data


def _check_unique(path: Path, accounts: list[Account]) -> None:
    names = [a.name for a in accounts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(str(path), f"duplicate account name(s): {', '.join(dupes)}")
    all_keys = [k for a in accounts for k in (a.primary_key, a.secondary_key) if k]
    if len(set(all_keys)) != len(all_keys):
        raise ConfigError(str(path), "two keys are equal; every key must be unique")


def load_accounts(
    path: Path | str, known_operations: Iterable[str] | None = None, *, raw: bytes | None = None
) -> AccountsFile:
    """Read and validate an accounts file (TOML); ConfigError names the file and the setting.

    ``raw`` is the file's content when it was read already (the mock's reload snapshot).
    """
    path = Path(path)
    return parse_accounts(_read(path, raw), path, known_operations)


def parse_accounts(
    data: Mapping[str, Any], path: Path, known_operations: Iterable[str] | None = None
) -> AccountsFile:
    """Validate the parsed content of an accounts file (``path`` names it in the errors)."""
    raw_accounts = data.get("accounts")
    if not isinstance(raw_accounts, list) or not raw_accounts:
        raise ConfigError(str(path), "no [[accounts]] table; see fixtures/accounts.toml")
    demo = data.get("demo_keys", False)
    if not isinstance(demo, bool):
        raise ConfigError(str(path), "demo_keys must be true or false")
    ops = list(known_operations) if known_operations is not None else None
    try:
        accounts = [parse_account(raw, i, ops) for i, raw in enumerate(raw_accounts)]
    except ValueError as exc:
        raise ConfigError(str(path), str(exc)) from None
    _check_unique(path, accounts)
    return AccountsFile(path, tuple(accounts), demo)


def load_profile(path: Path, account: str | None = None, *, option: str = "--account") -> Account:
    """The rights drift assumes: one account's table at the top level of a TOML/JSON file, or
    an accounts file from which ``account`` picks one by name (keys are not needed)."""
    data = _read(path)
    accounts = data.get("accounts")
    if isinstance(accounts, list):
        chosen = [
            a
            for a in accounts
            if isinstance(a, dict) and (account is None or a.get("name") == account)
        ]
        if len(chosen) != 1:
            known = ", ".join(str(a.get("name")) for a in accounts if isinstance(a, dict))
            raise ConfigError(str(path), f"choose one account with {option} (known: {known})")
        data = chosen[0]
    data = {k: v for k, v in data.items() if k != "demo_keys"}
    try:
        return parse_account(data, 0, keys=False)
    except ValueError as exc:
        raise ConfigError(str(path), str(exc)) from None


__all__ = [
    "Account",
    "AccountsFile",
    "Rights",
    "load_accounts",
    "load_profile",
]
