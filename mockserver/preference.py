"""The ``Prefer`` request header, as Prism reads it: choose the answer of one request.

``Prefer: code=404`` answers the status the operation declares (the mock's own body for it),
``Prefer: example=7520`` answers the fixture of that name of the operation (whatever the path
asked), ``Prefer: dynamic=true`` a body generated from the schema, ``dynamic=false`` the fixture
or the empty-200, never a generated body. ``code`` combines with ``example`` (whose status must
be that code) and with ``dynamic`` (only 200). Other preferences (``return=minimal``...) are
ignored, as RFC 7240 asks. The gateway's checks (key, rights, limits) come first.
"""

from __future__ import annotations

from pivotkit.errors import ScenarioError
from pivotkit.operations import Operation
from pivotkit.scenarios import Step, status_problem

PREFER_HEADER = "Prefer"
PREFER_ENV = "HTTP_PREFER"
APPLIED_HEADER = "preference-applied"
_MAX = 400  # characters of the header read; a longer one is refused


def _error(message: str) -> ScenarioError:
    return ScenarioError(PREFER_HEADER, message)


def _pairs(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in header.split(","):
        token = item.split(";", 1)[0].strip()
        if not token:
            continue
        name, _, value = token.partition("=")
        out.setdefault(name.strip().lower(), value.strip().strip('"'))
    return out


def _code(code: str | None, operation: Operation) -> int | None:
    if code is None:
        return None
    if not (code.isascii() and code.isdigit() and len(code) == 3):
        raise _error(f"code={code[:20]} is not an HTTP status")
    status = int(code)
    problem = status_problem(operation, status)
    if problem:
        raise _error(f"code={status}: {problem}")
    return status


def _dynamic(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise _error(f"dynamic={value[:20]} is not true or false")
    return value.lower() == "true"


def parse_prefer(header: str, operation: Operation) -> tuple[Step, str] | None:
    """The answer a Prefer header chooses, and the preferences applied (for the
    ``Preference-Applied`` header); None when it names none the mock knows.
    ScenarioError says what is wrong."""
    if len(header) > _MAX:
        raise _error(f"a Prefer header has at most {_MAX} characters")
    pairs = {k: v for k, v in _pairs(header).items() if k in ("code", "example", "dynamic")}
    if not pairs:
        return None
    status, example = _code(pairs.get("code"), operation), pairs.get("example")
    generated = _dynamic(pairs.get("dynamic"))
    if generated and (example is not None or status not in (None, 200)):
        raise _error(
            "dynamic=true generates a 200 body: it goes with neither example= nor another code="
        )
    applied = ", ".join(f"{name}={value}" for name, value in pairs.items())
    if example is not None:
        return Step(status=status, fixture=example), applied
    if status not in (None, 200):
        return Step(status=status), applied
    kind = {True: "dynamic", False: "static", None: None}[generated]
    return Step(answer=kind), applied
