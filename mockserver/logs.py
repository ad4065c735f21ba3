"""The mock's log lines: every one goes out with keys masked, on both servers.

:class:`KeyMask` is a logging filter that masks, after percent-decoding, the value of the key
parameter and anything key-shaped (:func:`pivotkit.redact.mask_keys`) in the message and in
any traceback. :func:`config` is the ``logging.config.dictConfig`` both servers use: the
development server applies it itself; granian applies it in its supervisor and in every worker
(its own ``_granian`` and ``granian.access`` loggers included).
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from typing import Any

from pivotkit.redact import mask_keys

# A warning granian prints about a setting chosen on purpose (see mockserver.workers).
_EXPECTED = ("Configuration allows spawning up to",)


@cache
def key_names() -> tuple[str, ...]:
    """The names a key travels under: the contract's key header and key query parameter."""
    from pivotkit.contract import load_contract

    conventions = load_contract().conventions
    return tuple(n for n in (conventions.key_query, conventions.key_header) if n)


class KeyMask(logging.Filter):
    """Masks keys in a record's message and traceback; drops granian's expected warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "_granian" and message.startswith(_EXPECTED):
            return False
        masked = mask_keys(message, key_names())
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_keys(record.exc_text, key_names())
        if record.stack_info:
            record.stack_info = mask_keys(record.stack_info, key_names())
        return True


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when a record comes (click's test runner, a
    redirected stdout), not to the one there was when logging was configured."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def config(level: str = "INFO") -> dict[str, Any]:
    """The logging configuration of ``pivotkit serve`` (a ``dictConfig`` dictionary)."""
    masked = ["mask"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask": {"()": KeyMask}},
        "formatters": {
            "generic": {"format": "[%(levelname)s] %(message)s"},
            "plain": {"format": "%(message)s"},
        },
        "handlers": {
            "console": {"()": StdoutHandler, "formatter": "generic", "filters": masked},
            "access": {"()": StdoutHandler, "formatter": "plain", "filters": masked},
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["access"], "level": level, "propagate": False},
            "werkzeug": {"handlers": ["access"], "level": level, "propagate": False},
            # One line per upstream request of record-through is the recorder's own line.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
        "root": {"handlers": ["console"], "level": level},
    }
