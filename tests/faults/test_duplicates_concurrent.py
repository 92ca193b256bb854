"""The same event posted 20 times at once (an SDK or proxy retrying): 20 × 200, one row."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.helpers import (
    counter_mismatches,
    envelope_url,
    error_counts,
    grouped_event,
    new_session,
    post_event,
    stored_event_ids,
    tracked_project_over_http,
)

COPIES = 20


# batch_max_events=1 puts every copy in its own batch, so that the writer's batches race on the
# same event id (one after the other, or several in flight at once); the default lets copies share a batch.
PER_BATCH_AND_IN_FLIGHT = pytest.mark.parametrize(
    ("batch_max_events", "commits_in_flight"), [(1, 1), (1, 4), (500, 1), (500, 4)]
)


@PER_BATCH_AND_IN_FLIGHT
async def test_same_event_id_posted_concurrently_is_stored_once(
    start_server, pool, batch_max_events, commits_in_flight
) -> None:
    server = await start_server(batch_max_events=batch_max_events, writer_commits_in_flight=commits_in_flight)
    async with new_session(COPIES) as session:
        project = await tracked_project_over_http(session, server.url)
        event = grouped_event("duplicate")
        url = envelope_url(server.url, project.project_id)
        outcomes = await asyncio.gather(*(post_event(session, url, project.public_key, event) for _ in range(COPIES)))

    assert [(o.status, o.body) for o in outcomes] == [(200, {"id": event["event_id"]})] * COPIES
    stored = await stored_event_ids(pool, project.project_id)
    assert stored == {event["event_id"]: 1}
    errors = await error_counts(pool, project.project_id)
    assert len(errors) == 1, errors
    assert errors[0]["events_count"] == 1 and counter_mismatches(errors) == [], errors


@PER_BATCH_AND_IN_FLIGHT
async def test_same_event_id_with_different_groups_leaves_one_row_and_no_empty_error(
    start_server, pool, batch_max_events, commits_in_flight
) -> None:
    """Retries whose content changed (here: each copy groups differently) still store one event,
    and no error is left behind without events."""
    server = await start_server(batch_max_events=batch_max_events, writer_commits_in_flight=commits_in_flight)
    async with new_session(COPIES) as session:
        project = await tracked_project_over_http(session, server.url)
        event_id = grouped_event("x")["event_id"]
        copies = [{**grouped_event(f"variant-{n}"), "event_id": event_id} for n in range(COPIES)]
        url = envelope_url(server.url, project.project_id)
        outcomes = await asyncio.gather(*(post_event(session, url, project.public_key, e) for e in copies))

    assert [(o.status, o.body) for o in outcomes] == [(200, {"id": event_id})] * COPIES
    assert await stored_event_ids(pool, project.project_id) == {event_id: 1}
    errors = await error_counts(pool, project.project_id)
    assert [(e["events_count"], e["stored"]) for e in errors] == [(1, 1)], errors
