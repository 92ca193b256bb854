"""Group commit of events: requests queue parsed events, a writer commits them in batches.

A batch that starts while the writer is idle waits up to ``max_wait_ms`` to fill; while a batch
commits, the next one fills behind it and is written as soon as the commit returns.

Each batch is written with the set-based statements of :mod:`app.db.event_batches`: errors
not seen before are created first, then the events are stored and their errors' counters
updated in a single statement and so a single transaction. Which errors are known comes from
:class:`ErrorIds`, a per-process cache. A request is answered only after its batch committed.

Backpressure: when more than ``max_pending`` events wait, :meth:`EventWriter.write` raises
429 with ``Retry-After`` at once instead of letting memory grow. When PostgreSQL cannot be
reached, or does not answer within ``timeout`` seconds, the batch is answered 503 with
``Retry-After`` (its events may still be committed if the database wakes up: never a 200 for
an event that is not stored), and new events fail fast for a second before the database is
tried again, so that requests never hang on a dead database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import asyncpg

from app.db import event_batches
from app.db.pool import UNAVAILABLE, within
from app.problems import HTTPProblem
from app.ingest.backpressure import overloaded, unavailable
from app.ingest.summary import EventSummary

log = logging.getLogger("errgate.writer")

FAIL_FAST_SECONDS = 1.0
WRITE_RETRIES = 3


@dataclass(slots=True)
class PendingEvent:
    project_id: int
    event_id: str
    summary: EventSummary
    payload: str  # pack_event(): jsonb-safe JSON text
    received_at: datetime
    future: asyncio.Future[bool] = field(default=None)  # type: ignore[assignment]


BatchObserver = Callable[[int, int, float], None]


class EventWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch: int,
        max_wait_ms: float,
        max_pending: int,
        max_events_per_error: int | None = None,
        timeout: float = 5.0,
        observe: BatchObserver | None = None,
    ) -> None:
        self.max_events_per_error = max_events_per_error
        self.timeout = timeout
        self.pool = pool
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_pending = max_pending
        self.observe = observe
        self._queue: list[PendingEvent] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._down_until = 0.0
        self.in_flight = 0
        self.error_ids = ErrorIds()

    @property
    def pending(self) -> int:
        return len(self._queue) + self.in_flight

    @property
    def database_down(self) -> bool:
        return time.monotonic() < self._down_until

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="errgate-writer")

    async def close(self) -> None:
        """Stop taking events, commit everything queued, answer it, then return."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def write(self, event: PendingEvent) -> bool:
        """Queue ``event`` and wait until it is committed; True if stored, False if it was a duplicate."""
        if self._closing or self.database_down:
            raise unavailable()
        if self.pending >= self.max_pending:
            raise overloaded()
        event.future = asyncio.get_running_loop().create_future()
        self._queue.append(event)
        self._wake.set()
        return await event.future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                # Group commit: a batch that starts from idle waits a few ms for company. Events
                # that queued while the previous batch committed have waited already: they go at
                # once, so under load the database never idles between batches.
                if len(self._queue) < self.max_batch and not self._closing and self.max_wait:
                    await asyncio.sleep(self.max_wait)
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[PendingEvent]) -> None:
        self.in_flight += len(batch)
        started = time.perf_counter()
        try:
            inserted = await within(self._write_with_retries(batch), self.timeout)
        except UNAVAILABLE as exc:
            self._down_until = time.monotonic() + FAIL_FAST_SECONDS
            log.warning("database unavailable; batch answered 503", extra={"events": len(batch), "error": type(exc).__name__})
            _fail(batch, unavailable())
        except asyncpg.PostgresError:
            # A batch-level failure that is not about connectivity: isolate the offending event(s).
            await self._commit_one_by_one(batch)
        else:
            self._down_until = 0.0
            for event in batch:
                if not event.future.done():
                    event.future.set_result((event.project_id, event.event_id) in inserted)
            if self.observe:
                self.observe(len(batch), len(inserted), time.perf_counter() - started)
        finally:
            self.in_flight -= len(batch)

    async def _commit_one_by_one(self, batch: list[PendingEvent]) -> None:
        for event in batch:
            try:
                inserted = await within(self._write_with_retries([event]), self.timeout)
            except UNAVAILABLE:
                _fail([event], unavailable())
            except asyncpg.PostgresError as exc:
                log.error("event rejected by the database", extra={"project_id": event.project_id, "error": str(exc)})
                _fail([event], HTTPProblem.sentry(400, "event could not be stored", [type(exc).__name__]))
            else:
                if not event.future.done():
                    event.future.set_result(bool(inserted))

    async def _write_with_retries(self, batch: list[PendingEvent]) -> set[tuple[int, str]]:
        """Deadlocks between concurrent batches, and errors deleted behind the id cache, are retried."""
        for attempt in range(WRITE_RETRIES):
            try:
                return await write_batch(self.pool, batch, self.error_ids, self.max_events_per_error)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError, asyncpg.ForeignKeyViolationError):
                if attempt == WRITE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def _fail(batch: list[PendingEvent], problem: HTTPProblem) -> None:
    for event in batch:
        if not event.future.done():
            event.future.set_exception(problem)


