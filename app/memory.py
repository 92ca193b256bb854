"""Giving memory back after large requests: a full garbage collection, then glibc's ``malloc_trim``.

Measured with tests/ops/test_memory_returns.py (``errgate serve``, bodies decoding to 20 and 60 MiB,
some answered 200, some 400, some cut off by their clients), memory stayed with the worker after
those requests ended, round after round (55 MiB at start, 315, 417 then 570 MiB), for two reasons:

- Reference cycles. A failure's traceback keeps the frames that held the body, and the cycles it
  takes part in (aiohttp keeps a disconnected client's error on the request's stream; the
  collector's route keeps the error it raises in its own frame) are garbage only a collection
  frees. With young collections every 50,000 allocations (app.server.GC_THRESHOLD) an idle worker
  never runs one, and the objects of a request that lasted long enough have been promoted to the
  oldest generation, which only a full collection visits. Without the collection: 176, 257 and
  377 MiB after the same rounds.
- glibc's heap. Blocks under its mmap threshold (which glibc raises up to 32 MiB once large
  blocks are freed) come from the heap, which keeps freed memory for reuse: bodies of 20 MiB left
  20 to 37 MiB behind after every one of their bytes was freed. ``malloc_trim(0)`` gives the free
  pages of every arena (the decoding threads have their own) back to the system. A fixed
  M_MMAP_THRESHOLD would also have done for the bodies, but would make every block over it an
  mmap call, all the time, where a trim costs nothing between large requests.

With both, the worker is back within 2 MiB of where it started, within a second. A collection took
0.1 to 8 ms and a trim under 0.4 ms in those runs (the start-up objects are frozen out of
collections), so they run a little after a request that held :data:`LARGE_REQUEST_BYTES` or more,
at most once a second.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
from typing import Callable

LARGE_REQUEST_BYTES = 1024 * 1024
INTERVAL_SECONDS = 1.0
# The request's own objects are let go only once its answer is written and its connection task
# moves on; a reclaim run before that would find them still in use.
DELAY_SECONDS = 0.05


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


MALLOC_TRIM = _malloc_trim()


def reclaim() -> None:
    """Free unreachable reference cycles, then hand the C heap's free pages back to the system."""
    gc.collect()
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


class Reclaimer:
    """Runs :func:`reclaim` on the running loop a little after a large request ends; ``released``
    is told of every request's decoded bytes (see app.ingest.inflight.DecodeBudget)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pending: asyncio.TimerHandle | None = None
        self._last = -INTERVAL_SECONDS

    def released(self, size: int) -> None:
        if size < LARGE_REQUEST_BYTES or self._pending is not None:
            return
        delay = max(DELAY_SECONDS, self._last + INTERVAL_SECONDS - self._loop.time())
        self._pending = self._loop.call_later(delay, self._run)

    def _run(self) -> None:
        self._pending = None
        self._last = self._loop.time()
        reclaim()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
