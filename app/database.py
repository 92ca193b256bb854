"""The database resource of the application: pool, migrations and the root token, opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import asyncpg
from aiohttp import web

from app import state
from app.config import Settings
from app.auth import token_digest
from app.db import migrations, partitions, users
from app.db.pool import create_pool, database_url

log = logging.getLogger("errgate.database")


async def prepare(conn: asyncpg.Connection, settings: Settings) -> list[migrations.Migration]:
    """Bring the database up to date: migrations, partitions, and the root user when configured
    (tokens made from a previous ``ERRGATE_ROOT_TOKEN`` are revoked). Returns the migrations applied."""
    applied = await migrations.migrate(conn)
    await partitions.maintain(conn, settings.event_retention_days)
    if settings.root_token:
        revoked = await users.ensure_root(conn, token_digest(settings.root_token))
        if revoked:
            log.info("ERRGATE_ROOT_TOKEN changed: tokens from its previous values revoked", extra={"revoked": revoked})
    return applied


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[state.SETTINGS]
    dsn = await asyncio.get_running_loop().run_in_executor(None, database_url, settings)
    pool = await create_pool(dsn, settings.db_pool_size)
    try:
        async with pool.acquire() as conn:
            await prepare(conn, settings)
        app[state.POOL] = pool
        app[state.DSN] = dsn
        yield
    finally:
        await pool.close()
