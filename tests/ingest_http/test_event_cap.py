"""ERRGATE_MAX_EVENTS_PER_ERROR: events of an error at the cap are acknowledged but not stored."""

from __future__ import annotations

import aiohttp

from tests.conftest import Api
from tests.ingest_http.helpers import (
    assert_accepted, collector_url, count_events, errors, event_envelope, exception_event, post_envelope,
    sentry_auth, tracked_project,
)


async def test_events_past_the_cap_are_not_stored_but_move_last_seen(start_server, world, pool) -> None:
    server = await start_server(max_events_per_error=3, batch_max_wait_ms=0)
    async with aiohttp.ClientSession() as http:
        project = await tracked_project(Api(http, server.url), world)
        url = collector_url(server.url, project.project_id)
        timestamps = [1_700_000_000 + i for i in range(5)]
        for ts in timestamps:
            event = exception_event(value=f"cart {ts} is empty", timestamp=ts)
            status, body, _ = await post_envelope(http, url, event_envelope(event), sentry_auth(project.public_key))
            assert_accepted(status, body, event["event_id"])
    [error] = await errors(pool, project.project_id)
    assert await count_events(pool, project.project_id) == 3
    assert error["events_count"] == 3
    assert error["last_seen_at"].timestamp() == timestamps[-1]
    assert error["first_seen_at"].timestamp() == timestamps[0]


async def test_without_a_cap_every_event_is_stored(server, api, world, pool, http) -> None:
    project = await tracked_project(api, world)
    url = collector_url(server.url, project.project_id)
    for i in range(5):
        event = exception_event(value=f"cart {i} is empty")
        status, body, _ = await post_envelope(http, url, event_envelope(event), sentry_auth(project.public_key))
        assert_accepted(status, body, event["event_id"])
    [error] = await errors(pool, project.project_id)
    assert error["events_count"] == 5 == await count_events(pool, project.project_id)
