"""The benchmark's triage mode: the error list and search pages timed over HTTP on a large project, and their plans.

errgate (``errgate serve --workers N``) runs on a database of its own with one project seeded by
tests/bench/triage_seed.py (by default 100,000 errors and 10 million events). Each case of
tests/bench/triage_cases.py is requested ``warmup`` times, then ``requests`` times one after the
other on one keep-alive connection; printed: a Markdown table of the errors found and the
p50/p95/max latency of each case against the 50 ms p95 target, then the EXPLAIN (ANALYZE,
BUFFERS) of every statement errgate's own query code (app/db/tracked_errors.py) runs for it,
with the same arguments. Nothing is asserted: the mode reports.

The seed takes minutes at full size. ``--reuse`` keeps it in a database named after its size
(``errgate_bench_triage_<errors>_<events>``) and uses it again on the next run with ``--reuse``,
unless its seed did not finish; without it the database is dropped at the end, as in the other modes.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import AsyncIterator, Callable

import aiohttp

from app.db import tracked_errors
from tests.bench.database import Explaining
from tests.bench.servers import READY_TIMEOUT_SECONDS, ROOT_TOKEN, errgate_server, tracked_project
from tests.bench.triage_cases import CASES, PER_PAGE, Case, case_figures, plans_section, table
from tests.bench.triage_seed import seed
from tests.conftest import connect, fresh_database, with_database
from tests.process import free_port, wait_ready

Print = Callable[[str], None]
SEEDED = "errgate triage benchmark: seed complete"


@contextlib.asynccontextmanager
async def triage_database(base_url: str, errors: int, events: int, reuse: bool) -> AsyncIterator[tuple[str, bool]]:
    """The run's database and whether it holds a complete seed already: with ``reuse``, the one
    named after the seed's size (kept), made again unless its seed finished; else a fresh one."""
    if not reuse:
        async with fresh_database(base_url, "errgate_bench") as url:
            yield url, False
        return
    name = f"errgate_bench_triage_{errors}_{events}"
    async with connect(base_url) as admin:
        comment = await admin.fetchval(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = $1", name)
        if comment != SEEDED:
            await admin.execute(f'drop database if exists "{name}" with (force)')
            await admin.execute(f'create database "{name}"')
    yield with_database(base_url, name), comment == SEEDED


async def _timed(session: aiohttp.ClientSession, url: str, case: Case, warmup: int,
                 requests: int) -> tuple[list[float], int | None]:
    """Seconds per request (the whole answer read) of ``requests`` requests after ``warmup``, and
    ``X-Total`` (None: not given, there are more than errgate counts)."""
    seconds: list[float] = []
    total = None
    for number in range(warmup + requests):
        started = time.perf_counter()
        async with session.get(url, params=case.query_string()) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{case.name}: {response.status} {await response.text()}")
            total = int(response.headers["X-Total"]) if "X-Total" in response.headers else None
        if number >= warmup:
            seconds.append(time.perf_counter() - started)
    return seconds, total


async def _plans(db_url: str, project_id: int, case: Case) -> list[str]:
    """The plans of the list's statements (the total, the page) and of the web page's tab counts."""
    async with connect(db_url) as conn:
        explaining = Explaining(conn, "(analyze, buffers)")
        await tracked_errors.list_errors(explaining, project_id, case.error_query(), PER_PAGE, case.offset())
        await tracked_errors.status_counts(explaining, project_id, case.error_query())
        return explaining.plans


async def run(base_url: str, out: Print, *, errors: int, events: int, requests: int, warmup: int, workers: int,
              reuse: bool = False, markdown: Path | None = None) -> list[dict]:
    """Seed (unless reused), time every case, print the table and the plans; returns the table's lines."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as stack:
        db_url, seeded = await stack.enter_async_context(triage_database(base_url, errors, events, reuse))
        server = stack.enter_context(errgate_server(port, db_url, workers))
        if seeded:
            await wait_ready(server, base, READY_TIMEOUT_SECONDS)
        else:
            await tracked_project(server, base)
        async with connect(db_url) as conn:
            project_id = await conn.fetchval("select id from projects order by id limit 1")
            name = await conn.fetchval("select current_database()")
            if seeded:
                out(f"reusing the seed of {name}")
            else:
                figures = await seed(conn, project_id, errors, events, out)
                out(f"seeded {figures['errors']:,} errors and {figures['events']:,} events in {figures['seed_seconds']} s")
                if reuse:
                    await conn.execute(f"comment on database \"{name}\" is '{SEEDED}'")
        url = f"{base}/api/v4/projects/{project_id}/error_tracking/errors"
        lines = []
        async with aiohttp.ClientSession(headers={"PRIVATE-TOKEN": ROOT_TOKEN},
                                         connector=aiohttp.TCPConnector(limit=1)) as session:
            for case in CASES:
                seconds, total = await _timed(session, url, case, warmup, requests)
                lines.append(case_figures(case, seconds, total))
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        report = [f"{requests} requests per case after {warmup} warm-up requests, one at a time; load average "
                  f"at the end {load} on {os.cpu_count()} cores", "", *table(lines), ""]
        for case in CASES:
            report += plans_section(case, await _plans(db_url, project_id, case))
        out("\n".join(report))
        if markdown:
            markdown.write_text("\n".join(report))
        return lines
