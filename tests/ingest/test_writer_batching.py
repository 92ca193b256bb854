"""The writer's group commit policy, with the database write replaced by a gate the test opens.

A batch that starts from idle waits ``max_wait_ms`` for company; events that queue while a batch
commits go as the next batch as soon as that commit returns, without waiting again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from app.ingest.grouping import fingerprint_for
from app.ingest.summary import summarize_event
from app.ingest.writer import EventWriter, PendingEvent

WAIT_MS = 400


class GatedWriter(EventWriter):
    """Records each batch and the time it started committing; a batch finishes when ``gate`` opens."""

    def __init__(self) -> None:
        super().__init__(None, max_batch=100, max_wait_ms=WAIT_MS, max_pending=100)  # type: ignore[arg-type]
        self.batches: list[tuple[float, list[str]]] = []
        self.gate = asyncio.Event()

    async def _commit(self, batch: list[PendingEvent]) -> None:
        self.batches.append((time.monotonic(), [e.event_id for e in batch]))
        await self.gate.wait()
        for event in batch:
            event.future.set_result(True)


def pending(n: int) -> PendingEvent:
    now = datetime.now(timezone.utc)
    event = {"message": "m"}
    summary = summarize_event(event, fingerprint=fingerprint_for(event), received_at=now)
    return PendingEvent(1, f"{n:032x}", summary, "{}", now)


async def test_idle_batch_waits_and_queued_batch_goes_at_once() -> None:
    writer = GatedWriter()
    writer.start()
    try:
        started = time.monotonic()
        first = [asyncio.create_task(writer.write(pending(n))) for n in (1, 2)]
        while not writer.batches:
            await asyncio.sleep(0.01)
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
        while len(writer.batches) < 2:
            await asyncio.sleep(0.005)
        # ... and go as soon as the commit returns, without a second wait.
        assert writer.batches[1][0] - released < WAIT_MS / 1000 / 2
        assert writer.batches[1][1] == [f"{3:032x}", f"{4:032x}"]
        assert await asyncio.gather(*second) == [True, True]
    finally:
        writer.gate.set()
        await writer.close()
