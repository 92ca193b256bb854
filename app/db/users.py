"""Users and personal access tokens: the SQL behind identity."""

from __future__ import annotations

from datetime import date

import asyncpg

from app.db.pool import Executor

USER_COLUMNS = "id, username, name, email, is_admin, state, created_at"
TOKEN_COLUMNS = "id, user_id, name, scopes, expires_at, revoked, last_used_at, created_at"


async def create_user(db: Executor, username: str, name: str, email: str | None, is_admin: bool) -> asyncpg.Record:
    return await db.fetchrow(
        f"insert into users (username, name, email, is_admin) values ($1, $2, $3, $4) returning {USER_COLUMNS}",
        username, name, email, is_admin,
    )


async def user_by_id(db: Executor, user_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(f"select {USER_COLUMNS} from users where id = $1", user_id)


async def user_by_username(db: Executor, username: str) -> asyncpg.Record | None:
    return await db.fetchrow(f"select {USER_COLUMNS} from users where lower(username) = lower($1)", username)


async def list_users(db: Executor, username: str | None, limit: int, offset: int) -> tuple[int, list[asyncpg.Record]]:
    where = "where lower(username) = lower($1)" if username else "where $1::text is null"
    total = await db.fetchval(f"select count(*) from users {where}", username)
    rows = await db.fetch(
        f"select {USER_COLUMNS} from users {where} order by id limit $2 offset $3", username, limit, offset
    )
    return total, rows


async def create_token(
    db: Executor, user_id: int, name: str, digest: bytes, scopes: list[str], expires_at: date | None
) -> asyncpg.Record:
    return await db.fetchrow(
        f"""insert into personal_access_tokens (user_id, name, token_digest, scopes, expires_at)
            values ($1, $2, $3, $4, $5) returning {TOKEN_COLUMNS}""",
        user_id, name, digest, scopes, expires_at,
    )


async def token_with_user(db: Executor, digest: bytes) -> asyncpg.Record | None:
    """The token row for a digest joined with its user, or None."""
    return await db.fetchrow(
        """select t.id as token_id, t.token_digest, t.scopes, t.expires_at, t.revoked, t.last_used_at,
                  u.id, u.username, u.is_admin, u.state
           from personal_access_tokens t join users u on u.id = t.user_id
           where t.token_digest = $1""",
        digest,
    )


async def token_by_id(db: Executor, token_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(f"select {TOKEN_COLUMNS} from personal_access_tokens where id = $1", token_id)


async def revoke_token(db: Executor, token_id: int) -> None:
    await db.execute("update personal_access_tokens set revoked = true where id = $1", token_id)


async def touch_token(db: Executor, token_id: int) -> None:
    """Record use, at most once a minute per token, so authentication stays a read."""
    await db.execute(
        """update personal_access_tokens set last_used_at = now()
           where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')""",
        token_id,
    )


async def ensure_root(db: asyncpg.Connection, digest: bytes) -> int:
    """Make sure an administrator ``root`` exists and owns a valid token with ``digest``, made from
    ``ERRGATE_ROOT_TOKEN``; tokens made from its previous values are revoked. Returns how many were."""
    async with db.transaction():
        await db.execute("select pg_advisory_xact_lock(hashtext('errgate.root'))")
        row = await user_by_username(db, "root")
        if row is None:
            row = await create_user(db, "root", "Administrator", None, True)
        elif not row["is_admin"]:
            await db.execute("update users set is_admin = true where id = $1", row["id"])
        token_id = await db.fetchval(
            """insert into personal_access_tokens (user_id, name, token_digest, scopes, from_root_token)
               values ($1, 'ERRGATE_ROOT_TOKEN', $2, '{api}', true)
               on conflict (token_digest) do update
               set revoked = false, expires_at = null, user_id = excluded.user_id, from_root_token = true
               returning id""",
            row["id"], digest,
        )
        status = await db.execute(
            "update personal_access_tokens set revoked = true where from_root_token and not revoked and id <> $1",
            token_id,
        )
        return int(status.rpartition(" ")[2])
