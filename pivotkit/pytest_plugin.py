"""pytest plugin of pivotkit: --pivot-target, --pivot-budget and the pivot_* fixtures."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import flask
    import respx

    from pivotkit.client import ApiKey, CallBudget, PivotClient, Target
    from pivotkit.conformance import Conformance
    from pivotkit.fixtures import FixtureSet
    from pivotkit.harness import MockServer

PROFILES = ("dev", "ci")
_STASH_TARGET = pytest.StashKey["Target"]()
_STASH_BUDGET = pytest.StashKey["CallBudget"]()
_STASH_SECRETS = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the contract suite, usable by any test suite."""
    group = parser.getgroup("pivotkit", "Pivot API contract (pivotkit)")
    group.addoption(
        "--pivot-target",
        default=None,
        metavar="TARGET",
        help="mock (default: the mock in-process), mock-server (the mock on a free loopback "
        "port), live (the contract's live URL) or a base URL; a URL or live takes its "
        "key from $PIVOT_API_KEY. Default: $PIVOT_TARGET, else mock.",
    )
    group.addoption(
        "--pivot-budget",
        type=int,
        default=None,
        metavar="N",
        help="most requests the whole run may send to the target (default: 50 for live, "
        "unlimited for the mock and URL targets)",
    )
    group.addoption(
        "--pivot-account",
        default="full",
        metavar="NAME",
        help="demo account whose key the mock target uses (full, basic, limited)",
    )
    group.addoption(
        "--pivot-junit",
        default=None,
        metavar="PATH",
        help="write a JUnit XML report with one test case per operation and check",
    )
    group.addoption(
        "--pivot-markdown",
        default=None,
        metavar="PATH",
        help="write a Markdown summary table (e.g. $GITHUB_STEP_SUMMARY)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, read the target and budget, register hypothesis profiles."""
    from pivotkit.client import (
        DEFAULT_LIVE_BUDGET,
        KEY_ENV,
        ApiKey,
        CallBudget,
        parse_target,
    )
    from pivotkit.errors import ConfigError

    config.addinivalue_line(
        "markers",
        "pivot_check(operation, check): a contract check of one operation "
        "(the unit of pivotkit's JUnit and Markdown reports)",
    )
    spec = config.getoption("pivot_target") or os.environ.get("PIVOT_TARGET") or "mock"
    try:
        target = parse_target(spec)
        budget = config.getoption("pivot_budget")
        if budget is None and target.kind == "live":
            budget = DEFAULT_LIVE_BUDGET
        config.stash[_STASH_BUDGET] = CallBudget(budget, option="--pivot-budget")
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_STASH_TARGET] = target
    env_key = ApiKey.from_env(name=KEY_ENV)
    config.stash[_STASH_SECRETS] = [env_key.reveal()] if env_key is not None else []
    if config.getoption("hypothesis_profile", None) in PROFILES:
        register_profiles()
    junit, markdown = config.getoption("pivot_junit"), config.getoption("pivot_markdown")
    if (junit or markdown) and not hasattr(config, "workerinput"):  # xdist: the controller writes
        from pivotkit.report import SuiteReport

        report = SuiteReport(
            target.label,
            junit=Path(junit) if junit else None,
            markdown=Path(markdown) if markdown else None,
            secrets=[*config.stash[_STASH_SECRETS]],
        )
        config.pluginmanager.register(report, "pivotkit-report")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Carry each contract check's (operation, check, case) in its reports, where the
    process that writes pivotkit's reports finds it even when another ran the test
    (pytest-xdist)."""
    from pivotkit.report import LABEL_PROPERTY, check_label

    for item in items:
        label = check_label(item)
        if label is not None:
            item.user_properties.append((LABEL_PROPERTY, label))


def register_profiles() -> None:
    """Register the hypothesis profiles ``dev`` and ``ci`` unless the user already has them.

    Both drop the deadline and the too_slow health check: every example is an HTTP call,
    whose time says nothing about the property; and the explain phase, which re-sends
    requests only to annotate the report. ``ci`` is derandomized and keeps no database, so
    two CI runs send the same requests.
    """
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.errors import InvalidArgument

    wanted: dict[str, dict[str, Any]] = {
        "dev": {"max_examples": 25},
        "ci": {"max_examples": 100, "derandomize": True, "database": None, "print_blob": True},
    }
    for name, options in wanted.items():
        try:
            settings.get_profile(name)
        except InvalidArgument:
            settings.register_profile(
                name,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                phases=[p for p in Phase if p is not Phase.explain],
                **options,
            )


def pytest_report_header(config: pytest.Config) -> str:
    """Say which target the run talks to (never the key)."""
    target = config.stash[_STASH_TARGET]
    budget = config.stash[_STASH_BUDGET].limit
    limit = "unlimited" if budget is None else str(budget)
    return f"pivotkit: target {target.label} ({target.base_url}), call budget {limit}"


# -- secrets, budget and quota ------------------------------------------------------------


def _scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every fragment of a secret scrubbed (Redactor.log_text): strings,
    containers, and pytest's failure representations (their fields, in place), so a failure
    keeps its structure and its message."""
    if isinstance(value, str):
        from pivotkit.redact import log_redactor

        return log_redactor(tuple(secrets)).log_text(value)
    if type(value) in (list, tuple):
        return type(value)(_scrub(v, secrets) for v in value)
    if type(value) is dict:
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if hasattr(value, "toterminal") and hasattr(value, "__dict__"):
        for name, inner in list(vars(value).items()):
            object.__setattr__(value, name, _scrub(inner, secrets))
    return value


