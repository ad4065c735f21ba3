"""The public surface is small and explicit: the package's re-exports, and each public
module's ``__all__``, name exactly what a user imports (ARCHITECTURE.md lists them)."""

from __future__ import annotations

import importlib
import inspect
import types
from pathlib import Path

import pytest

import pivotkit

ROOT = Path(__file__).resolve().parent.parent

#: The public modules and their public names; anything else is internal (no ``__all__``).
PUBLIC = {
    "pivotkit.accounts": {"Account", "AccountsFile", "Rights", "load_accounts", "load_profile"},
    "pivotkit.bundle": {"bundle", "dumps"},
    "pivotkit.calibrate": {"Calibration", "Options", "calibrate"},
    "pivotkit.cli": {"main"},
    "pivotkit.client": {
        "KEY_ENV",
        "ApiKey",
        "CallBudget",
        "PivotClient",
        "Target",
        "demo_key",
        "parse_target",
    },
    "pivotkit.conformance": {"Conformance", "Problem"},
    "pivotkit.contract": {"Contract", "Violation", "load_contract", "validate"},
    "pivotkit.control": {
        "Controls",
        "RemoteMock",
        "RequestRecord",
        "SequenceHandle",
        "TimelineHandle",
        "TimelineState",
    },
    "pivotkit.conventions": {"Conventions"},
    "pivotkit.docs": {"render_reference"},
    "pivotkit.drift": {
        "Answer",
        "Deviation",
        "DriftOptions",
        "DriftReport",
        "Finding",
        "analyze",
        "load_deviations",
        "run_drift",
    },
    "pivotkit.fixtures": {
        "Exchange",
        "FixtureSet",
        "Request",
        "Response",
        "read_exchange",
        "write_exchange",
    },
    "pivotkit.harness": {"MockServer", "make_app", "responses_router", "respx_router"},
    "pivotkit.infer": {"Difference", "Inference", "diff", "infer", "write_proposal"},
    "pivotkit.observer": {"Observer"},
    "pivotkit.operations": {"Operation", "Parameter"},
    "pivotkit.plan": {"PlanItem", "load_plan", "plan_from_fixtures", "plan_from_options"},
    "pivotkit.recorder": {"Outcome", "Recorder", "Report", "make_record_through"},
    "pivotkit.redact": {"Redactor", "scan_secrets"},
    "pivotkit.scenarios": {
        "SCENARIOS_FILE",
        "Match",
        "Scenarios",
        "Sequence",
        "Step",
        "Timeline",
        "TimelineStep",
        "answer_data",
        "load_scenarios",
        "parse_sequence",
    },
    "pivotkit.report": {"run_suite"},
    "pivotkit.strategies": {
        "RequestSpec",
        "invalid_values",
        "operations",
        "parameter_values",
        "path_params",
        "periods",
        "requests",
    },
    "mockserver": {"PivotMock", "create_app"},
}


def test_all_matches_public_names() -> None:
    """__all__ lists exactly the public names the package re-exports."""
    public = {name for name in vars(pivotkit) if not name.startswith("_")} - {"annotations"}
    public = {n for n in public if not isinstance(getattr(pivotkit, n), types.ModuleType)}
    assert set(pivotkit.__all__) - {"__version__"} == public


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_a_public_module_exports_what_it_documents(module: str) -> None:
    """Each public module's __all__ is its documented surface, and each name exists."""
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_every_error_is_in_errors_py() -> None:
    """All exception classes pivotkit raises on purpose live in pivotkit/errors.py."""
    from pivotkit.errors import PivotError

    found = []
    for path in [*(ROOT / "pivotkit").rglob("*.py"), *(ROOT / "mockserver").rglob("*.py")]:
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if name in ("pivotkit.errors", "pivotkit.pytest_plugin"):
            continue
        mod = importlib.import_module(name)
        for obj in vars(mod).values():
            if inspect.isclass(obj) and issubclass(obj, PivotError) and obj.__module__ == name:
                found.append(f"{name}.{obj.__name__}")
    assert found == []


def test_internal_modules_declare_no_surface() -> None:
    """Only public modules have an __all__ (the rest may change without notice)."""
    declared = []
    for path in [*(ROOT / "pivotkit").rglob("*.py"), *(ROOT / "mockserver").rglob("*.py")]:
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if "__all__ =" in path.read_text(encoding="utf-8"):
            declared.append(name)
    assert set(declared) == set(PUBLIC) | {"pivotkit", "pivotkit.errors"}
