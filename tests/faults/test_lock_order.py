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
from app.ingest.writer import ErrorIds, write_batch
from tests.faults.helpers import error_counts, partitions_around_today, pending_event

ERRORS = 200


async def _two_batches(pool: asyncpg.Pool, project_id: int) -> tuple[ErrorIds, list[int]]:
    """Create ERRORS errors with a first batch and count it; returns the id cache and the ids, in key order."""
    now = datetime.now(timezone.utc)
    ids = ErrorIds()
    await write_batch(pool, [pending_event(project_id, f"e{n}", now) for n in range(ERRORS)], ids)
    await counts_fold.fold(pool)
    rows = await pool.fetch("select id from error_tracking_errors where project_id = $1 order by id", project_id)
    return ids, [r["id"] for r in rows]


async def test_a_batch_does_not_wait_for_its_errors_rows(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    ids, error_ids = await _two_batches(pool, project_id)
    now = datetime.now(timezone.utc)
    async with pool.acquire() as holder, holder.transaction():
        # What a fold or a status change holds while it updates the rows.
        await holder.execute(
            "select 1 from error_tracking_errors where project_id = $1 and id = any($2::bigint[]) for no key update",
            project_id, error_ids,
        )
        inserted = await asyncio.wait_for(
            write_batch(pool, [pending_event(project_id, f"e{n}", now) for n in reversed(range(ERRORS))], ids), 10
        )
    assert len(inserted) == ERRORS
    assert sorted(e["events_count"] for e in await error_counts(pool, project_id)) == [2] * ERRORS


async def test_the_fold_locks_the_errors_in_key_order(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    ids, error_ids = await _two_batches(pool, project_id)
    lowest, others = error_ids[0], error_ids[1:]
    now = datetime.now(timezone.utc)
    await write_batch(pool, [pending_event(project_id, f"e{n}", now) for n in reversed(range(ERRORS))], ids)

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
