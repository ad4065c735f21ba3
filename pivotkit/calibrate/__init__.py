"""Calibrate: from the guessed contract to the real one in one reviewed step.

:func:`calibrate` crawls an upstream by following its answers (:mod:`.crawl`, :mod:`.links`),
reads the provider's export (:mod:`.definition`) and browser sessions (:mod:`.har`), places
every observed value on the schema that declares it (:mod:`.evidence`), edits a copy of the
contract by that evidence (:mod:`.revision`, :mod:`.wire`, :mod:`.examples`, :mod:`.draft`) and
reports it all (:mod:`.report`). :mod:`.job` runs the whole.
"""

from __future__ import annotations

from pivotkit.calibrate.job import Options, calibrate
from pivotkit.calibrate.report import Calibration

__all__ = [
    "Calibration",
    "Options",
    "calibrate",
]
