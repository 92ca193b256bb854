"""The errors' counters are folded in after their events commit: readers see every acknowledged
event, a resolve counts the events acknowledged before it first, and workers fold by themselves."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from app.db import tracked_errors
from app.search_query import parse_query
from tests.conftest import ROOT_TOKEN, Api
from tests.ingest_http.helpers import exception_event, pending_rows, send_all, stored_events_count, tracked_project

NEVER_MS = 600_000


@pytest.fixture
async def server(start_server):
    """errgate that never folds by itself within a test: what is folded was folded by a reader."""
    return await start_server(counts_fold_ms=NEVER_MS)


async def test_reads_count_every_acknowledged_event(server, http, api, tracked, pool) -> None:
    await send_all(http, server, tracked, *(exception_event(value="cart is empty") for _ in range(3)))
    assert await stored_events_count(pool, tracked.project_id) == 0  # acknowledged, still pending
    listed = await api.get(f"/projects/{tracked.project_id}/error_tracking/errors", token=ROOT_TOKEN)
    assert [e["events_count"] for e in listed.body] == [3]
    error_id = listed.body[0]["id"]
    await send_all(http, server, tracked, exception_event(value="cart is empty"))
    shown = await api.get(f"/projects/{tracked.project_id}/error_tracking/errors/{error_id}", token=ROOT_TOKEN)
    assert shown.body["events_count"] == 4
    await send_all(http, server, tracked, exception_event(value="cart is empty"))
    events = await api.get(f"/projects/{tracked.project_id}/error_tracking/errors/{error_id}/events", token=ROOT_TOKEN)
    assert (len(events.body), events.headers["X-Total"]) == (5, "5")


async def test_the_web_lists_tabs_and_page_count_every_acknowledged_event(server, http, tracked, pool) -> None:
    await send_all(http, server, tracked, *(exception_event(value="cart is empty") for _ in range(3)))
    assert await stored_events_count(pool, tracked.project_id) == 0
    counts, rows = await tracked_errors.status_counts_and_page(pool, tracked.project_id, parse_query(None), 20, 0)
    assert counts == {"unresolved": 1, "resolved": 0, "ignored": 0}
    assert [r["events_count"] for r in rows] == [3]


async def test_an_unknown_event_is_told_apart_from_an_unknown_error_without_folding(
    server, http, api, tracked, pool
) -> None:
    await send_all(http, server, tracked, exception_event(value="cart is empty"))
    error_id = await pool.fetchval("select id from error_tracking_errors where project_id = $1", tracked.project_id)
    events = f"/projects/{tracked.project_id}/error_tracking/errors"
    missing_event = await api.get(f"{events}/{error_id}/events/{'0' * 32}", token=ROOT_TOKEN)
    missing_error = await api.get(f"{events}/{error_id + 1000}/events/{'0' * 32}", token=ROOT_TOKEN)
    assert (missing_event.status, missing_event.body) == (404, {"message": "404 Event Not Found"})
    assert (missing_error.status, missing_error.body) == (404, {"message": "404 Error Not Found"})
    assert await stored_events_count(pool, tracked.project_id) == 0  # a 404 is no reason to write


async def test_a_resolve_counts_the_events_before_it_first(server, http, api, tracked) -> None:
    errors = f"/projects/{tracked.project_id}/error_tracking/errors"
    await send_all(http, server, tracked, exception_event(value="cart is empty"))
    error_id = (await api.get(errors, token=ROOT_TOKEN)).body[0]["id"]
    await send_all(http, server, tracked, exception_event(value="cart is empty"))  # pending when resolved
    resolved = await api.put(f"{errors}/{error_id}", token=ROOT_TOKEN, json={"status": "resolved"})
    assert (resolved.body["status"], resolved.body["events_count"]) == ("resolved", 2)
    shown = await api.get(f"{errors}/{error_id}", token=ROOT_TOKEN)
    assert (shown.body["status"], shown.body["events_count"]) == ("resolved", 2)
    await send_all(http, server, tracked, exception_event(value="cart is empty"))  # after it: a regression
    shown = await api.get(f"{errors}/{error_id}", token=ROOT_TOKEN)
    assert (shown.body["status"], shown.body["events_count"]) == ("unresolved", 3)


async def test_workers_fold_pending_counts_by_themselves(start_server, world, pool) -> None:
    server = await start_server(counts_fold_ms=20)
    async with aiohttp.ClientSession() as http:
        project = await tracked_project(Api(http, server.url), world)
        await send_all(http, server, project, *(exception_event(value="cart is empty") for _ in range(4)))
    deadline = time.monotonic() + 10
    while await stored_events_count(pool, project.project_id) != 4:
        assert time.monotonic() < deadline, "the pending counts were never folded"
        await asyncio.sleep(0.02)
    assert await pending_rows(pool, project.project_id) == 0


async def test_workers_vacuum_the_pending_counts(start_server, pool) -> None:
    """Every row of that table dies within a fold: with autovacuum off or late, the workers vacuum it."""
    vacuumed = "select vacuum_count from pg_stat_user_tables where relname = 'error_tracking_error_counts_pending'"
    before = await pool.fetchval(vacuumed)
    await start_server(counts_fold_ms=20)  # VACUUM_EVERY_FOLDS folds take 0.6 s
    deadline = time.monotonic() + 10
    while await pool.fetchval(vacuumed) == before:
        assert time.monotonic() < deadline, "the pending counts' table was never vacuumed"
        await asyncio.sleep(0.05)
