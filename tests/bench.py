"""Ingest benchmark: ``python -m tests.bench`` — a load test that prints one JSON line, never a timed test.

It starts errgate (``errgate serve --workers N``) on a fresh database of the PostgreSQL at
``DATABASE_URL`` (default: the local server on 127.0.0.1:5432), creates a project and a client
key through the REST API, builds envelopes with the real ``sentry-sdk`` (captured by a
transport that keeps them instead of sending them), several platforms and sizes, gzip and br,
many distinct errors with many repeats and a fresh ``event_id`` per request, then sends them
from a separate process over N concurrent keep-alive connections for a fixed duration.

Printed: accepted events/s, stored events/s (counted in the database afterwards), latency
percentiles, non-2xx count, server RSS before and after, CPU seconds of the server, of
PostgreSQL and of the load generator (``client_cpu_s``). ``--mode bare`` runs the same load
against a bare aiohttp handler that only reads the body and answers ``{"id": ...}``: the
framework's ceiling on this machine (the corpus is sent again from the start if it runs out).
``--mode compare`` runs the bare handler and then errgate with the same load and adds
``fraction_of_ceiling``: errgate's stored events/s over the bare handler's requests/s.
``--rate`` sends at a fixed rate instead of as fast as possible (for latency at a given load).
``--preload N`` first inserts N synthetic events so the run measures ingestion into a large
table; ``--preload-hours H`` (default 24) spreads their
receive times over the last H hours, as a table that reached that size over that time holds
them. WAL bytes and full-page images per stored event (from ``pg_stat_wal``, server-wide) show
the I/O each event costs.

The goals are for errgate and PostgreSQL on two cores. ``--server-cpus`` and ``--client-cpus``
pin errgate with PostgreSQL, and the load generator, to separate cores (on a machine with more
than two) so that the load generator does not take the server's CPU. Every run also prints the
CPU cost per event of each side and ``projected_events_per_s``: stored events per CPU-second of
errgate and PostgreSQL, times the cores they may use. That is the rate at which those cores
would be saturated with the load generator elsewhere: a projection from measured CPU time, not
a measured rate.

Examples::

    python -m tests.bench --duration 30 --connections 64 --workers 2
    python -m tests.bench --mode bare --duration 30 --connections 64
    python -m tests.bench --mode compare --duration 30 --connections 256
    python -m tests.bench --duration 30 --rate 2500
    python -m tests.bench --duration 30 --connections 256 --server-cpus 0-1 --client-cpus 2-3
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import brotli
import orjson
import psutil

from app.db import partitions
from app.ingest.payload import pack_event

ROOT_TOKEN = "glpat-bench-root-token-000000000"
PLATFORMS = ("python", "javascript", "node", "java", "ruby")
DISTINCT_ERRORS = 1000
EXTRA_SIZES = (0, 0, 0, 512, 2048, 16384)  # most events are small, some carry big context


# -- corpus: envelopes made by the real sentry-sdk ---------------------------------------------


def parse_order(order_id: int) -> int:
    return int(f"order-{order_id}")


def load_user(user_id: int) -> dict[str, Any]:
    return {}["user-%d" % user_id]


def divide(total: int, parts: int) -> float:
    return total / parts


CRASHES = (lambda i: parse_order(i), lambda i: load_user(i), lambda i: divide(i, 0))


def _sdk_events(count: int) -> list[dict[str, Any]]:
    """Capture ``count`` real events from sentry-sdk (exceptions and messages) without sending them."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    captured: list[dict[str, Any]] = []

    class Keep(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            event = envelope.get_event()
            if event is not None:
                captured.append(orjson.loads(orjson.dumps(event)))

    sentry_sdk.init(dsn="http://key@localhost/1", transport=Keep, default_integrations=False, release="bench@1.0")
    for i in range(count):
        if i % 7 == 6:
            sentry_sdk.capture_message(f"payment {i} declined after {i % 5} retries", level="warning")
        else:
            _capture_crash(sentry_sdk, i)
    sentry_sdk.flush()
    sentry_sdk.get_client().close()
    return captured


def _capture_crash(sdk: Any, i: int) -> None:
    try:
        CRASHES[i % len(CRASHES)](i)
    except Exception:
        sdk.capture_exception()


def _variant(event: dict[str, Any], error_index: int, platform: str, extra_size: int) -> dict[str, Any]:
    """A distinct error per ``error_index`` (its in-app function renamed), on ``platform``, padded."""
    event = orjson.loads(orjson.dumps(event))
    event["platform"] = platform
    for exc in (event.get("exception") or {}).get("values", []):
        frames = (exc.get("stacktrace") or {}).get("frames", [])
        if frames:
            frames[-1]["function"] = f"{frames[-1].get('function')}_{error_index}"
            frames[-1]["in_app"] = True
    if "message" in event or "logentry" in event:
        event["fingerprint"] = ["{{ default }}", str(error_index)]
    if extra_size:
        event["extra"] = {"blob": "x" * extra_size}
    return event


def _envelope(event: dict[str, Any], dsn: str) -> bytes:
    event_id = uuid.uuid4().hex
    event["event_id"] = event_id
    payload = orjson.dumps(event)
    header = orjson.dumps({"event_id": event_id, "dsn": dsn, "sent_at": "2026-01-01T00:00:00Z"})
    item = orjson.dumps({"type": "event", "length": len(payload), "content_type": "application/json"})
    return header + b"\n" + item + b"\n" + payload + b"\n"


def build_corpus(total: int, dsn: str, seed: int = 7) -> list[tuple[bytes, str]]:
    """``total`` unique compressed envelopes: Zipf-like repeats over DISTINCT_ERRORS errors."""
    rng = random.Random(seed)
    base = _sdk_events(60)
    variants: dict[int, dict[str, Any]] = {}
    corpus = []
    for n in range(total):
        error_index = min(int(rng.paretovariate(0.8)) - 1, DISTINCT_ERRORS - 1)
        if error_index not in variants:
            variants[error_index] = _variant(
                base[error_index % len(base)], error_index, PLATFORMS[error_index % len(PLATFORMS)],
                EXTRA_SIZES[error_index % len(EXTRA_SIZES)],
            )
        raw = _envelope(dict(variants[error_index]), dsn)
        if n % 2:
            corpus.append((brotli.compress(raw, quality=4), "br"))
        else:
            corpus.append((gzip.compress(raw, compresslevel=6), "gzip"))
    return corpus


# -- servers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bare_server(port: int, workers: int = 1) -> None:
    """The framework's ceiling: read the body, answer ``{"id": ...}``, nothing else; ``workers``
    processes share the port with SO_REUSEPORT, as errgate's workers do, on the same event loop."""
    import uvloop
    from aiohttp import web

    if workers > 1:
        children = [
            multiprocessing.get_context("spawn").Process(target=run_bare_server, args=(port, 1)) for _ in range(workers - 1)
        ]
        for child in children:
            child.start()

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": uuid.uuid4().hex}, dumps=lambda v: orjson.dumps(v).decode())

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/{project_id}/envelope/", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, auto_decompress=False,
                reuse_port=True, loop=uvloop.new_event_loop())


