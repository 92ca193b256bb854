"""The benchmark's inprocess mode: a worker's whole request path in one process, without sockets or database.

Each request of the benchmark's corpus is fed as bytes to errgate's connection protocol
(app.protocol), over fake connections whose answers are parsed and dropped: the HTTP parser,
the application's middlewares and headers, the collector (decoding, authentication, envelope,
the per-event work, the answer) and the metrics all run as in ``errgate serve``, on uvloop. The
key cache accepts the corpus's key and the writer commits the events queued during one turn of
the loop on the next, so the figures leave out the writer's SQL, the database and the kernel's
sockets. Printed: CPU µs per request (best and median round, ``time.process_time``), which varies
far less between runs than the errgate mode's on a shared machine.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvloop
from aiohttp import web

from app import state
from app.config import Settings
from app.ingest.inflight import DecodeBudget
from app.ingest.writer import PendingEvent
from app.server import create_app, make_runner
from tests.bench.corpus import build_corpus
from tests.bench.load import envelope_path, prepare_requests, response_end
from tests.bench.pipeline import DSN, served_garbage_collector

DEFAULT_REQUESTS = 4000
HOST = "127.0.0.1:9"


class _Keys:
    """The key cache: every key may send to the corpus's project."""

    async def project_for(self, public_key: str) -> int | None:
        return 1


class _Writer:
    """The writer: what was queued during one turn of the loop is committed on the next, as a batch."""

    def __init__(self) -> None:
        self._batch: list[PendingEvent] = []

    async def write(self, event: PendingEvent) -> bool:
        loop = asyncio.get_running_loop()
        event.future = loop.create_future()
        if not self._batch:
            loop.call_soon(self._commit)
        self._batch.append(event)
        return await event.future

    def _commit(self) -> None:
        batch, self._batch = self._batch, []
        for event in batch:
            event.future.set_result(True)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """The collector's resources, with the key cache and writer above instead of the database's."""
    app[state.KEY_CACHE] = _Keys()  # type: ignore[assignment]
    app[state.WRITER] = _Writer()  # type: ignore[assignment]
    app[state.DECODE_BUDGET] = DecodeBudget(app[state.SETTINGS].max_inflight_bytes)
    app[state.DECODE_OFFLOAD] = functools.partial(asyncio.get_running_loop().run_in_executor, None)
    yield


class _Transport(asyncio.Transport):
    """A connection that always reads and hands every byte written to ``written``."""

    def __init__(self, written: Callable[[bytes], None]) -> None:
        super().__init__()
        self._written = written
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 9)}.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._written(bytes(data))

    def writelines(self, lines: Any) -> None:
        self._written(b"".join(lines))

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class _Client:
    """One keep-alive connection: sends the next request of ``requests`` once the last is answered."""

    def __init__(self, server: Callable[[], asyncio.Protocol], requests: Iterator[bytes], statuses: Counter[int],
                 done: Callable[[], None]) -> None:
        self._requests = requests
        self._statuses = statuses
        self._done = done
        self._buffer = b""
        self.protocol = server()
        self.protocol.connection_made(_Transport(self._received))

    def send_next(self) -> None:
        request = next(self._requests, None)
        if request is None:
            self._done()
        else:
            self.protocol.data_received(request)  # type: ignore[attr-defined]

    def _received(self, data: bytes) -> None:
        self._buffer += data
        answer = response_end(self._buffer)
        if answer is None:
            return
        status, size = answer
        self._statuses[status] += 1
        self._buffer = self._buffer[size:]
        asyncio.get_running_loop().call_soon(self.send_next)  # as a client would: on a later turn


async def _round(server: Callable[[], asyncio.Protocol], requests: list[bytes], connections: int,
                 statuses: Counter[int]) -> float:
    """CPU seconds to answer every request of ``requests`` over ``connections`` connections."""
    finished = asyncio.get_running_loop().create_future()
    remaining = connections

    def done() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            finished.set_result(None)

    pending = iter(requests)
    clients = [_Client(server, pending, statuses, done) for _ in range(connections)]
    started = time.process_time()
    for client in clients:
        client.send_next()
    await finished
    spent = time.process_time() - started
    for client in clients:
        client.protocol.connection_lost(None)
    return spent


async def _measure(requests: int, rounds: int, connections: int) -> dict[str, Any]:
    app = create_app(Settings())
    app.cleanup_ctx[:] = [_resources]
    runner = make_runner(app)
    await runner.setup()
    try:
        corpus = prepare_requests(envelope_path(DSN), HOST, build_corpus(requests, DSN))
        statuses: Counter[int] = Counter()
        await _round(runner.server, corpus, connections, statuses)  # warm up: caches, lazily compiled regexes
        with served_garbage_collector():
            timings = [
                await _round(runner.server, corpus, connections, statuses) / len(corpus) * 1e6 for _ in range(rounds)
            ]
    finally:
        await runner.cleanup()
    return {
        "mode": "inprocess",
        "requests": len(corpus),
        "rounds": rounds,
        "connections": connections,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "cpu_us_per_request_best": round(min(timings), 1),
        "cpu_us_per_request_median": round(statistics.median(timings), 1),
    }


def run(requests: int, rounds: int, connections: int) -> dict[str, Any]:
    """``rounds`` passes of ``requests`` envelopes of the corpus through the request path, after one to warm up."""
    return uvloop.run(_measure(requests, rounds, connections))
