"""The menu of pivotkit's development tasks: `nox -l` lists them, `nox -s NAME` runs one."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = None  # the interpreter nox runs under (pivotkit needs 3.11+)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run every test of the toolkit, the contract suite against the mock, and the examples.

    Extra arguments go to pytest, e.g. `nox -s tests -- -k contract -x`.
    """
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff (rules in pyproject.toml) and check the formatting (`ruff format`)."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the library with mypy in strict mode."""
    session.install("-e", ".[test]", "mypy", "types-PyYAML", "types-jsonschema", "types-requests")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHON)
def check(session: nox.Session) -> None:
    """Validate every fixture against its file format and the contract (`pivotkit check`)."""
    session.install("-e", ".")
    session.run("pivotkit", "check", *session.posargs)


PEERS = {"wiremock": "3.13.2", "@stoplight/prism-cli": "5.14.2"}


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmark validation and the mock side by side with their peers (bench/README.md).

    Installs what is missing: jsonschema-rs and granian into the session, WireMock and Prism
    into .peers/ (npm), wrk with apt-get when run as root. Results go to bench/results/.
    `nox -s bench -- --quick` is a smoke run; other arguments go to bench/bench_mock.py.
    """
    import json
    import shutil
    from pathlib import Path

    session.install("-e", ".[server]", "jsonschema-rs")
    peers = Path(".peers")
    installed = {}
    for name in PEERS:
        package = peers / "node_modules" / name / "package.json"
        if package.exists():
            installed[name] = json.loads(package.read_text())["version"]
    if installed != PEERS:
        peers.mkdir(exist_ok=True)
        if not (peers / "package.json").exists():
            (peers / "package.json").write_text('{"name": "pivotkit-peers", "private": true}\n')
        session.run(
            "npm",
            "install",
            "--prefix",
            str(peers),
            "--no-audit",
            "--no-fund",
            *(f"{name}@{version}" for name, version in PEERS.items()),
            external=True,
        )
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            session.error("wrk is missing: install it (`sudo apt-get install -y wrk`) and rerun")
        session.run(
            "sh",
            "-c",
            "apt-get install -y wrk || (apt-get update && apt-get install -y wrk)",
            external=True,
        )
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "bench/bench_validate.py", *quick)
    session.run("python", "bench/bench_drift.py", *(["--answers", "1000"] if quick else []))
    session.run("python", "bench/bench_mock.py", *session.posargs)


@nox.session(python=PYTHON)
def contract(session: nox.Session) -> None:
    """Run the contract suite against a target; write reports/pivot-contract.{xml,md}.

    Default target: the mock in-process. `nox -s contract -- --pivot-target=URL` (key in
    $PIVOT_API_KEY), `-- --pivot-target=live --pivot-budget=50`, `-- --hypothesis-profile=ci`.
    """
    session.install("-e", ".")
    session.run(
        "pytest",
        "contract_tests",
        "--pivot-junit=reports/pivot-contract.xml",
        "--pivot-markdown=reports/pivot-contract.md",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def drift(session: nox.Session) -> None:
    """Replay the fixtures' requests against the live API (key in $PIVOT_API_KEY) and report
    drift from the contract to drift.md, drift.json and drift.xml.

    Arguments go to `pivotkit drift`, e.g. `nox -s drift -- --sample 20 --seed 1` or
    `nox -s drift -- --target http://127.0.0.1:8080`.
    """
    session.install("-e", ".")
    session.run(
        "pivotkit",
        "drift",
        "--markdown",
        "drift.md",
        "--json",
        "drift.json",
        "--junit",
        "drift.xml",
        *session.posargs,
    )
