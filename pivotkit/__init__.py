"""pivotkit: contract tests, mock server and drift alerts for the Plurimedia Pivot API."""

from __future__ import annotations

from pivotkit.contract import Contract, Operation, Parameter, Violation, load_contract, validate
from pivotkit.errors import (
    ConfigError,
    ContractFileError,
    FixtureError,
    FixtureExists,
    FixtureNotFound,
    PivotError,
    UnknownOperation,
    UnresolvableRef,
)
from pivotkit.fixtures import Exchange, FixtureSet, Request, Response, write_exchange

__version__ = "0.1.0"

__all__ = [
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
