"""The benchmark's own SQL, which errgate never runs: the preload, the counts after a run, the WAL totals."""

FIRST_PROJECT = "select id from projects order by id limit 1"

# 5,000 errors for the preloaded events to belong to.
PRELOAD_ERRORS = """
    insert into error_tracking_errors (project_id, fingerprint, name, description, actor, platform,
                                       first_seen_at, last_seen_at, events_count)
    select $1, 'preload-' || g, 'PreloadError', 'preloaded', 'f(m)', 'python', now(), now(), 0
    from generate_series(1, 5000) g on conflict do nothing"""

PROJECT_ERROR_IDS = "select id from error_tracking_errors where project_id = $1"

# $3 events spread over the errors $2, the (1 + $5)-th to the ($5 + $3)-th of the preload, the
# receive time of each within the $7 hours before $6, as they are when a table grew over that time.
PRELOAD_EVENTS = """
    insert into error_tracking_error_events
        (project_id, error_id, event_id, level, environment, release, occurred_at, received_at,
         received_on, received_hour, payload_text)
    select $1, ($2::bigint[])[(1 + g % array_length($2::bigint[], 1))::int], gen_random_uuid(), 'error',
           'production', 'bench@1.0', r - (g % 400000) * interval '1 second', r,
           (r at time zone 'UTC')::date, extract(hour from r at time zone 'UTC')::smallint, $4
    from generate_series($5::bigint, $5::bigint + $3 - 1) g,
         lateral (select $6::timestamptz - (g % ($7::int * 3600)) * interval '1 second' as r) d"""

PRELOAD_COUNTERS = """
    update error_tracking_errors e set events_count = c.n
    from (select error_id, count(*) n from error_tracking_error_events group by 1) c where e.id = c.error_id"""

# Let the tables settle as they would in production before measuring: visibility map,
# statistics, and the preload's dirty pages written out.
SETTLE = (
    "vacuum (analyze) error_tracking_errors",
    "vacuum (analyze) error_tracking_error_events",
    "checkpoint",
)

STORED_EVENTS = "select count(*) from error_tracking_error_events"
STORED_ERRORS = "select count(*) from error_tracking_errors where fingerprint not like 'preload-%'"
# Deadlocks PostgreSQL detected in the run's database (each one a batch written again by errgate).
DEADLOCKS = "select deadlocks from pg_stat_database where datname = current_database()"

FIRST_ERROR = "select id from error_tracking_errors where project_id = $1 limit 1"
# An error's latest events, the query the (project_id, error_id, occurred_at) index is for.
ERROR_EVENTS = """
    select event_id, occurred_at from error_tracking_error_events
    where project_id = $1 and error_id = $2 order by occurred_at desc limit 20"""

# Written by the whole server so far: WAL bytes and full-page images.
WAL_TOTALS = "select wal_bytes::bigint, wal_fpi from pg_stat_wal"
