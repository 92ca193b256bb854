"""Stored errors: the triage list (filtered, searched, sorted), one error with its summary, and status changes.

Every list is served by an index (sql/006_triage.sql): a status's errors by the (project_id,
status, sort key) indexes, every status at once by merging the three statuses' ordered scans,
free text by the trigram index of error_tracking_error_search, environments and releases by
their own tables' keys. Rows carry the columns of ``ERROR_COLUMNS`` plus ``environments``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg

from app.db.pool import Executor
from app.search_query import STATUSES, ErrorQuery

__all__ = [
    "COUNT_LIMIT", "STATUSES", "error", "error_summary", "list_errors", "recent_counts", "set_status", "set_statuses", "status_counts",
]

_COLUMNS = (
    "id", "project_id", "fingerprint", "name", "description", "actor", "platform", "status", "first_seen_at",
    "last_seen_at", "events_count", "level", "first_release", "last_release",
)
ERROR_COLUMNS = ", ".join(f"e.{c}" for c in _COLUMNS) + """,
    array(select v.environment from error_tracking_error_environments v
          where v.project_id = e.project_id and v.error_id = e.id order by v.environment) as environments"""
_SORT_KEYS = {"last_seen": "last_seen_at", "first_seen": "first_seen_at", "frequency": "events_count"}
#: The events whose tags the summary counts: the latest ones.
SUMMARY_EVENTS = 100
#: Lists count at most this many errors and one more (as GitLab, which then gives no total):
#: counting a large project's every error would cost more than listing a page of them.
COUNT_LIMIT = 10_000
TOP_TAG_VALUES = 10


def _filters(project_id: int, query: ErrorQuery) -> tuple[list[str], list[object]]:
    """SQL conditions on ``e`` (an error_tracking_errors row) for every filter but the status,
    with their arguments ($1 is the project id). The text is bound, never spliced."""
    conditions, args = ["e.project_id = $1"], [project_id]

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if query.environment is not None:
        conditions.append(
            "exists (select 1 from error_tracking_error_environments v where v.project_id = e.project_id "
            f"and v.environment = {arg(query.environment)} and v.error_id = e.id)"
        )
    if query.release is not None:
        conditions.append(
            "exists (select 1 from error_tracking_error_releases r where r.project_id = e.project_id "
            f"and r.release = {arg(query.release)} and r.error_id = e.id)"
        )
    if query.level is not None:
        conditions.append(f"e.level = {arg(query.level)}")
    if query.text:
        matches = " and ".join(f"s.text ilike {arg(_substring_pattern(t))}" for t in query.text)
        conditions.append(
            "exists (select 1 from error_tracking_error_search s where s.project_id = e.project_id "
            f"and s.error_id = e.id and {matches})"
        )
    return conditions, args


def _substring_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def list_errors(
    db: Executor, project_id: int, query: ErrorQuery, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """How many match ``query`` (but at most ``COUNT_LIMIT + 1``) and a page of them, highest sort
    key first (then newest id)."""
    conditions, args = _filters(project_id, query)
    if query.status is not None:
        args.append(query.status)
        conditions.append(f"e.status = ${len(args)}")
    where = " and ".join(conditions)
    total = await db.fetchval(
        f"select count(*) from (select from error_tracking_errors e where {where} limit {COUNT_LIMIT + 1}) e", *args
    )
    key = _SORT_KEYS[query.sort]
    order = f"order by e.{key} desc, e.id desc"
    limit_arg, offset_arg = f"${len(args) + 1}", f"${len(args) + 2}"
    if query.status is not None:
        sql = f"select {ERROR_COLUMNS} from error_tracking_errors e where {where} {order} limit {limit_arg} offset {offset_arg}"
    else:
        # Each status's ordered index scan, merged: no index orders a project's errors across statuses.
        branches = " union all ".join(
            f"(select e.* from error_tracking_errors e where {where} and e.status = '{status}' "
            f"{order} limit {limit_arg}::bigint + {offset_arg}::bigint)"
            for status in STATUSES
        )
        sql = f"select {ERROR_COLUMNS} from ({branches}) e {order} limit {limit_arg} offset {offset_arg}"
    rows = await db.fetch(sql, *args, limit, offset)
    return total, rows


async def status_counts(db: Executor, project_id: int, query: ErrorQuery) -> dict[str, int]:
    """How many errors of each status match ``query``'s other filters (the list's tabs), each
    counted along its status's index and at most ``COUNT_LIMIT + 1``."""
    conditions, args = _filters(project_id, query)
    where = " and ".join(conditions)
    counts = " union all ".join(
        f"select '{status}' as status, count(*) from "
        f"(select from error_tracking_errors e where {where} and e.status = '{status}' limit {COUNT_LIMIT + 1}) e"
        for status in STATUSES
    )
    return {r["status"]: r["count"] for r in await db.fetch(counts, *args)}


async def error(db: Executor, project_id: int, error_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"select {ERROR_COLUMNS} from error_tracking_errors e where e.project_id = $1 and e.id = $2", project_id, error_id
    )


async def set_status(db: Executor, project_id: int, error_id: int, status: str) -> asyncpg.Record | None:
    rows = await set_statuses(db, project_id, [error_id], status)
    return rows[0] if rows else None


