-- Sign-in sessions of the web page. The cookie holds a random session id; only its SHA-256
-- digest is stored, so a copy of this table signs nobody in. A session belongs to the personal
-- access token it was opened with: every request checks that token again (revoked, expired,
-- blocked user), and deleting the token's user deletes its sessions.
create table web_sessions (
    id_digest   bytea primary key,
    token_id    bigint not null references personal_access_tokens (id) on delete cascade,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
create index web_sessions_token_id_idx on web_sessions (token_id);
create index web_sessions_expires_at_idx on web_sessions (expires_at);