class ErrorIds:
    """``(project_id, fingerprint) → error id`` for errors this process has seen, so that a batch
    of known errors is one statement. Stale entries (an error deleted by retention or with its
    project) surface as a foreign-key violation; the batch then forgets them and retries."""

    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self._ids: dict[tuple[int, str], int] = {}

    def missing(self, keys: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return [key for key in keys if key not in self._ids]

    def remember(self, rows: list[asyncpg.Record]) -> None:
        if len(self._ids) + len(rows) > self.MAX_ENTRIES:
            self._ids.clear()
        for row in rows:
            self._ids[(row["project_id"], row["fingerprint"])] = row["id"]

    def forget(self, keys: list[tuple[int, str]]) -> None:
        for key in keys:
            self._ids.pop(key, None)

    def __getitem__(self, key: tuple[int, str]) -> int:
        return self._ids[key]


async def _create_errors(
    conn: asyncpg.Connection, new: list[PendingEvent], error_ids: ErrorIds
) -> list[asyncpg.Record]:
    """Create the errors of ``new`` (one event per error not known yet) and learn their ids;
    returns the errors created."""
    missing = [(e.project_id, e.summary.fingerprint) for e in new]
    created = await event_batches.create_errors(
        conn,
        [e.project_id for e in new], [e.summary.fingerprint for e in new], [e.summary.name for e in new],
        [e.summary.description for e in new], [e.summary.actor for e in new], [e.summary.platform for e in new],
        [e.summary.occurred_at for e in new],
    )
    error_ids.remember(await event_batches.error_ids(conn, [k[0] for k in missing], [k[1] for k in missing]))
    return created


async def _insert_events(
    conn: asyncpg.Connection, batch: list[PendingEvent], error_ids: ErrorIds, cap: int | None
) -> list[asyncpg.Record]:
    try:
        return await event_batches.insert_events(
            conn,
            [e.project_id for e in batch],
            [error_ids[(e.project_id, e.summary.fingerprint)] for e in batch],
            [e.event_id for e in batch], [e.summary.level for e in batch],
            [e.summary.environment for e in batch], [e.summary.release for e in batch],
            [e.summary.occurred_at for e in batch], [e.received_at for e in batch], [e.payload for e in batch],
            cap,
        )
    except asyncpg.ForeignKeyViolationError:
        error_ids.forget([(e.project_id, e.summary.fingerprint) for e in batch])
        raise


async def write_batch(
    pool: asyncpg.Pool, batch: list[PendingEvent], error_ids: ErrorIds, max_events_per_error: int | None = None
) -> set[tuple[int, str]]:
    """Store a batch; returns the (project_id, event_id) pairs really inserted (duplicates excluded).

    When every error of the batch is known, the events and their counters commit in a single
    statement (one round trip). Otherwise the new errors are created in the same transaction
    as their events, and those that only duplicates pointed to are deleted again, so that no
    error is ever left without events.
    """
    batch = list({(e.project_id, e.event_id): e for e in batch}.values())  # one row per id and statement
    firsts: dict[tuple[int, str], PendingEvent] = {}
    for event in batch:
        firsts.setdefault((event.project_id, event.summary.fingerprint), event)
    missing = error_ids.missing(list(firsts))
    async with pool.acquire() as conn:
        if not missing:
            rows = await _insert_events(conn, batch, error_ids, max_events_per_error)
        else:
            async with conn.transaction():
                created = await _create_errors(conn, [firsts[key] for key in missing], error_ids)
                rows = await _insert_events(conn, batch, error_ids, max_events_per_error)
                if created and len(rows) < len(batch):
                    await event_batches.delete_empty_errors(
                        conn, [r["project_id"] for r in created], [r["id"] for r in created]
                    )
                    error_ids.forget(list(firsts))
    return {(r["project_id"], r["event_id"].hex) for r in rows}
