"""``ERRGATE_MAX_INFLIGHT_BYTES`` over real HTTP: 429 with ``Retry-After`` while the worker's decoded
bytes are at their limit, 413 for a body the whole budget cannot hold, the bytes given back when a
request ends, its client hangs up or it is refused, and both visible in ``/metrics``."""

from __future__ import annotations

import asyncio
import gzip
import time

from app import state
from tests.conftest import Api, Server
from tests.ingest_http.helpers import (
    assert_accepted,
    assert_problem,
    collector_url,
    count_events,
    counter,
    event_envelope,
    exception_event,
    post_envelope,
    sentry_auth,
    tracked_project,
)
from tests.ops.rawhttp import RawConnection, post_head

KiB = 1024
BUDGET = 256 * KiB


def in_flight(server: Server) -> float | None:
    return server.app[state.METRICS].registry.get_sample_value("errgate_ingest_decoded_bytes_in_flight")


def refused_for_budget(server: Server) -> float:
    return counter(server, "errgate_events_rejected_total", reason="decode_budget")


async def eventually(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def padded_event_envelope(size: int) -> tuple[dict, bytes]:
    """An event envelope of about ``size`` bytes (most of it one ``extra`` string)."""
    event = exception_event(extra={"padding": "x" * size})
    return event, event_envelope(event)


async def test_429_with_retry_after_while_the_budget_is_taken(start_server, api, world, http, pool) -> None:
    server = await start_server(max_inflight_bytes=BUDGET, max_event_bytes=BUDGET)
    tracked = await tracked_project(Api(api.session, server.url), world)
    url = collector_url(server.url, tracked.project_id)
    event, body = padded_event_envelope(100 * KiB)
    headers = {**sentry_auth(tracked.public_key), "Content-Encoding": "gzip"}

    # Another request holding most of the budget: this body does not fit beside it.
    other = server.app[state.DECODE_BUDGET].reservation()
    other.reserve(BUDGET - 50 * KiB)
    try:
        status, answer, response_headers = await post_envelope(http, url, gzip.compress(body), headers)
        assert_problem(status, answer, 429)
        assert answer["detail"] == "too many request bodies being decoded"
        assert response_headers["Retry-After"] == "1"
        assert response_headers["Access-Control-Allow-Origin"] == "*"
        assert refused_for_budget(server) == 1
        assert in_flight(server) == BUDGET - 50 * KiB  # the refused request gave its part back
    finally:
        other.close()

    status, answer, _ = await post_envelope(http, url, gzip.compress(body), headers)
    assert_accepted(status, answer, event["event_id"])
    assert in_flight(server) == 0
    assert await count_events(pool, tracked.project_id) == 1
    assert refused_for_budget(server) == 1


async def test_a_body_larger_than_the_whole_budget_is_413(start_server, api, world, http) -> None:
    server = await start_server(max_inflight_bytes=BUDGET)
    tracked = await tracked_project(Api(api.session, server.url), world)
    _, body = padded_event_envelope(BUDGET)
    for encoding, sent in (("gzip", gzip.compress(body)), ("identity", body)):
        status, answer, _ = await post_envelope(
            http, collector_url(server.url, tracked.project_id), sent,
            {**sentry_auth(tracked.public_key), "Content-Encoding": encoding},
        )
        assert_problem(status, answer, 413)
        assert str(BUDGET) in answer["causes"][0]
    assert in_flight(server) == 0
    assert refused_for_budget(server) == 0


async def test_a_client_that_hangs_up_mid_body_gives_its_bytes_back(start_server, api, world) -> None:
    server = await start_server()
    tracked = await tracked_project(Api(api.session, server.url), world)
    _, body = padded_event_envelope(400 * KiB)
    head = post_head(collector_url("", tracked.project_id), len(body), **sentry_auth(tracked.public_key))
    async with RawConnection(server.url) as conn:
        await conn.send(head + body[: len(body) // 2])
        assert await eventually(lambda: in_flight(server) == len(body) // 2), in_flight(server)
    assert await eventually(lambda: in_flight(server) == 0), in_flight(server)
