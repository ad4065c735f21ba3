"""The gateway layer: accounts, keys, rights, rate limits, quotas and the gateway's exact errors.

The public surface the developer portal builds on is :class:`Gateway`:

- ``gateway.accounts`` -- the accounts, in file order (:class:`Account`: name, operations, ...)
- ``gateway.verify_password(name, password) -> bool``
- ``gateway.current_keys(name) -> (primary, secondary)``
- ``gateway.regenerate_key(name, "primary" | "secondary") -> new key`` (every worker sees it at
  once: the key lives in the shared SQLite state)
- ``gateway.usage(name) -> [UsageRow(day, operation_id, slot, count), ...]``

From a running app: ``app.extensions["pivot"].gateway``.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from werkzeug.security import check_password_hash

from mockserver.state import SLOTS, State, UsageRow
from pivotkit.errors import ConfigError, PivotError

MISSING_KEY = (
    "Access denied due to missing subscription key. Make sure to include subscription "
    "key when making requests to an API."
)
INVALID_KEY = (
    "Access denied due to invalid subscription key. Make sure to provide a valid key "
    "for an active subscription."
)
NOT_FOUND = "Resource not found"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
KEY_QUERY = "subscription-key"
_KEY_RE = re.compile(r"[0-9a-f]{32}")

# A field trie: name -> True (the whole subtree) or a deeper trie.
Trie = dict[str, Union[bool, "Trie"]]


class UnknownAccount(PivotError, LookupError):
    """No account of that name in the accounts file."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown account {name!r}; known: {', '.join(self.known)}")


def rate_limited_message(seconds: int) -> str:
    """The gateway's 429 message for a wait of ``seconds``."""
    return f"Rate limit is exceeded. Try again in {seconds} seconds."


def timespan(seconds: int) -> str:
    """A .NET TimeSpan: ``hh:mm:ss``, or ``d.hh:mm:ss`` past a day."""
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{clock}" if days else clock


def quota_message(seconds: int) -> str:
    """The gateway's 403 message when the call quota renews in ``seconds``."""
    return f"Out of call volume quota. Quota will be replenished in {timespan(seconds)}."


