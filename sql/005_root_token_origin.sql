-- Personal access tokens that errgate made from ERRGATE_ROOT_TOKEN are marked, so that when the
-- setting changes the tokens made from its previous values can be revoked at start.
alter table personal_access_tokens add column from_root_token boolean not null default false;

-- Before this migration they were recognised only by their name on root's account.
update personal_access_tokens set from_root_token = true
where name = 'ERRGATE_ROOT_TOKEN' and user_id in (select id from users where lower(username) = 'root');
