"""What every start does to the database: brought up to date (migrations, partitions, root token), then pooled.

The application opens it in ``cleanup_ctx`` (:func:`database_ctx`); the one-shot commands of
``errgate`` open it around their work (:func:`prepared_database`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import AsyncIterator

import asyncpg
from aiohttp import web

from app import state
from app.auth import token_digest
from app.config import Settings
from app.db import migrations, partitions, users
from app.db.pool import database_url, open_pool

log = logging.getLogger("errgate.database")


@dataclass(frozen=True, slots=True)
class Database:
    pool: asyncpg.Pool
    dsn: str
    applied: list[migrations.Migration]  # the migrations this start applied


async def _prepare(conn: asyncpg.Connection, settings: Settings) -> list[migrations.Migration]:
    """Migrations, partitions, and the root user when configured (tokens made from a previous
    ``ERRGATE_ROOT_TOKEN`` are revoked). Returns the migrations applied."""
    applied = await migrations.migrate(conn)
    await partitions.maintain(conn, settings.event_retention_days)
    if settings.root_token:
        revoked = await users.ensure_root(conn, token_digest(settings.root_token))
        if revoked:
            log.info("ERRGATE_ROOT_TOKEN changed: tokens from its previous values revoked", extra={"revoked": revoked})
    return applied


@contextlib.asynccontextmanager
async def prepared_database(settings: Settings, pool_size: int) -> AsyncIterator[Database]:
    """The database brought up to date, with a pool of ``pool_size`` connections on it, closed on exit."""
    # Starting the embedded server blocks for seconds: not on the event loop.
    dsn = await asyncio.get_running_loop().run_in_executor(None, database_url, settings)
    pool = await open_pool(dsn, pool_size)
    try:
        async with pool.acquire() as conn:
            applied = await _prepare(conn, settings)
        yield Database(pool, dsn, applied)
    finally:
        await pool.close()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[state.SETTINGS]
    async with prepared_database(settings, settings.db_pool_size) as database:
        app[state.POOL] = database.pool
        app[state.DSN] = database.dsn
        yield
