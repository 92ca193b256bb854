"""Batches of events in SQL: their errors created and looked up, the events stored with their pending counts, empty errors deleted.

Storing the events and their pending counts is one statement. Every statement takes
one array per column (``unnest``), so a batch costs one round trip per statement whatever its size.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import asyncpg

_CREATE_ERRORS = """
    insert into error_tracking_errors
        (project_id, fingerprint, name, description, actor, platform, first_seen_at, last_seen_at)
    select p, f, n, d, a, pl, t, t
    from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
         as x(p, f, n, d, a, pl, t)
    order by p, f
    on conflict (project_id, fingerprint) do nothing
    returning project_id, id"""

_ERROR_IDS = """
    select e.id, e.project_id, e.fingerprint from error_tracking_errors e
    join unnest($1::bigint[], $2::text[]) as x(p, f) on e.project_id = x.p and e.fingerprint = x.f"""

# One statement, so one round trip and its own transaction: insert the events and append what
# they count for their errors to the pending counts (sql/008_pending_counts.sql), which
# error_tracking_fold_counts() moves onto the errors' rows later, for many batches at once. The
# statement takes no lock on an error's row other than the foreign keys' shared one, so batches of
# the same frequent errors commit side by side without waiting on each other.
#
# A retry of a stored event is skipped by the primary key when it arrives in the same receive hour
# (UTC), or by the look at the previous hour's key range: so within one to two hours
# (sql/004_hourly_dedup_key.sql says why the key is by hour). With a cap of stored events per
# error ($10), events of an error at the cap are not stored but still move its last_seen_at; the
# cap is checked against the folded count plus the pending ones (summed once per batch, only
# with a cap), and may be passed by at most one batch. Counters count stored events
# only, so that retention, which drops stored events, keeps them right.
#
# The pending row carries what the errors list filters on (sql/006_triage.sql): the latest
# event's level and the first and last release with their event times, since batches may bring
# older events. The (error, environment) and (error, release) pairs are inserted once each, for
# the events flagged ($11, $12) as maybe bringing a new one (the writer leaves out pairs it knows
# are stored: most events repeat their error's), in key order, so that two batches inserting the
# same pairs never wait on each other in a cycle.
_INSERT_EVENTS = """
    with input as (
        select * from unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                             $7::timestamptz[], $8::timestamptz[], $9::text[], $11::boolean[], $12::boolean[])
            as x(p, er, ev, l, env, rel, t, r, pl, new_env, new_rel)
    ), pending as materialized (
        -- Only with a cap: the batch's errors' counts not folded yet, summed once for the batch.
        select c.project_id, c.error_id, sum(c.events) as n from error_tracking_error_counts_pending c
        where $10::bigint is not null and (c.project_id, c.error_id) in (select p, er from input)
        group by c.project_id, c.error_id
    ), inserted as (
        insert into error_tracking_error_events
            (project_id, error_id, event_id, level, environment, release, occurred_at, received_at, received_on,
             received_hour, payload_text)
        select p, er, ev, l, env, rel, t, r,
               (r at time zone 'UTC')::date, extract(hour from r at time zone 'UTC')::smallint, pl
        from input x
        where not exists (
                select 1 from error_tracking_error_events o
                where o.project_id = x.p and o.event_id = x.ev
                  and o.received_on = ((x.r - interval '1 hour') at time zone 'UTC')::date
                  and o.received_on >= $13::date
                  and o.received_hour = extract(hour from (x.r - interval '1 hour') at time zone 'UTC')::smallint)
          and ($10::bigint is null or $10::bigint > (
                select e.events_count + coalesce((select pc.n from pending pc
                                                  where pc.project_id = x.p and pc.error_id = x.er), 0)
                from error_tracking_errors e where e.project_id = x.p and e.id = x.er))
        order by p, ev
        on conflict do nothing
        returning project_id, error_id, event_id, occurred_at
    ), environments as (
        insert into error_tracking_error_environments (project_id, environment, error_id)
        select distinct p, env, er from input where new_env and env is not null
        order by 1, 2, 3
        on conflict do nothing
    ), releases as (
        insert into error_tracking_error_releases (project_id, release, error_id)
        select distinct p, rel, er from input where new_rel and rel is not null
        order by 1, 2, 3
        on conflict do nothing
    ), counted as (
        insert into error_tracking_error_counts_pending
            (project_id, error_id, events, first_seen_at, last_seen_at, latest_at, level,
             first_release, first_release_at, last_release, last_release_at)
        select a.p, a.er, coalesce(i.n, 0), coalesce(i.first_seen, a.first_seen), coalesce(i.last_seen, a.last_seen),
               a.last_seen, a.level, a.first_release, a.first_release_at, a.last_release, a.last_release_at
        from (select p, er, min(t) as first_seen, max(t) as last_seen, (array_agg(l order by t desc))[1] as level,
                     (array_agg(rel order by t) filter (where rel is not null))[1] as first_release,
                     min(t) filter (where rel is not null) as first_release_at,
                     (array_agg(rel order by t desc) filter (where rel is not null))[1] as last_release,
                     max(t) filter (where rel is not null) as last_release_at
              from input group by p, er) a
        left join (select project_id, error_id, count(*) as n, min(occurred_at) as first_seen,
                          max(occurred_at) as last_seen
                   from inserted group by project_id, error_id) i
          on i.project_id = a.p and i.error_id = a.er
        where i.n is not null or $10::bigint is not null
    )
    select project_id, error_id, event_id from inserted"""

# A retry whose content changed may have created an error that then got no event: deleted in
# the transaction that created it, so nothing else can point at it yet.
_DELETE_ERRORS = """
    delete from error_tracking_errors e using unnest($1::bigint[], $2::bigint[]) as x(p, id)
    where e.project_id = x.p and e.id = x.id"""


async def create_errors(
    conn: asyncpg.Connection,
    project_ids: list[int],
    fingerprints: list[str],
    names: list[str],
    descriptions: list[str],
    actors: list[str],
    platforms: list[str],
    seen_at: list[datetime],
) -> list[asyncpg.Record]:
    """Insert the errors not stored yet (in key order); returns the ``(project_id, id)`` of those created."""
    return await conn.fetch(_CREATE_ERRORS, project_ids, fingerprints, names, descriptions, actors, platforms, seen_at)


async def error_ids(conn: asyncpg.Connection, project_ids: list[int], fingerprints: list[str]) -> list[asyncpg.Record]:
    """``(id, project_id, fingerprint)`` of the stored errors among these keys."""
    return await conn.fetch(_ERROR_IDS, project_ids, fingerprints)


async def insert_events(
    conn: asyncpg.Connection,
    project_ids: list[int],
    error_ids: list[int],
    event_ids: list[str],
    levels: list[str],
    environments: list[str | None],
    releases: list[str | None],
    occurred_at: list[datetime],
    received_at: list[datetime],
    payloads: list[str],
    max_events_per_error: int | None,
    new_environments: list[bool],
    new_releases: list[bool],
) -> list[asyncpg.Record]:
    """Store the events and append their counts to the pending counts (all errors must exist), and the
    (error, environment) and (error, release) pairs of the events flagged in ``new_environments``
    and ``new_releases``; returns the ``(project_id, error_id, event_id)`` of the events really inserted
    (duplicates and events over the cap excluded)."""
    return await conn.fetch(
        _INSERT_EVENTS, project_ids, error_ids, event_ids, levels, environments, releases, occurred_at, received_at,
        payloads, max_events_per_error, new_environments, new_releases, _first_day_looked_at(received_at),
    )


def _first_day_looked_at(received_at: list[datetime]) -> date:
    """The earliest receive day the look at the previous hour's keys can need ($13). Redundant for
    the result, but a parameter the executor prunes the events' partitions by before it opens
    them: without it, every batch opened every partition's key index (with 90 days of partitions,
    PostgreSQL's CPU per event rose by about half)."""
    return (min(received_at) - timedelta(hours=1)).astimezone(timezone.utc).date()


async def delete_errors(conn: asyncpg.Connection, project_ids: list[int], error_ids: list[int]) -> None:
    """Delete these errors, created by the same transaction and left without events."""
    await conn.execute(_DELETE_ERRORS, project_ids, error_ids)