def _scrub_report(report: pytest.TestReport | pytest.CollectReport, secrets: list[str]) -> None:
    if not secrets:
        return
    for name in ("longrepr", "sections", "wasxfail", "user_properties"):
        if hasattr(report, name):
            setattr(report, name, _scrub(getattr(report, name), secrets))


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """A parameter holding the key gets an id without it (ids reach the terminal and JUnit)."""
    secrets = config.stash.get(_STASH_SECRETS, [])
    if not secrets or not isinstance(val, str | bytes):
        return None
    text = val if isinstance(val, str) else val.decode("ascii", "backslashreplace")
    scrubbed: str = _scrub(text, secrets)
    return scrubbed if scrubbed != text else None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> Iterator[None]:
    """Warnings whose text holds the key are scrubbed before the summary shows them."""
    secrets = config.stash.get(_STASH_SECRETS, [])
    for warning in terminalreporter.stats.get("warnings", []) if secrets else []:
        warning.message = _scrub(warning.message, secrets)
    return (yield)


def _flatten(exc: BaseException) -> Iterator[BaseException]:
    yield exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _flatten(inner)


def _outcome_of(exc: BaseException) -> None:
    """Turn a spent budget into a skip and a quota answer into the end of the run."""
    from pivotkit.errors import BudgetExhausted, QuotaExhausted

    for inner in _flatten(exc):
        if isinstance(inner, QuotaExhausted):
            pytest.exit(f"pivotkit: stopping the run: {inner}", returncode=3)
    for inner in _flatten(exc):
        if isinstance(inner, BudgetExhausted):
            pytest.skip(f"pivotkit: {inner}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Fixtures that call the target obey the budget and the quota too."""
    try:
        return (yield)
    except Exception as exc:
        _outcome_of(exc)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A spent budget skips the test; a quota answer stops the whole run."""
    try:
        return (yield)
    except Exception as exc:
        _outcome_of(exc)
        raise


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item,
    call: pytest.CallInfo[None],
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Scrub the key out of failure reports before anything prints or stores them."""
    report: pytest.TestReport = yield
    _scrub_report(report, item.config.stash.get(_STASH_SECRETS, []))
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Scrub the key out of collection errors too."""
    report: pytest.CollectReport = yield
    _scrub_report(report, collector.config.stash.get(_STASH_SECRETS, []))
    return report


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pivot_target(pytestconfig: pytest.Config) -> Target:
    """Where the run's requests go (``--pivot-target``): mock, a base URL, or live."""
    return pytestconfig.stash[_STASH_TARGET]


@pytest.fixture(scope="session")
def pivot_budget(pytestconfig: pytest.Config) -> CallBudget:
    """The run's call budget, shared by every client of the session."""
    return pytestconfig.stash[_STASH_BUDGET]


@pytest.fixture(scope="session")
def pivot_key(pytestconfig: pytest.Config, pivot_target: Target) -> ApiKey:
    """The key for the target: the mock's demo key, else ``$PIVOT_API_KEY`` (skips without)."""
    from pivotkit.client import KEY_ENV, ApiKey, demo_key

    if pivot_target.kind == "mock":
        return demo_key(pytestconfig.getoption("pivot_account"))
    key = ApiKey.from_env(name=KEY_ENV)
    if key is None:
        pytest.skip(
            f"{KEY_ENV} is not set: tests against {pivot_target.label} need the "
            f"account's key (export {KEY_ENV}=<primary key from the portal's Profile>)"
        )
    return key


@pytest.fixture(scope="session")
def pivot_contract() -> Conformance:
    """The contract's validator: ``pivot_contract.check(response)`` raises an AssertionError
    naming operation, JSON pointer and value of each problem."""
    from pivotkit.conformance import Conformance

    return Conformance()


@pytest.fixture(scope="session")
def pivot_fixtures() -> FixtureSet:
    """Every recorded exchange (``$PIVOT_FIXTURES`` or the bundled fixtures)."""
    from pivotkit.fixtures import FixtureSet

    return FixtureSet.load()


@pytest.fixture(scope="session")
def pivot_mock_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Configuration of the mock app (``create_app(config)``); override this fixture to change
    fixtures, accounts, faults... The state lives in a private temporary SQLite file."""
    return {"PIVOT_STATE": str(tmp_path_factory.mktemp("pivot-mock") / "state.sqlite3")}


@pytest.fixture(scope="session")
def pivot_app(pivot_mock_config: dict[str, Any]) -> flask.Flask:
    """The mock as an in-process Flask app (no socket)."""
    from pivotkit.harness import make_app

    return make_app(pivot_mock_config)


@pytest.fixture(scope="session")
def pivot_mock_server(pivot_app: flask.Flask) -> Iterator[MockServer]:
    """The mock running on a free loopback port for the whole session."""
    from pivotkit.harness import MockServer

    server = MockServer(pivot_app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pivot_mock(pivot_mock_server: MockServer) -> Iterator[MockServer]:
    """The session's running mock (``.url``, ``.key(account)``; ``.requests``,
    ``.assert_called``, ``.sequence``, ``.timeline``), reset after each test; an error
    inside the server is re-raised in the test that caused it."""
    pivot_mock_server.clear_errors()
    _clear_journal(pivot_mock_server.app)
    yield pivot_mock_server
    try:
        pivot_mock_server.check_errors()
    finally:
        pivot_mock_server.reset()


@pytest.fixture(scope="session")
def pivot_client(
    request: pytest.FixtureRequest,
    pivot_target: Target,
    pivot_key: ApiKey,
    pivot_budget: CallBudget,
) -> Iterator[PivotClient]:
    """An ``httpx.Client`` bound to the target and its key (the in-process app for ``mock``,
    the session's loopback server for ``mock-server``)."""
    from pivotkit.client import PivotClient

    transport = None
    base_url = pivot_target.base_url
    if pivot_target.kind == "mock" and pivot_target.socket:
        base_url = request.getfixturevalue("pivot_mock_server").url
    elif pivot_target.kind == "mock":
        import httpx

        app = request.getfixturevalue("pivot_app")
        transport = httpx.WSGITransport(app=app)
    with PivotClient(base_url, pivot_key, budget=pivot_budget, transport=transport) as client:
        yield client


def _clear_journal(app: flask.Flask) -> None:
    """Forget what other fixtures' calls (pivot_client...) left in the journal."""
    journal = app.extensions["pivot"].journal
    if journal is not None:
        journal.clear()


@contextmanager
def _routed(
    app: flask.Flask, router: AbstractContextManager[Any], guard: AbstractContextManager[None]
) -> Iterator[Any]:
    """A router into the app for one test: an empty journal first, the app reset after."""
    from pivotkit.harness import reset_app

    _clear_journal(app)
    try:
        with router as routed, guard:
            yield routed
    finally:
        reset_app(app)


@pytest.fixture
def pivot_respx(pivot_app: flask.Flask) -> Iterator[respx.MockRouter]:
    """A respx router answering the contract's live URL from every fixture, through the
    mock app itself (key check, exact 401s, empty-200, 404, lang fallback, gzip), with the
    mock's ``.requests``, ``.assert_called``, ``.sequence``, ``.timeline``. Any other host is
    refused, and so is a ``requests`` call (use pivot_responses); reset after each test."""
    from pivotkit.harness import respx_router
    from pivotkit.intercept import refuse_requests_library

    guard = refuse_requests_library("pivot_respx", "pivot_responses")
    with _routed(pivot_app, respx_router(pivot_app), guard) as router:
        yield router


@pytest.fixture
def pivot_responses(pivot_app: flask.Flask) -> Iterator[Any]:
    """pivot_respx for the ``requests`` library (``responses``, routed into the same mock
    app): the contract's live URL answered by the mock, your ``pivot_responses.add(...)``
    routes first, any other host refused, and an httpx call too (use pivot_respx)."""
    import importlib.util

    try:
        missing = importlib.util.find_spec("responses") is None
    except ValueError:  # in sys.modules as None: blocked
        missing = True
    if missing:
        pytest.fail(
            "pivot_responses needs the responses library: pip install 'pivotkit[requests]'",
            pytrace=False,
        )
    from pivotkit.harness import responses_router
    from pivotkit.intercept import refuse_httpx_library

    guard = refuse_httpx_library("pivot_responses", "pivot_respx")
    with _routed(pivot_app, responses_router(pivot_app), guard) as mock:
        yield mock
