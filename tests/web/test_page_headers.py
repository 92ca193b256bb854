"""What every web answer carries: a strict Content-Security-Policy, no framing, no caching of
pages, long caching of digest-named static files, HTML errors on pages and JSON on the API."""

from __future__ import annotations

import re

import aiohttp

from app import state
from app.web import failures, paths, templating
from tests.ingest_http.helpers import exception_event
from tests.web.helpers import send_events, tracked_project


async def test_pages_carry_a_strict_content_security_policy_and_are_not_cached(client, world):
    for page in (await client.get("/"), await client.get("/no/such/-/error_tracking/settings")):
        csp = page.headers["Content-Security-Policy"]
        assert csp == failures.CONTENT_SECURITY_POLICY
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["X-Content-Type-Options"] == "nosniff"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


async def test_no_page_has_inline_script_or_style(client, world, pool, web_server):
    """What the Content-Security-Policy would block: every page works without it."""
    owner = await world.user()
    project, key = await tracked_project(pool, world, "group/app", owner)
    await send_events(web_server.url, project["id"], key, exception_event(tags={"a": "b"}, breadcrumbs={"values": [
        {"message": "m", "category": "c"}]}, request={"url": "http://x/", "method": "GET", "headers": {"A": "b"}}))
    await client.sign_in(await world.token(owner))
    error_id = await pool.fetchval("select id from error_tracking_errors")
    pages = ["/", "/group/app/-/error_tracking", f"/group/app/-/error_tracking/{error_id}/details",
             "/group/app/-/error_tracking/settings", "/group/app/-/error_tracking/999/details"]
    for path in pages:
        page = await client.get(path)
        assert page.headers["Content-Type"].startswith("text/html"), path
        assert not INLINE_SCRIPT.search(page.text), (path, INLINE_SCRIPT.search(page.text))
    assert INLINE_SCRIPT.search('<p onclick="x">') and INLINE_SCRIPT.search('<b style="">') and INLINE_SCRIPT.search("<script>")
    assert not INLINE_SCRIPT.search('<script src="/x.js" defer></script><p class="one">')


async def test_static_files_are_cached_for_a_year_when_named_by_their_digest(client):
    versions = templating.static_versions()
    assert {"errgate.css", "errgate.js"} <= set(versions)
    page = await client.get(f"/-/static/errgate.css?v={versions['errgate.css']}")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/css")
    assert page.headers["Cache-Control"] == f"public, max-age={failures.STATIC_MAX_AGE}, immutable"
    assert (await client.get("/-/static/errgate.js")).headers["Cache-Control"] == "no-cache"
    home = await client.get("/")
    assert f"/-/static/errgate.css?v={versions['errgate.css']}" in home.text
    assert f"/-/static/errgate.js?v={versions['errgate.js']}" in home.text
    missing = await client.get("/-/static/nothing.css")
    assert missing.status == 404 and missing.headers["Cache-Control"] == "no-cache"
    assert (await client.get("/-/static/../__init__.py")).status in (403, 404)


async def test_a_page_error_is_html_and_an_api_error_stays_json(client, web_server, world):
    token = await world.token(await world.user())
    page = await client.get("/group/app/-/error_tracking/settings")
    assert page.headers["Content-Type"].startswith("text/html")
    async with aiohttp.ClientSession() as http:
        async with http.get(web_server.url + "/api/v4/projects/group%2Fapp", headers={"PRIVATE-TOKEN": token}) as r:
            assert r.status == 404 and r.headers["Content-Type"] == "application/json"
            assert await r.json() == {"message": "404 Project Not Found"}
            assert "Content-Security-Policy" not in r.headers


async def test_the_web_routes_and_the_rest_routes_do_not_shadow_each_other(web_server):
    """Every REST, collector and probe route resolves to itself, and each page to its page."""
    app = web_server.app
    page_routes = set()
    for route in app.router.routes():
        pattern = route.resource.canonical
        if pattern in paths.PAGE_ROUTES:
            page_routes.add(pattern)
            continue
        sample = re.sub(r"\{[^}]+\}", "1", pattern)
        request = aiohttp.test_utils.make_mocked_request(route.method, sample, app=app)
        match = await app.router.resolve(request)
        assert match.route.resource is not None and match.route.resource.canonical == pattern, (pattern, sample)
        assert not pattern.startswith(("/-/static", "/{namespace}"))
    assert page_routes == paths.PAGE_ROUTES
    for method, sample, pattern in [
        ("GET", "/api/v4/-/error_tracking", paths.canonical(paths.ERROR_LIST)),
        ("GET", "/a/b/c/-/error_tracking/7/details", paths.canonical(paths.ERROR_DETAILS)),
        ("POST", "/a/b/-/error_tracking/settings/client_keys", paths.canonical(paths.CLIENT_KEYS)),
        ("POST", "/a/b/-/error_tracking/7", paths.canonical(paths.ERROR_STATUS)),
    ]:
        request = aiohttp.test_utils.make_mocked_request(method, sample, app=app)
        match = await app.router.resolve(request)
        assert match.route.resource.canonical == pattern, sample


async def test_page_requests_are_counted_by_route_pattern(client, web_server, world):
    await client.get("/group/sub/app/-/error_tracking/settings")
    body, _ = web_server.app[state.METRICS].render()
    assert b'route="/{namespace}/{project}/-/error_tracking/settings"' in body
    assert b"group/sub/app" not in body
