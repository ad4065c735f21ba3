"""Errors raised by pivotkit: one base, each subclass named for what happened."""

from __future__ import annotations

from pathlib import Path


class PivotError(Exception):
    """Base of every error pivotkit raises on purpose."""


class ContractFileError(PivotError, ValueError):
    """A schema or contract file could not be read or parsed.

    Carries the file, the line and column (1-based, when the parser knows them) and the
    parser's own message.
    """

    def __init__(
        self, path: Path | str, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        if line is not None and column is not None:
            where += f":{column}"
        super().__init__(f"{where}: {message}")


class UnresolvableRef(PivotError, LookupError):
    """A ``$ref`` in a schema points at nothing the registry holds."""

    def __init__(self, ref: str, path: Path | str, pointer: str) -> None:
        self.ref = ref
        self.path = Path(path)
        self.pointer = pointer
        super().__init__(
            f"{self.path}: $ref {ref!r} at {pointer or '/'} resolves to no schema; "
            "check the file name and the $id of the schema it should point to"
        )


class UnknownOperation(PivotError, LookupError):
    """An operationId (or status) that the contract does not define."""

    def __init__(self, operation_id: str, known: list[str], status: int | None = None) -> None:
        self.operation_id = operation_id
        self.status = status
        self.known = known
        if status is None:
            msg = f"unknown operation {operation_id!r}; known: {', '.join(known)}"
        else:
            msg = (
                f"operation {operation_id!r} declares no response {status}; "
                f"declared: {', '.join(known)}"
            )
        super().__init__(msg)


class FixtureError(PivotError, ValueError):
    """A fixture file is not a valid exchange."""

    def __init__(
        self, path: Path | str, message: str, pointer: str = "", line: int | None = None
    ) -> None:
        self.path = Path(path)
        self.pointer = pointer
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        at = f" at {pointer}" if pointer else ""
        super().__init__(f"{where}{at}: {message}")


class FixtureNotFound(PivotError, LookupError):
    """No fixture matches a request; lists the closest candidates."""

    def __init__(self, method: str, path: str, candidates: list[str]) -> None:
        self.method = method
        self.path = path
        self.candidates = candidates
        hint = f"; closest: {', '.join(candidates)}" if candidates else ""
        super().__init__(f"no fixture for {method} {path}{hint}")


class FixtureExists(PivotError, FileExistsError):
    """Writing a fixture would overwrite a different one."""

    def __init__(self, path: Path | str, summary: str) -> None:
        self.path = Path(path)
        self.summary = summary
        super().__init__(
            f"{self.path} exists and differs ({summary}); pass overwrite=True "
            "(--overwrite) or choose another name"
        )


class ConfigError(PivotError, ValueError):
    """A configuration value (file, environment or flag) is invalid."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.reason = message
        super().__init__(f"{source}: {message}")


class BudgetExhausted(PivotError, RuntimeError):
    """The run's call budget (``--pivot-budget``) is spent: no more requests to this target."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the call budget of {limit} requests is spent; raise it with --pivot-budget=N "
            "(each live request counts against the account's quota)"
        )


class QuotaExhausted(PivotError, RuntimeError):
    """The target answered 403 "Out of call volume quota": every further call would fail too."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        self.message = message
        self.retry_after = retry_after
        wait = f" (Retry-After: {retry_after} s)" if retry_after else ""
        super().__init__(
            f"the account's call quota is exhausted: {message!r}{wait}; wait until it is "
            "replenished, or run against the mock"
        )


__all__ = [
    "BudgetExhausted",
    "ConfigError",
    "ContractFileError",
    "FixtureError",
    "FixtureExists",
    "FixtureNotFound",
    "PivotError",
    "QuotaExhausted",
    "UnknownOperation",
    "UnresolvableRef",
]
