"""The error list and the error page over real HTTP: tabs, search, filters, pagination, bulk and
single status changes, events navigation, raw JSON, escaping and roles."""

from __future__ import annotations

import re
import time

import orjson
import pytest

from tests.api.helpers import DEVELOPER, GUEST, MAINTAINER, REPORTER
from tests.ingest_http.helpers import exception_event, message_event
from tests.web.helpers import send_events, tracked_project

LIST = "/group/sub/app/-/error_tracking"


@pytest.fixture
async def project(world, pool, web_server):
    owner = await world.user("owner")
    project, key = await tracked_project(pool, world, "group/sub/app", owner)
    await send_events(
        web_server.url, project["id"], key,
        exception_event("ValueError", "cart 17 is empty", function="checkout", module="shop.views"),
        exception_event("KeyError", "'price'", function="total", module="shop.cart", environment="staging"),
        exception_event("KeyError", "'price'", function="total", module="shop.cart", environment="staging"),
        message_event("disk almost full", environment="production"),
    )
    return project


async def signed_in(client, world, project, level):
    user = await world.user()
    await world.member(project, user, level)
    await client.sign_in(await world.token(user))


def error_ids(page) -> list[int]:
    return [int(n) for n in re.findall(r'data-error-id="(\d+)"', page.text)]


async def ids_of(pool, project, **where) -> dict[str, int]:
    return {r["name"]: r["id"] for r in await pool.fetch("select id, name from error_tracking_errors where project_id = $1",
                                                           project["id"])}


async def test_the_list_shows_each_error_with_counts_times_and_a_chart(client, world, project, pool):
    await signed_in(client, world, project, REPORTER)
    page = await client.get(LIST)
    assert page.status == 200
    assert len(error_ids(page)) == 3
    assert "ValueError" in page.text and "cart 17 is empty" in page.text and "checkout(shop.views)" in page.text
    assert re.search(r'<td class="num">2</td>', page.text)  # the KeyError's two events
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">(just now|\d+ \w+ ago)</time>', page.text)
    assert page.text.count('<svg class="chart spark"') == 3 and "<rect " in page.text
    assert re.search(r'Unresolved<span class="n badge">3</span>', page.text)
    # A Reporter sees no checkboxes or status buttons.
    assert 'name="ids"' not in page.text and 'name="status" value="resolved"' not in page.text


async def test_projects_page_lists_projects_with_unresolved_counts(client, world, project):
    await signed_in(client, world, project, REPORTER)
    page = await client.get("/")
    assert 'href="/group/sub/app/-/error_tracking">group/sub/app</a>' in page.text
    assert '<td class="num">3</td>' in page.text


async def test_a_guest_sees_no_project_and_no_errors(client, world, project):
    await signed_in(client, world, project, GUEST)
    assert "group/sub/app" not in (await client.get("/")).text
    page = await client.get(LIST)
    assert page.status == 404 and "ValueError" not in page.text
    error_id = (await client.get(LIST)).status
    assert error_id == 404


async def test_search_environment_and_sort(client, world, project, pool):
    await signed_in(client, world, project, REPORTER)
    ids = await ids_of(pool, project)
    page = await client.get(LIST + "?search=cart")
    assert error_ids(page) == sorted([ids["ValueError"], ids["KeyError"]], reverse=True) or set(error_ids(page)) == {
        ids["ValueError"], ids["KeyError"]}
    page = await client.get(LIST + "?search=price")
    assert error_ids(page) == [ids["KeyError"]]
    page = await client.get(LIST + "?environment=staging")
    assert error_ids(page) == [ids["KeyError"]]
    assert '<option value="staging" selected>' in page.text and '<option value="production">' in page.text
    page = await client.get(LIST + "?search=environment:production")
    assert set(error_ids(page)) == {ids["ValueError"], ids["disk almost full"]}
    page = await client.get(LIST + "?sort=frequency")
    assert error_ids(page)[0] == ids["KeyError"]
    page = await client.get(LIST + "?search=level:nonsense")
    assert page.status == 400 and "level" in page.text and error_ids(page) == []


async def test_a_developer_resolves_in_bulk_and_the_errors_leave_the_unresolved_tab(client, world, project, pool):
    await signed_in(client, world, project, DEVELOPER)
    ids = await ids_of(pool, project)
    page = await client.get(LIST + "?sort=frequency")
    fields = [("_csrf", page.csrf), ("ids", str(ids["KeyError"])), ("ids", str(ids["ValueError"])),
              ("status", "resolved"), ("sort", "frequency"), ("search", ""), ("status_tab", ""), ("environment", "")]
    after = await client.post(LIST, fields)
    assert after.status == 200 and after.url.endswith(LIST + "?sort=frequency")
    assert error_ids(after) == [ids["disk almost full"]]
    resolved = await client.get(LIST + "?status=resolved")
    assert set(error_ids(resolved)) == {ids["KeyError"], ids["ValueError"]}
    assert re.search(r'Resolved<span class="n badge">2</span>', resolved.text)


