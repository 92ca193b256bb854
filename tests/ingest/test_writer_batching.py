"""The writer's group commit policy, with the database write replaced by a gate the test opens.

A batch that starts from idle waits ``max_wait_ms`` for company; events that queue while a batch
commits go as the next batch as soon as that commit returns, without waiting again. With several
commits in flight, a batch starts beside the others once it is as full as they are on average.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timezone
from typing import AsyncIterator

from app.ingest.grouping import fingerprint_for
from app.ingest.summary import summarize_event
from app.ingest.writer import EventWriter, PendingEvent

WAIT_MS = 400


class GatedWriter(EventWriter):
    """Records each batch and the time it started committing; a batch finishes when ``gate`` opens."""

    def __init__(self, commits_in_flight: int = 1) -> None:
        super().__init__(
            None,  # type: ignore[arg-type]
            max_batch=100, max_wait_ms=WAIT_MS, max_pending=100, commits_in_flight=commits_in_flight,
        )
        self.batches: list[tuple[float, list[str]]] = []
        self.gate = asyncio.Event()

    async def _commit(self, batch: list[PendingEvent]) -> None:
        self.batches.append((time.monotonic(), [e.event_id for e in batch]))
        await self.gate.wait()
        for event in batch:
            event.future.set_result(True)


@contextlib.asynccontextmanager
async def gated_writer(commits_in_flight: int = 1) -> AsyncIterator[GatedWriter]:
    """A started :class:`GatedWriter`, its gate opened and the writer closed when the block ends."""
    writer = GatedWriter(commits_in_flight)
    writer.start()
    try:
        yield writer
    finally:
        writer.gate.set()
        await writer.close()


async def until_batches(writer: GatedWriter, count: int) -> None:
    """Until ``count`` batches started committing."""
    while len(writer.batches) < count:
        await asyncio.sleep(0.005)


def pending(n: int) -> PendingEvent:
    now = datetime.now(timezone.utc)
    event = {"message": "m"}
    summary = summarize_event(event, fingerprint=fingerprint_for(event), received_at=now)
    return PendingEvent(1, f"{n:032x}", summary, "{}", now)


async def test_idle_batch_waits_and_queued_batch_goes_at_once() -> None:
    async with gated_writer() as writer:
        started = time.monotonic()
        first = [asyncio.create_task(writer.write(pending(n))) for n in (1, 2)]
        await until_batches(writer, 1)
        # The first batch waited for company, and took both events.
        assert writer.batches[0][0] - started >= WAIT_MS / 1000 * 0.9
        assert writer.batches[0][1] == [f"{1:032x}", f"{2:032x}"]

        # While it commits, two more events queue behind it.
        second = [asyncio.create_task(writer.write(pending(n))) for n in (3, 4)]
        await asyncio.sleep(0.05)
        assert len(writer.batches) == 1 and not any(t.done() for t in first + second)
        released = time.monotonic()
        writer.gate.set()
        assert await asyncio.gather(*first) == [True, True]
        await until_batches(writer, 2)
        # ... and go as soon as the commit returns, without a second wait.
        assert writer.batches[1][0] - released < WAIT_MS / 1000 / 2
        assert writer.batches[1][1] == [f"{3:032x}", f"{4:032x}"]
        assert await asyncio.gather(*second) == [True, True]


async def test_batches_commit_side_by_side_up_to_the_limit() -> None:
    async with gated_writer(commits_in_flight=2) as writer:
        first = [asyncio.create_task(writer.write(pending(n))) for n in (1, 2)]
        await until_batches(writer, 1)
        # Beside a batch of two, one event waits for company; a second makes it as full: it goes.
        second = [asyncio.create_task(writer.write(pending(3)))]
        await asyncio.sleep(0.05)
        assert len(writer.batches) == 1
        queued = time.monotonic()
        second.append(asyncio.create_task(writer.write(pending(4))))
        await until_batches(writer, 2)
        assert writer.batches[1][0] - queued < WAIT_MS / 1000 / 2
        assert writer.batches[1][1] == [f"{3:032x}", f"{4:032x}"]
        assert writer.batches_in_flight == 2 and not any(t.done() for t in first + second)

        # Both commits in flight: the next events wait for one of them to return.
        third = [asyncio.create_task(writer.write(pending(n))) for n in (5, 6)]
        await asyncio.sleep(WAIT_MS / 1000 * 1.5)
        assert len(writer.batches) == 2
        writer.gate.set()
        assert await asyncio.gather(*first, *second, *third) == [True] * 6
        assert [ids for _, ids in writer.batches][2:] == [[f"{5:032x}", f"{6:032x}"]]


async def test_a_copy_of_an_event_in_flight_waits_for_its_commit() -> None:
    async with gated_writer(commits_in_flight=4) as writer:
        first = asyncio.create_task(writer.write(pending(1)))
        await until_batches(writer, 1)
        copy = asyncio.create_task(writer.write(pending(1)))
        other = asyncio.create_task(writer.write(pending(2)))
        await until_batches(writer, 2)
        assert writer.batches[1][1] == [f"{2:032x}"]  # the copy stayed queued
        await asyncio.sleep(WAIT_MS / 1000 * 1.5)
        assert len(writer.batches) == 2
        writer.gate.set()
        assert await asyncio.gather(first, copy, other) == [True] * 3
        assert writer.batches[2][1] == [f"{1:032x}"]
