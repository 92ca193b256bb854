"""Memory held by large request bodies goes back to the system once their requests end (app.memory).

``errgate serve`` as a real process gets compressed bodies that decode to tens of MiB each, all at
once: valid envelopes (200), envelopes that fail to parse (400) and bodies whose clients hang up
halfway (499). Afterwards the worker's resident memory (``VmRSS``) must come back near what it was
before, within seconds, with nothing else happening: no later request runs a collection for it.
"""

from __future__ import annotations

import asyncio
import platform
import time
import zlib
from dataclasses import dataclass

import aiohttp
import orjson
import pytest

from app import memory
from tests.conftest import Api, World
from tests.ingest_http.helpers import collector_url, tracked_project
from tests.ops.conftest import ProcessFactory
from tests.ops.rawhttp import RawConnection

MIB = 1024 * 1024
# Resident memory may stay this far above the baseline once the bodies are gone (allocator
# bookkeeping, the decoding threads' stacks); the C heap alone kept 20 MiB and more untrimmed.
SLACK_MIB = 12
SETTLE_SECONDS = 5.0


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def gzipped(mebibytes: int, *, valid: bool) -> bytes:
    """A gzip body of about 1 KB per MiB: an envelope with one attachment of ``mebibytes`` MiB of
    zeros, or (not ``valid``) just the zeros, which are no envelope (400 once decoded)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    parts = []
    if valid:
        item_header = {"type": "attachment", "length": mebibytes * MIB, "filename": "zeros.bin"}
        parts.append(compressor.compress(b"{}\n" + orjson.dumps(item_header) + b"\n"))
    parts += [compressor.compress(zeros) for _ in range(mebibytes)]
    parts.append(compressor.flush())
    return b"".join(parts)


@dataclass
class Target:
    url: str
    path: str
    public_key: str

    def head(self, length: int) -> bytes:
        return (
            f"POST {self.path} HTTP/1.1\r\nHost: errgate.test\r\nContent-Length: {length}\r\n"
            f"Content-Encoding: gzip\r\nX-Sentry-Auth: Sentry sentry_key={self.public_key}, sentry_version=7\r\n\r\n"
        ).encode()

    async def post(self, body: bytes) -> int:
        async with RawConnection(self.url) as conn:
            await conn.send(self.head(len(body)) + body)
            return (await conn.answer(timeout=60)).status

    async def hang_up_halfway(self, body: bytes, decoded: asyncio.Event) -> None:
        """Send the head and 90% of ``body``, wait for ``decoded``, then close the connection."""
        async with RawConnection(self.url) as conn:
            await conn.send(self.head(len(body)) + body[: len(body) * 9 // 10])
            await decoded.wait()


class Peak:
    """Samples a process's resident memory every few milliseconds; ``reached(mib)`` is set once
    it has gone that far."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mib = rss_mib(pid)
        self._targets: list[tuple[float, asyncio.Event]] = []

    def reached(self, mib: float) -> asyncio.Event:
        event = asyncio.Event()
        self._targets.append((mib, event))
        return event

    async def run(self) -> None:
        while True:
            self.mib = max(self.mib, rss_mib(self.pid))
            for mib, event in self._targets:
                if self.mib >= mib:
                    event.set()
            await asyncio.sleep(0.005)


async def settled_rss(pid: int, below: float, timeout: float) -> tuple[float, float]:
    """Wait up to ``timeout`` s for the resident memory to drop below ``below`` MiB; (MiB, seconds)."""
    started = time.monotonic()
    while True:
        now = rss_mib(pid)
        waited = time.monotonic() - started
        if now < below or waited > timeout:
            return now, waited
        await asyncio.sleep(0.05)


