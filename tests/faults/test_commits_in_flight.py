"""Several batches of one worker commit at once: a batch stuck in the database does not hold back
the others, copies of an event never commit side by side, errors created by a batch in flight
are not lent to the batches beside it, hot errors locked by concurrent batches never deadlock,
closing answers every batch in flight, and every retry is counted in ``errgate_writer_retries_total``.

A row lock held from another connection keeps a batch in the middle of its transaction for as
long as a test needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import aiohttp
import asyncpg
import pytest

from app.health import METRICS_PATH
from app.ingest import writer
from app.ingest.writer import RETRY_REASONS, ErrorIds, EventWriter, PendingEvent, write_batch
from tests.bench.servers import retries_metric
from tests.conftest import Api
from tests.faults.helpers import error_counts, partitions_around_today, pending_event
from tests.ingest_http.helpers import (
    collector_url, event_envelope, message_event, new_event_id, post_envelope, sentry_auth, tracked_project,
)

STUCK_SECONDS = 0.5


@contextlib.asynccontextmanager
async def running_writer(pool: asyncpg.Pool, **options: object) -> AsyncIterator[tuple[EventWriter, list[str]]]:
    """A started writer; yields it with the reasons of its retries, as they happen."""
    retries: list[str] = []
    settings: dict[str, object] = dict(max_batch=1, max_wait_ms=0, max_pending=1000, on_retry=retries.append)
    writer = EventWriter(pool, **{**settings, **options})  # type: ignore[arg-type]
    writer.start()
    try:
        yield writer, retries
    finally:
        await writer.close()


@contextlib.asynccontextmanager
async def error_row_held(pool: asyncpg.Pool, event: PendingEvent) -> AsyncIterator[None]:
    """Lock the row of the error of ``event`` (as deleting it does: the batches' foreign-key checks wait) until the block ends."""
    async with pool.acquire() as holder, holder.transaction():
        locked = await holder.fetch(
            "select 1 from error_tracking_errors where project_id = $1 and fingerprint = $2 for update",
            event.project_id, event.summary.fingerprint,
        )
        assert len(locked) == 1
        yield


async def until_a_batch_waits_for_a_lock(pool: asyncpg.Pool, batches: int = 1) -> None:
    """Until ``batches`` backends of this database wait for a lock (the held row, or their turn for it)."""
    async def waiting() -> int:
        return await pool.fetchval(
            "select count(distinct pid) from pg_locks where not granted"
            " and pid in (select pid from pg_stat_activity where datname = current_database())"
        )

    async with asyncio.timeout(10):
        while await waiting() < batches:
            await asyncio.sleep(0.02)


async def stored_copies(pool: asyncpg.Pool, project_id: int, event_id: str) -> int:
    return await pool.fetchval(
        "select count(*) from error_tracking_error_events where project_id = $1 and event_id = $2::uuid",
        project_id, event_id,
    )


@pytest.fixture
async def project_id(pool, world) -> int:
    await partitions_around_today(pool)
    return (await world.project())["id"]


@pytest.mark.parametrize("commits_in_flight", [1, 2])
async def test_a_batch_stuck_in_the_database_holds_back_the_next_only_with_one_commit_in_flight(
    pool, project_id, commits_in_flight
) -> None:
    now = datetime.now(timezone.utc)
    async with running_writer(pool, commits_in_flight=commits_in_flight) as (writer, retries):
        first = pending_event(project_id, "stuck", now)
        assert await writer.write(first) is True
        async with error_row_held(pool, first):
            stuck = asyncio.create_task(writer.write(pending_event(project_id, "stuck", now)))
            await until_a_batch_waits_for_a_lock(pool)
            beside = asyncio.create_task(writer.write(pending_event(project_id, "free", now)))
            # One commit at a time: the second batch waits for the first. Several: it commits beside it.
            if commits_in_flight > 1:
                assert await asyncio.wait_for(beside, 10) is True
            else:
                await asyncio.wait([beside], timeout=STUCK_SECONDS)
                assert not beside.done()
            assert not stuck.done()
        assert await stuck is True and await beside is True
    assert retries == []
    assert sorted((e["events_count"], e["stored"]) for e in await error_counts(pool, project_id)) == [(1, 1), (2, 2)]


async def test_copies_of_an_event_across_an_hour_are_stored_once_when_their_batches_overlap(pool, project_id) -> None:
    """The second copy arrives in the next receive hour, so only the look at the previous hour's
    keys can find the first one: it must not commit beside the batch that is storing it."""
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first, retry = hour - timedelta(milliseconds=100), hour + timedelta(milliseconds=100)
    event_id = new_event_id()
    async with running_writer(pool, commits_in_flight=4) as (writer, retries):
        existing = pending_event(project_id, "copied", first)
        assert await writer.write(existing) is True  # the error exists
        async with error_row_held(pool, existing):
            stored = asyncio.create_task(writer.write(pending_event(project_id, "copied", first, event_id)))
            await until_a_batch_waits_for_a_lock(pool)  # its event row written, not committed
            copy = asyncio.create_task(writer.write(pending_event(project_id, "copied", retry, event_id)))
            beside = asyncio.create_task(writer.write(pending_event(project_id, "other", retry)))
            assert await asyncio.wait_for(beside, 10) is True  # other events still commit meanwhile
            assert not copy.done()
        assert (await stored, await copy) == (True, False)
    assert await stored_copies(pool, project_id, event_id) == 1
    assert retries == []


async def test_an_error_created_by_a_batch_in_flight_is_not_lent_to_the_batch_beside_it(pool, project_id) -> None:
    """A batch beside the one creating an error waits for that creation to commit: had it taken
    the new error's id from the cache, its events would point at a row it cannot see yet."""
    now = datetime.now(timezone.utc)
    async with running_writer(pool, commits_in_flight=2, max_batch=2, max_wait_ms=200) as (writer, retries):
        known = pending_event(project_id, "known", now)
        assert await writer.write(known) is True
        async with error_row_held(pool, known):
            # One batch: a new error and a known one, whose row is held.
            creating = [
                asyncio.create_task(writer.write(pending_event(project_id, group, now))) for group in ("new", "known")
            ]
            await until_a_batch_waits_for_a_lock(pool)  # "new" is created, not committed
            beside = asyncio.create_task(writer.write(pending_event(project_id, "new", now)))
            await asyncio.wait([beside], timeout=STUCK_SECONDS)
            assert not beside.done()
        assert await asyncio.gather(*creating, beside) == [True, True, True]
    assert retries == []
    counts = await error_counts(pool, project_id)
    assert [(e["events_count"], e["stored"]) for e in counts] == [(2, 2), (2, 2)], counts


async def test_concurrent_batches_of_the_same_hot_errors_neither_deadlock_nor_retry(pool, project_id) -> None:
    now = datetime.now(timezone.utc)
    groups = [f"hot-{n}" for n in range(20)]
    async with running_writer(pool, commits_in_flight=4, max_batch=50, max_wait_ms=1) as (writer, retries):
        await asyncio.gather(*(writer.write(pending_event(project_id, group, now)) for group in groups))
        shuffled: list[PendingEvent] = [pending_event(project_id, random.choice(groups), now) for _ in range(1000)]
        assert all(await asyncio.gather(*(writer.write(event) for event in shuffled)))
    assert retries == []
    counts = await error_counts(pool, project_id)
    assert sum(e["events_count"] for e in counts) == 1020 and all(e["events_count"] == e["stored"] for e in counts)


async def test_close_answers_every_batch_in_flight_and_queued(pool, project_id) -> None:
    now = datetime.now(timezone.utc)
    async with running_writer(pool, commits_in_flight=2) as (writer, retries):
        first = pending_event(project_id, "draining", now)
        assert await writer.write(first) is True
        async with error_row_held(pool, first):
            in_flight = [asyncio.create_task(writer.write(pending_event(project_id, "draining", now))) for _ in "ab"]
            await until_a_batch_waits_for_a_lock(pool, batches=2)
            queued = asyncio.create_task(writer.write(pending_event(project_id, "draining", now)))
            closing = asyncio.create_task(writer.close())
            await asyncio.wait([closing], timeout=STUCK_SECONDS)
            assert not closing.done() and not any(t.done() for t in [*in_flight, queued])
        await asyncio.wait_for(closing, 10)
        assert all(t.done() for t in [*in_flight, queued])
        assert await asyncio.gather(*in_flight, queued) == [True] * 3
    [error] = await error_counts(pool, project_id)
    assert (error["events_count"], error["stored"]) == (4, 4)
    assert retries == []


async def test_retries_are_counted_by_reason_in_metrics(start_server, http: aiohttp.ClientSession, world, pool) -> None:
    server = await start_server(writer_commits_in_flight=4)
    tracked = await tracked_project(Api(http, server.url), world)
    url = collector_url(server.url, tracked.project_id)

    async def post() -> None:
        event = message_event("retried")
        assert (await post_envelope(http, url, event_envelope(event), sentry_auth(tracked.public_key)))[:2] == (
            200, {"id": event["event_id"]},
        )

    async def scrape() -> dict[str, float]:
        async with http.get(server.url + METRICS_PATH) as response:
            return retries_metric(await response.text())

    assert await scrape() == {reason: 0.0 for reason in RETRY_REASONS}
    await post()
    # Deleted behind the writer's id cache (as retention or a project deletion does): the next
    # event of that error fails on the foreign key, and its batch is written again.
    await pool.execute("delete from error_tracking_errors where project_id = $1", tracked.project_id)
    await post()
    assert await scrape() == {**{reason: 0.0 for reason in RETRY_REASONS}, "stale_error": 1.0}
    [error] = await error_counts(pool, tracked.project_id)
    assert (error["events_count"], error["stored"]) == (1, 1)


async def test_a_batch_keeps_the_error_ids_it_took_when_the_cache_empties_meanwhile(
    database_url, pool, world, monkeypatch
) -> None:
    """Batches committing beside one may empty the id cache (it starts again when full) while it
    waits for a connection: the ids it found known are its own copy."""
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    now = datetime.now(timezone.utc)
    ids = ErrorIds()
    first, second = pending_event(project_id, "known", now), pending_event(project_id, "known", now)
    await write_batch(pool, [first], ids)
    key = (project_id, first.summary.fingerprint)
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as single:
        async with single.acquire():  # the batch below waits for this connection
            assert ids.known([key])
            batch = asyncio.create_task(write_batch(single, [second], ids))
            await asyncio.sleep(0.1)
            assert not batch.done()
            monkeypatch.setattr(writer, "MAX_CACHED", 1)
            ids.remember([{"project_id": project_id, "fingerprint": "another", "id": 0}])  # full: starts empty
            assert not ids.known([key])
        assert len(await asyncio.wait_for(batch, 10)) == 1
    assert [(e["events_count"], e["stored"]) for e in await error_counts(pool, project_id)] == [(2, 2)]
