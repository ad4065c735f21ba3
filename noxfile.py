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


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel into dist/ and check them as a user meets them.

    `python -m build`, `twine check --strict`, every file of schemas/ and fixtures/ in both
    (the wheel's under pivotkit/_bundled/), then the wheel installed in a fresh venv serves the
    public path with its bundled demo key (tools/package.py; `-- --dist DIR` to put them
    elsewhere).
    """
    session.install("build", "twine")
    session.run("python", "tools/package.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmark validation and the mock side by side with their peers (bench/README.md).

    Installs what is missing: jsonschema-rs and granian into the session, WireMock and Prism
    into .peers/ (tools/peers.py, pinned versions), wrk with apt-get when run as root. Results
    go to bench/results/. `nox -s bench -- --quick` is a smoke run; other arguments go to
    bench/bench_mock.py. The fixture store at scale (bench/bench_scale.py: 1,000 to 100,000
    generated fixtures, made once into bench/results/) runs last.
    """
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tools import peers

    session.install("-e", ".[server]", "jsonschema-rs")
    peers.npm_tools("wiremock", "@stoplight/prism-cli")
    _wrk(session)
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "bench/bench_validate.py", *quick)
    session.run("python", "bench/bench_drift.py", *(["--answers", "1000"] if quick else []))
    session.run("python", "bench/bench_mock.py", *session.posargs)
    session.run("python", "bench/bench_scale.py", *quick)


def _wrk(session: nox.Session) -> None:
    """wrk, installed with apt-get when missing and run as root."""
    import shutil

    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            session.error("wrk is missing: install it (`sudo apt-get install -y wrk`) and rerun")
        session.run(
            "sh",
            "-c",
            "apt-get install -y wrk || (apt-get update && apt-get install -y wrk)",
            external=True,
        )


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """Soak and attack `pivotkit serve` and print the figures (never part of the tests).

    Load (wrk -c64, RSS before and after), unauthenticated junk (RSS), slow bodies, unfinished
    heads and silent connections (normal-request latency, fast and dev servers), 200s per
    rate-limit window across two workers, the usage counts a kill -9 loses. About 5 minutes;
    `nox -s soak -- --quick` is a smoke run, `-- --only slow` one phase. Installs wrk with
    apt-get when run as root. Results also go to bench/results/soak-*.json.
    """
    session.install("-e", ".")
    _wrk(session)
    session.run("python", "bench/soak.py", *session.posargs)


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
