"""Errors raised by pivotkit: one base, each subclass named for what happened.

Every error carries the exit code a command ends with when it stops on it
(:func:`exit_code`): 1 a check or request failed, 2 usage or configuration, 3 the target is
unreachable or out of quota, 130 interrupted. This is the only place that mapping is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130


class PivotError(Exception):
    """Base of every error pivotkit raises on purpose."""

    exit_code: int = EXIT_FAILED


def exit_code(error: BaseException) -> int:
    """The exit code a command ends with when it stops on ``error``."""
    if isinstance(error, PivotError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


# -- the contract ------------------------------------------------------------------------


class ContractFileError(PivotError, ValueError):
    """A schema or contract file could not be read, parsed, or has the wrong structure.

    Carries the file, the line and column (1-based, when the parser knows them), the JSON
    pointer of the offending node (when the structure is wrong) and the reason.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        path: Path | str,
        message: str,
        line: int | None = None,
        column: int | None = None,
        *,
        pointer: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.pointer = pointer
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        if line is not None and column is not None:
            where += f":{column}"
        if pointer is not None:
            where += f" at {pointer or '/'}"
        super().__init__(f"{where}: {message}")


class UnresolvableRef(PivotError, LookupError):
    """A ``$ref`` in a schema points at nothing the registry holds."""

    exit_code = EXIT_USAGE

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

    exit_code = EXIT_USAGE

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


# -- fixtures ----------------------------------------------------------------------------


class FixtureError(PivotError, ValueError):
    """A fixture file is not a valid exchange."""

    exit_code = EXIT_USAGE

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


class ScenarioError(PivotError, ValueError):
    """A scenarios file, a sequence or a timeline is invalid, or cannot do what was asked.

    ``origin`` names what the user wrote (the file, ``sequence 'flaky'``, ``timeline 'x'``),
    ``pointer`` the JSON pointer inside it (when there is one).
    """

    exit_code = EXIT_USAGE

    def __init__(
        self, origin: Path | str, message: str, pointer: str = "", line: int | None = None
    ) -> None:
        self.origin = str(origin)
        self.pointer = pointer
        self.line = line
        self.reason = message
        where = f"{self.origin}:{line}" if line is not None else self.origin
        at = f" at {pointer}" if pointer else ""
        super().__init__(f"{where}{at}: {message}")


# -- configuration -----------------------------------------------------------------------


class ConfigError(PivotError, ValueError):
    """A configuration value (file, environment or flag) is invalid.

    ``source`` names what the user wrote: the flag (``--budget``), the variable
    (``PIVOT_STATE``) or the file.
    """

    exit_code = EXIT_USAGE

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.reason = message
        super().__init__(f"{source}: {message}")


class KeyNotSet(PivotError, LookupError):
    """A target that needs the subscription key, and the variable that holds it is unset."""

    exit_code = EXIT_USAGE

    def __init__(self, variable: str, target: str, remedy: str = "") -> None:
        self.variable = variable
        self.target = target
        super().__init__(
            f"{variable} is not set: {target} needs your subscription key "
            f"(export {variable}=<primary key from the portal's Profile>){remedy}"
        )


class FaultSpecError(ConfigError):
    """A fault spec (``x-pivot-fault``, ``PIVOT_FAULTS``) that cannot be parsed."""

    def __init__(self, spec: str, message: str) -> None:
        self.spec = spec
        super().__init__(f"fault spec {spec!r}", message)


