"""The web page in a real browser: Playwright driving Debian's Chromium against a live errgate.

One browser and one errgate serve the whole module; the data (users, projects, an error sent
by the real sentry-sdk with context lines, breadcrumbs and tags) is made once. The browser is
``/usr/bin/chromium`` (Debian's package, installed by .ci/run): never ``playwright install``.
Without it the module skips, naming the missing browser, except under ``CI=true``, where it fails.

With ``ERRGATE_SCREENSHOTS=docs/`` the run saves the error list and the error page as
``docs/error-list.png`` and ``docs/error-page.png`` (the README shows them).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
import orjson
import pytest
import sentry_sdk

from app.identity import GUEST, MAINTAINER
from tests.conftest import CLEANUP, Server, World
from tests.ingest_http.helpers import exception_event, live_dsn, new_event_id
from tests.ingest_http.test_sentry_sdk import RELEASE, sdk
from tests.web.helpers import send_events, tracked_project

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '<script>alert("xss")</script><img src=x onerror="alert(2)">'


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        message = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(reason=message)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium_path))
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(autouse=True)
async def clean_tables() -> None:
    """The module's data is made once (``journey``), not emptied before each test."""


# --- the data: made once -----------------------------------------------------------------------


def empty_basket(number: int) -> None:
    basket_total = 0  # a context line the error page shows
    raise ValueError(f"basket {number} is empty (total {basket_total})")


def send_from_sdk() -> str | None:
    """What an application does: breadcrumbs, tags, user, then an exception caught and reported."""
    sentry_sdk.add_breadcrumb(category="http", message="GET /basket/42", level="info")
    sentry_sdk.add_breadcrumb(category="db", message="select * from baskets where id = 42", level="info")
    sentry_sdk.set_tag("customer_tier", "gold")
    sentry_sdk.set_user({"id": "42", "username": "shopper"})
    try:
        empty_basket(42)
    except ValueError:
        return sentry_sdk.capture_exception()
    return None


@dataclass
class Journey:
    server: Server
    project: Any
    hostile_error_url: str
    owner_token: str
    guest_token: str
    error_id: int

    @property
    def list_url(self) -> str:
        return f"{self.server.url}/shop/web/-/error_tracking"

    @property
    def error_url(self) -> str:
        return f"{self.list_url}/{self.error_id}/details"


@pytest.fixture(scope="module")
async def journey(web_server: Server, pool: asyncpg.Pool) -> Journey:
    await pool.execute(CLEANUP)
    world = World(pool)
    owner = await world.user("maria")
    guest = await world.user("gus")
    project, key = await tracked_project(pool, world, "shop/web", owner)
    await world.member(project, guest, GUEST)
    dsn = live_dsn(f"http://{key}@errgate.test:8080/api/v4/error_tracking/collector/{project['id']}", web_server.url)
    event_id, _, _ = await sdk(dsn, send_from_sdk)  # environment "staging", release RELEASE
    assert event_id
    # Earlier copies of the same event (the same error), so that its charts have a history.
    sent = orjson.loads(await pool.fetchval("select payload_text from error_tracking_error_events"))
    now = time.time()
    await send_events(web_server.url, project["id"], key, *(
        {**sent, "event_id": new_event_id(), "timestamp": now - hours * 3600} for hours in (2, 5, 5, 9, 30, 50, 50, 75, 200, 400)
    ))
    # A few other errors, so that the list looks like a real one, their events spread over the
    # last day and month so that the charts have something to draw.
    await send_events(
        web_server.url, project["id"], key,
        *(exception_event("KeyError", "'price'", function="total", module="shop.cart",
                          environment=("staging", "production")[hour % 2], timestamp=now - hour * 3600 - hour % 3 * 600)
          for hour in (0, 1, 1, 2, 3, 3, 3, 5, 8, 9, 13, 17, 20, 22)),
        *(exception_event("TimeoutError", "payment gateway did not answer in 30 s", function="charge",
                          module="shop.payments", timestamp=now - day * 86400)
          for day in (1, 2, 2, 4, 7, 11, 12, 20)),
        exception_event("TimeoutError", "payment gateway did not answer in 30 s", function="charge", module="shop.payments"),
        exception_event("JsOffError", "resolved with JavaScript off", function="nojs", module="shop.static"),
    )
    hostile_project, hostile_key = await tracked_project(pool, world, "shop/hostile", owner)
    await send_events(web_server.url, hostile_project["id"], hostile_key, exception_event(
        HOSTILE, HOSTILE, function=HOSTILE, module="evil", environment=HOSTILE, tags={"html": HOSTILE},
        breadcrumbs={"values": [{"message": HOSTILE, "category": HOSTILE}]},
    ))
    hostile_id = await pool.fetchval("select id from error_tracking_errors where project_id = $1", hostile_project["id"])
    error_id = await pool.fetchval(
        "select id from error_tracking_errors where project_id = $1 and name = 'ValueError'", project["id"]
    )
    return Journey(
        web_server, project, f"{web_server.url}/shop/hostile/-/error_tracking/{hostile_id}/details",
        await world.token(owner), await world.token(guest), error_id,
    )


