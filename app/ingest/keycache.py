"""Which public keys may send events, cached so that ingestion costs no database round trip.

An entry (accepted project id, or a refusal) lives ``ttl`` seconds. Every change to keys or
settings is also announced on the ``errgate_keys`` channel (see ``app.db.error_tracking``);
each replica listens and drops the affected entries at once, so a deleted or deactivated key
stops working on every replica immediately, and within ``ttl`` even if a notification is lost.
Concurrent look-ups of the same key share one query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import AsyncIterator

import asyncpg

from app.db import error_tracking
from app.db.pool import DATABASE_ERRORS, UNAVAILABLE, within
from app.ingest.backpressure import unavailable

log = logging.getLogger("errgate.keycache")

MAX_ENTRIES = 100_000


class KeyCache:
    def __init__(self, pool: asyncpg.Pool, ttl: float, timeout: float = 5.0) -> None:
        self.pool = pool
        self.ttl = ttl
        self.timeout = timeout
        self._entries: dict[str, tuple[float, int | None]] = {}
        self._loading: dict[str, asyncio.Future[int | None]] = {}

    async def project_for(self, public_key: str) -> int | None:
        """The project that ``public_key`` may send to, or None when it must be refused."""
        entry = self._entries.get(public_key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        loading = self._loading.get(public_key)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._loading[public_key] = future
        try:
            try:
                row = await within(error_tracking.key_for_ingest(self.pool, public_key), self.timeout)
            except UNAVAILABLE:
                raise unavailable() from None  # not cached: the next request asks again
            project_id = row["project_id"] if row is not None and row["accepting"] else None
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[public_key] = (time.monotonic() + self.ttl, project_id)
            future.set_result(project_id)
            return project_id
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._loading[public_key]

    def invalidate(self, message: str) -> None:
        """Handle ``key:<public_key>`` or ``project:<id>`` from the notification channel ('' = all)."""
        kind, _, value = message.partition(":")
        if kind == "key":
            self._entries.pop(value, None)
        elif kind == "project" and value.isdigit():
            project_id = int(value)
            for key in [k for k, (_, p) in self._entries.items() if p == project_id or p is None]:
                del self._entries[key]
        else:
            self._entries.clear()


@contextlib.asynccontextmanager
async def listen_for_changes(dsn: str, cache: KeyCache) -> AsyncIterator[None]:
    """Keep a LISTEN connection open for the cache's lifetime, reconnecting when it drops."""
    stop = asyncio.Event()

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        cache.invalidate(payload)

    async def run() -> None:
        while not stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
                await conn.add_listener(error_tracking.KEYS_CHANNEL, on_notify)
                cache.invalidate("")  # changes may have been missed while disconnected
                while not stop.is_set() and not conn.is_closed():
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=1.0)
                    except asyncio.TimeoutError:
                        pass
            except DATABASE_ERRORS as exc:
                log.warning("key change listener disconnected", extra={"error": type(exc).__name__})
                await asyncio.sleep(1.0)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()

    task = asyncio.create_task(run(), name="errgate-key-listener")
    try:
        yield
    finally:
        stop.set()
        await task
