"""Drift: replay requests against a target, compare answers with the contract, report findings.

The package's rooms: ``findings`` (kinds, severities, lifecycle), ``classifier`` (what a
difference means, by direction: the one table, also used by ``pivotkit diff``), ``baseline``
(what earlier answers to a request lead to expect), ``analysis`` (answers in, findings out),
``replay`` (the plan sent through the one client), ``history`` (earlier runs, in SQLite),
``deviations`` (accepted findings), ``report`` (JSON, Markdown, JUnit, webhook), ``page``
(the HTML page), ``updates`` (drifted answers as fixtures for review), ``changelog`` (two
contracts compared), ``job`` (one run).
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
