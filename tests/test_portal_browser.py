"""The developer portal end to end: headless Chromium (Playwright) against the mock on a socket."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from mockserver import create_app
from tests.helpers import CONVENTIONS, key_headers, path_of, thread_server

INVALID_KEY = CONVENTIONS.messages.invalid_key

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("PIVOT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_PATH = path_of("getContent", id=7488)


def _unavailable(reason: str) -> None:
    """Skip, or fail when the run requires the browser (CI sets PIVOT_REQUIRE_BROWSER=1)."""
    if os.environ.get("PIVOT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PIVOT_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install playwright)")
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The mock served on a free port of 127.0.0.1 by werkzeug in a thread; its base URL."""
    app = create_app({"PIVOT_STATE": str(tmp_path / "state.sqlite")})
    with thread_server(app) as url:
        yield url


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page, English UI; the test fails on any
    console error or uncaught script error (a CSP violation shows up as one)."""
    context = browser.new_context(
        base_url=server, locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        tab = context.new_page()
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab
    finally:
        context.close()
    assert errors == [], f"browser errors: {errors}"


@pytest.fixture(scope="module")
def shots() -> Path:
    """Where screenshots go: $PIVOT_ARTIFACTS, else reports/screenshots/."""
    folder = Path(os.environ.get("PIVOT_ARTIFACTS") or ROOT / "reports" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _login(page: Page, name: str = "full", password: str = "full-demo") -> None:
    page.goto("/portal/")
    page.get_by_label("Account").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/profile")


def _reveal(page: Page, slot: str) -> str:
    """Press Show for a key and read it from the now plain-text input."""
    field = page.locator(f"#key-value-{slot}")
    if field.get_attribute("type") == "password":
        page.locator(f"#key-{slot} .js-reveal").click()
    assert field.get_attribute("type") == "text"
    return field.input_value()


def _api(server: str, key: str) -> httpx.Response:
    return httpx.get(server + API_PATH, headers=key_headers(key))


def _total(page: Page) -> int:
    page.goto("/portal/reports")
    return int(page.locator("#total-calls").inner_text())


def test_login_regenerate_primary_rejects_old_key(page: Page, server: str, shots: Path) -> None:
    """Log in, reveal and regenerate the primary key: the API refuses the old key with the
    invalid-key 401 and accepts the new one."""
    page.goto("/portal/")
    assert page.locator("html").get_attribute("lang") == "en"
    page.screenshot(path=shots / "portal-login.png", full_page=True)
    _login(page)
    assert page.locator("#key-value-primary").get_attribute("type") == "password"
    page.screenshot(path=shots / "portal-profile.png", full_page=True)
    old = _reveal(page, "primary")
    assert re.fullmatch(r"[0-9a-f]{32}", old)
    assert page.locator("#key-primary .js-reveal").get_attribute("aria-pressed") == "true"
    assert _api(server, old).status_code == 200

    page.get_by_role("button", name="Regenerate primary key").click()
    page.wait_for_url("**/portal/profile#key-primary")
    assert "was regenerated" in page.get_by_role("status").first.inner_text()
    new = _reveal(page, "primary")
    assert new != old
    rejected = _api(server, old)
    assert rejected.status_code == 401
    assert rejected.json() == {"statusCode": 401, "message": INVALID_KEY}
    assert _api(server, new).status_code == 200
    page.locator("#key-primary .js-reveal").click()  # mask again before the screenshot
    page.screenshot(path=shots / "portal-profile-regenerated.png", full_page=True)


def test_try_it_get_content_and_reports_count(page: Page, server: str, shots: Path) -> None:
    """Try it on getContent 7488 shows "Blade Runner"; Reports count the call."""
    _login(page)
    before = _total(page)
    page.goto("/portal/apis")
    page.wait_for_url("**/portal/apis/v1")
    assert page.locator(".operations > li").count() >= 13
    page.screenshot(path=shots / "portal-apis.png", full_page=True)

    page.get_by_role("link", name="Try it: getContent").click()
    page.wait_for_url("**/portal/apis/v1/getContent#try-it")
    id_field = page.get_by_label("id (path, required)")
    assert id_field.input_value() == "7488"
    assert id_field.get_attribute("required") is not None
    page.get_by_role("button", name="Remove lang").click()
    assert page.locator("#row-lang").is_hidden()
    assert page.get_by_role("button", name="Add lang").is_visible()
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/portal/apis/v1/getContent#result")
    assert page.locator("#response-status").inner_text() == "200 OK"
    assert '"title": "Blade Runner"' in page.locator("#response-body").inner_text()
    assert page.locator("#request-line").inner_text() == f"GET {API_PATH}"
    curl = page.locator("#sample-curl").inner_text()
    assert "$PIVOT_API_KEY" in curl and f"127.0.0.1:{server.rsplit(':', 1)[1]}{API_PATH}" in curl
    assert 'os.environ["PIVOT_API_KEY"]' in page.locator("#sample-python").inner_text()
    assert page.locator("#row-lang").is_hidden()  # still left out after the round trip
    page.screenshot(path=shots / "portal-try-it.png", full_page=True)

    assert _total(page) == before + 1
    row = page.locator("#usage-getContent")
    assert row.locator('[data-slot="primary"]').inner_text() == str(before + 1)

    page.goto("/portal/apis/v1/listCategories")
    page.get_by_label("Subscription key").select_option("secondary")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/portal/apis/v1/listCategories#result")
    assert page.locator("#response-status").inner_text() == "200 OK"
    assert _total(page) == before + 2
    secondary = page.locator("#usage-listCategories [data-slot='secondary']")
    assert secondary.inner_text() == "1"
    assert page.locator("#chart-days rect[data-slot='secondary']").count() == 1
    assert page.locator("#chart-operations rect[data-count]").count() == 2
    page.screenshot(path=shots / "portal-reports.png", full_page=True)


def test_copy_puts_the_key_on_the_clipboard(page: Page, server: str) -> None:
    """Copy writes the key to the clipboard and says so in a live region."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    _login(page)
    page.locator("#key-secondary .js-copy").click()
    status = page.locator("#copy-status-secondary")
    status.filter(has_text="Copied").wait_for()
    copied: Any = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#key-value-secondary").input_value()


