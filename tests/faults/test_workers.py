"""``errgate serve --workers 2``: both workers accept on the shared port (SO_REUSEPORT), grouping
stays correct when they race on the same fingerprint, and SIGTERM to the parent drains and exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import aiohttp
import psutil

from tests.faults.helpers import (
    counter_mismatches,
    envelope_url,
    error_counts,
    fresh_database,
    grouped_event,
    new_session,
    post_event,
    stored_event_ids,
    tracked_project_over_http,
)
from tests.conftest import connect
from tests.process import errgate_process, readiness_status

WORKERS = 2
SESSIONS = 40
HOT = 200
SPREAD = 200
SPREAD_GROUPS = 5


def sockets_on(process: psutil.Process, port: int, status: str) -> int:
    """How many TCP sockets of ``process`` on local ``port`` are in ``status`` (0 once it has exited)."""
    try:
        connections = process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:  # a worker just killed, a zombie until its parent reaps it
        return 0
    return sum(1 for c in connections if c.laddr and c.laddr.port == port and c.status == status)


async def workers_of(pid: int, port: int, expected: int, timeout: float = 10.0) -> list[psutil.Process]:
    """The children of errgate's parent process that listen on ``port`` (not multiprocessing's
    helpers), once ``expected`` of them do: readiness answers as soon as the first worker is up."""
    deadline = time.monotonic() + timeout
    while True:
        listening = [c for c in psutil.Process(pid).children() if sockets_on(c, port, psutil.CONN_LISTEN)]
        if len(listening) >= expected or time.monotonic() > deadline:
            return listening
        await asyncio.sleep(0.05)


async def test_two_workers_share_the_port_and_group_concurrent_events_once(base_database_url, scratch_dir) -> None:
    async with fresh_database(base_database_url) as url:
        async with errgate_process(
            url, scratch_dir / "errgate.log", workers=WORKERS, ERRGATE_WRITER_COMMITS_IN_FLIGHT="4"
        ) as errgate:
            # Each worker has its own listening socket on the one port (SO_REUSEPORT).
            children = await workers_of(errgate.pid, errgate.port, WORKERS)
            assert len(children) == WORKERS, psutil.Process(errgate.pid).children()
            sessions = [new_session(2) for _ in range(SESSIONS)]
            try:
                project = await tracked_project_over_http(sessions[0], errgate.url)
                target = envelope_url(errgate.url, project.project_id)
                # Open a keep-alive connection per session; the kernel spreads them over the workers.
                assert [await readiness_status(s, errgate.url) for s in sessions] == [200] * SESSIONS
                per_worker = {c.pid: sockets_on(c, errgate.port, psutil.CONN_ESTABLISHED) for c in children}
                assert all(n >= 1 for n in per_worker.values()), f"a worker accepted nothing: {per_worker}"

                events = [grouped_event("hot") for _ in range(HOT)]
                events += [grouped_event(f"spread-{n % SPREAD_GROUPS}") for n in range(SPREAD)]
                outcomes = await asyncio.gather(*(
                    post_event(sessions[n % SESSIONS], target, project.public_key, event)
                    for n, event in enumerate(events)
                ))
            finally:
                await asyncio.gather(*(s.close() for s in sessions))

            assert Counter(o.status for o in outcomes) == {200: HOT + SPREAD}, [o for o in outcomes if o.status != 200][:3]
            async with connect(url) as db:
                stored = await stored_event_ids(db, project.project_id)
                assert stored == {e["event_id"]: 1 for e in events}
                errors = await error_counts(db, project.project_id)
            assert sorted(e["events_count"] for e in errors) == sorted([SPREAD // SPREAD_GROUPS] * SPREAD_GROUPS + [HOT]), errors
            assert len({e["fingerprint"] for e in errors}) == len(errors) == SPREAD_GROUPS + 1, errors
            assert counter_mismatches(errors) == [], errors

            errgate.signal(signal.SIGTERM)
            assert await errgate.wait(20) == 0, errgate.log_tail()
            assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


async def test_sigterm_answers_events_waiting_for_their_batch_then_exits_0(base_database_url, scratch_dir) -> None:
    """Events that are in the workers' queues when SIGTERM arrives are committed and answered 200."""
    async with fresh_database(base_database_url) as url:
        async with errgate_process(
            url, scratch_dir / "errgate.log", workers=WORKERS, ERRGATE_BATCH_MAX_WAIT_MS="1500",
            ERRGATE_WRITER_COMMITS_IN_FLIGHT="4",
        ) as errgate:
            async with new_session() as session:
                project = await tracked_project_over_http(session, errgate.url)
            target = envelope_url(errgate.url, project.project_id)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as session:
                events = [grouped_event(str(n % 2)) for n in range(20)]
                posts = [asyncio.create_task(post_event(session, target, project.public_key, e)) for e in events]
                await asyncio.sleep(0.5)  # the events now wait in the writers' queues (1.5 s batches)
                assert not any(p.done() for p in posts), "events were answered before their batch was due"
                errgate.signal(signal.SIGTERM)
                outcomes = await asyncio.gather(*posts)
            assert [(o.status, o.body) for o in outcomes] == [(200, {"id": e["event_id"]}) for e in events], outcomes
            assert await errgate.wait(20) == 0, errgate.log_tail()
            async with connect(url) as db:
                assert await stored_event_ids(db, project.project_id) == {e["event_id"]: 1 for e in events}
                assert counter_mismatches(await error_counts(db, project.project_id)) == []
