"""SIGTERM: readiness false at once, in-flight requests (events waiting for their batch) answered and
stored, exit 0 within ``ERRGATE_SHUTDOWN_GRACE_SECONDS``."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from app.health import METRICS_PATH, READINESS_PATH
from tests.conftest import Api, World
from tests.ingest_http.helpers import (
    collector_url, count_events, event_envelope, exception_event, post_envelope, sentry_auth, tracked_project,
)
from tests.ops.conftest import ProcessFactory
from tests.process import ErrgateProcess

GRACE_SECONDS = 5
# Long enough that the requests are certainly still waiting for their batch when SIGTERM arrives.
BATCH_WAIT_MS = 1500
IN_FLIGHT = 5


async def _pending_events(http: aiohttp.ClientSession, proc: ErrgateProcess) -> float:
    async with http.get(proc.url + METRICS_PATH) as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "errgate_writer_pending_events":
                return sample.value
    raise AssertionError("errgate_writer_pending_events is missing")


async def _unready(proc: ErrgateProcess) -> str:
    """Ask for readiness on a new connection until errgate says no (503) or stops listening."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        while True:
            try:
                async with fresh.get(proc.url + READINESS_PATH) as response:
                    if response.status == 503:
                        body = await response.json()
                        assert body == {"status": "unavailable", "reason": "draining"}, body
                        return "503 draining"
                    assert response.status == 200
            except aiohttp.ClientConnectionError:
                return "connection refused"
            await asyncio.sleep(0.01)


async def test_sigterm_drains_in_flight_events_and_exits_0(
    errgate_process: ProcessFactory, http: aiohttp.ClientSession, world: World, pool: asyncpg.Pool
) -> None:
    async with errgate_process(
        ERRGATE_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS), ERRGATE_BATCH_MAX_WAIT_MS=str(BATCH_WAIT_MS)
    ) as proc:
        tracked = await tracked_project(Api(http, proc.url), world)
        url = collector_url(proc.url, tracked.project_id)
        events = [exception_event(value=f"in flight {i}") for i in range(IN_FLIGHT)]
        sending = [
            asyncio.create_task(post_envelope(http, url, event_envelope(e), sentry_auth(tracked.public_key)))
            for e in events
        ]
        deadline = time.monotonic() + BATCH_WAIT_MS / 1000 / 2
        while await _pending_events(http, proc) < IN_FLIGHT:
            assert time.monotonic() < deadline, "the events never waited together for their batch"
            await asyncio.sleep(0.01)

        proc.terminate()
        terminated = time.monotonic()
        unready = await asyncio.wait_for(_unready(proc), BATCH_WAIT_MS / 1000 / 2)
        assert not any(task.done() for task in sending), f"readiness ({unready}) went false only after the answers"

        answers = await asyncio.gather(*sending)
        assert [(status, body) for status, body, _ in answers] == [(200, {"id": e["event_id"]}) for e in events]
        assert await proc.wait(GRACE_SECONDS) == 0
        assert time.monotonic() - terminated < GRACE_SECONDS
    assert await count_events(pool, tracked.project_id) == IN_FLIGHT
    assert '"message":"draining"' in proc.log()