# --- helpers -------------------------------------------------------------------------------------


class Watched:
    """A page whose dialogs and console errors are recorded: none may appear."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()


@pytest.fixture
async def new_page(browser: Any) -> AsyncIterator[Any]:
    """``await new_page(javascript=True)`` → a Watched page in a fresh browser context (its own cookies)."""
    contexts = []

    async def make(javascript: bool = True) -> Watched:
        context = await browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 860})
        contexts.append(context)
        return Watched(await context.new_page())

    yield make
    for context in contexts:
        await context.close()


async def sign_in(page: Any, base_url: str, token: str) -> None:
    await page.goto(base_url + "/")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]:has-text('Sign in')")
    await page.wait_for_load_state()


def screenshot_path(name: str) -> Path | None:
    directory = os.environ.get("ERRGATE_SCREENSHOTS")
    if not directory:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    return Path(directory) / name


# --- the journeys --------------------------------------------------------------------------------


async def test_sign_in_find_the_error_read_it_and_resolve_it(journey: Journey, new_page: Any) -> None:
    watched = await new_page()
    page = watched.page
    await sign_in(page, journey.server.url, journey.owner_token)
    assert "maria" in await page.inner_text("header")

    # The projects page, then the project's errors.
    await page.click("a:has-text('shop/web')")
    assert page.url == journey.list_url
    assert await page.locator("tr.error").count() == 4

    # Search with the API's syntax.
    await page.fill("input[name=search]", "basket environment:staging")
    await page.click("button:has-text('Search')")
    rows = page.locator("tr.error")
    assert await rows.count() == 1
    assert "basket 42 is empty" in await rows.first.inner_text()
    assert "empty_basket" in await rows.first.locator(".culprit").inner_text()
    exact = await rows.first.locator("time").first.get_attribute("title")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", exact or "")
    await page.fill("input[name=search]", "")
    await page.click("button:has-text('Search')")
    if path := screenshot_path("error-list.png"):
        await page.screenshot(path=str(path), full_page=True)

    # The error page: frames with their context lines, tags, breadcrumbs, the event's JSON.
    await page.click("a:has-text('ValueError') >> nth=0")
    assert page.url == journey.error_url
    text = await page.inner_text("main")
    assert "basket 42 is empty" in text
    assert "empty_basket" in text and "test_browser.py" in text
    assert "basket_total = 0  # a context line the error page shows" in text
    assert "customer_tier" in text and "gold" in text
    assert "GET /basket/42" in text
    assert "staging" in text and RELEASE in text
    assert await page.locator("svg.chart.big rect").count() == 30 + 24
    if path := screenshot_path("error-page.png"):
        await page.screenshot(path=str(path), full_page=True)
    raw = await page.request.get(journey.server.url + await page.locator("a:has-text('Raw JSON')").get_attribute("href"))
    assert raw.status == 200 and (await raw.json())["tags"]["customer_tier"] == "gold"

    # Older events, and back to the newest.
    newest_id = await page.locator(".event-nav code").inner_text()
    await page.click("a[rel=older]")
    assert "?event=" in page.url and await page.locator(".event-nav code").inner_text() != newest_id
    await page.click("a[rel=oldest]")
    assert await page.locator("a[rel=older]").count() == 0
    await page.click("a[rel=newest]")
    assert await page.locator(".event-nav code").inner_text() == newest_id
    assert await page.locator("a[rel=newer]").count() == 0

    # Resolve it: it leaves the Unresolved tab.
    await page.click("button:has-text('Resolve')")
    assert page.url == journey.error_url  # the status form goes back to the error's page
    assert await page.locator("h1 .badge").inner_text() == "resolved"
    await page.goto(journey.list_url)
    assert "basket 42 is empty" not in await page.inner_text("main")
    await page.click(".tabs a[href*='status=resolved']")
    assert "basket 42 is empty" in await page.inner_text("main")

    assert watched.dialogs == [] and watched.console_errors == []


async def test_a_hostile_event_renders_as_text_and_runs_nothing(journey: Journey, new_page: Any) -> None:
    watched = await new_page()
    page = watched.page
    await sign_in(page, journey.server.url, journey.owner_token)
    for url in (journey.hostile_error_url.rsplit("/", 2)[0], journey.hostile_error_url):
        await page.goto(url)
        await page.wait_for_load_state("load")
        assert HOSTILE in await page.inner_text("main")
        assert await page.locator("main img").count() == 0
        assert await page.locator("main script").count() == 0
    assert watched.dialogs == []
    assert watched.console_errors == []  # not even a script the CSP had to block


async def test_a_form_posted_without_its_csrf_token_is_refused(journey: Journey, new_page: Any, pool: asyncpg.Pool) -> None:
    watched = await new_page()
    page = watched.page
    await sign_in(page, journey.server.url, journey.owner_token)
    timeout_id = await pool.fetchval("select id from error_tracking_errors where name = 'TimeoutError'")
    await page.goto(f"{journey.list_url}/{timeout_id}/details")
    await page.evaluate("document.querySelectorAll('input[name=_csrf]').forEach(field => field.remove())")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.click("button:has-text('Ignore')")
    assert (await answer.value).status == 403
    assert "CSRF" in await page.inner_text("main")
    assert await pool.fetchval("select status from error_tracking_errors where id = $1", timeout_id) == "unresolved"


async def test_a_signed_out_visitor_gets_the_sign_in_page_and_no_data(journey: Journey, new_page: Any) -> None:
    page = (await new_page()).page
    answer = await page.goto(journey.error_url)
    assert answer.status == 401
    assert await page.locator("input[name=token][type=password]").count() == 1
    content = await page.content()
    assert "basket" not in content and "ValueError" not in content
    # Signing in lands on the page asked for.
    await page.fill("input[name=token]", journey.owner_token)
    await page.click("button:has-text('Sign in')")
    assert page.url == journey.error_url


async def test_a_guest_sees_no_errors(journey: Journey, new_page: Any) -> None:
    page = (await new_page()).page
    await sign_in(page, journey.server.url, journey.guest_token)
    assert "shop/web" not in await page.inner_text("main")
    for url in (journey.list_url, journey.error_url):
        answer = await page.goto(url)
        assert answer.status == 404
        assert "basket" not in await page.content()


async def test_with_javascript_off_sign_in_list_and_resolve_still_work(journey: Journey, new_page: Any) -> None:
    page = (await new_page(javascript=False)).page
    await sign_in(page, journey.server.url, journey.owner_token)
    await page.goto(journey.list_url)
    row = page.locator("tr.error", has_text="JsOffError")
    assert await row.count() == 1
    assert await page.locator("input.select-all").is_hidden()  # the script's extra stays hidden
    await row.locator("input[name=ids]").check()
    await page.click(".bulk button:has-text('Resolve')")
    assert page.url == journey.list_url
    assert await page.locator("tr.error", has_text="JsOffError").count() == 0
    await page.goto(journey.list_url + "?status=resolved")
    assert await page.locator("tr.error", has_text="JsOffError").count() == 1


async def test_settings_copy_buttons_appear_with_javascript(journey: Journey, new_page: Any) -> None:
    settings_url = journey.list_url + "/settings"
    with_js = (await new_page()).page
    await sign_in(with_js, journey.server.url, journey.owner_token)
    await with_js.goto(settings_url)
    assert await with_js.locator("code.dsn").count() == 1
    assert "sentry_sdk.init(dsn=" in await with_js.inner_text("#snippet")
    await with_js.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=journey.server.url)
    copy = with_js.locator("button.copy").first
    assert await copy.is_visible()
    await copy.click()
    assert await with_js.evaluate("navigator.clipboard.readText()") == await with_js.inner_text("code.dsn")
    without_js = (await new_page(javascript=False)).page
    await sign_in(without_js, journey.server.url, journey.owner_token)
    await without_js.goto(settings_url)
    assert await without_js.locator("button.copy").first.is_hidden()
    assert MAINTAINER  # the owner is above Maintainer: the page is theirs
