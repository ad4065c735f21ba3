"""The menu of pivotkit's development tasks: `nox -l` lists them, `nox -s NAME` runs one."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=False if os.environ.get("PIVOT_NOX_NO_VENV") else PYTHON)
def tests(session: nox.Session) -> None:
    """Run every test of the toolkit, the contract suite against the mock, and the examples.

    Extra arguments go to pytest, e.g. `nox -s tests -- -k contract -x`.
    """
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff (rules in pyproject.toml)."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the library with mypy in strict mode."""
    session.install("-e", ".[test]", "mypy", "types-PyYAML", "types-jsonschema")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHON)
def check(session: nox.Session) -> None:
    """Validate every fixture against its file format and the contract (`pivotkit check`)."""
    session.install("-e", ".")
    session.run("pivotkit", "check", *session.posargs)
