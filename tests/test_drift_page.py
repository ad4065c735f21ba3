"""The drift report as an HTML page (``--html``), opened in headless Chromium (Playwright):
self-contained, the summary, the chart of findings per run, findings side by side."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pivotkit.drift import DriftOptions, run_drift

from .conftest import FIXTURES, SCHEMAS
from .drifting import CONTENT, DriftingUpstream, data_of
from .test_portal_browser import browser, shots  # noqa: F401 (the shared fixtures)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """Three runs with a history: clean, then two findings, then three; the last run's
    page and JSON report."""
    folder = tmp_path_factory.mktemp("drift-page")
    server = DriftingUpstream(FIXTURES, key=KEY)
    changes = [
        None,
        data_of(CONTENT, lambda d: [d.pop("title"), d.update(duration=117.0)]),
        data_of(
            CONTENT,
            lambda d: [d.pop("title"), d.update(duration=117.0, ageRating="<b>12</b>")],
        ),
    ]
    try:
        for mutation in changes:
            server.mutate = mutation
            options = DriftOptions(
                target=server.url,
                fixtures_dir=FIXTURES,
                schemas_dir=SCHEMAS,
                rate=1000.0,
                history=folder / "h.sqlite",
                html=folder / "drift.html",
                json_out=folder / "drift.json",
            )
            run_drift(options, environ={"PIVOT_API_KEY": KEY}, echo=lambda _: None)
    finally:
        server.close()
    yield folder / "drift.html", json.loads((folder / "drift.json").read_text("utf-8"))


def test_the_page_is_one_file_that_loads_nothing_else(
    browser: Browser,  # noqa: F811
    page_file: tuple[Path, dict],
    shots: Path,  # noqa: F811
) -> None:
    """Opened from disk with every other request refused: no request but the file itself,
    no console error (its Content-Security-Policy would report a blocked resource)."""
    path, _ = page_file
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    requested: list[str] = []
    errors: list[str] = []
    context.route("**/*", lambda route: (requested.append(route.request.url), route.continue_()))
    try:
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=shots / "drift-report.png", full_page=True)
    finally:
        context.close()
    assert requested == [path.as_uri()]
    assert errors == []
    assert not re.search(r"\b(src|href)=|url\(|@import", path.read_text("utf-8"))


def test_the_page_shows_the_summary_the_chart_and_the_findings_side_by_side(
    browser: Browser,  # noqa: F811
    page_file: tuple[Path, dict],
) -> None:
    """Cards count the severities and the life of findings as the JSON report does; the
    chart has a bar per severity of each run that found something; each finding shows what
    came back beside what the contract says; page text is escaped, never markup."""
    path, report = page_file
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        summary = report["summary"]
        for name in ("breaking", "warning", "info", "new", "ongoing", "answers"):
            card = page.locator(f'[data-count="{name}"] b')
            assert int(card.inner_text()) == summary[name], name
        bars = page.locator("#chart rect.bar")
        assert bars.count() == 2 + 3  # run 2: breaking + warning; run 3: + info
        assert "run 3" in (bars.last.locator("title").text_content() or "")
        operation = page.locator('details[data-operation="getContent"]')
        assert operation.is_visible()
        removed = operation.locator('article[data-kind="required-missing"]')
        assert "ongoing since run 2" in removed.locator("h3").inner_text()
        assert removed.locator(".side.contract").inner_text().count("required") >= 1
        new = operation.locator('article[data-kind="new-field"]')
        assert "<b>12</b>" in new.locator(".side.observed pre").inner_text()
        assert new.locator(".side.observed b").count() == 0
        floats = operation.locator('article[data-kind="integer-as-float"]')
        assert "integer" in floats.locator(".side.contract").inner_text()
        observed_box = removed.locator(".side.observed").bounding_box()
        contract_box = removed.locator(".side.contract").bounding_box()
        assert observed_box is not None and contract_box is not None
        assert observed_box["x"] + observed_box["width"] <= contract_box["x"]
        assert abs(observed_box["y"] - contract_box["y"]) < 2
    finally:
        context.close()
