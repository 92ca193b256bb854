-- Triage: what the errors list filters, searches and sorts on, kept up to date by the writer.
--
-- The errors' rows are updated by every batch that has their events, and such updates are never
-- HOT (last_seen_at and events_count are indexed), so every index of error_tracking_errors takes
-- one new entry per error and batch. What only changes when something new appears is therefore
-- kept in tables of its own, written with "on conflict do nothing" and so only once per
-- (error, value): the environments and releases an error was seen in, and its search text,
-- whose trigram index would otherwise take hundreds of entries (and KBs of WAL) per update.

create extension if not exists pg_trgm;

-- The latest event's level and the releases of its first and last events (by occurred_at)
-- that named one; written with the counters (app/db/event_batches.py).
alter table error_tracking_errors
    add column level text not null default 'error',
    add column first_release text,
    add column last_release text;

-- The list, newest or highest first, per project and status (id breaks ties, newest first).
drop index error_tracking_errors_list_idx;
create index error_tracking_errors_last_seen_idx
    on error_tracking_errors (project_id, status, last_seen_at desc, id desc);
create index error_tracking_errors_first_seen_idx
    on error_tracking_errors (project_id, status, first_seen_at desc, id desc);
create index error_tracking_errors_frequency_idx
    on error_tracking_errors (project_id, status, events_count desc, id desc);

-- Environments and releases an error has had events in. Retention does not remove them:
-- they say where the error was seen, not where stored events remain.
create table error_tracking_error_environments (
    project_id   bigint not null,
    environment  text not null,
    error_id     bigint not null,
    primary key (project_id, environment, error_id),
    foreign key (project_id, error_id) references error_tracking_errors (project_id, id) on delete cascade
);
create index error_tracking_error_environments_error_idx on error_tracking_error_environments (project_id, error_id);

create table error_tracking_error_releases (
    project_id  bigint not null,
    release     text not null,
    error_id    bigint not null,
    primary key (project_id, release, error_id),
    foreign key (project_id, error_id) references error_tracking_errors (project_id, id) on delete cascade
);
create index error_tracking_error_releases_error_idx on error_tracking_error_releases (project_id, error_id);

-- Name, description and actor, one line each, for case-insensitive substring search (ILIKE
-- over a trigram index). Written by triggers, so that every way of creating an error keeps it.
create table error_tracking_error_search (
    project_id  bigint not null,
    error_id    bigint not null,
    text        text not null,
    primary key (project_id, error_id),
    foreign key (project_id, error_id) references error_tracking_errors (project_id, id) on delete cascade
);
create index error_tracking_error_search_text_idx on error_tracking_error_search using gin (text gin_trgm_ops);

create function error_tracking_error_search_text(name text, description text, actor text) returns text
    language sql immutable parallel safe
    as $$ select name || E'\n' || description || E'\n' || actor $$;

-- Once per statement, over the rows it inserted: a batch of new errors is one insert here.
create function error_tracking_errors_search_created() returns trigger language plpgsql as $$
begin
    insert into error_tracking_error_search (project_id, error_id, text)
    select project_id, id, error_tracking_error_search_text(name, description, actor) from created
    order by project_id, id;
    return null;
end $$;
create trigger error_tracking_errors_search_created after insert on error_tracking_errors
    referencing new table as created for each statement execute function error_tracking_errors_search_created();

-- Fires only for updates that set these columns (the writer's counter updates do not).
create function error_tracking_errors_search_changed() returns trigger language plpgsql as $$
begin
    update error_tracking_error_search
    set text = error_tracking_error_search_text(new.name, new.description, new.actor)
    where project_id = new.project_id and error_id = new.id;
    return null;
end $$;
create trigger error_tracking_errors_search_changed after update of name, description, actor on error_tracking_errors
    for each row execute function error_tracking_errors_search_changed();

-- The errors and events stored before this migration.
insert into error_tracking_error_search (project_id, error_id, text)
select project_id, id, error_tracking_error_search_text(name, description, actor) from error_tracking_errors;

insert into error_tracking_error_environments (project_id, environment, error_id)
select distinct project_id, environment, error_id from error_tracking_error_events where environment is not null;

insert into error_tracking_error_releases (project_id, release, error_id)
select distinct project_id, release, error_id from error_tracking_error_events where release is not null;

update error_tracking_errors e set level = x.level
from (select distinct on (project_id, error_id) project_id, error_id, level
      from error_tracking_error_events order by project_id, error_id, occurred_at desc) x
where e.project_id = x.project_id and e.id = x.error_id;

update error_tracking_errors e set first_release = x.release
from (select distinct on (project_id, error_id) project_id, error_id, release
      from error_tracking_error_events where release is not null order by project_id, error_id, occurred_at) x
where e.project_id = x.project_id and e.id = x.error_id;

update error_tracking_errors e set last_release = x.release
from (select distinct on (project_id, error_id) project_id, error_id, release
      from error_tracking_error_events where release is not null order by project_id, error_id, occurred_at desc) x
where e.project_id = x.project_id and e.id = x.error_id;
