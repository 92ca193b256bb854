"""The benchmark's load generator: prepared requests over keep-alive connections, from a process of its own."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any
from urllib.parse import urlsplit

from tests.bench.figures import percentile_ms


def spawn_load(host: str, port: int, requests: list[bytes], connections: int, duration: float, rate: float,
               cycle: bool, cpus: list[int] | None) -> tuple[BaseProcess, Connection]:
    """The load generator in a process of its own, not started yet, and the end of the pipe on
    which it sends its result."""
    parent, child = multiprocessing.Pipe()
    loader = multiprocessing.get_context("spawn").Process(
        target=_load_process, args=(host, port, requests, connections, duration, rate, cycle, cpus, child),
    )
    return loader, parent


def _load_process(host: str, port: int, requests: list[bytes], connections: int, duration: float, rate: float,
                  cycle: bool, cpus: list[int] | None, out: Any) -> None:
    import uvloop  # the load generator shares the cores with the server: keep its CPU low

    if cpus:
        os.sched_setaffinity(0, cpus)
    cpu_before = time.process_time()
    result = uvloop.run(_load(host, port, requests, connections, duration, rate, cycle))
    result["client_cpu_s"] = round(time.process_time() - cpu_before, 1)
    out.send(result)


def response_end(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """(status, size) of the complete HTTP response at the start of ``buffer`` (its length from
    ``Content-Length``), or None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    at = head.find(b"content-length:")
    length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
    if len(buffer) < end + 4 + length:
        return None
    return int(head[9:12]), end + 4 + length


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
        if self.waiter is None or (answer := response_end(self.buffer)) is None:
            return
        status, size = answer
        del self.buffer[:size]
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

    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {
        "elapsed_s": round(elapsed, 2), "requests": len(latencies), "accepted": ok,
        "non_2xx": len(latencies) - ok, "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": percentile_ms(latencies, 0.50), "p95_ms": percentile_ms(latencies, 0.95),
        "p99_ms": percentile_ms(latencies, 0.99),
        "corpus_exhausted": next_index >= len(requests) and not cycle,
    }


def envelope_path(dsn: str) -> str:
    """``http://KEY@host/prefix/5`` → ``/prefix/api/5/envelope/`` (as an SDK derives it)."""
    path = urlsplit(dsn).path
    prefix, _, project_id = path.rpartition("/")
    return f"{prefix}/api/{project_id}/envelope/"
