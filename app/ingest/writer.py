"""Group commit of events: requests queue parsed events, a writer commits them in batches, several at once.

Up to ``commits_in_flight`` batches commit side by side, each on its own pooled connection, so
that PostgreSQL flushes their WAL together and the rate is bound by CPU rather than by the
flush latency. A batch that starts while the writer is idle waits up to ``max_wait_ms`` to
fill; a batch that starts beside commits in flight goes once it holds as many events as they
hold on average (or its first event has waited ``max_wait_ms``); events that waited for a
commit to return go as soon as one does.

Each batch is written with the set-based statements of :mod:`app.db.event_batches`: errors
not seen before are created first, then the events are stored with their errors' pending
counts in a single statement and so a single transaction (the counts reach the errors' rows
when :func:`app.db.error_counts.fold` folds them). Which errors are known comes from
:class:`ErrorIds`, a per-process cache that learns an error only once its creation committed;
likewise :class:`StoredPairs` keeps the errors' environments and releases known to be stored,
so that a batch sends only those that may be new.
Two batches in flight never carry the same event id: a copy waits in the queue until the batch
with the other commits, so that the look at the previous hour's keys sees it (concurrent
inserts of the same key would only meet in the same hour). A request is answered only after
its batch committed.

Backpressure: when more than ``max_pending`` events wait, :meth:`EventWriter.write` raises
429 with ``Retry-After`` at once instead of letting memory grow. When PostgreSQL cannot be
reached, or does not answer within ``timeout`` seconds, the batch is answered 503 with
``Retry-After`` (its events may still be committed if the database wakes up: never a 200 for
an event that is not stored), and new events fail fast for a second before the database is
tried again, so that requests never hang on a dead database.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Mapping

import asyncpg

from app.db import event_batches
from app.db.pool import UNAVAILABLE, within
from app.problems import HTTPProblem
from app.ingest.backpressure import overloaded, unavailable
from app.ingest.summary import EventSummary

log = logging.getLogger("errgate.writer")

FAIL_FAST_SECONDS = 1.0
WRITE_RETRIES = 3
# What makes a batch be written again, by the reason the retries metric gives.
RETRIED = (
    (asyncpg.DeadlockDetectedError, "deadlock"),
    (asyncpg.SerializationError, "serialization"),
    (asyncpg.ForeignKeyViolationError, "stale_error"),  # an error deleted behind the id cache
)
RETRY_REASONS = tuple(reason for _, reason in RETRIED)
_RETRYABLE = tuple(kind for kind, _ in RETRIED)

ErrorKey = tuple[int, str]  # (project_id, fingerprint)
PairKey = tuple[int, int, str, str]  # (project_id, error_id, "environment" or "release", its value)
EventKey = tuple[int, str]  # (project_id, event_id)
# Entries each of the caches below holds at most; a cache about to pass it starts empty again,
# which is always correct since they only spare work.
MAX_CACHED = 200_000


@dataclass(slots=True)
class PendingEvent:
    project_id: int
    event_id: str
    summary: EventSummary
    payload: str  # pack_event(): jsonb-safe JSON text
    received_at: datetime
    future: asyncio.Future[bool] = field(default=None)  # type: ignore[assignment]


BatchObserver = Callable[[int, int, float], None]
RetryObserver = Callable[[str], None]


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
        commits_in_flight: int = 1,
        observe: BatchObserver | None = None,
        on_retry: RetryObserver | None = None,
    ) -> None:
        self.max_events_per_error = max_events_per_error
        self.timeout = timeout
        self.pool = pool
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_pending = max_pending
        self.commits_in_flight = commits_in_flight
        self.observe = observe
        self.on_retry = on_retry
        self._queue: list[PendingEvent] = []
        self._first_queued_at = 0.0
        # The queued events waited for a commit to return (or for a full batch before them): they go at once.
        self._behind = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._commits: set[asyncio.Task[None]] = set()
        self._committing: set[EventKey] = set()  # the event ids of the batches in flight
        self._closing = False
        self._down_until = 0.0
        self.in_flight = 0  # events in the batches in flight
        self.error_ids = ErrorIds()
        self.stored_pairs = StoredPairs()

    @property
    def pending(self) -> int:
        return len(self._queue) + self.in_flight

    @property
    def batches_in_flight(self) -> int:
        return len(self._commits)

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
        if not self._queue:
            self._first_queued_at = time.monotonic()
        self._queue.append(event)
        self._wake.set()
        return await event.future

    async def _run(self) -> None:
        while (batch := await self._next_batch()) is not None:
            commit = asyncio.create_task(self._commit(batch))
            self._commits.add(commit)
            commit.add_done_callback(functools.partial(self._committed, batch))
        await asyncio.gather(*self._commits, return_exceptions=True)

    async def _next_batch(self) -> list[PendingEvent] | None:
        """The next batch, once a commit may start and the batch is due; None when closing with nothing queued."""
        while True:
            if self._closing and not self._queue:
                return None
            due_in = None
            if self._queue and len(self._commits) < self.commits_in_flight:
                due_in = self._due_in()
                if due_in <= 0:
                    batch = self._take()
                    if batch:
                        return batch
                    due_in = None  # only copies of events in flight wait: until one of those commits
            self._wake.clear()
            timer = asyncio.get_running_loop().call_later(due_in, self._wake.set) if due_in is not None else None
            await self._wake.wait()
            if timer is not None:
                timer.cancel()

    def _due_in(self) -> float:
        """Seconds until the queued events should go as a batch; 0 or less: now."""
        queued = len(self._queue)
        if self._closing or self._behind or queued >= self.max_batch:
            return 0.0
        # Beside commits in flight, a batch as full as theirs on average goes at once: batches
        # neither wait for company they will not get nor split the load into tiny commits.
        if self._commits and queued * len(self._commits) >= self.in_flight:
            return 0.0
        # Group commit: a batch that starts from idle waits a few ms for company.
        return self._first_queued_at + self.max_wait - time.monotonic()

    def _take(self) -> list[PendingEvent]:
        """Up to ``max_batch`` queued events, in order, leaving queued the copies of events in flight."""
        batch: list[PendingEvent] = []
        held: list[PendingEvent] = []
        scanned = 0
        for event in self._queue:
            if len(batch) == self.max_batch:
                break
            scanned += 1
            (held if (event.project_id, event.event_id) in self._committing else batch).append(event)
        self._queue[:scanned] = held
        self._behind = bool(self._queue)
        self._first_queued_at = time.monotonic()
        self._committing.update((event.project_id, event.event_id) for event in batch)
        self.in_flight += len(batch)
        return batch

    def _committed(self, batch: list[PendingEvent], commit: asyncio.Task[None]) -> None:
        self._commits.discard(commit)
        self.in_flight -= len(batch)
        self._committing.difference_update((event.project_id, event.event_id) for event in batch)
        if self._queue:
            self._behind = True
        self._wake.set()

    async def _commit(self, batch: list[PendingEvent]) -> None:
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
        except Exception:
            # A fault of errgate's own: its requests are answered 500, the writer keeps going.
            log.exception("batch could not be written", extra={"events": len(batch)})
            _fail(batch, HTTPProblem.sentry(500, "event could not be stored"))
        else:
            self._down_until = 0.0
            for event in batch:
                if not event.future.done():
                    event.future.set_result((event.project_id, event.event_id) in inserted)
            if self.observe:
                self.observe(len(batch), len(inserted), time.perf_counter() - started)

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

    async def _write_with_retries(self, batch: list[PendingEvent]) -> set[EventKey]:
        """Deadlocks and serialization failures between concurrent batches, and errors deleted
        behind the id cache, are retried (and counted by reason)."""
        for attempt in range(WRITE_RETRIES):
            try:
                return await write_batch(self.pool, batch, self.error_ids, self.max_events_per_error, self.stored_pairs)
            except _RETRYABLE as exc:
                if attempt == WRITE_RETRIES - 1:
                    raise
                if self.on_retry:
                    self.on_retry(next(reason for kind, reason in RETRIED if isinstance(exc, kind)))
        raise AssertionError("unreachable")


def _fail(batch: list[PendingEvent], problem: HTTPProblem) -> None:
    for event in batch:
        if not event.future.done():
            event.future.set_exception(problem)


def _make_room(cache: dict | set, incoming: int) -> None:
    if len(cache) + incoming > MAX_CACHED:
        cache.clear()


class ErrorIds:
    """``(project_id, fingerprint) → error id`` for errors this process has seen, so that a batch
    of known errors is one statement. Stale entries (an error deleted by retention or with its
    project) surface as a foreign-key violation; the batch then forgets them and retries."""

    def __init__(self) -> None:
        self._ids: dict[ErrorKey, int] = {}

    def known(self, keys: Iterable[ErrorKey]) -> dict[ErrorKey, int]:
        """The ids of those of ``keys`` this process knows, copied: batches committing beside
        the caller may empty the cache while it waits for the database."""
        ids = self._ids
        return {key: ids[key] for key in keys if key in ids}

    def remember(self, rows: list[asyncpg.Record]) -> None:
        _make_room(self._ids, len(rows))
        for row in rows:
            self._ids[(row["project_id"], row["fingerprint"])] = row["id"]

    def forget(self, keys: list[ErrorKey]) -> None:
        for key in keys:
            self._ids.pop(key, None)


class StoredPairs:
    """The (error, environment) and (error, release) pairs this process knows are stored: the
    events of a frequent error repeat the same few, and each one sent costs the batch statement
    an index probe. Learned only once the batch that wrote them committed. A pair of an error
    deleted since stays harmless: error ids are never reused."""

    def __init__(self) -> None:
        self._pairs: set[PairKey] = set()

    def __contains__(self, key: PairKey) -> bool:
        return key in self._pairs

    def remember(self, keys: set[PairKey]) -> None:
        _make_room(self._pairs, len(keys))
        self._pairs.update(keys)


async def _create_errors(
    conn: asyncpg.Connection, new: list[PendingEvent]
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """Create the errors of ``new`` (one event per error not known yet); returns the errors
    created, and the ids of all of them (created now or by someone else before)."""
    created = await event_batches.create_errors(
        conn,
        [e.project_id for e in new], [e.summary.fingerprint for e in new], [e.summary.name for e in new],
        [e.summary.description for e in new], [e.summary.actor for e in new], [e.summary.platform for e in new],
        [e.summary.occurred_at for e in new],
    )
    ids = await event_batches.error_ids(conn, [e.project_id for e in new], [e.summary.fingerprint for e in new])
    return created, ids


async def _insert_events(
    conn: asyncpg.Connection,
    batch: list[PendingEvent],
    error_ids: Mapping[ErrorKey, int],
    cap: int | None,
    stored: StoredPairs,
    sent: set[PairKey],
) -> list[asyncpg.Record]:
    """Store the batch, with the pairs not in ``stored``; those are added to ``sent``."""
    ids = [error_ids[(e.project_id, e.summary.fingerprint)] for e in batch]

    def new(kind: str, values: list[str | None]) -> list[bool]:
        """Flags the first event of each pair that may be new; its repeats in the batch add nothing."""
        flags = []
        for event, error_id, value in zip(batch, ids, values):
            key = (event.project_id, error_id, kind, value)
            flag = value is not None and key not in stored and key not in sent
            if flag:
                sent.add(key)  # type: ignore[arg-type]
            flags.append(flag)
        return flags

    environments = [e.summary.environment for e in batch]
    releases = [e.summary.release for e in batch]
    return await event_batches.insert_events(
        conn, [e.project_id for e in batch], ids, [e.event_id for e in batch], [e.summary.level for e in batch],
        environments, releases, [e.summary.occurred_at for e in batch], [e.received_at for e in batch],
        [e.payload for e in batch], cap, new("environment", environments), new("release", releases),
    )


async def write_batch(
    pool: asyncpg.Pool,
    batch: list[PendingEvent],
    error_ids: ErrorIds,
    max_events_per_error: int | None = None,
    stored_pairs: StoredPairs | None = None,
) -> set[EventKey]:
    """Store a batch; returns the (project_id, event_id) pairs really inserted (duplicates excluded).

    When every error of the batch is known, the events and their pending counts commit in a single
    statement (one round trip). Otherwise the new errors are created in the same transaction
    as their events, and those that only duplicates pointed to are deleted again, so that no
    error is ever left without events.
    """
    batch = list({(e.project_id, e.event_id): e for e in batch}.values())  # one row per id and statement
    firsts: dict[ErrorKey, PendingEvent] = {}
    for event in batch:
        firsts.setdefault((event.project_id, event.summary.fingerprint), event)
    known = error_ids.known(firsts)
    missing = [key for key in firsts if key not in known]
    stored = stored_pairs if stored_pairs is not None else StoredPairs()
    sent: set[PairKey] = set()
    try:
        async with pool.acquire() as conn:
            if not missing:
                rows = await _insert_events(conn, batch, known, max_events_per_error, stored, sent)
            else:
                async with conn.transaction():
                    created, learned = await _create_errors(conn, [firsts[key] for key in missing])
                    known.update(((r["project_id"], r["fingerprint"]), r["id"]) for r in learned)
                    rows = await _insert_events(conn, batch, known, max_events_per_error, stored, sent)
                    with_events = {(r["project_id"], r["error_id"]) for r in rows}
                    empty = [r for r in created if (r["project_id"], r["id"]) not in with_events]
                    if empty:
                        await event_batches.delete_errors(conn, [r["project_id"] for r in empty], [r["id"] for r in empty])
                        learned = []  # some are gone again: looked up the next time
                        sent = set()  # and their pairs with them
                # Learned once committed, not before: a batch beside this one that took an id
                # from the cache earlier would point its events at a row it cannot see yet.
                error_ids.remember(learned)
            stored.remember(sent)
    except asyncpg.ForeignKeyViolationError:
        error_ids.forget(list(firsts))
        raise
    return {(r["project_id"], r["event_id"].hex) for r in rows}
