"""One error's stored events: newest first, the latest, one by id, and an event's neighbours.

Events are ordered by (occurred_at, event_id), newest first, along the (project_id, error_id,
occurred_at) index of every day partition. The payload is the stored JSON text
(``payload_text``) or, for events stored before sql/003_payload_text.sql, the jsonb ``payload``;
rows are returned as dicts with it decoded.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson

from app.db import error_counts
from app.db.pool import Executor

_COLUMNS = """v.event_id, v.error_id, v.occurred_at, v.received_at, v.environment, v.release, v.level,
    coalesce(v.payload_text, v.payload::text) as payload"""
_OF_ERROR = "v.project_id = $1 and v.error_id = $2"
_NEWEST_FIRST = "order by v.occurred_at desc, v.event_id desc"


def _decoded(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    event = dict(row)
    event["payload"] = orjson.loads(event["payload"])
    return event


async def list_events(
    db: Executor, project_id: int, error_id: int, limit: int, offset: int
) -> tuple[int | None, list[dict[str, Any]]]:
    """The error's stored events count (its ``events_count``, kept by the writer and retention,
    so no count over its events) and a page of them, newest first; (None, []) for an unknown error."""
    await error_counts.fold(db)
    total = await db.fetchval(
        "select events_count from error_tracking_errors where project_id = $1 and id = $2", project_id, error_id
    )
    rows = await db.fetch(
        f"select {_COLUMNS} from error_tracking_error_events v where {_OF_ERROR} {_NEWEST_FIRST} limit $3 offset $4",
        project_id, error_id, limit, offset,
    )
    return total, [_decoded(r) for r in rows]


async def latest_event(db: Executor, project_id: int, error_id: int) -> dict[str, Any] | None:
    return _decoded(await db.fetchrow(
        f"select {_COLUMNS} from error_tracking_error_events v where {_OF_ERROR} {_NEWEST_FIRST} limit 1",
        project_id, error_id,
    ))


# The primary key is (project_id, received_on, received_hour, event_id), and event ids are
# random: an event is found by probing that key once per hour of each day since its error was
# created (from a day before, for the midnight between receiving the first event and
# committing it), each probe pruned to its day's partition, rather than by reading all of the
# error's events or all of the project's keys in every partition.
_EVENT = f"""
    select {_COLUMNS}
    from unnest($4::date[]) d(day) cross join generate_series(0, 23) h(hour)
    cross join lateral (
        select * from error_tracking_error_events v
        where v.project_id = $1 and v.received_on = d.day and v.received_hour = h.hour and v.event_id = $3
        offset 0) v
    where v.error_id = $2
    limit 1"""


async def event(db: Executor, project_id: int, error_id: int, event_id: uuid.UUID) -> dict[str, Any] | None:
    created_at = await db.fetchval(
        "select created_at from error_tracking_errors where project_id = $1 and id = $2", project_id, error_id
    )
    if created_at is None:
        return None
    return await event_of_error(db, project_id, error_id, event_id, created_at)


async def event_of_error(
    db: Executor, project_id: int, error_id: int, event_id: uuid.UUID, created_at: datetime
) -> dict[str, Any] | None:
    """:func:`event` of an error already read (``created_at`` its creation time)."""
    first_day = created_at.astimezone(timezone.utc).date() - timedelta(days=1)
    days = [first_day + timedelta(days=n) for n in range((datetime.now(timezone.utc).date() - first_day).days + 2)]
    return _decoded(await db.fetchrow(_EVENT, project_id, error_id, event_id, days))


_NEIGHBOUR = f"""
    select v.event_id from error_tracking_error_events v where {_OF_ERROR} and {{where}}
    order by v.occurred_at {{direction}}, v.event_id {{direction}} limit 1"""
_NEIGHBOURS = {
    "newest": _NEIGHBOUR.format(where="(v.occurred_at, v.event_id) > ($3, $4)", direction="desc"),
    "newer": _NEIGHBOUR.format(where="(v.occurred_at, v.event_id) > ($3, $4)", direction="asc"),
    "older": _NEIGHBOUR.format(where="(v.occurred_at, v.event_id) < ($3, $4)", direction="desc"),
    "oldest": _NEIGHBOUR.format(where="(v.occurred_at, v.event_id) < ($3, $4)", direction="asc"),
}
_ALL_NEIGHBOURS = "select " + ", ".join(f"({sql}) as {name}" for name, sql in _NEIGHBOURS.items())


async def neighbours(db: Executor, project_id: int, error_id: int, event_row: dict[str, Any]) -> dict[str, uuid.UUID | None]:
    """The ids of the newest, next newer, next older and oldest events around ``event_row``;
    None where that would be the event itself (it is the newest, or the oldest)."""
    row = await db.fetchrow(_ALL_NEIGHBOURS, project_id, error_id, event_row["occurred_at"], event_row["event_id"])
    return dict(row)