async def set_statuses(db: Executor, project_id: int, error_ids: list[int], status: str) -> list[asyncpg.Record]:
    """Set the status of those of ``error_ids`` that are this project's errors; returns them, by id.
    Rows are updated in key order, as the writer locks them, so that the two never deadlock."""
    return await db.fetch(
        f"""with updated as (
                update error_tracking_errors e set status = $3, updated_at = now()
                from (select id from error_tracking_errors where project_id = $1 and id = any($2::bigint[])
                      order by id for no key update) l
                where e.project_id = $1 and e.id = l.id
                returning e.*)
            select {ERROR_COLUMNS} from updated e order by e.id""",
        project_id, error_ids, status,
    )


def _hours_ago(now: datetime, hours: int) -> datetime:
    return now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)


# Events are received at most a minute before they occurred (app/ingest/summary.py clamps
# timestamps in the future): a bound on received_on that prunes older partitions.
_COUNTS_SINCE = """
    select v.error_id, date_trunc('hour', v.occurred_at, 'UTC') as start, count(*) as n
    from error_tracking_error_events v
    where v.project_id = $1 and v.error_id = any($2::bigint[]) and v.occurred_at >= $3
      and v.received_on >= (($3::timestamptz - interval '1 minute') at time zone 'UTC')::date and v.occurred_at <= $4
    group by 1, 2"""


async def recent_counts(
    db: Executor, project_id: int, error_ids: list[int], now: datetime, hours: int = 24
) -> dict[int, list[int]]:
    """Events per hour of each error over the last ``hours`` hours (the current one last), oldest first."""
    since = _hours_ago(now, hours)
    rows = await db.fetch(_COUNTS_SINCE, project_id, error_ids, since, now)
    counts = {error_id: [0] * hours for error_id in error_ids}
    for row in rows:
        counts[row["error_id"]][int((row["start"] - since) / timedelta(hours=1))] += row["n"]
    return counts


async def error_summary(db: Executor, project_id: int, error_id: int, now: datetime) -> dict:
    """What the detail page shows beside the error: events per hour (24 h) and per day (30 days),
    both oldest first; each tag's most frequent values over the latest events; environments and releases."""
    hour_start = _hours_ago(now, 24)
    day_start = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    rows = await db.fetch(_COUNTS_SINCE, project_id, [error_id], day_start, now)
    hourly = [0] * 24
    daily = [0] * 30
    for row in rows:
        daily[(row["start"] - day_start).days] += row["n"]
        if row["start"] >= hour_start:
            hourly[int((row["start"] - hour_start) / timedelta(hours=1))] += row["n"]
    return {
        "events_per_hour": [{"start": hour_start + timedelta(hours=i), "count": n} for i, n in enumerate(hourly)],
        "events_per_day": [{"start": day_start + timedelta(days=i), "count": n} for i, n in enumerate(daily)],
        "tags": await _tags(db, project_id, error_id),
        "environments": await _values(db, "environment", project_id, error_id),
        "releases": await _values(db, "release", project_id, error_id),
    }


async def _values(db: Executor, column: str, project_id: int, error_id: int) -> list[str]:
    table = {"environment": "error_tracking_error_environments", "release": "error_tracking_error_releases"}[column]
    rows = await db.fetch(
        f"select {column} from {table} where project_id = $1 and error_id = $2 order by {column}", project_id, error_id
    )
    return [r[column] for r in rows]


# Sentry's tags are an object or a list of [key, value] pairs; the level, environment and
# release columns count as tags too, as Sentry shows them (and take the place of tags so named).
_TAGS = """
    with recent as (
        select v.level, v.environment, v.release, coalesce(v.payload_text::jsonb, v.payload) -> 'tags' as tags
        from error_tracking_error_events v
        where v.project_id = $1 and v.error_id = $2
        order by v.occurred_at desc limit $3
    ), pairs as (
        select t.key, t.value from recent,
            jsonb_each_text(case jsonb_typeof(recent.tags) when 'object' then recent.tags else '{}' end) t
        where t.key not in ('level', 'environment', 'release')
        union all
        select p ->> 0, p ->> 1 from recent,
            jsonb_array_elements(case jsonb_typeof(recent.tags) when 'array' then recent.tags else '[]' end) p
        where jsonb_typeof(p) = 'array' and p ->> 0 not in ('level', 'environment', 'release')
        union all
        select c.key, c.value from recent,
            lateral (values ('level', recent.level), ('environment', recent.environment), ('release', recent.release))
            c(key, value)
    ), counted as (
        select key, value, count(*) as n,
               row_number() over (partition by key order by count(*) desc, value) as rank
        from pairs where key is not null and value is not null group by key, value
    )
    select key, value, n from counted where rank <= $4 order by key, n desc, value"""


async def _tags(db: Executor, project_id: int, error_id: int) -> list[dict]:
    tags: dict[str, list[dict]] = {}
    for row in await db.fetch(_TAGS, project_id, error_id, SUMMARY_EVENTS, TOP_TAG_VALUES):
        tags.setdefault(row["key"], []).append({"value": row["value"], "count": row["n"]})
    return [{"key": key, "values": values} for key, values in tags.items()]
