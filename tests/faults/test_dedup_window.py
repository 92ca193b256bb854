"""A retried event (the same ``event_id`` sent again, e.g. after an acknowledgement was lost) is
stored once when it arrives within one to two hours of the first: in the same receive hour the
primary key skips it, in the next hour (across midnight too) the writer's look at the previous
hour's keys does. Later than that, the id is taken for a new event (sql/004_hourly_dedup_key.sql).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from app.ingest.writer import EventWriter
from tests.faults.helpers import error_counts, partitions_around_today, pending_event
from tests.ingest_http.helpers import new_event_id


def at(day_offset: int, hour: int, minute: int) -> datetime:
    """``hour:minute`` UTC, ``day_offset`` days from today."""
    day = datetime.now(timezone.utc).date() + timedelta(days=day_offset)
    return datetime.combine(day, time(hour, minute), timezone.utc)


@pytest.mark.parametrize(
    ("first", "retry", "stored_again"),
    [
        pytest.param((0, 10, 5), (0, 10, 55), False, id="same-hour"),
        pytest.param((0, 10, 50), (0, 11, 20), False, id="next-hour"),
        pytest.param((-1, 23, 50), (0, 0, 10), False, id="across-midnight"),
        pytest.param((0, 10, 5), (0, 12, 0), True, id="two-hours-later"),
    ],
)
async def test_retries_within_the_window_are_stored_once(pool, world, first, retry, stored_again) -> None:
    first, retry = at(*first), at(*retry)
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    writer = EventWriter(pool, max_batch=10, max_wait_ms=1, max_pending=100)
    writer.start()
    try:
        event_id = new_event_id()
        assert await writer.write(pending_event(project_id, "retried", first, event_id)) is True
        assert await writer.write(pending_event(project_id, "retried", retry, event_id)) is stored_again
        stored = await pool.fetchval(
            "select count(*) from error_tracking_error_events where project_id = $1 and event_id = $2::uuid",
            project_id, event_id,
        )
        assert stored == (2 if stored_again else 1)
        [error] = await error_counts(pool, project_id)
        assert error["events_count"] == error["stored"] == stored
    finally:
        await writer.close()