async def _wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server at {url} did not become ready")


async def _setup_project(base: str) -> str:
    headers = {"PRIVATE-TOKEN": ROOT_TOKEN}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(f"{base}/api/v4/projects", json={"path_with_namespace": "bench/app"}) as r:
            project = await r.json()
        url = f"{base}/api/v4/projects/{project['id']}/error_tracking/settings"
        async with s.put(url, json={"active": True, "integrated": True}):
            pass
        async with s.get(f"{base}/api/v4/projects/{project['id']}/error_tracking/client_keys") as r:
            return (await r.json())[0]["sentry_dsn"]


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU time used so far by ``procs`` (those still running)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def parse_cpus(text: str | None) -> list[int] | None:
    """``"0-1,3"`` → ``[0, 1, 3]``; None or ``""`` → None (no pinning). Cores this process may
    not use are refused, so that a pinned run never silently runs elsewhere."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    available = os.sched_getaffinity(0)
    if not cpus <= available:
        raise SystemExit(f"cores {sorted(cpus - available)} are not available here (available: {sorted(available)})")
    return sorted(cpus)


def _pin(procs: list[psutil.Process], cpus: list[int] | None) -> None:
    for proc in procs:
        try:
            proc.cpu_affinity(cpus or [])  # [] means every core
        except psutil.NoSuchProcess:
            pass


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def _postgres_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def cpu_figures(result: dict[str, Any], stored: int | None, server_cores: int) -> dict[str, float | None]:
    """CPU per event of each side, and the rate at which errgate and PostgreSQL would saturate
    ``server_cores`` cores with the load generator elsewhere (a projection from CPU time)."""
    events = stored if stored is not None else result["accepted"]
    if not events:
        return {"errgate_cpu_us_per_event": None, "postgres_cpu_us_per_event": None,
                "client_cpu_us_per_request": None, "projected_events_per_s": None}
    server = result["server_cpu_s"] + result["postgres_cpu_s"]
    return {
        "errgate_cpu_us_per_event": round(result["server_cpu_s"] / events * 1e6),
        "postgres_cpu_us_per_event": round(result["postgres_cpu_s"] / events * 1e6),
        "client_cpu_us_per_request": round(result["client_cpu_s"] / max(result["requests"], 1) * 1e6),
        "projected_events_per_s": round(events / server * server_cores) if server else None,
    }


async def _wal_totals(dsn: str) -> tuple[int, int]:
    """WAL bytes and full-page images written so far by the whole PostgreSQL server."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("select wal_bytes::bigint, wal_fpi from pg_stat_wal")
        return row["wal_bytes"], row["wal_fpi"]
    finally:
        await conn.close()


