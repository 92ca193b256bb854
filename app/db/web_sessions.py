"""Web sign-in sessions: the SQL behind the web page's cookie (sql/007_web_sessions.sql)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from app.db.pool import Executor


async def create(db: Executor, id_digest: bytes, token_id: int, lifetime: timedelta) -> None:
    """A new session; sessions that have expired are deleted on the way (the index makes it cheap)."""
    await db.execute(
        """with gone as (delete from web_sessions where expires_at <= now())
           insert into web_sessions (id_digest, token_id, expires_at) values ($1, $2, now() + $3)""",
        id_digest, token_id, lifetime,
    )


async def session_with_token(db: Executor, id_digest: bytes) -> asyncpg.Record | None:
    """A session that has not expired, with its token and user (``users.token_with_user``'s columns)."""
    return await db.fetchrow(
        """select t.id as token_id, t.token_digest, t.scopes, t.expires_at, t.revoked, t.last_used_at,
                  u.id, u.username, u.is_admin, u.state
           from web_sessions s
           join personal_access_tokens t on t.id = s.token_id
           join users u on u.id = t.user_id
           where s.id_digest = $1 and s.expires_at > now()""",
        id_digest,
    )


async def delete(db: Executor, id_digest: bytes) -> None:
    await db.execute("delete from web_sessions where id_digest = $1", id_digest)


async def delete_for_token(db: Executor, token_id: int) -> None:
    """End every session of a token that no longer signs in (revoked, expired, its user blocked)."""
    await db.execute("delete from web_sessions where token_id = $1", token_id)
