"""Error Tracking settings and client keys: the SQL behind the management routes.

Every change that can affect whether a public key is accepted notifies the channel
``errgate_keys`` so that each replica drops its cached copy at once.
"""

from __future__ import annotations

import secrets

import asyncpg

from app.db.pool import Executor

KEYS_CHANNEL = "errgate_keys"
SETTINGS_COLUMNS = "project_id, enabled, integrated, api_url, project_name, organization_name"
KEY_COLUMNS = "id, project_id, active, public_key"


def new_public_key() -> str:
    return "glet_" + secrets.token_hex(16)


async def settings(db: Executor, project_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"select {SETTINGS_COLUMNS} from project_error_tracking_settings where project_id = $1", project_id
    )


async def save_settings(
    conn: asyncpg.Connection, project_id: int, enabled: bool, integrated: bool | None, create: bool
) -> asyncpg.Record | None:
    """Create (``create``) or update the settings; when integrated tracking ends up enabled and the
    project has no active key, create one (as GitLab does). Returns None if there was nothing to update."""
    async with conn.transaction():
        if create:
            row = await conn.fetchrow(
                f"""insert into project_error_tracking_settings (project_id, enabled, integrated)
                    values ($1, $2, $3)
                    on conflict (project_id) do update
                    set enabled = excluded.enabled, integrated = excluded.integrated, updated_at = now()
                    returning {SETTINGS_COLUMNS}""",
                project_id, enabled, integrated,
            )
        else:
            row = await conn.fetchrow(
                f"""update project_error_tracking_settings
                    set enabled = $2, integrated = coalesce($3, integrated), updated_at = now()
                    where project_id = $1 returning {SETTINGS_COLUMNS}""",
                project_id, enabled, integrated,
            )
        if row is None:
            return None
        if row["enabled"] and row["integrated"]:
            has_key = await conn.fetchval(
                "select exists (select 1 from error_tracking_client_keys where project_id = $1 and active)", project_id
            )
            if not has_key:
                await create_key(conn, project_id)
        await conn.execute("select pg_notify($1, $2)", KEYS_CHANNEL, f"project:{project_id}")
        return row


async def list_keys(db: Executor, project_id: int, limit: int, offset: int) -> tuple[int, list[asyncpg.Record]]:
    total = await db.fetchval("select count(*) from error_tracking_client_keys where project_id = $1", project_id)
    rows = await db.fetch(
        f"""select {KEY_COLUMNS} from error_tracking_client_keys where project_id = $1
            order by id limit $2 offset $3""",
        project_id, limit, offset,
    )
    return total, rows


async def create_key(db: Executor, project_id: int) -> asyncpg.Record:
    return await db.fetchrow(
        f"insert into error_tracking_client_keys (project_id, public_key) values ($1, $2) returning {KEY_COLUMNS}",
        project_id, new_public_key(),
    )


async def delete_key(conn: asyncpg.Connection, project_id: int, key_id: int) -> asyncpg.Record | None:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"delete from error_tracking_client_keys where project_id = $1 and id = $2 returning {KEY_COLUMNS}",
            project_id, key_id,
        )
        if row is not None:
            await conn.execute("select pg_notify($1, $2)", KEYS_CHANNEL, f"key:{row['public_key']}")
        return row


async def key_for_ingest(db: Executor, public_key: str) -> asyncpg.Record | None:
    """What the collector needs to accept a key: its project and whether ingestion is allowed."""
    return await db.fetchrow(
        """select k.project_id, (k.active and coalesce(s.enabled and s.integrated, false)) as accepting
           from error_tracking_client_keys k
           left join project_error_tracking_settings s on s.project_id = k.project_id
           where k.public_key = $1""",
        public_key,
    )
