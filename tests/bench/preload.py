"""The large table of ``--preload``: synthetic events inserted before the run, spread over the last hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.db import partitions
from app.ingest.payload import pack_event
from tests.bench import sql
from tests.conftest import connect

CHUNK = 500_000  # events a statement


async def preload(dsn: str, count: int, hours: int = 24) -> None:
    """Insert ``count`` small synthetic events over 5,000 errors, for the large-table run.

    Their receive times are spread evenly over the last ``hours`` hours, as in a table that grew
    to that size over that time: 24 puts a whole busy day (10 million: 116 events/s around the
    clock) into the partitions the run then writes to; 1 puts every event into the hour the run
    writes to, the worst case for the index it inserts into.
    """
    async with connect(dsn) as conn:
        now = datetime.now(timezone.utc)
        await partitions.create_partitions(conn, (now - timedelta(hours=hours)).date(), now.date())
        project_id = await conn.fetchval(sql.FIRST_PROJECT)
        await conn.execute(sql.PRELOAD_ERRORS, project_id)
        ids = [r["id"] for r in await conn.fetch(sql.PROJECT_ERROR_IDS, project_id)]
        payload = pack_event({"message": "preloaded event", "platform": "python", "level": "error"})
        for start in range(0, count, CHUNK):
            await conn.execute(sql.PRELOAD_EVENTS, project_id, ids, min(CHUNK, count - start), payload, start, now, hours)
        await conn.execute(sql.PRELOAD_COUNTERS)
        for statement in sql.SETTLE:
            await conn.execute(statement)
