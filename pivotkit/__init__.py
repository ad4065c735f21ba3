"""pivotkit: contract tests, mock server and drift alerts for the Plurimedia Pivot API."""

from __future__ import annotations

from pivotkit.contract import Contract, Violation, load_contract, validate
from pivotkit.errors import (
    BudgetExhausted,
    ConfigError,
    ContractFileError,
    FixtureError,
    FixtureExists,
    FixtureNotFound,
    PivotError,
    QuotaExhausted,
    UnknownOperation,
    UnresolvableRef,
)
from pivotkit.fixtures import Exchange, FixtureSet, Request, Response, write_exchange
from pivotkit.operations import Operation, Parameter

__version__ = "0.1.0"

__all__ = [
    "BudgetExhausted",
    "ConfigError",
    "Contract",
    "ContractFileError",
    "Exchange",
    "FixtureError",
    "FixtureExists",
    "FixtureNotFound",
    "FixtureSet",
    "Operation",
    "Parameter",
    "PivotError",
    "QuotaExhausted",
    "Request",
    "Response",
    "UnknownOperation",
    "UnresolvableRef",
    "Violation",
    "__version__",
    "load_contract",
    "validate",
    "write_exchange",
]