def wal_figures(before: tuple[int, int], after: tuple[int, int], stored: int) -> dict[str, float | None]:
    """WAL written per stored event, and the share of it that is full-page images (8 KB copies
    of pages changed for the first time since a checkpoint): the I/O a large index costs."""
    if not stored:
        return {"wal_bytes_per_event": None, "wal_fpi_per_event": None}
    return {
        "wal_bytes_per_event": round((after[0] - before[0]) / stored),
        "wal_fpi_per_event": round((after[1] - before[1]) / stored, 3),
    }


def _server_rss(pid: int) -> int:
    try:
        return sum(p.memory_info().rss for p in _tree(pid))
    except psutil.NoSuchProcess:
        return 0


async def _preload(dsn: str, count: int, hours: int = 24) -> None:
    """Insert ``count`` small synthetic events over 5,000 errors, for the large-table run.

    Their receive times are spread evenly over the last ``hours`` hours, as in a table that grew
    to that size over that time: 24 puts a whole busy day (10 million: 116 events/s around the
    clock) into the partitions the run then writes to; 1 puts every event into the hour the run
    writes to, the worst case for the index it inserts into.
    """
    conn = await asyncpg.connect(dsn)
    try:
        now = datetime.now(timezone.utc)
        await partitions.create_partitions(conn, (now - timedelta(hours=hours)).date(), now.date())
        project_id = await conn.fetchval("select id from projects order by id limit 1")
        await conn.execute(
            """insert into error_tracking_errors (project_id, fingerprint, name, description, actor, platform,
                                                  first_seen_at, last_seen_at, events_count)
               select $1, 'preload-' || g, 'PreloadError', 'preloaded', 'f(m)', 'python', now(), now(), 0
               from generate_series(1, 5000) g on conflict do nothing""",
            project_id,
        )
        ids = [r["id"] for r in await conn.fetch("select id from error_tracking_errors where project_id = $1", project_id)]
        payload = pack_event({"message": "preloaded event", "platform": "python", "level": "error"})
        chunk = 500_000
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            await conn.execute(
                """insert into error_tracking_error_events
                       (project_id, error_id, event_id, level, environment, release, occurred_at, received_at,
                        received_on, received_hour, payload_text)
                   select $1, ($2::bigint[])[(1 + g % array_length($2::bigint[], 1))::int], gen_random_uuid(), 'error',
                          'production', 'bench@1.0', r - (g % 400000) * interval '1 second', r,
                          (r at time zone 'UTC')::date, extract(hour from r at time zone 'UTC')::smallint, $4
                   from generate_series($5::bigint, $5::bigint + $3 - 1) g,
                        lateral (select $6::timestamptz - (g % ($7::int * 3600)) * interval '1 second' as r) d""",
                project_id, ids, n, payload, start, now, hours,
            )
        await conn.execute(
            """update error_tracking_errors e set events_count = c.n
               from (select error_id, count(*) n from error_tracking_error_events group by 1) c where e.id = c.error_id"""
        )
        # Let the table settle as it would in production before measuring: visibility map,
        # statistics, and the preload's dirty pages written out.
        await conn.execute("vacuum (analyze) error_tracking_errors")
        await conn.execute("vacuum (analyze) error_tracking_error_events")
        await conn.execute("checkpoint")
    finally:
        await conn.close()


