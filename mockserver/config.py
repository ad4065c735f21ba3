"""The mock's settings: defaults < file (TOML) < environment (PIVOT_) < flags, validated once."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Config

from mockserver.faults import NO_FAULT, Fault, parse_fault
from pivotkit.errors import ConfigError

PREFIX = "PIVOT"
# Settings of another part, passed through to app.config unchecked: PIVOT_PORTAL_* besides
# the prefix (the developer portal reads them).
FOREIGN = ("PIVOT_PORTAL_",)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (
        "true",
        "false",
        "1",
        "0",
        "yes",
        "no",
        "on",
        "off",
    ):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def _opt_path(value: Any) -> Path | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | os.PathLike):
        return Path(value).expanduser()
    raise ValueError(f"{value!r} is not a path")


def _state(value: Any) -> Path | str | None:
    """A SQLite file (a path) or a Redis server (``redis://``, ``rediss://``, ``unix://``)."""
    from mockserver.state import REDIS_SCHEMES

    if isinstance(value, str) and value.strip().lower().startswith(REDIS_SCHEMES):
        return value.strip()
    if isinstance(value, str) and "://" in value:
        raise ValueError(
            "not a state: a SQLite file path, or redis://[:password@]host:port/db "
            "(rediss:// with TLS, unix:///path.sock)"
        )
    return _opt_path(value)


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a string")


def _url(value: Any) -> str | None:
    text = _opt_str(value)
    if text is not None and not text.startswith(("http://", "https://")):
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text.rstrip("/") if text else None


def _token(value: Any) -> str | None:
    text = _opt_str(value)
    if text is not None and (len(text) < 8 or any(c.isspace() for c in text)):
        raise ValueError("the admin token needs 8+ characters and no spaces")
    return text


def _faults(value: Any) -> Fault:
    if isinstance(value, Fault):
        return value
    if value is None or value == "":
        return NO_FAULT
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a fault spec string")
    return parse_fault(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{value!r} is not JSON") from None
    if isinstance(value, dict | list) or value is None:
        return value
    raise ValueError(f"{value!r} is not a JSON body")


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not 0 <= number <= 3600:
        raise ValueError("must be 0 to 3600 seconds")
    return number


def _prefix(value: Any) -> str:
    text = _opt_str(value) or ""
    if (
        not text.startswith("/")
        or text.endswith("/")
        or len(text) < 2
        or text.startswith("/__pivot")
    ):
        raise ValueError(
            f"{value!r} must look like /portal (leading slash, no trailing slash, "
            "not under /__pivot)"
        )
    return text


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if (
        isinstance(value, bool)
        or not str(value).strip().isascii()
        or not str(value).strip().isdigit()
        or len(str(value).strip()) > 12
    ):
        raise ValueError(f"{value!r} is not a whole number of 0 or more")
    return int(str(value).strip())


def _opt_rate(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not 0 < number <= 10_000:
        raise ValueError("must be more than 0 calls per second (at most 10000)")
    return number


def _hops(value: Any) -> int:
    number = _opt_int(value)
    if number is None or number > 5:
        raise ValueError(f"{value!r} is not a number of proxies from 0 to 5")
    return number


def _timeout(value: Any) -> float:
    number = _seconds(value)
    if number <= 0:
        raise ValueError("must be more than 0 seconds")
    return number


def _name(value: Any) -> str:
    text = _opt_str(value) or ""
    if not text or len(text) > 64 or any(c.isspace() for c in text):
        raise ValueError(f"{value!r} must be 1 to 64 characters without spaces")
    return text


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


def _size(value: Any) -> int:
    """A size in bytes: a number, or a number and a unit (64KiB, 4MiB, 4MB)."""
    text = str(value).strip().lower().replace(" ", "")
    digits = text.rstrip("abgikm")
    unit = text[len(digits) :]
    if isinstance(value, bool) or not digits.isdigit() or unit not in _UNITS or len(digits) > 12:
        raise ValueError(f"{value!r} is not a size (a number of bytes, or 512KiB, 4MiB, 1GiB)")
    return int(digits) * _UNITS[unit]


def _record_size(value: Any) -> int:
    """A size from 1 KiB to 4 GiB (a number of bytes, or with a unit)."""
    number = _size(value)
    if not 1024 <= number <= 4 * 1024**3:
        raise ValueError(f"{value!r} is not a size in bytes from 1024 to 4 GiB")
    return number


def _journal_bytes(value: Any) -> int:
    from mockserver.journal import MAX_BYTES, MIN_BYTES

    size = _size(value)
    if not MIN_BYTES <= size <= MAX_BYTES:
        raise ValueError(f"the journal holds 64KiB to 1GiB, not {value!r}")
    return size


def _cache_bytes(value: Any) -> int:
    size = _size(value)
    if not 1024**2 <= size <= 64 * 1024**3:
        raise ValueError(f"the fixture cache holds 1MiB to 64GiB, not {value!r}")
    return size


def _str_list(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{value!r} is not a comma-separated list")


# name -> (default, converter, help)
FIELDS: dict[str, tuple[Any, Callable[[Any], Any], str]] = {
    "SCHEMAS": (None, _opt_path, "contract directory (default: the bundled schemas/)"),
    "FIXTURES": (None, _opt_path, "fixtures directory (default: the bundled fixtures/)"),
    "ACCOUNTS": (None, _opt_path, "accounts file (default: <fixtures>/accounts.toml)"),
    "STATE": (
        None,
        _state,
        "state shared by workers: a SQLite file (default: a fresh temp file), or "
        "redis://host:port/db shared by several instances",
    ),
    "DYNAMIC": (False, _bool, "answer unrecorded ids with a body generated from the schema"),
    "RECORD_FROM": (None, _url, "upstream base URL: unrecorded requests are recorded through"),
    "RECORD_KEY_ENV": ("PIVOT_API_KEY", _name, "variable holding the upstream's key"),
    "RECORD_OUT": (None, _opt_path, "where recorded fixtures go (default: the fixtures)"),
    "RECORD_ACCOUNT": ("default", _name, "the account profile written in meta.account"),
    "RECORD_OVERWRITE": (False, _bool, "replace a recorded fixture that differs"),
    "RECORD_BUDGET": (None, _opt_int, "most upstream calls record-through may make"),
    "RECORD_RATE": (None, _opt_rate, "most upstream calls per second"),
    "RECORD_TIMEOUT": (30.0, _timeout, "seconds an upstream answer may take"),
    "RECORD_REDACT_HEADERS": ((), _str_list, "other headers to mask (comma-separated)"),
    "RECORD_REDACT_FIELDS": ((), _str_list, "body fields to mask: /data/token, **.token"),
    "ADMIN_TOKEN": (None, _token, "bearer token of /__pivot/ (default: generated)"),
    "FAULTS": (NO_FAULT, _faults, "fault spec applied to every API call"),
    "FAULT_HEADER": (True, _bool, "honour the x-pivot-fault request header"),
    "EMPTY_BODY": ({}, _json_value, "the body of the empty-200"),
    "STRICT_FIXTURES": (False, _bool, "refuse to start when a fixture file is invalid"),
    "USAGE_FLUSH": (1.0, _seconds, "seconds usage counts stay buffered per worker (0: none)"),
    "CLIENT_TIMEOUT": (
        10.0,
        _timeout,
        "seconds a client may take to send a request head, and its body (idle keep-alive too)",
    ),
    "TRUST_PROXY": (
        0,
        _hops,
        "reverse proxies in front whose X-Forwarded-For/-Proto/-Host are believed (0: none)",
    ),
    "RECORD_MAX_WAIT": (5.0, _seconds, "longest wait record-through makes on an upstream 429"),
    "RECORD_MAX_SIZE": (
        16 * 1024 * 1024,
        _record_size,
        "largest decoded upstream body record-through keeps (bytes)",
    ),
    "PORTAL_PREFIX": ("/portal", _prefix, "where the developer portal is mounted"),
    "JOURNAL": (True, _bool, "write every API request in the journal (/__pivot/requests)"),
    "JOURNAL_BYTES": (4 * 1024**2, _journal_bytes, "bytes the journal keeps (oldest forgotten)"),
    "SCENARIOS": (None, _opt_path, "scenarios file (default: <fixtures>/scenarios.json if any)"),
    "DRAIN_DELAY": (
        0.0,
        _seconds,
        "seconds /__pivot/ready answers 503 after SIGTERM before the server stops accepting",
    ),
    "FIXTURE_CACHE": (
        64 * 1024**2,
        _cache_bytes,
        "bytes of prepared fixture answers each worker keeps (least recently used dropped)",
    ),
    "INDEX_DIR": (
        None,
        _opt_path,
        "where the fixture index is kept, reused by the next start (default: beside a SQLite "
        "--state, else a temporary folder)",
    ),
}


@dataclass(frozen=True)
class Settings:
    """The validated settings of one mock app."""

    schemas: Path | None
    fixtures: Path | None
    accounts: Path | None
    state: Path | str | None
    dynamic: bool
    record_from: str | None
    record_key_env: str
    record_out: Path | None
    record_account: str
    record_overwrite: bool
    record_budget: int | None
    record_rate: float | None
    record_timeout: float
    record_redact_headers: tuple[str, ...]
    record_redact_fields: tuple[str, ...]
    admin_token: str | None
    faults: Fault
    fault_header: bool
    empty_body: Any
    strict_fixtures: bool
    usage_flush: float
    client_timeout: float
    trust_proxy: int
    record_max_wait: float
    record_max_size: int
    portal_prefix: str
    journal: bool
    journal_bytes: int
    scenarios: Path | None
    drain_delay: float
    fixture_cache: int
    index_dir: Path | None
    sources: Mapping[str, str]

    def as_config(self) -> dict[str, Any]:
        """The settings as ``PIVOT_*`` Flask config values."""
        return {f"{PREFIX}_{name}": getattr(self, name.lower()) for name in FIELDS}


def _file_layer(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file ({exc.strerror})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), f"invalid TOML: {exc}") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.upper().replace("-", "_")
        if name.startswith(PREFIX + "_"):
            name = name[len(PREFIX) + 1 :]
        if name not in FIELDS:
            raise ConfigError(
                str(path), f"unknown setting {key!r}; known: {', '.join(n.lower() for n in FIELDS)}"
            )
        if isinstance(value, str) and (
            FIELDS[name][1] is _opt_path or (FIELDS[name][1] is _state and "://" not in value)
        ):
            value = str((path.parent / value).resolve()) if not Path(value).is_absolute() else value
        out[name] = value
    return out


_TEXT = (
    _opt_path,
    _state,
    _opt_str,
    _url,
    _token,
    _faults,
    _prefix,
    _name,
    _str_list,
    _journal_bytes,
    _cache_bytes,
)


def _env_layer() -> dict[str, Any]:
    scratch = Config(".")
    scratch.from_prefixed_env(PREFIX)
    # Only the mock's own settings: other PIVOT_ variables belong to other tools. Text
    # settings keep the variable's text (from_prefixed_env would read "1" as a number).
    out = {k: v for k, v in scratch.items() if k in FIELDS}
    for key in out:
        if FIELDS[key][1] in _TEXT:
            out[key] = os.environ[f"{PREFIX}_{key}"]
    return out


def _flag_layer(flags: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in flags.items():
        if not key.startswith(PREFIX + "_"):
            continue
        name = key[len(PREFIX) + 1 :]
        if name == "CONFIG" or (name not in FIELDS and key.startswith(FOREIGN)):
            continue  # the file layer's name; the portal's own settings, read by it
        if name not in FIELDS:
            raise ConfigError(
                f"setting {key}",
                f"unknown; known: {', '.join(PREFIX + '_' + n for n in FIELDS)} "
                f"(and {', '.join(p + '*' for p in FOREIGN)})",
            )
        values[name] = value
    return values


def _merge(layers: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        for name, raw in layer.items():
            if raw is None and source != "default":
                continue
            where = source if source != "environment" else f"environment {PREFIX}_{name}"
            try:
                values[name] = FIELDS[name][1](raw)
            except ConfigError as exc:
                raise ConfigError(f"{where} ({PREFIX}_{name})", exc.reason) from None
            except ValueError as exc:
                raise ConfigError(f"{where} ({PREFIX}_{name})", str(exc)) from None
            sources[name] = where
    return values, sources


def resolve_settings(flags: Mapping[str, Any] | None = None) -> Settings:
    """Merge defaults < file < environment < flags, validate, and say where each value came from.

    ``flags`` holds ``PIVOT_*`` keys (``create_app(config=...)``); the file is the TOML named by
    ``PIVOT_CONFIG`` (flag or environment). ConfigError names the layer and the setting.
    """
    flags = flags or {}
    config_file = flags.get(f"{PREFIX}_CONFIG") or os.environ.get(f"{PREFIX}_CONFIG")
    layers: list[tuple[str, dict[str, Any]]] = [
        ("default", {name: spec[0] for name, spec in FIELDS.items()})
    ]
    if config_file:
        layers.append((f"config file {config_file}", _file_layer(Path(config_file))))
    layers.append(("environment", _env_layer()))
    layers.append(("flags", _flag_layer(flags)))
    values, sources = _merge(layers)
    return Settings(**{name.lower(): values[name] for name in FIELDS}, sources=sources)