async def test_bulk_ignores_ids_of_other_projects(client, world, project, pool, web_server):
    other, key = await tracked_project(pool, world, "other/app", await world.user())
    await send_events(web_server.url, other["id"], key, exception_event("OtherError", "x"))
    other_id = await pool.fetchval("select id from error_tracking_errors where project_id = $1", other["id"])
    await signed_in(client, world, project, MAINTAINER)
    page = await client.get(LIST)
    await client.post(LIST, {"_csrf": page.csrf, "ids": str(other_id), "status": "ignored"})
    assert await pool.fetchval("select status from error_tracking_errors where id = $1", other_id) == "unresolved"


async def test_a_reporter_cannot_change_a_status(client, world, project, pool):
    await signed_in(client, world, project, REPORTER)
    ids = await ids_of(pool, project)
    page = await client.get(LIST)
    refused = await client.post(f"{LIST}/{ids['ValueError']}", {"_csrf": page.csrf, "status": "resolved"})
    assert refused.status == 403
    refused = await client.post(LIST, {"_csrf": page.csrf, "ids": str(ids["ValueError"]), "status": "resolved"})
    assert refused.status == 403
    assert await pool.fetchval("select count(*) from error_tracking_errors where status <> 'unresolved'") == 0


async def test_status_posts_need_the_csrf_token(client, world, project, pool):
    await signed_in(client, world, project, MAINTAINER)
    ids = await ids_of(pool, project)
    refused = await client.post(f"{LIST}/{ids['ValueError']}", {"status": "resolved"})
    assert refused.status == 403 and "CSRF" in refused.text
    assert await pool.fetchval("select count(*) from error_tracking_errors where status <> 'unresolved'") == 0


async def test_a_bad_status_is_a_400_page(client, world, project, pool):
    await signed_in(client, world, project, MAINTAINER)
    ids = await ids_of(pool, project)
    page = await client.get(LIST)
    refused = await client.post(f"{LIST}/{ids['ValueError']}", {"_csrf": page.csrf, "status": "deleted"})
    assert refused.status == 400 and "status does not have a valid value" in refused.text
    assert refused.headers["Content-Type"].startswith("text/html")


async def test_the_error_page_shows_summary_event_and_changes_status(client, world, project, pool):
    await signed_in(client, world, project, DEVELOPER)
    ids = await ids_of(pool, project)
    details = f"{LIST}/{ids['KeyError']}/details"
    page = await client.get(details)
    assert page.status == 200
    assert "KeyError" in page.text and "staging" in page.text and "shop@1.2.3" in page.text
    assert page.text.count('<svg class="chart big"') == 2
    assert "Raw JSON" in page.text and "shop/cart.py" in page.text
    assert '<button type="submit" name="status" value="resolved" class="primary">Resolve</button>' in page.text
    after = await client.post(f"{LIST}/{ids['KeyError']}", {"_csrf": page.csrf, "status": "resolved"})
    assert after.url.endswith(details) and '<span class="badge resolved">resolved</span>' in after.text
    assert "Unresolve" in after.text
    assert await pool.fetchval("select status from error_tracking_errors where id = $1", ids["KeyError"]) == "resolved"


async def test_events_are_navigated_newest_to_oldest_with_raw_json(client, world, project, pool, web_server):
    owner = await world.user()
    other, key = await tracked_project(pool, world, "nav/app", owner)
    now = time.time()
    sent = [exception_event("NavError", "x", timestamp=now - 60 * (3 - i)) for i in range(3)]  # oldest first
    await send_events(web_server.url, other["id"], key, *sent)
    await client.sign_in(await world.token(owner))
    error_id = await pool.fetchval("select id from error_tracking_errors where project_id = $1", other["id"])
    details = f"/nav/app/-/error_tracking/{error_id}/details"
    newest = sent[2]["event_id"]
    page = await client.get(details)
    assert re.search(r"Event <code>[0-9a-f-]+</code>", page.text)
    assert newest.replace("-", "") in page.text.replace("-", "")
    older = re.search(r'href="([^"]+)" rel="older"', page.text).group(1)
    assert 'rel="newer"' not in page.text
    middle = await client.get(older.replace("&amp;", "&"))
    assert sent[1]["event_id"] in middle.text.replace("-", "")
    assert 'rel="newer"' in middle.text and 'rel="oldest"' in middle.text
    raw = await client.get(re.search(r'href="([^"]+\.json)"', middle.text).group(1))
    assert raw.status == 200 and raw.headers["Content-Type"] == "application/json"
    assert orjson.loads(raw.text)["event_id"].replace("-", "") == sent[1]["event_id"]
    assert raw.headers["Content-Security-Policy"] and raw.headers["Cache-Control"] == "no-store"


