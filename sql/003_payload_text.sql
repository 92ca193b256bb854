-- Event payloads are stored as JSON text (app/ingest/payload.py, pack_event) in payload_text:
-- having PostgreSQL parse every payload into a jsonb tree was most of its ingest CPU (about
-- 125–160 µs per 8.5 KB event, against about 35 µs as text). The text is jsonb-safe, so SQL can still
-- look inside (payload_text::jsonb). Rows written before this migration keep their jsonb
-- payload; every row has one of the two (NOT VALID: existing rows are known to have payload).
alter table error_tracking_error_events add column payload_text text;
alter table error_tracking_error_events alter column payload drop not null;
alter table error_tracking_error_events
    add constraint error_tracking_error_events_payload_check
    check (payload_text is not null or payload is not null) not valid;
-- lz4 compresses large payloads several times faster than the default pglz (PostgreSQL 14+
-- built with lz4); a server without it keeps pglz.
do $$
begin
    alter table error_tracking_error_events alter column payload_text set compression lz4;
exception when feature_not_supported or invalid_parameter_value then
    null;
end $$;
