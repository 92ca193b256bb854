"""Retention by dropping whole daily partitions: the expired ones go, the counters of the errors
keep matching their stored events (pending counts included), errors left without events go too
(not those with an event whose count is still pending), the partitions ahead
exist; maintenance is idempotent and safe to run twice at once."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone

from app.db import partitions
from app.ingest.writer import ErrorIds, EventWriter, PendingEvent, write_batch
from tests.faults.helpers import error_counts, partitions_around_today, pending_event

RETENTION_DAYS = 2
LATER = 4  # maintenance runs "today + 4 days": the partitions up to today + 1 fall out of retention


def received(today: date, days: int) -> datetime:
    return datetime.combine(today + timedelta(days=days), time(12), timezone.utc)


async def partition_days(pool) -> set[date]:
    async with pool.acquire() as conn:
        return set(await partitions.existing_partitions(conn))


async def error_of(pool, project_id: int, event: PendingEvent) -> int:
    return await pool.fetchval(
        "select error_id from error_tracking_error_events where project_id = $1 and event_id = $2::uuid",
        project_id, event.event_id,
    )


async def test_retention_drops_expired_partitions_and_keeps_counters_right(pool, world) -> None:
    today = datetime.now(timezone.utc).date()
    later = today + timedelta(days=LATER)
    first_kept = later - timedelta(days=RETENTION_DAYS)
    async with pool.acquire() as conn:
        await partitions.maintain(conn, 7, today=today)
    project_id = (await world.project())["id"]
    writer = EventWriter(pool, max_batch=100, max_wait_ms=1, max_pending=1000)
    writer.start()
    try:
        # A: 3 events that expire, 2 that stay. B: every event expires. C: 1 expires, 1 stays (first kept day).
        # D: every stored event expires, but one more arrives just before retention, its count still pending.
        a_old = [pending_event(project_id, "a", received(today, 0)) for _ in range(3)]
        a_new = [pending_event(project_id, "a", received(today, 3)) for _ in range(2)]
        b_old = [pending_event(project_id, "b", received(today, -1))] + [pending_event(project_id, "b", received(today, 0)) for _ in range(3)]
        c_old = [pending_event(project_id, "c", received(today, 1))]
        c_new = [pending_event(project_id, "c", received(today, 2))]
        d_old = [pending_event(project_id, "d", received(today, 0))]
        everything = a_old + a_new + b_old + c_old + c_new + d_old
        assert await asyncio.gather(*(writer.write(e) for e in everything)) == [True] * len(everything)
        a, b, c, d = [await error_of(pool, project_id, group[0]) for group in (a_old, b_old, c_old, d_old)]
        before = {e["id"]: e["events_count"] for e in await error_counts(pool, project_id)}
        assert before == {a: 5, b: 4, c: 2, d: 1}
        assert await writer.write(pending_event(project_id, "d", received(today, 3)))  # not folded: no reader since
        expired_days = {d for d in await partition_days(pool) if d < first_kept}
        assert {today - timedelta(days=1), today, today + timedelta(days=1)} <= expired_days

        # Two maintenance runs at once (two replicas): the advisory lock serialises them, neither fails.
        async with pool.acquire() as one, pool.acquire() as two:
            results = await asyncio.gather(
                partitions.maintain(one, RETENTION_DAYS, today=later),
                partitions.maintain(two, RETENTION_DAYS, today=later),
            )
        dropped = [name for result in results for name in result["dropped"]]
        created = [name for result in results for name in result["created"]]
        assert sorted(dropped) == sorted(partitions.partition_name(d) for d in expired_days)
        assert len(created) == len(set(created))

        days = await partition_days(pool)
        assert not {d for d in days if d < first_kept}, sorted(days)
        wanted = {later + timedelta(days=n) for n in range(-1, partitions.DAYS_AHEAD + 1)}
        assert wanted <= days, sorted(wanted - days)

        after = {e["id"]: (e["events_count"], e["stored"]) for e in await error_counts(pool, project_id)}
        assert after == {a: (2, 2), c: (1, 1), d: (1, 1)}, after  # B had no event left: deleted

        # Idempotent: nothing to create or drop, nothing changes.
        async with pool.acquire() as conn:
            assert await partitions.maintain(conn, RETENTION_DAYS, today=later) == {"created": [], "dropped": []}
        assert await partition_days(pool) == days
        assert {e["id"]: (e["events_count"], e["stored"]) for e in await error_counts(pool, project_id)} == after

        # The writer still knows B's deleted id: a new event of B recreates it, A's counter goes on.
        b_again = pending_event(project_id, "b", received(later, 0))
        a_again = pending_event(project_id, "a", received(later, 0))
        assert await asyncio.gather(writer.write(b_again), writer.write(a_again)) == [True, True]
        b2 = await error_of(pool, project_id, b_again)
        assert b2 != b
        final = {e["id"]: (e["events_count"], e["stored"]) for e in await error_counts(pool, project_id)}
        assert final == {a: (3, 3), b2: (1, 1), c: (1, 1), d: (1, 1)}, final
    finally:
        await writer.close()
        # Give the rest of the session's tests their partitions back (today - 7 ... today + 7).
        await pool.execute("delete from error_tracking_errors where project_id = $1", project_id)
        async with pool.acquire() as conn:
            for day, name in (await partitions.existing_partitions(conn)).items():
                if day > today + timedelta(days=partitions.DAYS_AHEAD):
                    await conn.execute(f"drop table {name}")
            await partitions.maintain(conn, 7, today=today)


async def test_partitions_for_past_days_can_be_created_ahead_of_loading(pool) -> None:
    today = datetime.now(timezone.utc).date()
    first, last = today - timedelta(days=5), today - timedelta(days=3)
    async with pool.acquire() as conn:
        before = set(await partitions.existing_partitions(conn))
        try:
            created = await partitions.create_partitions(conn, first, last)
            wanted = {first + timedelta(days=n) for n in range(3)}
            assert set(created) == {partitions.partition_name(day) for day in wanted - before}
            assert wanted <= set(await partitions.existing_partitions(conn))
            assert await partitions.create_partitions(conn, first, last) == []  # idempotent
        finally:
            for day, name in (await partitions.existing_partitions(conn)).items():
                if day not in before:
                    await conn.execute(f"drop table {name}")


class _BatchAfterEachLock:
    """Retention's connection, which starts a batch of the writer right after each lock retention takes."""

    def __init__(self, conn, write) -> None:
        self._conn, self._write, self.batches = conn, write, []

    def transaction(self):
        return self._conn.transaction()

    async def fetchval(self, query: str, *args):
        return await self._conn.fetchval(query, *args)

    async def execute(self, query: str, *args):
        result = await self._conn.execute(query, *args)
        if query.startswith("lock table"):
            self.batches.append(asyncio.create_task(self._write()))
            await asyncio.sleep(0.3)  # the batch is now waiting for retention's locks, or done
        return result


