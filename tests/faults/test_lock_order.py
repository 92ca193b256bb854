"""Worker processes commit batches of the same frequent errors side by side, and fold their
pending counts into the errors' rows. A batch takes no lock on an error's row that a counter
update needs, so batches never wait for each other there; the fold locks the rows in key order,
so that it and the status changes (also in key order) wait for each other but never deadlock
(a deadlock stalls a writer for PostgreSQL's deadlock_timeout).

The key-order test holds the lowest-keyed error's row from another connection: a fold over 200
errors must then wait for that row while holding none of the other 199. Rows locked in any
other order would leave some of them locked.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg

from app.db import error_counts as counts_fold
from app.ingest.writer import ErrorIds, PendingEvent, write_batch
from tests.faults.helpers import error_counts, partitions_around_today, pending_event

ERRORS = 200


async def _errors_and_second_batch(pool: asyncpg.Pool, world) -> tuple[int, ErrorIds, list[int], list[PendingEvent]]:
    """A project whose ERRORS errors a first batch created and counted; returns its id, the id
    cache, the errors' ids in key order, and a second batch of the same errors in reverse order."""
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    now = datetime.now(timezone.utc)
    ids = ErrorIds()
    await write_batch(pool, [pending_event(project_id, f"e{n}", now) for n in range(ERRORS)], ids)
    await counts_fold.fold(pool)
    rows = await pool.fetch("select id from error_tracking_errors where project_id = $1 order by id", project_id)
    second = [pending_event(project_id, f"e{n}", now) for n in reversed(range(ERRORS))]
    return project_id, ids, [r["id"] for r in rows], second


async def test_a_batch_does_not_wait_for_its_errors_rows(pool, world) -> None:
    project_id, ids, error_ids, second = await _errors_and_second_batch(pool, world)
    async with pool.acquire() as holder, holder.transaction():
        # What a fold or a status change holds while it updates the rows.
        await holder.execute(
            "select 1 from error_tracking_errors where project_id = $1 and id = any($2::bigint[]) for no key update",
            project_id, error_ids,
        )
        inserted = await asyncio.wait_for(write_batch(pool, second, ids), 10)
    assert len(inserted) == ERRORS
    assert sorted(e["events_count"] for e in await error_counts(pool, project_id)) == [2] * ERRORS


async def test_the_fold_locks_the_errors_in_key_order(pool, world) -> None:
    project_id, ids, error_ids, second = await _errors_and_second_batch(pool, world)
    lowest, others = error_ids[0], error_ids[1:]
    await write_batch(pool, second, ids)

    async with pool.acquire() as holder, pool.acquire() as probe:
        blocker = holder.transaction()
        await blocker.start()
        await holder.execute(
            "select 1 from error_tracking_errors where project_id = $1 and id = $2 for no key update",
            project_id, lowest,
        )
        fold = asyncio.create_task(counts_fold.fold(pool))
        try:
            await asyncio.wait_for(_until_a_transaction_waits(pool), 10)
            async with probe.transaction():
                try:  # NOWAIT: fails at once if the waiting fold holds any of the other rows
                    locked = await probe.fetch(
                        "select id from error_tracking_errors where project_id = $1 and id = any($2::bigint[])"
                        " for no key update nowait",
                        project_id, others,
                    )
                except asyncpg.LockNotAvailableError:
                    locked = []
            assert len(locked) == ERRORS - 1, "the fold locked other errors before the lowest-keyed one"
        finally:
            await blocker.rollback()
        assert await fold == ERRORS

    assert sorted(e["events_count"] for e in await error_counts(pool, project_id)) == [2] * ERRORS


async def _until_a_transaction_waits(pool: asyncpg.Pool) -> None:
    """Until a backend of this database waits for another transaction (the fold, on the held row)."""
    while not await pool.fetchval(
        "select count(*) from pg_locks where not granted and locktype = 'transactionid'"
        " and pid in (select pid from pg_stat_activity where datname = current_database())"
    ):
        await asyncio.sleep(0.02)
