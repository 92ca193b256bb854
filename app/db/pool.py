"""The asyncpg connection pool: which database (configured or embedded), opening it or saying why not, bounded waits.

A database that cannot be reached stops a start with one line naming ``DATABASE_URL``; on the
request path, :func:`within` keeps requests from hanging on a database that stops answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import AsyncIterator, Awaitable, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg

from app.config import ConfigError, Settings
from app.db.embedded import start_embedded


def database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when set, else the embedded server (started on first use)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


T = TypeVar("T")

# What the SQL functions of app.db run on: the pool, or a connection already held (a transaction).
Executor = asyncpg.Pool | asyncpg.Connection

CONNECT_TIMEOUT_SECONDS = 5

# Failures that mean "the database is not reachable right now" (as opposed to a bad statement).
UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
# Anything the database can answer with, reachable or not: for background work that just retries.
DATABASE_ERRORS = (*UNAVAILABLE, asyncpg.PostgresError)


@contextlib.asynccontextmanager
async def advisory_lock(conn: asyncpg.Connection, key: int) -> AsyncIterator[None]:
    """Hold a session-level advisory lock, so that one replica at a time does the work inside."""
    await conn.execute("select pg_advisory_lock($1)", key)
    try:
        yield
    finally:
        await conn.execute("select pg_advisory_unlock($1)", key)


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """Await at most ``seconds``, then raise ``asyncio.TimeoutError``.

    Unlike ``asyncio.wait_for``, this does not wait for the cancelled work to finish: asyncpg's
    cancellation sends a cancel request to the server, which hangs too when the server does.
    The abandoned task is cancelled and its outcome discarded.
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise asyncio.TimeoutError(f"database did not answer within {seconds} s")
    return task.result()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (one round trip per release on the ingest path).

    asyncpg still rolls back an open transaction and drops listeners before calling this.
    errgate sets no session state on pooled connections: advisory locks (migrations,
    partition maintenance) are released explicitly, and LISTEN uses its own connection.
    """


async def open_pool(dsn: str, size: int) -> asyncpg.Pool:
    """The connection pool; a database that cannot be reached raises :class:`ConfigError` naming
    ``DATABASE_URL`` (one line for the person starting errgate, not a traceback)."""
    try:
        return await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=size,
            timeout=CONNECT_TIMEOUT_SECONDS,
            command_timeout=30,
            reset=_keep_session,
            # Short-lived statements only; a stuck query must not hold a connection forever.
            # Generic plans: PostgreSQL otherwise plans the writer's batch statement anew at every
            # execution (its custom plans, costed for the batch's real array lengths, always look
            # cheaper than the generic one), which cost more CPU than running it: at batches of 8,
            # 112-121 against 54-58 us of a backend's CPU per event. The queries whose best plan
            # depends on their arguments (the error list's search) ask for custom plans themselves
            # (app/db/tracked_errors.py).
            server_settings={
                "application_name": "errgate", "statement_timeout": "30s", "plan_cache_mode": "force_generic_plan",
            },
        )
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