def test_keyboard_only_sign_in_with_visible_focus(page: Page) -> None:
    """The skip link comes first and is visibly focused; it leads to the form, which works
    by keyboard alone."""
    page.goto("/portal/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "account"
    page.keyboard.type("full")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type("full-demo")
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/profile")
    assert page.locator("#account-name").inner_text() == "full"


def test_french_interface(page: Page, shots: Path) -> None:
    """The Français button switches the portal to French, with lang="fr"."""
    _login(page)
    page.get_by_role("button", name="Français").click()
    page.wait_for_url("**/portal/profile")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_role("heading", level=1).inner_text() == "Profil"
    page.screenshot(path=shots / "portal-profile-fr.png", full_page=True)


def test_sign_out_ends_a_copied_session(page: Page, browser: Browser, server: str) -> None:
    """Sign in, copy the session cookie into a second browser, sign out in the first: the
    second is sent to the login page and never sees a key; the first can sign in again."""
    _login(page)
    key = _reveal(page, "primary")
    cookies = page.context.cookies()
    thief = browser.new_context(base_url=server, locale="en-GB")
    try:
        thief.add_cookies(cookies)  # type: ignore[arg-type]
        stolen = thief.new_page()
        stolen.goto("/portal/profile")
        assert stolen.url.endswith("/portal/profile")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/portal/login")
        stolen.goto("/portal/profile")
        assert "/portal/login" in stolen.url
        assert key not in stolen.content()
    finally:
        thief.close()
    _login(page)
    assert _reveal(page, "primary") == key