@dataclass(frozen=True)
class GatewayError:
    """An answer written by the gateway itself: status, message, extra headers."""

    status: int
    message: str
    retry_after: int | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body: ``statusCode`` and ``message``, no ``version``, no ``data``."""
        return {"statusCode": self.status, "message": self.message}


MISSING = GatewayError(401, MISSING_KEY)
INVALID = GatewayError(401, INVALID_KEY)
UNROUTED = GatewayError(404, NOT_FOUND)


@dataclass(frozen=True)
class Limit:
    """``calls`` allowed per fixed window of ``period`` seconds."""

    calls: int
    period: int


def parse_field_path(text: str) -> tuple[str, ...]:
    """``/credits/character`` (JSON pointer) or ``credits.character`` (dotted) as parts."""
    if text.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]
    else:
        parts = text.split(".")
    if not parts or any(p == "" for p in parts):
        raise ValueError(f"{text!r} is not a field path (use /a/b or a.b)")
    return tuple(parts)


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


@dataclass(frozen=True)
class Account:
    """One account of the accounts file: keys, rights and limits."""

    name: str
    password_hash: str
    primary_key: str
    secondary_key: str
    operations: frozenset[str] | None = None  # None: every operation
    fields: Trie | None = None  # None: every field
    withheld: Trie = field(default_factory=dict)
    rate_limit: Limit | None = None
    quota: Limit | None = None
    field_specs: tuple[str, ...] = ("*",)
    withheld_specs: tuple[str, ...] = ()

    def may_call(self, operation_id: str) -> bool:
        """Whether the account's rights include this operation."""
        return self.operations is None or operation_id in self.operations

    @property
    def restricted(self) -> bool:
        """Whether responses are filtered for this account."""
        return self.fields is not None or bool(self.withheld)

    def filter_body(self, body: Any) -> Any:
        """The body with the fields outside the account's rights removed from ``data``."""
        if not self.restricted or not isinstance(body, dict) or "data" not in body:
            return body
        data = body["data"]
        if self.fields is not None:
            data = select_fields(data, self.fields)
        if self.withheld:
            data = remove_fields(data, self.withheld)
        return {**body, "data": data}

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary without secrets (no keys, no hash)."""
        return {
            "name": self.name,
            "operations": sorted(self.operations) if self.operations is not None else ["*"],
            "fields": list(self.field_specs),
            "withheld": list(self.withheld_specs),
            "rateLimit": None if self.rate_limit is None else vars(self.rate_limit),
            "quota": None if self.quota is None else vars(self.quota),
        }


@dataclass(frozen=True)
class AccountsFile:
    """The parsed accounts file."""

    path: Path
    accounts: tuple[Account, ...]
    demo_keys: bool


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


def _account(raw: Any, i: int, known_operations: Iterable[str] | None) -> Account:
    if not isinstance(raw, Mapping):
        raise ValueError(f"accounts[{i}]: must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise ValueError(f"accounts[{i}].name: must be 1-64 characters of [A-Za-z0-9_.-]")
    where = f"accounts[{i}] ({name})"
    allowed = {
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
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ValueError(
            f"{where}: unknown setting(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}"
        )
    keys = []
    for slot in SLOTS:
        key = raw.get(f"{slot}_key")
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"{where}.{slot}_key: must be 32 lowercase hexadecimal characters")
        keys.append(key)
    password_hash = raw.get("password_hash", "")
    if not isinstance(password_hash, str):
        raise ValueError(f"{where}.password_hash: must be a werkzeug password hash string")
    ops = _str_list(raw.get("operations"), f"{where}.operations", ["*"])
    if "*" not in ops and known_operations is not None:
        known = set(known_operations)
        unknown = [o for o in ops if o not in known]
        if unknown:
            raise ValueError(
                f"{where}.operations: unknown {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
    field_specs = _str_list(raw.get("fields"), f"{where}.fields", ["*"])
    withheld_specs = _str_list(raw.get("withheld"), f"{where}.withheld", [])
    try:
        fields = (
            None if "*" in field_specs else build_trie(parse_field_path(f) for f in field_specs)
        )
        withheld = build_trie(parse_field_path(f) for f in withheld_specs if f != "*")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return Account(
        name=name,
        password_hash=password_hash,
        primary_key=keys[0],
        secondary_key=keys[1],
        operations=None if "*" in ops else frozenset(ops),
        fields=fields,
        withheld=withheld,
        rate_limit=_limit(raw.get("rate_limit"), f"{where}.rate_limit"),
        quota=_limit(raw.get("quota"), f"{where}.quota"),
        field_specs=tuple(field_specs),
        withheld_specs=tuple(withheld_specs),
    )


def load_accounts(path: Path | str, known_operations: Iterable[str] | None = None) -> AccountsFile:
    """Read and validate an accounts file (TOML); ConfigError names the file and the setting."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the accounts file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "the accounts file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"invalid TOML: {exc}") from None
    raw_accounts = data.get("accounts")
    if not isinstance(raw_accounts, list) or not raw_accounts:
        raise ConfigError(str(path), "no [[accounts]] table; see fixtures/accounts.toml")
    demo = data.get("demo_keys", False)
    if not isinstance(demo, bool):
        raise ConfigError(str(path), "demo_keys must be true or false")
    ops = list(known_operations) if known_operations is not None else None
    accounts: list[Account] = []
    try:
        for i, raw in enumerate(raw_accounts):
            accounts.append(_account(raw, i, ops))
    except ValueError as exc:
        raise ConfigError(str(path), str(exc)) from None
    names = [a.name for a in accounts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(str(path), f"duplicate account name(s): {', '.join(dupes)}")
    all_keys = [k for a in accounts for k in (a.primary_key, a.secondary_key)]
    if len(set(all_keys)) != len(all_keys):
        raise ConfigError(str(path), "two keys are equal; every key must be unique")
    return AccountsFile(path, tuple(accounts), demo)


class Gateway:
    """Keys, rights and limits of every account, over the shared :class:`State`.

    ``identify`` compares the presented key with every current key in constant time
    (``hmac.compare_digest`` over all candidates) and re-reads the regenerated keys whenever
    the shared generation counter moved, so a regenerated key stops working at once in every
    worker.
    """

    def __init__(
        self, accounts: AccountsFile, state: State, clock: Callable[[], float] = time.time
    ) -> None:
        self.file = accounts
        self.state = state
        self.clock = clock
        self._by_name = {a.name: a for a in accounts.accounts}
        self._generation = -1
        self._candidates: list[tuple[bytes, Account, str]] = []
        self._overrides: dict[tuple[str, str], str] = {}
        self.sync(state.generations().keys)

    # -- the portal's API ----------------------------------------------------------------

    @property
    def accounts(self) -> tuple[Account, ...]:
        """Every account, in file order."""
        return self.file.accounts

    def account(self, name: str) -> Account:
        """The account of that name (UnknownAccount lists the known ones)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownAccount(name, self._by_name) from None

    def verify_password(self, name: str, password: str) -> bool:
        """Whether ``password`` is the account's portal password (False for unknown names)."""
        account = self._by_name.get(name)
        if account is None or not account.password_hash:
            return False
        try:
            return check_password_hash(account.password_hash, password)
        except ValueError:
            return False

    def current_keys(self, name: str) -> tuple[str, str]:
        """The account's (primary, secondary) keys as they are now, regenerations included."""
        account = self.account(name)
        self.sync(self.state.generations().keys)
        return (
            self._overrides.get((name, "primary"), account.primary_key),
            self._overrides.get((name, "secondary"), account.secondary_key),
        )

    def regenerate_key(self, name: str, slot: str) -> str:
        """Replace one key by a fresh one (32 lowercase hex); the old one stops working."""
        self.account(name)
        if slot not in SLOTS:
            raise ValueError(f"slot must be one of {', '.join(SLOTS)}, not {slot!r}")
        key = secrets.token_hex(16)
        self.state.set_key(name, slot, key)
        self.sync(self.state.generations().keys)
        return key

    def usage(self, name: str) -> list[UsageRow]:
        """Calls per UTC day, operation and key slot, newest day first."""
        self.account(name)
        return self.state.usage(name)

    # -- the hot path ----------------------------------------------------------------------

    def sync(self, generation: int) -> None:
        """Re-read the regenerated keys if another worker (or this one) changed them."""
        if generation == self._generation:
            return
        self._overrides = self.state.key_overrides()
        candidates = []
        for account in self.accounts:
            for slot, key in zip(SLOTS, (account.primary_key, account.secondary_key), strict=True):
                current = self._overrides.get((account.name, slot), key)
                candidates.append((current.encode("ascii"), account, slot))
        self._candidates = candidates
        self._generation = generation

    def identify(self, key: str) -> tuple[Account, str] | None:
        """The account and slot of a presented key, or None; constant time over all keys."""
        presented = key.encode("utf-8", "replace")
        found: tuple[Account, str] | None = None
        for candidate, account, slot in self._candidates:
            if hmac.compare_digest(candidate, presented) and found is None:
                found = (account, slot)
        return found

    def check_limits(self, account: Account) -> GatewayError | None:
        """Count the call against the account's rate limit and quota; the error if over."""
        if account.rate_limit is None and account.quota is None:
            return None
        now = self.clock()
        for kind, limit in (("rate", account.rate_limit), ("quota", account.quota)):
            if limit is None:
                continue
            window = int(now // limit.period)
            count = self.state.hit(account.name, kind, window)
            if count > limit.calls:
                wait = max(1, math.ceil((window + 1) * limit.period - now))
                if kind == "rate":
                    return GatewayError(429, rate_limited_message(wait), wait)
                return GatewayError(403, quota_message(wait), wait)
        return None

    def record_call(self, account: Account, operation_id: str, slot: str) -> None:
        """Count a call that passed the gateway in the usage statistics."""
        self.state.record_call(account.name, operation_id, slot)


__all__ = [
    "INVALID",
    "INVALID_KEY",
    "KEY_HEADER",
    "KEY_QUERY",
    "MISSING",
    "MISSING_KEY",
    "NOT_FOUND",
    "UNROUTED",
    "Account",
    "AccountsFile",
    "Gateway",
    "GatewayError",
    "Limit",
    "UnknownAccount",
    "build_trie",
    "load_accounts",
    "parse_field_path",
    "quota_message",
    "rate_limited_message",
    "remove_fields",
    "select_fields",
    "timespan",
]
