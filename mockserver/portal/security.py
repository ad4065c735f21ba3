"""Portal security: the session secret, CSRF tokens, login throttling and response headers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Response, request, session

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SECRET_META_NAME = "portal_secret_key"

# Pages are server-rendered: scripts and styles come from our own static folder only.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def new_secret() -> str:
    """A fresh random session secret (64 hexadecimal characters)."""
    return secrets.token_hex(32)


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_valid() -> bool:
    """Whether the request carries this session's CSRF token and, if sent, our own Origin."""
    expected = session.get("csrf")
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not isinstance(expected, str) or not expected or not sent:
        return False
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")


def secure_headers(response: Response) -> Response:
    """Headers every portal page carries: no caching (keys are on the page), CSP, no framing."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


class LoginThrottle:
    """Failed logins per (account, client address) over a sliding window.

    With a ``path`` the failures live in that SQLite file (the mock's state), so every worker
    counts them together; without one they live in this process's memory. Only a digest of the
    account and address is stored.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        limit: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.limit = limit
        self.window = window
        self.clock = clock
        self._memory: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        if self.path is not None:
            with self._connect() as db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS portal_login_failures "
                    "(subject TEXT NOT NULL, at REAL NOT NULL)"
                )
                db.execute(
                    "CREATE INDEX IF NOT EXISTS portal_login_failures_subject "
                    "ON portal_login_failures (subject, at)"
                )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection: one transaction, committed, then closed."""
        assert self.path is not None
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            with db:
                yield db
        finally:
            db.close()

    @staticmethod
    def _subject(account: str, address: str) -> str:
        return hashlib.sha256(f"{account.strip().lower()}\0{address}".encode()).hexdigest()

    def _recent(self, subject: str, now: float) -> list[float]:
        since = now - self.window
        if self.path is None:
            with self._lock:
                kept = [t for t in self._memory.get(subject, []) if t > since]
                self._memory[subject] = kept
                return list(kept)
        with self._connect() as db:
            db.execute("DELETE FROM portal_login_failures WHERE at <= ?", (since,))
            rows = db.execute(
                "SELECT at FROM portal_login_failures WHERE subject = ? ORDER BY at", (subject,)
            ).fetchall()
        return [float(r[0]) for r in rows]

    def retry_after(self, account: str, address: str) -> int:
        """Seconds before this account may be tried again from this address (0: now)."""
        now = self.clock()
        recent = self._recent(self._subject(account, address), now)
        if len(recent) < self.limit:
            return 0
        oldest_counted = recent[-self.limit]
        return max(1, int(oldest_counted + self.window - now + 0.999))

    def failure(self, account: str, address: str) -> None:
        """Count one failed login."""
        subject, now = self._subject(account, address), self.clock()
        if self.path is None:
            with self._lock:
                self._memory.setdefault(subject, []).append(now)
            return
        with self._connect() as db:
            db.execute(
                "INSERT INTO portal_login_failures (subject, at) VALUES (?, ?)", (subject, now)
            )

    def reset(self, account: str, address: str) -> None:
        """Forget the failures of this account and address (after a successful login)."""
        subject = self._subject(account, address)
        if self.path is None:
            with self._lock:
                self._memory.pop(subject, None)
            return
        with self._connect() as db:
            db.execute("DELETE FROM portal_login_failures WHERE subject = ?", (subject,))