class ReloadRefused(ConfigError):
    """A reload of the mock's fixtures and accounts that changed nothing, and every reason."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        super().__init__("reload refused", f"nothing changed in any worker: {reasons[0]}{more}")


class PortUnavailable(PivotError, OSError):
    """The port to serve on is taken (or not allowed): nothing was started."""

    exit_code = EXIT_USAGE

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"cannot listen on {host}:{port}: {reason}; choose another --port "
            "(--port 0 picks a free one)"
        )


class UnknownAccount(PivotError, LookupError):
    """No account of that name in the accounts file."""

    exit_code = EXIT_USAGE

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown account {name!r}; known: {', '.join(self.known)}")


class AccountExists(ConfigError):
    """An account of that name is in the accounts file already (``--force`` replaces it)."""

    def __init__(self, path: Path | str, name: str) -> None:
        self.name = name
        super().__init__(
            str(path), f"account {name!r} exists already; --force replaces it (keys included)"
        )


class ProposalInContract(ConfigError):
    """A tool would write into schemas/: the contract changes only by review."""

    def __init__(self, path: Path, schemas_dir: Path, option: str = "--out") -> None:
        self.path = path
        self.schemas_dir = schemas_dir
        super().__init__(
            option,
            f"{path} is inside the contract ({schemas_dir}); write proposals elsewhere "
            "(default proposals/) and copy what you accept by hand",
        )


# -- talking to a target -----------------------------------------------------------------


class BudgetExhausted(PivotError, RuntimeError):
    """The run's call budget is spent: no more requests to this target."""

    def __init__(self, limit: int, option: str = "the budget") -> None:
        self.limit = limit
        self.option = option
        super().__init__(
            f"the call budget of {limit} requests is spent; raise it with {option} "
            "(each live request counts against the account's quota)"
        )


class QuotaExhausted(PivotError, RuntimeError):
    """The target answered its quota 403: every further call would fail too."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        self.message = message
        self.retry_after = retry_after
        wait = f" (Retry-After: {retry_after} s)" if retry_after else ""
        super().__init__(
            f"the account's call quota is exhausted: {message!r}{wait}; wait until it is "
            "replenished, or run against the mock"
        )


class TargetUnreachable(PivotError, ConnectionError):
    """No request reached the target (connection refused, DNS, timeouts)."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target} is unreachable: {reason}")


class ResponseMismatch(PivotError, AssertionError):
    """A response broke the contract; the message lists operation, pointer and value of each
    problem, one per line."""

    def __init__(self, line: str, status: int, problems: list[object]) -> None:
        self.line = line
        self.status = status
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{line} -> {status} breaks the contract:\n{listed}")


class CallMismatch(PivotError, AssertionError):
    """The mock was not called as a test expected; the message lists what was called."""

    def __init__(self, expected: str, listing: str) -> None:
        self.expected = expected
        self.listing = listing
        super().__init__(f"{expected}\n{listing}")


class UnmockedRequest(PivotError, AssertionError):
    """A test sent a request that no mock answers; it was stopped before the network.

    An AssertionError on purpose: a client's ``except httpx.HTTPError`` (or
    ``requests.RequestException``) retry loop does not swallow it.
    """

    def __init__(self, method: str, url: str, how: str) -> None:
        self.method = method
        self.url = url
        super().__init__(f"{method} {url} is not mocked and was not sent: {how}")


class MockAdminError(PivotError, RuntimeError):
    """The mock's admin API (``/__pivot/``) refused a request; says what it answered."""

    def __init__(self, what: str, status: int, message: str) -> None:
        self.what = what
        self.status = status
        self.reason = message
        super().__init__(f"{what}: the mock answered {status}: {message}")


class NoSamples(PivotError, LookupError):
    """No fixture of the operation has a non-empty 200 body to infer from."""

    def __init__(self, operation_id: str, root: Path | None) -> None:
        self.operation_id = operation_id
        where = f" under {root}" if root is not None else ""
        super().__init__(
            f"no fixture of {operation_id}{where} has status 200 and a non-empty "
            "body; record some with `pivotkit record` first"
        )


__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "BudgetExhausted",
    "CallMismatch",
    "ConfigError",
    "ContractFileError",
    "FaultSpecError",
    "FixtureError",
    "FixtureExists",
    "FixtureNotFound",
    "MockAdminError",
    "NoSamples",
    "PivotError",
    "PortUnavailable",
    "ProposalInContract",
    "QuotaExhausted",
    "ReloadRefused",
    "ResponseMismatch",
    "ScenarioError",
    "TargetUnreachable",
    "UnknownAccount",
    "UnknownOperation",
    "UnmockedRequest",
    "UnresolvableRef",
    "exit_code",
]
