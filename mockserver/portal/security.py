"""Portal security: the session secret, CSRF tokens, login throttling and response headers."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable

from flask import Response, request, session

from mockserver.state import SharedState

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
    """Sign-in attempts per (account, client address) over a sliding window.

    :meth:`attempt` reserves a password check before it is made, atomically: at most ``limit``
    checks per ``window`` seconds, however many requests arrive at once, in one worker or
    many. A reservation counts as a failure until :meth:`succeeded` forgets them all. With a
    ``state`` (the mock's shared state) every worker counts together; without one the counts
    live in this process. Only a digest of the account and address is stored.
    """

    def __init__(
        self,
        state: SharedState | None,
        *,
        limit: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.limit = limit
        self.window = window
        self.clock = clock
        self._memory: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _subject(account: str, address: str) -> str:
        return hashlib.sha256(f"{account.strip().lower()}\0{address}".encode()).hexdigest()

    def attempt(self, account: str, address: str) -> int:
        """Reserve one password check: 0 when it may be made now, else the seconds to wait."""
        subject, now = self._subject(account, address), self.clock()
        if self.state is not None:
            return self.state.login_attempt(subject, self.limit, self.window, now)
        with self._lock:
            kept = [t for t in self._memory.get(subject, []) if t > now - self.window]
            if len(kept) >= self.limit:
                self._memory[subject] = kept
                return max(1, math.ceil(kept[-self.limit] + self.window - now))
            kept.append(now)
            self._memory[subject] = kept
        return 0

    def succeeded(self, account: str, address: str) -> None:
        """The password was right: forget this account and address's attempts."""
        subject = self._subject(account, address)
        if self.state is not None:
            self.state.login_succeeded(subject)
            return
        with self._lock:
            self._memory.pop(subject, None)
