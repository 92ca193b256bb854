-- A time-ordered key for de-duplicating events by event_id.
--
-- The primary key was (project_id, event_id, received_on). SDK event ids are random UUIDs, so
-- every insert landed on a random leaf page of the whole day's index: once a day held millions
-- of events the index no longer fitted in shared_buffers, and the first change to each page after
-- a checkpoint wrote a full 8 KB page image to the WAL, so one event cost several KB of WAL.
-- With the receive hour (UTC) ahead of the event id, the inserts of the current hour share one
-- contiguous key range: the pages being written are those of the last hour's events only.
--
-- De-duplication covers the same hour by this key, and the previous hour by a lookup in the
-- writer (app/ingest/writer.py): a retry is skipped when it arrives within one to two hours of
-- the stored event (Sentry's own ingest de-duplicates for one hour).
--
-- Rows stored before this migration read received_hour 0 (no table rewrite); a retry of one of
-- them on the day of the migration, after 01:00 UTC, is stored again.
alter table error_tracking_error_events add column received_hour smallint not null default 0;
alter table error_tracking_error_events alter column received_hour drop default;
-- Rebuilds the primary-key index of every partition: this takes a while on a large table.
alter table error_tracking_error_events drop constraint error_tracking_error_events_pkey;
alter table error_tracking_error_events add primary key (project_id, received_on, received_hour, event_id);
