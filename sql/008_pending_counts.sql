-- Errors' counters folded in after their events commit, not in the events' transaction.
--
-- Counting a batch on its errors' rows in the batch's own statement locked those rows: batches
-- of the same frequent errors, from several commits in flight or several workers, waited on
-- each other's row locks, and every count was a non-HOT update of a row with five indexes.
-- The writer now appends one row per (batch, error) here instead (no index, no lock on the
-- error), and error_tracking_fold_counts() moves them onto the errors, once for many batches:
-- each worker calls it every ERRGATE_COUNTS_FOLD_MS, and every read of counts or statuses calls
-- it first, so that what was acknowledged is counted in what is read.

create table error_tracking_error_counts_pending (
    project_id        bigint not null,
    error_id          bigint not null,
    events            bigint not null,       -- stored events (duplicates and events over the cap not counted)
    first_seen_at     timestamptz not null,
    last_seen_at      timestamptz not null,
    latest_at         timestamptz not null,  -- the latest event's time, stored or not, and its level
    level             text not null,
    first_release     text,
    first_release_at  timestamptz,
    last_release      text,
    last_release_at   timestamptz
) with (
    -- Every row is deleted within a second or so of its insert: vacuumed often, so that the
    -- fold's scan stays over a few pages.
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0
);

-- Folds every pending row into its error, with the rules the writer applied per batch: counts
-- add up, first and last seen widen, a resolved error with new stored events is unresolved
-- again, the latest event's level and the first and last release by event time are kept.
-- Rows of an error deleted since are dropped. One fold at a time (a transaction-level advisory
-- lock): with wait, the caller waits for a running fold and then folds; without, it returns
-- null at once when another fold runs. Returns the number of errors updated.
create function error_tracking_fold_counts(wait boolean) returns bigint language plpgsql as $$
declare
    folded bigint;
begin
    if wait then
        perform pg_advisory_xact_lock(7310030933517951854);  -- "errgatcn"
    elsif not pg_try_advisory_xact_lock(7310030933517951854) then
        return null;
    end if;
    with taken as (
        delete from error_tracking_error_counts_pending returning *
    ), c as (
        select project_id as p, error_id as er, sum(events) as n,
               min(first_seen_at) as first_seen, max(last_seen_at) as last_seen,
               max(latest_at) as latest_at, (array_agg(level order by latest_at desc))[1] as level,
               (array_agg(first_release order by first_release_at) filter (where first_release is not null))[1]
                   as first_release,
               min(first_release_at) as first_release_at,
               (array_agg(last_release order by last_release_at desc) filter (where last_release is not null))[1]
                   as last_release,
               max(last_release_at) as last_release_at
        from taken group by project_id, error_id
    ), locked as materialized (
        -- In key order, as every other writer of these rows locks them, so that none deadlock.
        select e.project_id, e.id from error_tracking_errors e
        where (e.project_id, e.id) in (select p, er from c)
        order by e.project_id, e.id
        for no key update of e
    )
    update error_tracking_errors e
    set events_count = e.events_count + c.n,
        first_seen_at = least(e.first_seen_at, c.first_seen),
        last_seen_at = greatest(e.last_seen_at, c.last_seen),
        status = case when e.status = 'resolved' and c.n > 0 then 'unresolved' else e.status end,
        level = case when c.latest_at >= e.last_seen_at then c.level else e.level end,
        first_release = case when e.first_release is null or c.first_release_at < e.first_seen_at
                             then coalesce(c.first_release, e.first_release) else e.first_release end,
        last_release = case when e.last_release is null or c.last_release_at >= e.last_seen_at
                            then coalesce(c.last_release, e.last_release) else e.last_release end,
        updated_at = now()
    from c join locked l on l.project_id = c.p and l.id = c.er
    where e.project_id = c.p and e.id = c.er;
    get diagnostics folded = row_count;
    return folded;
end $$;
