"""``/metrics`` of ``errgate serve --workers 2`` answers for both workers (prometheus-client's
multiprocess mode): counters summed, a killed worker's live gauges dropped, the files' directory
emptied at start and removed at exit."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import psutil
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from app.health import LIVENESS_PATH, METRICS_PATH
from app.metrics import workers_directory
from tests.faults.helpers import fresh_database, new_session
from tests.faults.test_workers import sockets_on, workers_of
from tests.process import ErrgateProcess, errgate_process

WORKERS = 2
SESSIONS = 16
REQUESTS = 5 * SESSIONS


async def scrape(errgate: ErrgateProcess, name: str, **labels: str) -> float:
    """The sample ``name`` with ``labels`` in ``/metrics`` (0 when absent), read over a new connection."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        async with session.get(errgate.url + METRICS_PATH) as resp:
            assert resp.status == 200
            text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def own_gauge(directory: Path, pid: int, name: str) -> float:
    """The value of the summed live gauge ``name`` in the files of worker ``pid`` alone (0 when absent)."""
    for metric in MultiProcessCollector.merge([str(directory / f"gauge_livesum_{pid}.db")], accumulate=False):
        for sample in metric.samples:
            if sample.name == name:
                return sample.value
    return 0.0


async def scraped_until(errgate: ErrgateProcess, expected: float, name: str, timeout: float = 10.0) -> float:
    """Scrape ``name`` until it equals ``expected`` or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while (value := await scrape(errgate, name)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return value


async def test_a_counter_counted_in_two_workers_is_summed_and_a_dead_workers_gauges_go(
    base_database_url, scratch_dir
) -> None:
    async with fresh_database(base_database_url) as url:
        async with errgate_process(url, scratch_dir / "errgate.log", workers=WORKERS) as errgate:
            children = await workers_of(errgate.pid, errgate.port, WORKERS)
            assert len(children) == WORKERS, psutil.Process(errgate.pid).children()
            sessions = [new_session() for _ in range(SESSIONS)]  # one keep-alive connection each
            try:
                for n in range(REQUESTS):
                    async with sessions[n % SESSIONS].get(errgate.url + LIVENESS_PATH) as resp:
                        assert resp.status == 200
                held = {c.pid: sockets_on(c, errgate.port, psutil.CONN_ESTABLISHED) for c in children}
                # Every connection served requests, so both workers did.
                assert sum(held.values()) == SESSIONS and all(held.values()), held

                counted = await scrape(
                    errgate, "errgate_http_requests_total", method="GET", route=LIVENESS_PATH, status="200"
                )
                assert counted == REQUESTS
                # A live gauge, summed: every session's connection and the scrape's own.
                assert await scraped_until(errgate, SESSIONS + 1, "errgate_connections_open") == SESSIONS + 1
                # A sampled one, written to its file by each worker (a pool keeps a connection open),
                # not only by the one answering a scrape.
                directory = workers_directory(scratch_dir / "errgate-data", "127.0.0.1", errgate.port)
                deadline = time.monotonic() + 10
                while not all(own_gauge(directory, c.pid, "errgate_db_pool_connections") for c in children):
                    assert time.monotonic() < deadline, [own_gauge(directory, c.pid, "errgate_db_pool_connections")
                                                         for c in children]
                    await asyncio.sleep(0.1)
                assert await scrape(errgate, "errgate_db_pool_connections") >= WORKERS

                killed = children[0]
                killed.kill()
                killed.wait(10)
                survivors = SESSIONS - held[killed.pid]
                assert await scraped_until(errgate, survivors + 1, "errgate_connections_open") == survivors + 1
                # Counters keep what the dead worker counted.
                assert await scrape(
                    errgate, "errgate_http_requests_total", method="GET", route=LIVENESS_PATH, status="200"
                ) == REQUESTS
            finally:
                await asyncio.gather(*(s.close() for s in sessions))


async def test_the_metrics_directory_is_emptied_at_start_and_removed_at_exit(base_database_url, scratch_dir) -> None:
    log_path = scratch_dir / "errgate.log"
    async with fresh_database(base_database_url) as url:
        async with errgate_process(url, log_path, workers=WORKERS) as first:
            port = first.port
            assert len(await workers_of(first.pid, port, WORKERS)) == WORKERS
            directory = workers_directory(scratch_dir / "errgate-data", "127.0.0.1", port)
            expected = ["counter"] * WORKERS + ["gauge_livesum"] * WORKERS + ["histogram"] * WORKERS
            # Each worker writes its gauges' file at its first sampling, up to a second after start.
            deadline = time.monotonic() + 10
            while (kinds := sorted(p.name.rsplit("_", 1)[0] for p in directory.iterdir())) != expected:
                assert time.monotonic() < deadline, kinds
                await asyncio.sleep(0.1)
        # Killed with SIGKILL, workers and all: nothing removed the directory.
        assert directory.is_dir()
        stale = directory / "counter_1.db"
        stale.write_bytes(b"left by a killed start")

        async with errgate_process(url, log_path, port=port, workers=WORKERS) as errgate:
            assert len(await workers_of(errgate.pid, port, WORKERS)) == WORKERS
            assert not stale.exists()
            assert await scrape(errgate, "errgate_connections_open") >= 1
            errgate.signal(signal.SIGTERM)
            assert await errgate.wait(20) == 0, errgate.log_tail()
        assert not directory.exists()
        assert [p.name for p in Path(scratch_dir / "errgate-data").iterdir()] == []
