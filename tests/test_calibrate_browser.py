"""A HAR saved by a real browser (Debian's Chromium through Playwright) becomes evidence and
fixtures: the session calls the API with the key in its request headers, the HAR holds it, and
neither `pivotkit record --from-har` nor `pivotkit calibrate --har` lets it reach a file."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from pivotkit.calibrate.job import find_key
from pivotkit.fixtures import FixtureSet
from tests import test_portal_browser
from tests import truth as T
from tests.helpers import KEY_HEADER, serve_process
from tests.test_calibrate import pivotkit

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser
browser = test_portal_browser.browser  # Debian's Chromium, headless (the portal tests' fixture)


@pytest.fixture(scope="module")
def truth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[T.Truth, str]]:
    root = tmp_path_factory.mktemp("truth-browser")
    truth = T.build(root / "truth", secrets.token_hex(16))
    with serve_process(
        root, "--schemas", str(truth.schemas), "--fixtures", str(truth.fixtures)
    ) as (url, _proc, _log):
        yield truth, url


def _session(browser: Browser, url: str, key: str, har: Path, paths: list[str]) -> list[dict]:
    """Open the portal, call the API from the page with the key, save the session as HAR."""
    context = browser.new_context(
        base_url=url, record_har_path=str(har), record_har_content="embed"
    )
    try:
        page = context.new_page()
        page.goto("/portal/")
        bodies = []
        for path in paths:
            bodies.append(
                page.evaluate(
                    "([path, name, key]) => fetch(path, {headers: {[name]: key}})"
                    ".then(r => r.json())",
                    [path, KEY_HEADER, key],
                )
            )
    finally:
        context.close()  # writes the HAR
    return bodies


def test_a_browser_har_is_imported_redacted(
    browser: Browser,
    truth_server: tuple[T.Truth, str],
    tmp_path: Path,
) -> None:
    truth, url = truth_server
    content = T.shift(7488)
    paths = [f"/v1/api/v1/contents/{content}", f"/v1/api/v1/persons/{T.shift(1001)}/bio"]
    har = tmp_path / "session.har"
    bodies = _session(browser, url, truth.key, har, paths)
    assert bodies[0]["data"]["id"] == content
    assert truth.key in har.read_text("utf-8")  # the browser saved the key: the HAR is a secret

    out = tmp_path / "fixtures"
    done = pivotkit("record", "--from-har", str(har), "--out", str(out))
    assert done.returncode == 0, done.stderr
    recorded = FixtureSet.load(out)
    (exchange,) = [e for e in recorded if e.request.path == paths[0]]
    assert exchange.source == "har" and exchange.response.body == bodies[0]
    assert set(exchange.request.headers[KEY_HEADER]) == {"x"}
    assert find_key(out, truth.key) == []
    assert "not a path of the contract" in done.stdout  # the portal page, the moved bio path

    calibrated = tmp_path / "DIR"
    run = pivotkit(
        "calibrate",
        "--upstream",
        url,
        "--out",
        str(calibrated),
        "-q",
        "--apim-export",
        str(truth.export),
        "--har",
        str(har),
        "--budget",
        "60",
        key=truth.key,
    )
    assert run.returncode in (0, 1), run.stderr
    report = json.loads((calibrated / "calibration.json").read_text("utf-8"))
    assert report["har"][0].startswith("session.har: 2 API exchanges")
    assert find_key(calibrated, truth.key) == []
    assert httpx.get(url + paths[0], headers={KEY_HEADER: truth.key}).json() == bodies[0]
