"""The collector's resources, opened and closed with the application.

The key cache and its change listener, the batch writer, the decoded-bytes budget and its
decoding threads, the folding of the errors' pending counts, and the hourly partition maintenance."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator

import asyncpg
from aiohttp import web

from app import state
from app.db import error_counts, partitions
from app.db.pool import DATABASE_ERRORS, within
from app.ingest.inflight import DecodeBudget
from app.ingest.keycache import KeyCache, listen_for_changes
from app.ingest.writer import RETRY_REASONS, EventWriter
from app.memory import Reclaimer

log = logging.getLogger("errgate.ingest")

MAINTENANCE_INTERVAL_SECONDS = 3600
VACUUM_EVERY_FOLDS = 30
# Threads that decode large bodies, per worker. The decompressors release the GIL, so two let a
# large body decode while the loop serves others; more would only share the pod's CPU between bombs.
DECODE_THREADS = 2


async def _maintain_partitions(pool: asyncpg.Pool, retention_days: int) -> None:
    while True:
        await asyncio.sleep(MAINTENANCE_INTERVAL_SECONDS)
        try:
            async with pool.acquire() as conn:
                await partitions.maintain(conn, retention_days)
        except DATABASE_ERRORS as exc:
            log.warning("partition maintenance failed; retrying next hour", extra={"error": type(exc).__name__})


async def _fold_counts(pool: asyncpg.Pool, interval: float, timeout: float) -> None:
    """Fold the pending counts every ``interval`` seconds: while events arrive, their errors'
    counters, last seen and status follow them within about that long (readers fold first).
    Every ``VACUUM_EVERY_FOLDS`` folds, the pending counts' table is vacuumed as well."""
    failing = False
    for folds in itertools.count(1):
        await asyncio.sleep(interval)
        try:
            folded = await within(error_counts.fold(pool, wait=False), timeout)
            if folded is not None and folds % VACUUM_EVERY_FOLDS == 0:  # not beside another worker's fold
                await within(error_counts.vacuum(pool), timeout)
        except DATABASE_ERRORS as exc:
            if not failing:  # once per outage, not once per interval
                log.warning("folding pending counts failed; retrying", extra={"error": type(exc).__name__})
            failing = True
        else:
            failing = False


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[state.SETTINGS]
    pool = app[state.POOL]
    metrics = app[state.METRICS]
    cache = KeyCache(pool, settings.key_cache_ttl_seconds, settings.db_timeout_seconds)
    writer = EventWriter(
        pool,
        max_batch=settings.batch_max_events,
        max_wait_ms=settings.batch_max_wait_ms,
        max_pending=settings.max_pending_events,
        max_events_per_error=settings.max_events_per_error,
        timeout=settings.db_timeout_seconds,
        commits_in_flight=settings.writer_commits_in_flight,
        observe=metrics.observe_batch,
        on_retry=metrics.writer_retried,
    )
    for reason in RETRY_REASONS:  # shown at zero from the start
        metrics.writer_retries.labels(reason)
    reclaimer = Reclaimer()
    budget = DecodeBudget(settings.max_inflight_bytes, on_release=reclaimer.released)
    decoding = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="errgate-decode")
    metrics.track(
        decoded_in_flight=lambda: budget.in_flight,
        queue_depth=lambda: writer.pending,
        pool_in_use=lambda: pool.get_size() - pool.get_idle_size(),
        pool_size=pool.get_size,
    )
    app[state.KEY_CACHE] = cache
    app[state.WRITER] = writer
    app[state.DECODE_BUDGET] = budget
    app[state.DECODE_OFFLOAD] = functools.partial(asyncio.get_running_loop().run_in_executor, decoding)
    writer.start()
    background = [
        asyncio.create_task(_maintain_partitions(pool, settings.event_retention_days)),
        asyncio.create_task(_fold_counts(pool, settings.counts_fold_ms / 1000, settings.db_timeout_seconds)),
    ]
    try:
        async with listen_for_changes(app[state.DSN], cache):
            yield
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await writer.close()
        decoding.shutdown()
        reclaimer.close()