async def round_of(target: Target, pid: int, *, mebibytes: int, valid: int, invalid: int, cut: int) -> float:
    """Send the bodies of one round at once; returns the peak resident memory during it (MiB)."""
    good, bad = gzipped(mebibytes, valid=True), gzipped(mebibytes, valid=False)
    peak = Peak(pid)
    # Hang up only once the cut bodies are mostly decoded (the others add to the peak too).
    decoded = peak.reached(peak.mib + cut * mebibytes * 0.8)
    sampling = asyncio.create_task(peak.run())
    try:
        statuses = await asyncio.gather(
            *(target.post(good) for _ in range(valid)),
            *(target.post(bad) for _ in range(invalid)),
            *(asyncio.wait_for(target.hang_up_halfway(good, decoded), 30) for _ in range(cut)),
        )
    finally:
        sampling.cancel()
    assert statuses == [200] * valid + [400] * invalid + [None] * cut
    return peak.mib


async def test_memory_of_large_bodies_returns_after_their_requests(
    errgate_process: ProcessFactory, http: aiohttp.ClientSession, world: World
) -> None:
    async with errgate_process(
        ERRGATE_LOG_LEVEL="warning",
        ERRGATE_MAX_ENVELOPE_BYTES=str(256 * MIB), ERRGATE_MAX_INFLIGHT_BYTES=str(1024 * MIB),
    ) as proc:
        tracked = await tracked_project(Api(http, proc.url), world)
        target = Target(proc.url, collector_url("", tracked.project_id), tracked.public_key)
        # Warm up: one request of each kind, small, so that what they load once is in the baseline.
        assert await target.post(gzipped(2, valid=True)) == 200
        assert await target.post(gzipped(2, valid=False)) == 400
        await asyncio.sleep(1.5)
        baseline = rss_mib(proc.pid)
        report = [f"baseline {baseline:.0f} MiB"]
        # Bodies of 60 MiB come from mmap; bodies of 20 MiB from the C heap, which keeps what is freed.
        for mebibytes, valid, invalid, cut in ((60, 2, 1, 2), (20, 3, 2, 3), (60, 2, 1, 2)):
            peak = await round_of(target, proc.pid, mebibytes=mebibytes, valid=valid, invalid=invalid, cut=cut)
            after, waited = await settled_rss(proc.pid, baseline + SLACK_MIB, SETTLE_SECONDS)
            report.append(
                f"{valid + invalid + cut} x {mebibytes} MiB ({valid} valid, {invalid} invalid, {cut} cut off): "
                f"peak {peak:.0f} MiB, {after:.0f} MiB after {waited:.1f} s"
            )
            # Each round really held its bodies: the cut ones alone were most of theirs.
            assert peak > baseline + cut * mebibytes * 0.8, "\n".join(report)
            assert after < baseline + SLACK_MIB, "\n".join(report)
        print("\n".join(report))


async def test_a_reclaim_follows_large_requests_at_most_once_an_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[float] = []
    monkeypatch.setattr(memory, "reclaim", lambda: runs.append(time.monotonic()))
    monkeypatch.setattr(memory, "DELAY_SECONDS", 0.01)
    monkeypatch.setattr(memory, "INTERVAL_SECONDS", 0.5)
    reclaimer = memory.Reclaimer()
    try:
        reclaimer.released(memory.LARGE_REQUEST_BYTES - 1)
        await asyncio.sleep(0.1)
        assert runs == []  # small requests leave memory to the allocator
        reclaimer.released(memory.LARGE_REQUEST_BYTES)
        reclaimer.released(memory.LARGE_REQUEST_BYTES)
        await asyncio.sleep(0.1)
        assert len(runs) == 1  # one reclaim for requests that ended together
        reclaimer.released(memory.LARGE_REQUEST_BYTES)
        await asyncio.sleep(0.1)
        assert len(runs) == 1  # the next one waits for the interval
        await asyncio.sleep(0.6)
        assert len(runs) == 2 and runs[1] - runs[0] >= 0.45
    finally:
        reclaimer.close()


def test_glibc_malloc_trim_is_found() -> None:
    if platform.libc_ver()[0] == "glibc":
        assert memory.MALLOC_TRIM is not None
    memory.reclaim()
