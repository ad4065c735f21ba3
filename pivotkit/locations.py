"""Where pivotkit's files live and how they are written: the package's own folder (never
written), the default fixtures folder, and the one atomic write every file goes through."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pivotkit.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent


def outside_package(path: Path, option: str) -> Path:
    """``path``, unless it lies in the pivotkit package itself (its bundled schemas and
    fixtures are read-only data: a write there changes every project using that install and
    is lost on upgrade); ConfigError names ``option``."""
    resolved = path.resolve()
    if resolved == PACKAGE_DIR or PACKAGE_DIR in resolved.parents:
        raise ConfigError(
            option,
            f"{path} is inside the installed pivotkit package ({PACKAGE_DIR}); "
            "write to a directory of your project instead",
        )
    return path


def default_fixtures_dir() -> Path:
    """Where fixtures live: ``$PIVOT_FIXTURES``, the checkout's ``fixtures/``, or the wheel's."""
    env = os.environ.get("PIVOT_FIXTURES")
    if env:
        return Path(env)
    here = PACKAGE_DIR
    # The checkout's fixtures/ only in a checkout (see documents.default_schemas_dir).
    checkout = (here.parent / "pyproject.toml").is_file()
    candidates = ([here.parent / "fixtures"] if checkout else []) + [here / "_bundled" / "fixtures"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write through a temporary file in the same directory, then rename over ``path``.

    The file gets ``mode`` (permission bits) when given, else the temporary file's 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
