"""Drift: replay requests against a target, compare answers with the contract, report findings.

The package's rooms: ``findings`` (kinds and severities), ``classifier`` (what a difference
means, by direction), ``analysis`` (answers in, findings out), ``replay`` (the plan sent
through the one client), ``deviations`` (accepted findings), ``report`` (JSON, Markdown,
JUnit, webhook), ``updates`` (drifted answers as fixtures for review), ``job`` (one run).
"""

from __future__ import annotations

from pivotkit.drift.deviations import Deviation, load_deviations
from pivotkit.drift.findings import Finding
from pivotkit.drift.job import DriftOptions, run_drift
from pivotkit.drift.replay import Answer
from pivotkit.drift.report import DriftReport, analyze

__all__ = [
    "Answer",
    "Deviation",
    "DriftOptions",
    "DriftReport",
    "Finding",
    "analyze",
    "load_deviations",
    "run_drift",
]
