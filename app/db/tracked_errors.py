"""Stored errors: listing (most recently seen first) and changing their status."""

from __future__ import annotations

import asyncpg

from app.db.pool import Executor

STATUSES = ("unresolved", "resolved", "ignored")
ERROR_COLUMNS = (
    "id, project_id, fingerprint, name, description, actor, platform, status, first_seen_at, last_seen_at, events_count"
)


async def list_errors(
    db: Executor, project_id: int, status: str | None, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """A page of a project's errors, by ``last_seen_at`` descending (the (project_id, status,
    last_seen_at) index serves it as a range scan when a status is given)."""
    where = "project_id = $1 and ($2::text is null or status = $2)"
    total = await db.fetchval(f"select count(*) from error_tracking_errors where {where}", project_id, status)
    rows = await db.fetch(
        f"select {ERROR_COLUMNS} from error_tracking_errors where {where} "
        "order by last_seen_at desc, id desc limit $3 offset $4",
        project_id, status, limit, offset,
    )
    return total, rows


async def error(db: Executor, project_id: int, error_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"select {ERROR_COLUMNS} from error_tracking_errors where project_id = $1 and id = $2", project_id, error_id
    )


async def set_status(db: Executor, project_id: int, error_id: int, status: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"""update error_tracking_errors set status = $3, updated_at = now()
            where project_id = $1 and id = $2 returning {ERROR_COLUMNS}""",
        project_id, error_id, status,
    )
