"""The stored errors' listing and status routes (errgate's extension of the Error Tracking API)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.api.helpers import (
    DEVELOPER,
    FORBIDDEN,
    GUEST,
    INSUFFICIENT_SCOPE,
    MAINTAINER,
    PROJECT_NOT_FOUND,
    REPORTER,
    UNAUTHORIZED,
    parse_link_header,
)
from tests.conftest import ROOT_TOKEN

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


async def add_error(pool, project_id: int, fingerprint: str, minutes_ago: int, status: str = "unresolved") -> int:
    seen = NOW - timedelta(minutes=minutes_ago)
    return await pool.fetchval(
        """insert into error_tracking_errors (project_id, fingerprint, name, description, actor, platform,
                                              status, first_seen_at, last_seen_at, events_count)
           values ($1, $2, 'ValueError', 'bad ' || $2, 'f(m)', 'python', $3, $4, $4, 1) returning id""",
        project_id, fingerprint, status, seen,
    )


def errors_url(project, suffix: str = "") -> str:
    return f"/projects/{project['id']}/error_tracking/errors{suffix}"


async def test_list_is_most_recently_seen_first_with_pagination(api, world, pool) -> None:
    project = await world.project()
    ids = [await add_error(pool, project["id"], f"fp{i}", minutes_ago=i) for i in range(25)]
    reply = await api.get(errors_url(project), token=ROOT_TOKEN, params={"per_page": "10", "page": "2"})
    assert reply.status == 200
    assert [e["id"] for e in reply.body] == ids[10:20]
    assert reply.headers["X-Total"] == "25" and reply.headers["X-Next-Page"] == "3"
    first = reply.body[0]
    assert set(first) == {
        "id", "project_id", "fingerprint", "name", "description", "actor", "platform", "status",
        "first_seen_at", "last_seen_at", "events_count", "environments", "first_release", "last_release", "level",
    }
    assert first["last_seen_at"] == (NOW - timedelta(minutes=10)).isoformat()


async def test_status_filter_and_invalid_status(api, world, pool) -> None:
    project = await world.project()
    await add_error(pool, project["id"], "a", 1, "resolved")
    unresolved = await add_error(pool, project["id"], "b", 2)
    reply = await api.get(errors_url(project), token=ROOT_TOKEN, params={"status": "unresolved"})
    assert [e["id"] for e in reply.body] == [unresolved]
    reply = await api.get(errors_url(project), token=ROOT_TOKEN, params={"status": "gone"})
    assert (reply.status, reply.body) == (400, {"error": "status does not have a valid value"})


async def test_errors_of_another_project_are_not_listed_or_shown(api, world, pool) -> None:
    mine, other = await world.project("group/mine"), await world.project("group/other")
    theirs = await add_error(pool, other["id"], "x", 1)
    assert (await api.get(errors_url(mine), token=ROOT_TOKEN)).body == []
    reply = await api.get(errors_url(mine, f"/{theirs}"), token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, {"message": "404 Error Not Found"})
    reply = await api.put(errors_url(mine, f"/{theirs}"), token=ROOT_TOKEN, json={"status": "resolved"})
    assert reply.status == 404
    assert await pool.fetchval("select status from error_tracking_errors where id = $1", theirs) == "unresolved"


@pytest.mark.parametrize("level, status", [(GUEST, 403), (REPORTER, 200), (DEVELOPER, 200), (MAINTAINER, 200)])
async def test_reading_needs_reporter(api, world, pool, level, status) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    token = await world.user_with_role(project, level)
    listed = await api.get(errors_url(project), token=token)
    shown = await api.get(errors_url(project, f"/{error_id}"), token=token)
    assert (listed.status, shown.status) == (status, status)
    if status == 403:
        assert listed.body == shown.body == FORBIDDEN


async def test_non_member_gets_404(api, world, pool) -> None:
    project = await world.project()
    token = await world.token(await world.user())
    reply = await api.get(errors_url(project), token=token)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)


@pytest.mark.parametrize("level, status", [(REPORTER, 403), (DEVELOPER, 200), (MAINTAINER, 200)])
async def test_changing_status_needs_developer(api, world, pool, level, status) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    token = await world.user_with_role(project, level)
    reply = await api.put(errors_url(project, f"/{error_id}"), token=token, json={"status": "ignored"})
    assert reply.status == status
    stored = await pool.fetchval("select status from error_tracking_errors where id = $1", error_id)
    assert stored == ("ignored" if status == 200 else "unresolved")
    if status == 200:
        assert reply.body["status"] == "ignored"


async def test_status_is_required_and_validated(api, world, pool) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    missing = await api.put(errors_url(project, f"/{error_id}"), token=ROOT_TOKEN, json={})
    invalid = await api.put(errors_url(project, f"/{error_id}"), token=ROOT_TOKEN, json={"status": "fixed"})
    assert (missing.status, missing.body) == (400, {"error": "status is missing"})
    assert (invalid.status, invalid.body) == (400, {"error": "status does not have a valid value"})


async def add_counted_error(pool, project_id: int, fingerprint: str, first: int, last: int, count: int) -> int:
    error_id = await add_error(pool, project_id, fingerprint, minutes_ago=last)
    await pool.execute(
        "update error_tracking_errors set first_seen_at = $2, events_count = $3 where id = $1",
        error_id, NOW - timedelta(minutes=first), count,
    )
    return error_id


@pytest.mark.parametrize("sort, expected", [
    (None, ["a", "b", "c"]), ("last_seen", ["a", "b", "c"]), ("first_seen", ["c", "a", "b"]),
    ("frequency", ["b", "c", "a"]),
])
@pytest.mark.parametrize("status", ["unresolved", "all"])
async def test_sort_orders_highest_first(api, world, pool, sort, expected, status) -> None:
    project = await world.project()
    ids = {
        "a": await add_counted_error(pool, project["id"], "a", first=50, last=1, count=1),
        "b": await add_counted_error(pool, project["id"], "b", first=60, last=2, count=9),
        "c": await add_counted_error(pool, project["id"], "c", first=10, last=3, count=5),
    }
    await pool.execute("update error_tracking_errors set status = 'ignored' where id = $1", ids["c"])
    params = {"status": status, **({"sort": sort} if sort else {})}
    reply = await api.get(errors_url(project), token=ROOT_TOKEN, params=params)
    expected_ids = [ids[name] for name in expected if status == "all" or name != "c"]
    assert [e["id"] for e in reply.body] == expected_ids


async def test_every_status_pages_like_one_list(api, world, pool) -> None:
    project = await world.project()
    statuses = ["unresolved", "resolved", "ignored"]
    ids = [await add_error(pool, project["id"], f"fp{i}", minutes_ago=i, status=statuses[i % 3]) for i in range(25)]
    seen = []
    for page in (1, 2, 3):
        reply = await api.get(errors_url(project), token=ROOT_TOKEN,
                              params={"status": "all", "per_page": "10", "page": str(page)})
        assert reply.headers["X-Total"] == "25" and reply.headers["X-Total-Pages"] == "3"
        assert reply.headers["X-Page"] == str(page)
        seen += [e["id"] for e in reply.body]
    assert seen == ids
    assert 'rel="next"' in reply.headers["Link"] or reply.headers["X-Next-Page"] == ""
    assert "status=all" in reply.headers["Link"]


async def test_bulk_update_changes_this_projects_errors_only(api, world, pool) -> None:
    mine, other = await world.project("group/mine"), await world.project("group/other")
    a, b, c = [await add_error(pool, mine["id"], f"fp{i}", i) for i in range(3)]
    theirs = await add_error(pool, other["id"], "x", 1)
    reply = await api.put(errors_url(mine), token=ROOT_TOKEN, json={"ids": [b, a, theirs], "status": "resolved"})
    assert reply.status == 200
    assert [(e["id"], e["status"]) for e in reply.body] == [(a, "resolved"), (b, "resolved")]
    statuses = dict(await pool.fetch("select id, status from error_tracking_errors"))
    assert statuses == {a: "resolved", b: "resolved", c: "unresolved", theirs: "unresolved"}
    # ids[] as a form or a query string, as GitLab's array parameters.
    reply = await api.put(errors_url(mine), token=ROOT_TOKEN, data=[("ids[]", str(a)), ("ids[]", str(c)),
                                                                    ("status", "ignored")])
    assert [(e["id"], e["status"]) for e in reply.body] == [(a, "ignored"), (c, "ignored")]
    reply = await api.put(errors_url(mine) + f"?ids[]={b}&status=unresolved", token=ROOT_TOKEN)
    assert [(e["id"], e["status"]) for e in reply.body] == [(b, "unresolved")]


@pytest.mark.parametrize("body, message", [
    ({"status": "resolved"}, "ids is missing"),
    ({"ids": [1]}, "status is missing"),
    ({"ids": [], "status": "resolved"}, "ids is invalid"),
    ({"ids": ["x"], "status": "resolved"}, "ids is invalid"),
    ({"ids": [1.5], "status": "resolved"}, "ids is invalid"),
    ({"ids": [2**63], "status": "resolved"}, "ids is invalid"),
    ({"ids": {"a": 1}, "status": "resolved"}, "ids is invalid"),
    ({"ids": list(range(101)), "status": "resolved"}, "ids has more than 100 items"),
    ({"ids": [1], "status": "fixed"}, "status does not have a valid value"),
])
async def test_bulk_update_validates(api, world, pool, body, message) -> None:
    project = await world.project()
    reply = await api.put(errors_url(project), token=ROOT_TOKEN, json=body)
    assert (reply.status, reply.body) == (400, {"error": message})


@pytest.mark.parametrize("level, status", [(GUEST, 403), (REPORTER, 403), (DEVELOPER, 200), (MAINTAINER, 200)])
async def test_bulk_update_needs_developer(api, world, pool, level, status) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    token = await world.user_with_role(project, level)
    reply = await api.put(errors_url(project), token=token, json={"ids": [error_id], "status": "ignored"})
    assert reply.status == status
    if status == 403:
        assert reply.body == FORBIDDEN


async def test_a_read_api_token_reads_but_cannot_change(api, world, pool) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    user = await world.user()
    await world.member(project, user, DEVELOPER)
    token = await world.token(user, scopes=("read_api",))
    assert (await api.get(errors_url(project), token=token)).status == 200
    assert (await api.get(errors_url(project, f"/{error_id}"), token=token)).status == 200
    for path in (errors_url(project, f"/{error_id}"), errors_url(project)):
        reply = await api.put(path, token=token, json={"ids": [error_id], "status": "resolved"})
        assert (reply.status, reply.body) == (403, INSUFFICIENT_SCOPE)
    assert await pool.fetchval("select status from error_tracking_errors where id = $1", error_id) == "unresolved"


async def test_without_a_token_401(api, world, pool) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    for method, path in (("GET", errors_url(project)), ("GET", errors_url(project, f"/{error_id}")),
                         ("PUT", errors_url(project, f"/{error_id}")), ("PUT", errors_url(project))):
        reply = await api.request(method, path, json={"ids": [error_id], "status": "resolved"})
        assert (reply.status, reply.body) == (401, UNAUTHORIZED)


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "9223372036854775808", "1.0"])
async def test_bad_error_ids_are_404(api, world, pool, bad) -> None:
    project = await world.project()
    for method in ("GET", "PUT"):
        reply = await api.request(method, errors_url(project, f"/{bad}"), token=ROOT_TOKEN, json={"status": "resolved"})
        assert (reply.status, reply.body) == (404, {"message": "404 Error Not Found"})


async def test_show_has_the_summary(api, world, pool) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    reply = await api.get(errors_url(project, f"/{error_id}"), token=ROOT_TOKEN)
    summary = reply.body.pop("summary")
    listed = (await api.get(errors_url(project), token=ROOT_TOKEN)).body
    assert listed == [reply.body]
    assert set(summary) == {"events_per_hour", "events_per_day", "tags", "environments", "releases"}
    assert len(summary["events_per_hour"]) == 24 and len(summary["events_per_day"]) == 30
    starts = [datetime.fromisoformat(b["start"]) for b in summary["events_per_hour"]]
    assert starts == sorted(starts) and starts[1] - starts[0] == timedelta(hours=1)
    assert all(b["count"] == 0 for b in summary["events_per_hour"] + summary["events_per_day"])
    assert (summary["tags"], summary["environments"], summary["releases"]) == ([], [], [])


async def test_past_ten_thousand_errors_no_total_is_given_as_in_gitlab(api, world, pool) -> None:
    project = await world.project()
    await pool.execute(
        """insert into error_tracking_errors (project_id, fingerprint, name, description, actor, platform,
                                              first_seen_at, last_seen_at, events_count)
           select $1, 'fp' || i, 'E', 'd', 'a', 'python', $2::timestamptz, $2::timestamptz - i * interval '1 second', 1
           from generate_series(1, 10005) i""",
        project["id"], NOW,
    )
    first = await api.get(errors_url(project), token=ROOT_TOKEN, params={"per_page": "100"})
    assert len(first.body) == 100
    assert "X-Total" not in first.headers and "X-Total-Pages" not in first.headers
    assert (first.headers["X-Page"], first.headers["X-Next-Page"], first.headers["X-Prev-Page"]) == ("1", "2", "")
    assert set(parse_link_header(first.headers["Link"])) == {"next", "first"}
    last = await api.get(errors_url(project), token=ROOT_TOKEN, params={"per_page": "100", "page": "101"})
    assert len(last.body) == 5 and "X-Total" not in last.headers
    assert (last.headers["X-Next-Page"], last.headers["X-Prev-Page"]) == ("", "100")
    assert set(parse_link_header(last.headers["Link"])) == {"prev", "first"}
    full = await api.get(errors_url(project), token=ROOT_TOKEN, params={"per_page": "100", "page": "100"})
    assert full.headers["X-Next-Page"] == "101"
    # Filtered to 10,000 or fewer, the total is given again.
    await pool.execute("update error_tracking_errors set status = 'ignored' where project_id = $1 and events_count = 1"
                       " and fingerprint in ('fp1', 'fp2', 'fp3', 'fp4', 'fp5', 'fp6')", project["id"])
    counted = await api.get(errors_url(project), token=ROOT_TOKEN, params={"per_page": "100"})
    assert (counted.headers["X-Total"], counted.headers["X-Total-Pages"]) == ("9999", "100")
    assert "last" in parse_link_header(counted.headers["Link"])


@pytest.mark.parametrize("how", ["json", "form", "query"])
async def test_status_may_come_as_json_form_or_query(api, world, pool, how) -> None:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "a", 1)
    url = errors_url(project, f"/{error_id}")
    if how == "json":
        reply = await api.put(url, token=ROOT_TOKEN, json={"status": "ignored"})
    elif how == "form":
        reply = await api.put(url, token=ROOT_TOKEN, data={"status": "ignored"})
    else:
        reply = await api.put(url + "?status=ignored", token=ROOT_TOKEN)
    assert (reply.status, reply.body["status"]) == (200, "ignored")
