"""Stored errors: the triage list (filtered, searched, sorted), one error with its summary, and status changes.

Every list is served by an index (sql/006_triage.sql): a status's errors by the (project_id,
status, sort key) indexes, every status at once by merging the three statuses' ordered scans,
free text by the trigram index of error_tracking_error_search, environments and releases by
their own tables' keys. Rows carry the columns of ``ERROR_COLUMNS`` plus ``environments``.

The list's statements are planned for their arguments at every execution (``_list_snapshot``):
the search statement is the same for every word, and a pooled connection's prepared statement
switches to one generic plan after five executions, which for a rare word scans every error.

What the writer counted but has not folded into the errors' rows yet is folded first by every
function here that reads counts, times or statuses, or changes a status
(:func:`app.db.error_counts.fold`): what was acknowledged is in what is read, and an event
acknowledged before a "resolve" reopens the error before it is resolved, not after.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import asyncpg

from app.db import error_counts
from app.db.pool import Executor
from app.search_query import STATUSES, ErrorQuery

__all__ = [
    "COUNT_LIMIT", "NARROWED_COUNT_LIMIT", "STATUSES", "count_limit", "error", "error_exists", "error_summary", "list_errors",
    "recent_counts", "set_status", "set_statuses", "status_counts", "status_counts_and_page", "total_from_counts",
]

_COLUMNS = (
    "id", "project_id", "fingerprint", "name", "description", "actor", "platform", "status", "first_seen_at",
    "last_seen_at", "events_count", "level", "first_release", "last_release", "created_at",
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
#: The count limit of a list narrowed by search text or a filter: each error counted is found by
#: joining the search text, environments or releases, at up to ten times the cost of a list's.
NARROWED_COUNT_LIMIT = 1_000
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
        # The search text is stored in lower case (sql/006_triage.sql).
        matches = " and ".join(f"s.text like lower({arg(_substring_pattern(t))})" for t in query.text)
        conditions.append(
            "exists (select 1 from error_tracking_error_search s where s.project_id = e.project_id "
            f"and s.error_id = e.id and {matches})"
        )
    return conditions, args


def count_limit(query: ErrorQuery) -> int:
    """How many errors matching ``query`` are counted (one more means "more than that")."""
    narrowed = query.text or query.environment is not None or query.release is not None or query.level is not None
    return NARROWED_COUNT_LIMIT if narrowed else COUNT_LIMIT


@contextlib.asynccontextmanager
async def _list_snapshot(db: Executor) -> AsyncIterator[Executor]:
    """A connection for the list's reads: the pending counts folded on it first, then a read-only
    transaction with one snapshot (a count and a page read in it see the same errors), whose
    statements are planned for their arguments at every execution. Only for the list's
    statements: the writer's keep their generic plans. Anything else than a pool or a connection
    (a stand-in that explains statements) is used as it is."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, _list_snapshot(conn) as planned:
            yield planned
        return
    await error_counts.fold(db)
    if isinstance(db, asyncpg.Connection):
        async with db.transaction(isolation="repeatable_read", readonly=True):
            await db.execute("set local plan_cache_mode = force_custom_plan")
            yield db
    else:
        yield db


def _substring_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(project_id: int, query: ErrorQuery) -> tuple[str, list[object]]:
    """The list's SQL condition on ``e`` (every filter and the status) and its arguments."""
    conditions, args = _filters(project_id, query)
    if query.status is not None:
        args.append(query.status)
        conditions.append(f"e.status = ${len(args)}")
    return " and ".join(conditions), args


