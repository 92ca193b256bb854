"""The benchmark's own SQL, which errgate never runs: the preload, the triage seed, the counts after a run, the WAL totals."""

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

# The triage mode's seed (tests/bench/triage_seed.py), one row per error to be, kept for the
# events' insert: the error's id once created, its events count, seen times, status, level,
# environments, name, description and actor.
TRIAGE_PLAN_TABLE = """
    create temporary table triage_plan (
        i bigint primary key, error_id bigint, n bigint, first_seen timestamptz, last_seen timestamptz,
        status text, level text, environments text[], name text, description text, actor text)"""

# $1 errors. Events counts follow Zipf's law over a shuffled rank r (about $2 / r events: a few
# errors have most of the events, most have a handful); first seen within the $4 days before $3,
# last seen mostly recently. Names from $5; descriptions and actors from the words $6 (the first
# ones far more frequent: index = V·u³, u uniform), modules from $7; the rare word $8 in five
# descriptions. The lateral subquery refers to p.i so that each error draws its own words.
TRIAGE_PLAN = """
    insert into triage_plan (i, n, first_seen, last_seen, status, level, environments, name, description, actor)
    select p.i, p.n, p.first_seen,
           case when p.n = 1 then p.first_seen
                else $3::timestamptz - ($3::timestamptz - p.first_seen) * power(random(), 2) end,
           case when p.s < 0.8 then 'unresolved' when p.s < 0.95 then 'resolved' else 'ignored' end,
           case when p.l < 0.85 then 'error' when p.l < 0.95 then 'warning' else 'fatal' end,
           coalesce(nullif(array_remove(array[case when random() < 0.7 then 'production' end,
                                              case when random() < 0.4 then 'staging' end,
                                              case when random() < 0.3 then 'dev' end], null), '{}'),
                    array['production']),
           ($5::text[])[1 + p.i % cardinality($5::text[])],
           concat_ws(' ', w[1], w[2], w[3], 'while', w[4], w[5],
                     case when p.i % greatest($1::bigint / 5, 1) = 0 then $8::text end, '#' || p.i),
           w[6] || '_' || w[7] || '(' || ($7::text[])[1 + p.i % cardinality($7::text[])] || ')'
    from (select i, greatest(1, round($2::float8 / (1 + (i - 1) * 48271 % $1::bigint)))::bigint as n,
                 $3::timestamptz - random() * $4::int * interval '1 day' as first_seen,
                 random() as s, random() as l
          from generate_series(1, $1::bigint) i) p,
         lateral (select array_agg(($6::text[])[1 + floor(cardinality($6::text[]) * power(random(), 3))::int]) as w
                  from generate_series(1, 7 + 0 * p.i)) ws"""


def _release_index(releases: str, now: str, t: str) -> str:
    """SQL for the index in ``releases`` (one every 4 days, newest first) of the release deployed at ``t``."""
    return f"(1 + least(cardinality({releases}) - 1, (({now} at time zone 'UTC')::date - ({t} at time zone 'UTC')::date) / 4))"


# The errors of the plan ($2: the releases, $3: now), their ids written back into it. The
# search text is written by errgate's trigger.
TRIAGE_ERRORS = f"""
    with created as (
        insert into error_tracking_errors (project_id, fingerprint, name, description, actor, platform, status,
                                           first_seen_at, last_seen_at, events_count, level, first_release,
                                           last_release)
        select $1, 'triage-' || i, name, description, actor, 'python', status, first_seen, last_seen, n, level,
               ($2::text[])[{_release_index("$2::text[]", "$3::timestamptz", "first_seen")}],
               ($2::text[])[{_release_index("$2::text[]", "$3::timestamptz", "last_seen")}]
        from triage_plan order by i
        returning id, fingerprint)
    update triage_plan p set error_id = c.id from created c where c.fingerprint = 'triage-' || p.i"""

# What the writer keeps per error besides its row: the environments and releases it was seen in.
TRIAGE_ENVIRONMENTS = """
    insert into error_tracking_error_environments (project_id, environment, error_id)
    select $1, environment, error_id from triage_plan, unnest(environments) environment"""

TRIAGE_RELEASES = f"""
    insert into error_tracking_error_releases (project_id, release, error_id)
    select $1, ($2::text[])[k], error_id from triage_plan,
           generate_series({_release_index("$2::text[]", "$3::timestamptz", "last_seen")},
                           {_release_index("$2::text[]", "$3::timestamptz", "first_seen")}) k"""

# The events of the errors i with i % $2 = $3 (a share of the whole, one statement each), evenly
# spaced between first and last seen, their environments taken in turn, the release of their
# time ($4: the releases, $5: now), the same small payload $6.
TRIAGE_EVENTS = f"""
    insert into error_tracking_error_events
        (project_id, error_id, event_id, level, environment, release, occurred_at, received_at,
         received_on, received_hour, payload_text)
    select $1, p.error_id, gen_random_uuid(), p.level, p.environments[1 + k % cardinality(p.environments)],
           ($4::text[])[{_release_index("$4::text[]", "$5::timestamptz", "t")}], t, t,
           (t at time zone 'UTC')::date, extract(hour from t at time zone 'UTC')::smallint, $6
    from triage_plan p, generate_series(0, p.n - 1) k,
         lateral (select p.first_seen + (p.last_seen - p.first_seen) * (k::float8 / greatest(p.n - 1, 1)) as t) x
    where p.i % $2 = $3"""

# After the triage seed: every table (the errors' search, environments and releases too).
TRIAGE_SETTLE = ("vacuum (analyze)", "checkpoint")

PROJECT_ERRORS = "select count(*) from error_tracking_errors where project_id = $1"
