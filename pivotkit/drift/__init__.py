"""Drift: replay requests against a target, compare answers with the contract, report findings.

The package's rooms: ``findings`` (kinds and severities), ``classifier`` (what a difference
means, by direction), ``analysis`` (answers in, findings out), ``replay`` (the plan sent
through the one client), ``deviations`` (accepted findings), ``report`` (JSON, Markdown,
JUnit, webhook), ``updates`` (drifted answers as fixtures for review), ``job`` (one run).
"""

from __future__ import annotations

from pivotkit.drift.analysis import DriftAnalysis
from pivotkit.drift.deviations import Deviation, load_deviations
from pivotkit.drift.findings import FORMAT, KINDS, SEVERITIES, Finding
from pivotkit.drift.job import DriftJob, DriftOptions, run_drift
from pivotkit.drift.replay import REPLAYED_STATUSES, Answer, RunResult, replay
from pivotkit.drift.report import DriftReport, analyze

__all__ = [
    "FORMAT",
    "KINDS",
    "REPLAYED_STATUSES",
    "SEVERITIES",
    "Answer",
    "Deviation",
    "DriftAnalysis",
    "DriftJob",
    "DriftOptions",
    "DriftReport",
    "Finding",
    "RunResult",
    "analyze",
    "load_deviations",
    "replay",
    "run_drift",
]
