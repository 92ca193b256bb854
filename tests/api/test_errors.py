"""The stored errors' listing and status routes (errgate's extension of the Error Tracking API)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.api.helpers import DEVELOPER, FORBIDDEN, GUEST, MAINTAINER, PROJECT_NOT_FOUND, REPORTER
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