async def list_errors(
    db: Executor, project_id: int, query: ErrorQuery, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """How many match ``query`` (but at most ``count_limit(query) + 1``) and a page of them, highest
    sort key first (then newest id)."""
    where, args = _where(project_id, query)
    counted = f"select from error_tracking_errors e where {where} limit {count_limit(query) + 1}"
    async with _list_snapshot(db) as conn:
        total = await conn.fetchval(f"select count(*) from ({counted}) e", *args)
        rows = await _page(conn, query, where, args, limit, offset)
    return total, rows


async def _page(
    conn: Executor, query: ErrorQuery, where: str, args: list[object], limit: int, offset: int
) -> list[asyncpg.Record]:
    key = _SORT_KEYS[query.sort]
    order = f"order by e.{key} desc, e.id desc"
    limit_arg, offset_arg = f"${len(args) + 1}", f"${len(args) + 2}"
    if query.status is not None:
        page = f"select e.* from error_tracking_errors e where {where} {order} limit {limit_arg} offset {offset_arg}"
    else:
        # Each status's ordered index scan, merged: no index orders a project's errors across statuses.
        branches = " union all ".join(
            f"(select e.* from error_tracking_errors e where {where} and e.status = '{status}' "
            f"{order} limit {limit_arg}::bigint + {offset_arg}::bigint)"
            for status in STATUSES
        )
        page = f"select e.* from ({branches}) e {order} limit {limit_arg} offset {offset_arg}"
    # The page's rows chosen first: in the same select as OFFSET, the environments subquery of
    # ERROR_COLUMNS would also run for every row skipped (1,000 for page 50 of 20).
    return await conn.fetch(f"select {ERROR_COLUMNS} from ({page}) e {order}", *args, limit, offset)


def total_from_counts(counts: dict[str, int], query: ErrorQuery) -> int:
    """:func:`list_errors`' total from :func:`status_counts` of the same query: each status is
    counted to the same limit, so past it their sum is past it too."""
    if query.status is not None:
        return counts[query.status]
    return min(sum(counts.values()), count_limit(query) + 1)


async def status_counts(db: Executor, project_id: int, query: ErrorQuery) -> dict[str, int]:
    """How many errors of each status match ``query``'s other filters (the list's tabs), each
    counted along its status's index and at most ``count_limit(query) + 1``."""
    async with _list_snapshot(db) as conn:
        return await _status_counts(conn, project_id, query)


async def status_counts_and_page(
    db: Executor, project_id: int, query: ErrorQuery, limit: int, offset: int
) -> tuple[dict[str, int], list[asyncpg.Record]]:
    """The web list: :func:`status_counts` (its tabs, from which its total comes) and the page of
    :func:`list_errors`, in one snapshot."""
    where, args = _where(project_id, query)
    async with _list_snapshot(db) as conn:
        return await _status_counts(conn, project_id, query), await _page(conn, query, where, args, limit, offset)


async def _status_counts(conn: Executor, project_id: int, query: ErrorQuery) -> dict[str, int]:
    conditions, args = _filters(project_id, query)
    where, limit = " and ".join(conditions), count_limit(query) + 1
    counts = " union all ".join(
        f"select '{status}' as status, count(*) from "
        f"(select from error_tracking_errors e where {where} and e.status = '{status}' limit {limit}) e"
        for status in STATUSES
    )
    return {r["status"]: r["count"] for r in await conn.fetch(counts, *args)}


async def error(db: Executor, project_id: int, error_id: int) -> asyncpg.Record | None:
    await error_counts.fold(db)
    return await db.fetchrow(
        f"select {ERROR_COLUMNS} from error_tracking_errors e where e.project_id = $1 and e.id = $2", project_id, error_id
    )


async def error_exists(db: Executor, project_id: int, error_id: int) -> bool:
    """Whether the project has this error: no counter is read, so nothing is folded."""
    return await db.fetchval(
        "select exists (select 1 from error_tracking_errors where project_id = $1 and id = $2)", project_id, error_id
    )


async def set_status(db: Executor, project_id: int, error_id: int, status: str) -> asyncpg.Record | None:
    rows = await set_statuses(db, project_id, [error_id], status)
    return rows[0] if rows else None


async def set_statuses(db: Executor, project_id: int, error_ids: list[int], status: str) -> list[asyncpg.Record]:
    """Set the status of those of ``error_ids`` that are this project's errors; returns them, by id.
    Rows are updated in key order, as the counts' fold locks them, so that the two never deadlock."""
    await error_counts.fold(db)
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


async def error_summary(db: Executor, error: asyncpg.Record, now: datetime) -> dict:
    """What the detail page shows beside ``error`` (a row of :func:`error`): events per hour (24 h)
    and per day (30 days), both oldest first; each tag's most frequent values over the latest
    events; environments (the row's own) and releases."""
    project_id, error_id = error["project_id"], error["id"]
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
        "environments": list(error["environments"]),
        "releases": await _releases(db, project_id, error_id),
    }


async def _releases(db: Executor, project_id: int, error_id: int) -> list[str]:
    rows = await db.fetch(
        "select release from error_tracking_error_releases where project_id = $1 and error_id = $2 order by release",
        project_id, error_id,
    )
    return [r["release"] for r in rows]


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
