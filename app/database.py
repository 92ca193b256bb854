"""The database resource of the application: pool, migrations and the root token, opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
from aiohttp import web

from app import state
from app.config import ConfigError, Settings
from app.auth import token_digest
from app.db import migrations, partitions, users
from app.db.pool import CONNECT_TIMEOUT_SECONDS, DATABASE_ERRORS, create_pool, database_url

log = logging.getLogger("errgate.database")


def _where(dsn: str) -> str:
    """host:port/database of a URL, without its user and password (a Unix socket directory as host)."""
    parts = urlsplit(dsn)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    try:
        port = parts.port or 5432
    except ValueError:  # not a number; asyncpg says so in the reason
        port = parts.netloc.rpartition(":")[2]
    return f"{host}:{port}{parts.path}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_SECONDS} s"
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)  # "Connection refused" rather than asyncio's "Connect call failed (...)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def open_pool(dsn: str, size: int) -> asyncpg.Pool:
    """The connection pool; a database that cannot be reached raises :class:`ConfigError` naming
    ``DATABASE_URL`` (one line for the person starting errgate, not a traceback)."""
    try:
        return await create_pool(dsn, size)
    except (*DATABASE_ERRORS, ValueError, OverflowError) as exc:
        raise ConfigError(
            f"DATABASE_URL: cannot connect to PostgreSQL at {_where(dsn)} ({_reason(exc)}); "
            "start PostgreSQL there or correct DATABASE_URL"
        ) from None


def check_database(dsn: str) -> None:
    """Connect once and close, so that an unreachable database stops the start before any worker runs."""

    async def connect_once() -> None:
        await (await open_pool(dsn, 1)).close()

    asyncio.run(connect_once())


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
    pool = await open_pool(dsn, settings.db_pool_size)
    try:
        async with pool.acquire() as conn:
            await prepare(conn, settings)
        app[state.POOL] = pool
        app[state.DSN] = dsn
        yield
    finally:
        await pool.close()
