"""Bounded in-flight work: past ``max_pending_events`` waiting events errgate answers 429 with an
integer ``Retry-After`` at once, and what it accepted is stored."""

from __future__ import annotations

import asyncio

from tests.faults.helpers import (
    envelope_url,
    grouped_event,
    new_session,
    post_event,
    stored_event_ids,
    tracked_project_over_http,
)

CONCURRENT = 30


async def test_overload_answers_429_with_retry_after_and_stores_every_accepted_event(start_server, pool) -> None:
    # Events wait 300 ms for their batch, so that the queue really holds them.
    server = await start_server(
        max_pending_events=4, batch_max_wait_ms=300, batch_max_events=1000, writer_commits_in_flight=4
    )
    async with new_session(CONCURRENT) as session:
        project = await tracked_project_over_http(session, server.url)
        url = envelope_url(server.url, project.project_id)
        events = [grouped_event(str(n % 3)) for n in range(CONCURRENT)]
        outcomes = await asyncio.gather(*(post_event(session, url, project.public_key, e) for e in events))

    statuses = sorted(o.status for o in outcomes)
    assert set(statuses) == {200, 429}, statuses
    rejected = [o for o in outcomes if o.status == 429]
    accepted = [o for o in outcomes if o.status == 200]
    # At most 4 wait at a time and a batch takes 300 ms: most of the 30 must have been turned away.
    assert 1 <= len(accepted) <= CONCURRENT // 2, statuses
    for outcome in rejected:
        retry_after = outcome.headers.get("Retry-After")
        assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, outcome.headers
        assert isinstance(outcome.body, dict) and set(outcome.body) == {"detail", "causes"}, outcome.body
        assert isinstance(outcome.body["detail"], str) and outcome.body["detail"], outcome.body
        assert isinstance(outcome.body["causes"], list), outcome.body
    for outcome in accepted:
        assert outcome.body == {"id": outcome.event_id}, outcome

    stored = await stored_event_ids(pool, project.project_id)
    assert stored == {o.event_id: 1 for o in accepted}
