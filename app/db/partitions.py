"""Daily partitions of ``error_tracking_error_events`` by receive day: created ahead of time, dropped whole by retention.

A partition goes when its day is more than ``retention_days`` days ago. Dropping it subtracts
its events from each error's ``events_count`` in the same transaction, so the counters keep
matching the events that are stored. Errors whose last event has aged out are deleted with it.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone

import asyncpg

from app.db import error_counts
from app.db.pool import advisory_lock

log = logging.getLogger("errgate.partitions")

PARENT = "error_tracking_error_events"
DAYS_AHEAD = 7
_NAME_RE = re.compile(rf"^{PARENT}_(\d{{8}})$")
_LOCK_KEY = 0x6572726761746570  # "errgatep"


def partition_name(day: date) -> str:
    return f"{PARENT}_{day:%Y%m%d}"


async def existing_partitions(conn: asyncpg.Connection) -> dict[date, str]:
    rows = await conn.fetch(
        """select c.relname from pg_inherits i
           join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
           where p.relname = $1""",
        PARENT,
    )
    found = {}
    for row in rows:
        match = _NAME_RE.match(row["relname"])
        if match:
            found[datetime.strptime(match.group(1), "%Y%m%d").date()] = row["relname"]
    return found


async def maintain(conn: asyncpg.Connection, retention_days: int, today: date | None = None) -> dict[str, list[str]]:
    """Create the partitions from yesterday to ``DAYS_AHEAD`` days ahead; drop those past retention."""
    today = today or datetime.now(timezone.utc).date()
    first_kept = today - timedelta(days=retention_days)
    first_day = today - timedelta(days=1)  # just after midnight, the duplicate check reads yesterday's last hour
    dropped: list[str] = []
    async with advisory_lock(conn, _LOCK_KEY):
        existing = await existing_partitions(conn)
        # Session-level advisory locks stack: create_partitions takes this one again and releases it.
        created = await create_partitions(conn, first_day, today + timedelta(days=DAYS_AHEAD))
        for day, name in sorted(existing.items()):
            if day < first_kept:
                await _drop(conn, name, first_kept)
                dropped.append(name)
    if created or dropped:
        log.info("partitions maintained", extra={"partitions_created": len(created), "partitions_dropped": len(dropped)})
    return {"created": created, "dropped": dropped}


async def create_partitions(conn: asyncpg.Connection, first_day: date, last_day: date) -> list[str]:
    """Create the missing partitions from ``first_day`` to ``last_day`` (inclusive); returns their names.
    :func:`maintain` needs them from yesterday on; loading older events (the benchmark does) needs past days."""
    created = []
    async with advisory_lock(conn, _LOCK_KEY):
        existing = await existing_partitions(conn)
        day = first_day
        while day <= last_day:
            if day not in existing:
                name = partition_name(day)
                await conn.execute(
                    f"create table if not exists {name} partition of {PARENT} "
                    f"for values from ('{day.isoformat()}') to ('{(day + timedelta(days=1)).isoformat()}')"
                )
                created.append(name)
            day += timedelta(days=1)
    return created


async def _drop(conn: asyncpg.Connection, name: str, cutoff_day: date) -> None:
    """Drop one partition, its events subtracted from their errors' counters, and the errors left
    without events with it.

    The locks come in an order in which nobody waits in a cycle. The counts' fold lock first:
    folds update the same counters (readers wait for it while holding nothing; the workers' folds
    skip). The partition is only read meanwhile, while batches go on. Then the whole events table:
    dropping a partition needs it anyway, and every batch statement locks it first, so none is
    left half-way holding something else; the counts pending then are folded, so an error about to
    be deleted for having no events cannot have just got one.
    """
    async with conn.transaction():
        await error_counts.fold(conn)  # takes the fold lock, held to the end
        await conn.execute(f"lock table {name} in share mode")
        await conn.execute(
            f"""update error_tracking_errors e set events_count = greatest(0, e.events_count - c.n), updated_at = now()
                from (select project_id, error_id, count(*) as n from {name} group by 1, 2) c
                where e.project_id = c.project_id and e.id = c.error_id"""
        )
        await conn.execute(f"lock table {PARENT} in access exclusive mode")
        await error_counts.fold(conn)
        await conn.execute(f"drop table {name}")
        await conn.execute(
            "delete from error_tracking_errors where events_count = 0 and last_seen_at < $1",
            datetime.combine(cutoff_day, datetime.min.time(), timezone.utc),
        )
