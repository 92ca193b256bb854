"""The fold of pending counts: one at a time, and the counts of an error deleted meanwhile are dropped."""

from __future__ import annotations

from datetime import datetime, timezone

from app.db import error_counts as counts_fold
from app.ingest.writer import ErrorIds, write_batch
from tests.faults.helpers import partitions_around_today, pending_event
from tests.ingest_http.helpers import pending_rows

async def test_a_worker_skips_its_fold_while_another_runs_and_a_reader_waits_for_it(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    await counts_fold.fold(pool)  # what earlier tests left pending: the counts below are this test's
    await write_batch(pool, [pending_event(project_id, "a", datetime.now(timezone.utc))], ErrorIds())
    async with pool.acquire() as other, other.transaction():
        assert await counts_fold.fold(other) == 1  # holds the fold's lock until its transaction ends
        assert await counts_fold.fold(pool, wait=False) is None
    assert await counts_fold.fold(pool, wait=False) == 0


async def test_the_pending_counts_of_a_deleted_error_are_dropped(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    now = datetime.now(timezone.utc)
    await counts_fold.fold(pool)  # what earlier tests left pending: the counts below are this test's
    await write_batch(pool, [pending_event(project_id, group, now) for group in ("gone", "kept")], ErrorIds())
    assert await pending_rows(pool, project_id) == 2
    await pool.execute(
        "delete from error_tracking_errors where project_id = $1 and fingerprint = (select fingerprint from"
        " error_tracking_errors where project_id = $1 order by id limit 1)", project_id,
    )
    assert await counts_fold.fold(pool) == 1
    assert await pending_rows(pool, project_id) == 0
    assert await pool.fetchval(
        "select array_agg(events_count) from error_tracking_errors where project_id = $1", project_id
    ) == [1]