PLANNED_QUERIES = {
    "settings": "select * from project_error_tracking_settings where project_id = $1",
    "client_keys": "select id, project_id, active, public_key from error_tracking_client_keys "
                   "where project_id = $1 order by id limit 20",
    "key_lookup": "select project_id, active from error_tracking_client_keys where public_key = 'glet_x'",
    "error_list": "select id, name, last_seen_at, events_count from error_tracking_errors "
                  "where project_id = $1 and status = 'unresolved' order by last_seen_at desc, id limit 20",
    "error_events": "select event_id, occurred_at from error_tracking_error_events "
                    "where project_id = $1 and error_id = $2 order by occurred_at desc limit 20",
}


async def explain_queries(dsn: str) -> dict[str, str]:
    """The access paths PostgreSQL chooses for the queries behind settings, keys and listings."""
    conn = await asyncpg.connect(dsn)
    try:
        project_id = await conn.fetchval("select id from projects order by id limit 1")
        error_id = await conn.fetchval("select id from error_tracking_errors where project_id = $1 limit 1", project_id)
        plans = {}
        for name, sql in PLANNED_QUERIES.items():
            args = [project_id, error_id][: sql.count("$")]
            text = "\n".join(r[0] for r in await conn.fetch(f"explain {sql}", *args))
            nodes = [n for n in ("Index Only Scan", "Index Scan", "Bitmap Index Scan", "Seq Scan") if n in text]
            plans[name] = ", ".join(nodes) or text.splitlines()[0]
        return plans
    finally:
        await conn.close()


# -- load ------------------------------------------------------------------------------------


def _load_process(host: str, port: int, requests: list[bytes], connections: int, duration: float, rate: float,
                  cycle: bool, cpus: list[int] | None, out: Any) -> None:
    import uvloop  # the load generator shares the cores with the server: keep its CPU low

    if cpus:
        os.sched_setaffinity(0, cpus)
    cpu_before = time.process_time()
    result = uvloop.run(_load(host, port, requests, connections, duration, rate, cycle))
    result["client_cpu_s"] = round(time.process_time() - cpu_before, 1)
    out.send(result)


