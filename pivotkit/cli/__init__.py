"""The ``pivotkit`` command: a click group over the library's functions.

The commands live by what they work on: ``contract`` (check, docs), ``recording`` (record,
infer), ``drift`` (drift), ``mock`` (serve), ``suite`` (test) and ``accounts`` (the accounts
file); ``options`` holds the group, its one error-to-exit-code mapping and the shared options.
"""

from __future__ import annotations

from pivotkit.cli import (  # noqa: F401 (registers commands)
    accounts,
    calibration,
    contract,
    drift,
    mock,
    recording,
    suite,
)
from pivotkit.cli.options import main

__all__ = [
    "main",
]