async def test_unknown_errors_and_events_are_404_pages(client, world, project, pool):
    await signed_in(client, world, project, REPORTER)
    ids = await ids_of(pool, project)
    for path in (f"{LIST}/999999/details", f"{LIST}/{ids['KeyError']}/details?event=not-a-uuid",
                 f"{LIST}/{ids['KeyError']}/details?event=00000000-0000-0000-0000-000000000000",
                 f"{LIST}/{ids['KeyError']}/details/events/00000000-0000-0000-0000-000000000000.json",
                 f"{LIST}/99999999999999999999/details"):
        page = await client.get(path)
        assert page.status == 404 and page.headers["Content-Type"].startswith("text/html"), path


async def test_event_data_is_escaped(client, world, pool, web_server):
    owner = await world.user()
    project, key = await tracked_project(pool, world, "hostile/app", owner)
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    await send_events(web_server.url, project["id"], key,
                      exception_event(hostile, hostile, function=hostile, module="x", environment="a<b>", tags={hostile: hostile}))
    await client.sign_in(await world.token(owner))
    error_id = await pool.fetchval("select id from error_tracking_errors where project_id = $1", project["id"])
    for path in ("/hostile/app/-/error_tracking", f"/hostile/app/-/error_tracking/{error_id}/details"):
        page = await client.get(path)
        assert page.status == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_the_list_is_paginated_keeping_its_filters(client, world, pool, web_server):
    owner = await world.user()
    project, key = await tracked_project(pool, world, "many/app", owner)
    await send_events(web_server.url, project["id"], key,
                      *(exception_event(f"Error{n}", "x", function=f"f{n}", environment="prod") for n in range(23)))
    await client.sign_in(await world.token(owner))
    first = await client.get("/many/app/-/error_tracking?environment=prod")
    assert len(error_ids(first)) == 20 and "Page 1 of 2" in first.text
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    assert "environment=prod" in next_link and "page=2" in next_link
    second = await client.get(next_link)
    assert len(error_ids(second)) == 3 and "Page 2 of 2" in second.text
    assert set(error_ids(first)).isdisjoint(error_ids(second))
    assert (await client.get("/many/app/-/error_tracking?page=abc")).status == 200


async def test_an_unexpected_failure_on_a_page_is_an_html_500_logged_once(client, world, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    await client.sign_in(await world.token(await world.user()))
    monkeypatch.setattr("app.web.signin.projects.projects_with_unresolved", broken)
    with caplog.at_level("ERROR", logger="errgate.errors"):
        page = await client.get("/")
    assert page.status == 500 and page.headers["Content-Type"].startswith("text/html")
    assert "500 Internal Server Error" in page.text and "boom" not in page.text
    assert [r.getMessage() for r in caplog.records if r.name == "errgate.errors"] == ["unhandled error"]


async def test_a_read_api_token_of_a_maintainer_sees_no_status_forms(client, world, project, pool):
    user = await world.user()
    await world.member(project, user, MAINTAINER)
    await client.sign_in(await world.token(user, scopes=("read_api",)))
    ids = await ids_of(pool, project)
    listed = await client.get(LIST)
    assert len(error_ids(listed)) == 3 and 'name="ids"' not in listed.text
    details = await client.get(f"{LIST}/{ids['ValueError']}/details")
    assert details.status == 200 and 'name="status"' not in details.text
    refused = await client.post(f"{LIST}/{ids['ValueError']}", {"_csrf": details.csrf, "status": "resolved"})
    assert refused.status == 403


async def test_past_the_count_limit_tabs_read_at_least_and_pages_have_no_last(client, world, project, monkeypatch):
    monkeypatch.setattr("app.db.tracked_errors.COUNT_LIMIT", 2)
    monkeypatch.setattr("app.web.tracked_errors.PER_PAGE", 2)
    await signed_in(client, world, project, REPORTER)
    page = await client.get(LIST)
    assert re.search(r'Unresolved<span class="n badge">2\+</span>', page.text)
    assert re.search(r'All<span class="n badge">2\+</span>', page.text)
    assert "<span>Page 1</span>" in page.text and 'rel="next"' in page.text


async def test_a_message_error_and_an_error_whose_events_are_gone(client, world, project, pool):
    await signed_in(client, world, project, REPORTER)
    ids = await ids_of(pool, project)
    page = await client.get(f"{LIST}/{ids['disk almost full']}/details")
    assert page.status == 200 and "disk almost full" in page.text and "Raw JSON" in page.text
    await pool.execute("delete from error_tracking_error_events where error_id = $1", ids["ValueError"])
    page = await client.get(f"{LIST}/{ids['ValueError']}/details")
    assert page.status == 200 and "No stored event" in page.text and "Raw JSON" not in page.text