class _Connection(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive client: write a prepared request, read one response.

    aiohttp's client costs more CPU per request than the server under test on two cores;
    this one parses only the status line and Content-Length, so the load generator stays cheap.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(0)

    def _check(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).lower()
        length_at = head.find(b"content-length:")
        length = int(head[length_at + 15:].split(b"\r\n", 1)[0]) if length_at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buffer[: end + 4 + length]
        if not self.waiter.done():
            self.waiter.set_result(status)

    def _timed_out(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(0)  # status 0: no answer in time; the caller reconnects

    async def send(self, request: bytes, timeout: float) -> int:
        """The response's status, or 0 when the connection closed or ``timeout`` passed first.
        (A timer handle per request: asyncio.wait_for would cost a task per request.)"""
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        assert self.transport is not None
        self.transport.write(request)
        timer = loop.call_later(timeout, self._timed_out)
        try:
            return await self.waiter
        finally:
            timer.cancel()


def prepare_requests(path: str, host: str, corpus: list[tuple[bytes, str]]) -> list[bytes]:
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-sentry-envelope\r\n"
            f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for body, encoding in corpus
    ]


async def _load(host: str, port: int, requests: list[bytes], connections: int, duration: float,
                rate: float, cycle: bool = False) -> dict[str, Any]:
    """Send ``requests`` in turn until ``duration`` passes or they run out; with ``cycle`` (the bare
    handler, which stores nothing) start over instead, so that its run lasts as long."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0
    started = time.perf_counter()
    deadline = started + duration
    interval = connections / rate if rate else 0.0

    async def worker(offset: float) -> None:
        nonlocal next_index
        _, conn = await loop.create_connection(_Connection, host, port)
        next_send = started + offset
        try:
            while True:
                now = time.perf_counter()
                if now >= deadline or (next_index >= len(requests) and not cycle):
                    return
                if interval:
                    if next_send > now:
                        await asyncio.sleep(next_send - now)
                    next_send += interval
                request = requests[next_index % len(requests)]
                next_index += 1
                sent = time.perf_counter()
                status = await conn.send(request, 30)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 0:
                    if conn.transport is not None:
                        conn.transport.close()
                    _, conn = await loop.create_connection(_Connection, host, port)
        finally:
            if conn.transport is not None:
                conn.transport.close()

    await asyncio.gather(*(worker(i * interval / connections) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2) if latencies else 0.0

    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {
        "elapsed_s": round(elapsed, 2), "requests": len(latencies), "accepted": ok,
        "non_2xx": len(latencies) - ok, "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
        "corpus_exhausted": next_index >= len(requests) and not cycle,
    }


def envelope_path(dsn: str) -> str:
    """``http://KEY@host/prefix/5`` → ``/prefix/api/5/envelope/`` (as an SDK derives it)."""
    path = urlsplit(dsn).path
    prefix, _, project_id = path.rpartition("/")
    return f"{prefix}/api/{project_id}/envelope/"


# -- main ------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """One run of ``args.mode``; ``compare`` runs the bare handler, then errgate, with the same load."""
    if args.mode != "compare":
        return await run(args, args.mode)
    ceiling = await run(args, "bare")
    result = await run(args, "errgate")
    result.update(ceiling_figures(result, ceiling), mode="compare")
    return result


def ceiling_figures(result: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, float | None]:
    """errgate's stored events/s as a fraction of the bare handler's requests/s (the ceiling)."""
    rate = ceiling["accepted"] / ceiling["elapsed_s"] if ceiling["elapsed_s"] else 0.0
    stored = result.get("stored_events_per_s")
    return {
        "ceiling_requests_per_s": round(rate, 1),
        "ceiling_p99_ms": ceiling["p99_ms"],
        "fraction_of_ceiling": round(stored / rate, 3) if rate and stored is not None else None,
    }


async def run(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    server_cpus, client_cpus = parse_cpus(args.server_cpus), parse_cpus(args.client_cpus)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    admin_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    db_name = f"errgate_bench_{secrets.token_hex(4)}"
    db_url = admin_url.rsplit("/", 1)[0] + "/" + db_name
    env = dict(os.environ)
    if mode == "errgate":
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'create database "{db_name}"')
        env.update(DATABASE_URL=db_url, ERRGATE_PORT=str(port), ERRGATE_ROOT_TOKEN=ROOT_TOKEN,
                   ERRGATE_LOG_LEVEL="warning", ERRGATE_EXTERNAL_URL=base)
        command = [sys.executable, "-m", "app", "serve", "--workers", str(args.workers)]
        ready_path = "/-/readiness"
    else:
        command = [sys.executable, "-m", "tests.bench", "--serve-bare", str(port), "--workers", str(args.workers)]
        ready_path = None
    server = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    try:
        if ready_path:
            await _wait_ready(base + ready_path)
            dsn = await _setup_project(base)
            if args.preload:
                await _preload(db_url, args.preload, args.preload_hours)
        else:
            await asyncio.sleep(1.5)
            dsn = f"http://bench@127.0.0.1:{port}/1"
        total = int((args.rate or 9000) * args.duration * 1.1) if not args.events else args.events
        requests = prepare_requests(envelope_path(dsn), f"127.0.0.1:{port}", build_corpus(total, dsn))
        rss_before = _server_rss(server.pid)
        if server_cpus:  # errgate's workers and every PostgreSQL process (backends started later inherit it)
            _pin(_tree(server.pid) + _postgres_processes(), server_cpus)
        parent, child = multiprocessing.Pipe()
        loader = multiprocessing.get_context("spawn").Process(
            target=_load_process,
            args=("127.0.0.1", port, requests, args.connections, args.duration, args.rate, mode == "bare", client_cpus, child),
        )
        wal_before = await _wal_totals(db_url) if mode == "errgate" else None
        cpu_before = (_cpu_seconds(_tree(server.pid)), _cpu_seconds(_postgres_processes()))
        loader.start()
        result = parent.recv()
        cpu_after = (_cpu_seconds(_tree(server.pid)), _cpu_seconds(_postgres_processes()))
        wal_after = await _wal_totals(db_url) if wal_before else None
        loader.join()
        rss_after = _server_rss(server.pid)
        result["server_cpu_s"] = round(cpu_after[0] - cpu_before[0], 1)
        result["postgres_cpu_s"] = round(cpu_after[1] - cpu_before[1], 1)
        stored = None
        if mode == "errgate":
            conn = await asyncpg.connect(db_url)
            stored = await conn.fetchval("select count(*) from error_tracking_error_events") - args.preload
            errors = await conn.fetchval("select count(*) from error_tracking_errors where fingerprint not like 'preload-%'")
            await conn.close()
            result["distinct_errors"] = errors
            result["plans"] = await explain_queries(db_url)
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
    finally:
        if server_cpus:
            _pin(_postgres_processes(), None)
        os.killpg(server.pid, signal.SIGTERM)  # the server and every worker it started
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        if mode == "errgate" and not args.keep_database:
            await admin.execute(f'drop database if exists "{db_name}" with (force)')
            await admin.close()


def _preload_hours(text: str) -> int:
    """Hours within the default retention (90 days), so that no preloaded partition is dropped."""
    hours = int(text)
    if not 1 <= hours <= 90 * 24:
        raise argparse.ArgumentTypeError(f"{hours} is not between 1 and 2160")
    return hours


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("errgate", "bare", "compare"), default="errgate",
                        help="compare: the bare handler, then errgate, and errgate's rate as a fraction of the bare one's")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="errgate worker processes")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s to send (0 = as fast as possible)")
    parser.add_argument("--events", type=int, default=0, help="corpus size (default: enough for the duration)")
    parser.add_argument("--preload", type=int, default=0, help="synthetic events inserted before the run")
    parser.add_argument("--preload-hours", type=_preload_hours, default=24, metavar="1..2160",
                        help="spread the preloaded events' receive times over this many hours before now")
    parser.add_argument("--server-cpus", help="pin errgate and PostgreSQL to these cores, e.g. 0-1")
    parser.add_argument("--client-cpus", help="pin the load generator to these cores, e.g. 2-3")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_bare:
        run_bare_server(arguments.serve_bare, arguments.workers)
    else:
        print(orjson.dumps(asyncio.run(main(arguments))).decode())
