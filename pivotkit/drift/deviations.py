"""Known deviations: accepted findings, with a reason, an owner and an expiry date."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jsonschema import Draft202012Validator

from pivotkit.errors import ConfigError

if TYPE_CHECKING:
    from pivotkit.drift.findings import Finding

DEVIATIONS_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "known-deviations.schema.json"


@dataclass(frozen=True)
class Deviation:
    """One known deviation: a finding pattern, why it is accepted, by whom, until when."""

    operation: str
    pointer: str
    kind: str
    reason: str
    owner: str
    expires: dt.date

    def matches(self, finding: Finding) -> bool:
        """Whether the finding fits the pattern (globs on operation, pointer and kind)."""
        return (
            fnmatch.fnmatchcase(finding.operation, self.operation)
            and fnmatch.fnmatchcase(finding.pointer, self.pointer)
            and fnmatch.fnmatchcase(finding.kind, self.kind)
        )

    def expired(self, today: dt.date) -> bool:
        """An entry holds through its expiry date and lapses the day after."""
        return today > self.expires

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "operation": self.operation,
            "pointer": self.pointer,
            "kind": self.kind,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }


@cache
def _deviations_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(DEVIATIONS_SCHEMA_PATH.read_text(encoding="utf-8")))


def _plain(value: Any) -> Any:
    """YAML and TOML dates as ISO strings, so the file validates against its JSON Schema."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_deviations(path: Path) -> list[Deviation]:
    """Read a known-deviations file (YAML, or TOML when it ends in ``.toml``).

    The format is ``pivotkit/known-deviations.schema.json``; ConfigError names the entry.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, f"cannot read the known deviations: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, ValueError) as exc:
        # YAML builds dates itself: an impossible one (2024-02-30) is a ValueError
        raise ConfigError(source, f"unreadable: {' '.join(str(exc).split())}") from None
    data = _plain(raw if raw is not None else {})
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            f"the file is a {type(data).__name__}, not a mapping: put the entries under a "
            "top-level `deviations:` key (see examples/known-deviations.yaml)",
        )
    errors = sorted(_deviations_validator().iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/" + "/".join(str(p) for p in err.absolute_path)
        raise ConfigError(source, f"at {where}: {err.message}")
    out = []
    for entry in data.get("deviations", []):
        try:
            expires = dt.date.fromisoformat(entry["expires"])
        except ValueError:
            raise ConfigError(
                source, f"expires {entry['expires']!r} is not a date (YYYY-MM-DD)"
            ) from None
        out.append(
            Deviation(
                entry["operation"],
                entry.get("pointer", "*"),
                entry.get("kind", "*"),
                entry["reason"],
                entry["owner"],
                expires,
            )
        )
    return out