async def test_batches_arriving_while_a_partition_is_dropped_neither_deadlock_nor_fail(pool, world) -> None:
    """Dropping a partition locks the whole events table in the end; a batch in the middle of its
    statement must not hold something retention waits for while it waits for retention."""
    today = datetime.now(timezone.utc).date()
    old_day = today - timedelta(days=9)
    project_id = (await world.project())["id"]
    await partitions_around_today(pool)
    async with pool.acquire() as conn:
        await partitions.create_partitions(conn, old_day, old_day)
    ids = ErrorIds()
    await write_batch(pool, [pending_event(project_id, "old", received(old_day, 0))], ids)
    await write_batch(pool, [pending_event(project_id, "kept", received(today, 0))], ids)

    async def write() -> set:
        return await write_batch(pool, [pending_event(project_id, "kept", datetime.now(timezone.utc))], ids)

    async with pool.acquire() as conn:
        retention = _BatchAfterEachLock(conn, write)
        await asyncio.wait_for(partitions._drop(retention, partitions.partition_name(old_day), old_day + timedelta(days=1)), 10)
    assert len(retention.batches) >= 2
    assert [len(await batch) for batch in retention.batches] == [1] * len(retention.batches)  # no deadlock, all stored
    counts = {e["fingerprint"]: (e["events_count"], e["stored"]) for e in await error_counts(pool, project_id)}
    assert list(counts.values()) == [(1 + len(retention.batches), 1 + len(retention.batches))], counts  # "old" deleted
    await pool.execute("delete from error_tracking_errors where project_id = $1", project_id)
