"""Worker processes commit batches of the same frequent errors side by side. Each batch locks
its errors' rows in key order before updating their counters, so two batches wait for each
other but never deadlock (a deadlock stalls a writer for PostgreSQL's deadlock_timeout).

The test holds the lowest-keyed error's row from another connection: a batch of 200 errors
must then wait for that row while holding none of the other 199. Rows locked in any other
order would leave some of them locked.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg

from app.ingest.writer import ErrorIds, write_batch
from tests.faults.helpers import error_counts, partitions_around_today, pending_event

ERRORS = 200


async def test_a_batch_locks_its_errors_in_key_order(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    now = datetime.now(timezone.utc)
    ids = ErrorIds()
    # Create the errors with a first batch, then send one more event to each in a second.
    await write_batch(pool, [pending_event(project_id, f"e{n}", now) for n in range(ERRORS)], ids)
    rows = await pool.fetch(
        "select id from error_tracking_errors where project_id = $1 order by id", project_id
    )
    lowest, others = rows[0]["id"], [r["id"] for r in rows[1:]]
    second = [pending_event(project_id, f"e{n}", now) for n in reversed(range(ERRORS))]

    async with pool.acquire() as holder, pool.acquire() as probe:
        blocker = holder.transaction()
        await blocker.start()
        await holder.execute(
            "select 1 from error_tracking_errors where project_id = $1 and id = $2 for no key update",
            project_id, lowest,
        )
        batch = asyncio.create_task(write_batch(pool, second, ids))
        try:
            await asyncio.wait_for(_until_a_transaction_waits(pool), 10)
            async with probe.transaction():
                try:  # NOWAIT: fails at once if the waiting batch holds any of the other rows
                    locked = await probe.fetch(
                        "select id from error_tracking_errors where project_id = $1 and id = any($2::bigint[])"
                        " for no key update nowait",
                        project_id, others,
                    )
                except asyncpg.LockNotAvailableError:
                    locked = []
            assert len(locked) == ERRORS - 1, "the batch locked other errors before the lowest-keyed one"
        finally:
            await blocker.rollback()
        inserted = await batch

    assert len(inserted) == ERRORS
    counts = await error_counts(pool, project_id)
    assert sorted(e["events_count"] for e in counts) == [2] * ERRORS


async def _until_a_transaction_waits(pool: asyncpg.Pool) -> None:
    """Until a backend of this database waits for another transaction (the batch, on the held row)."""
    while not await pool.fetchval(
        "select count(*) from pg_locks where not granted and locktype = 'transactionid'"
        " and pid in (select pid from pg_stat_activity where datname = current_database())"
    ):
        await asyncio.sleep(0.02)
