"""One benchmark run: a server on a fresh database, the corpus sent by the load generator, the figures measured."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from typing import Any
from urllib.parse import urlsplit

from tests.bench import database, processes
from tests.bench.corpus import build_corpus
from tests.bench.figures import ceiling_figures, cpu_figures, wal_figures
from tests.bench.load import envelope_path, prepare_requests, spawn_load
from tests.bench.preload import preload
from tests.bench.processes import parse_cpus
from tests.bench.servers import bare_server, errgate_server, tracked_project, writer_retries
from tests.conftest import fresh_database
from tests.process import free_port

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url() -> str:
    """The PostgreSQL server the benchmark makes its fresh database on."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """One run of ``args.mode``; ``compare`` runs the bare handler, then errgate, with the same load."""
    if args.mode != "compare":
        return await run(args, args.mode)
    ceiling = await run(args, "bare")
    result = await run(args, "errgate")
    result.update(ceiling_figures(result, ceiling), mode="compare")
    return result


def _cpu(server_pid: int, database: str | None) -> tuple[float, float]:
    """CPU seconds so far of errgate's processes and of PostgreSQL's (those of other databases left out)."""
    return (
        processes.cpu_seconds(processes.tree(server_pid)),
        processes.cpu_seconds(processes.postgres_processes(database)),
    )


async def run(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    server_cpus, client_cpus = parse_cpus(args.server_cpus), parse_cpus(args.client_cpus)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as stack:
        if mode == "errgate":
            db_url = await stack.enter_async_context(fresh_database(database_url(), "errgate_bench", args.keep_database))
            database_name = urlsplit(db_url).path.lstrip("/")
            server = stack.enter_context(errgate_server(port, db_url, args.workers))
            dsn = await tracked_project(server, base)
            if args.preload:
                await preload(db_url, args.preload, args.preload_hours)
        else:
            db_url = database_name = None
            server = stack.enter_context(bare_server(port, args.workers))
            await asyncio.sleep(1.5)
            dsn = f"http://bench@127.0.0.1:{port}/1"
        total = int((args.rate or 9000) * args.duration * 1.1) if not args.events else args.events
        requests = prepare_requests(envelope_path(dsn), f"127.0.0.1:{port}", build_corpus(total, dsn))
        rss_before = processes.rss(server.pid)
        if server_cpus:  # errgate's workers and every PostgreSQL process (backends started later inherit it)
            stack.callback(lambda: processes.pin(processes.postgres_processes(), None))
            processes.pin(processes.tree(server.pid) + processes.postgres_processes(), server_cpus)
        loader, results = spawn_load(
            "127.0.0.1", port, requests, args.connections, args.duration, args.rate, mode == "bare", client_cpus
        )
        wal_before = await database.wal_totals(db_url) if db_url else None
        cpu_before = _cpu(server.pid, database_name)
        loader.start()
        result = results.recv()
        cpu_after = _cpu(server.pid, database_name)
        wal_after = await database.wal_totals(db_url) if db_url else None
        loader.join()
        rss_after = processes.rss(server.pid)
        result["server_cpu_s"] = round(cpu_after[0] - cpu_before[0], 1)
        result["postgres_cpu_s"] = round(cpu_after[1] - cpu_before[1], 1)
        stored = None
        if db_url:
            stored, result["distinct_errors"] = await database.stored(db_url, args.preload)
            result["deadlocks"] = await database.deadlocks(db_url)
            result["writer_retries"] = await writer_retries(base)
            result["plans"] = await database.explain_queries(db_url)
        elapsed = result["elapsed_s"]
        result.update(
            mode=mode, workers=args.workers, connections=args.connections, rate_target=args.rate,
            preloaded_events=args.preload, preload_hours=args.preload_hours if args.preload else None,
            accepted_events_per_s=round(result["accepted"] / elapsed, 1),
            stored_events=stored,
            stored_events_per_s=round(stored / elapsed, 1) if stored is not None else None,
            server_rss_mb_before=round(rss_before / 2**20, 1), server_rss_mb_after=round(rss_after / 2**20, 1),
            cpus=os.cpu_count(), server_cpus=server_cpus, client_cpus=client_cpus,
        )
        result.update(cpu_figures(result, stored, len(server_cpus or os.sched_getaffinity(0))))
        if wal_before and wal_after and stored is not None:
            result.update(wal_figures(wal_before, wal_after, stored))
        return result
