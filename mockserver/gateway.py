"""The gateway layer: keys, rights, rate limits, quotas and the gateway's exact errors.

The public surface the developer portal builds on is :class:`Gateway`:

- ``gateway.accounts`` -- the accounts, in file order (:class:`pivotkit.accounts.Account`)
- ``gateway.verify_password(name, password) -> bool``
- ``gateway.current_keys(name) -> (primary, secondary)``
- ``gateway.regenerate_key(name, "primary" | "secondary") -> new key`` (every worker sees it at
  once: the key lives in the shared SQLite state)
- ``gateway.usage(name) -> [UsageRow(day, operation_id, slot, count), ...]``

From a running app: ``app.extensions["pivot"].gateway``. The accounts themselves (parsing,
rights, field withholding) are :mod:`pivotkit.accounts`, shared with drift.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.security import check_password_hash

from mockserver.state import SharedState, UsageRow, Window
from pivotkit.accounts import SLOTS, Account, AccountsFile
from pivotkit.conventions import Conventions
from pivotkit.errors import UnknownAccount


@dataclass(frozen=True)
class GatewayError:
    """An answer written by the gateway itself: status, message, extra headers."""

    status: int
    message: str
    retry_after: int | None = None


@dataclass(frozen=True)
class GatewayErrors:
    """The gateway's fixed answers (missing key, invalid key, no operation) and the
    builders of its rate-limit 429 and quota 403, all from the contract's conventions."""

    conventions: Conventions

    def body(self, error: GatewayError) -> dict[str, Any]:
        """The JSON body: status and message, no envelope."""
        return self.conventions.messages.body(error.status, error.message)

    @property
    def missing_key(self) -> GatewayError:
        return GatewayError(401, self.conventions.messages.missing_key)

    @property
    def invalid_key(self) -> GatewayError:
        return GatewayError(401, self.conventions.messages.invalid_key)

    @property
    def not_found(self) -> GatewayError:
        return GatewayError(404, self.conventions.messages.not_found)

    def rate_limited(self, seconds: int) -> GatewayError:
        return GatewayError(429, self.conventions.messages.rate_limited(seconds), seconds)

    def quota_exhausted(self, seconds: int) -> GatewayError:
        return GatewayError(403, self.conventions.messages.quota_exhausted(seconds), seconds)


def _windows(account: Account) -> tuple[Window, ...]:
    windows = []
    if account.rate_limit is not None:
        windows.append(Window("rate", account.rate_limit.calls, account.rate_limit.period, True))
    if account.quota is not None:
        windows.append(Window("quota", account.quota.calls, account.quota.period, False))
    return tuple(windows)


class Gateway:
    """Keys, rights and limits of every account, over the shared state (:class:`SharedState`).

    ``identify`` compares the presented key with every current key in constant time
    (``hmac.compare_digest`` over all candidates) and re-reads the regenerated keys whenever
    the shared generation counter moved, so a regenerated key stops working at once in every
    worker.
    """

    def __init__(
        self,
        accounts: AccountsFile,
        state: SharedState,
        conventions: Conventions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.file = accounts
        self.errors = GatewayErrors(conventions)
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
        """Replace one key by a fresh one (32 lowercase hex); the old one stops working, and
        every portal session of the account ends (a stolen session must not show the new
        key)."""
        self.account(name)
        if slot not in SLOTS:
            raise ValueError(f"slot must be one of {', '.join(SLOTS)}, not {slot!r}")
        key = secrets.token_hex(16)
        self.state.set_key(name, slot, key)
        self.state.end_sessions(name)
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
        """Count the call against the account's rate limit and quota; the error if over.

        The rate limit is a sliding window (at most ``calls`` in any ``period`` seconds), the
        quota a fixed window renewed every ``period`` seconds; both are checked and counted in
        one step of the shared state (:meth:`SharedState.admit`), so they hold exactly across
        threads, workers and window boundaries, and a refused call is not counted.
        """
        windows = _windows(account)
        if not windows:
            return None
        refused = self.state.admit(account.name, windows, self.clock)
        if refused is None:
            return None
        if refused.kind == "rate":
            return self.errors.rate_limited(refused.wait)
        return self.errors.quota_exhausted(refused.wait)

    def record_call(self, account: Account, operation_id: str, slot: str) -> None:
        """Count a call that passed the gateway in the usage statistics."""
        self.state.record_call(account.name, operation_id, slot)
