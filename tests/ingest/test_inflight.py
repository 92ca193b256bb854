"""The decoded-bytes budget (app.ingest.inflight) and how read_body uses it: every decoded byte
counted, reading stopped by a refusal, large bodies decoded in a thread without holding up the loop."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any, Callable

import pytest

from app.ingest import body as body_module
from app.ingest.body import OFFLOAD_AFTER, SLICE_BYTES
from app.ingest.inflight import DecodeBudget, DecodeBudgetExhausted
from tests.ingest.test_body import DATA, ENCODERS, KIB, MIB, UNLIMITED, Chunks, brotli_bomb, gzip_bomb, header, zstd_bomb
from tests.ingest.bodies import read_body

# --- the budget ----------------------------------------------------------------------------------


def test_reservations_share_the_budget_and_give_back_what_they_held() -> None:
    released: list[int] = []
    budget = DecodeBudget(1000, on_release=released.append)
    first, second = budget.reservation(), budget.reservation()
    first.reserve(600)
    second.reserve(300)
    assert (budget.in_flight, first.held, second.held) == (900, 600, 300)
    first.close()
    assert budget.in_flight == 300 and released == [600]
    first.close()  # once only
    assert budget.in_flight == 300 and released == [600]
    second.reserve(700)
    second.close()
    assert budget.in_flight == 0 and released == [600, 1000]


def test_a_refused_reservation_counts_nothing() -> None:
    budget = DecodeBudget(1000)
    holder, late = budget.reservation(), budget.reservation()
    holder.reserve(999)
    with pytest.raises(DecodeBudgetExhausted):
        late.reserve(2)
    assert (budget.in_flight, late.held) == (999, 0)
    late.reserve(1)  # exactly the limit is allowed
    assert budget.in_flight == 1000


def test_a_reservation_that_held_nothing_is_not_reported() -> None:
    released: list[int] = []
    DecodeBudget(1000, on_release=released.append).reservation().close()
    assert released == []


# --- read_body counts what it decodes -------------------------------------------------------------


class Counted:
    """``reserve`` for read_body that records each call, optionally refusing past ``limit``."""

    def __init__(self, limit: int = 1 << 40) -> None:
        self.calls: list[int] = []
        self.limit = limit

    def __call__(self, size: int) -> None:
        if sum(self.calls) + size > self.limit:
            raise DecodeBudgetExhausted("test")
        self.calls.append(size)


class Offloads:
    """``offload`` for read_body that counts its calls and runs them in a thread."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, function: Callable[..., Any], *args: Any) -> Any:
        self.calls += 1
        return await asyncio.to_thread(function, *args)


@pytest.mark.parametrize("name", [*ENCODERS, "identity"])
async def test_every_decoded_byte_is_reserved(name: str) -> None:
    reserve = Counted()
    compressed = DATA if name == "identity" else ENCODERS[name](DATA)
    decoded = await read_body(Chunks(compressed, 1000), header(name), **UNLIMITED, reserve=reserve)
    assert decoded == DATA
    assert sum(reserve.calls) == len(DATA)


async def test_a_large_body_is_reserved_slice_by_slice() -> None:
    data = bytes(20 * MIB)
    reserve, offload = Counted(), Offloads()
    decoded = await read_body(Chunks(gzip.compress(data, 1)), "gzip", **UNLIMITED, reserve=reserve, offload=offload)
    assert decoded == data and sum(reserve.calls) == len(data)
    assert max(reserve.calls) < SLICE_BYTES + 128 * KIB  # a slice, and the piece that passed it


async def test_a_refused_reservation_stops_reading() -> None:
    chunks = Chunks(gzip_bomb(64), 1 * KIB)
    reserve = Counted(limit=4 * MIB)
    with pytest.raises(DecodeBudgetExhausted):
        await read_body(chunks, "gzip", **UNLIMITED, reserve=reserve)
    assert chunks.pulled < chunks.total
    assert sum(reserve.calls) <= 4 * MIB


async def test_identity_bodies_are_reserved_as_they_arrive() -> None:
    chunks = Chunks(bytes(100 * KIB), 10 * KIB)
    reserve = Counted(limit=50 * KIB)
    with pytest.raises(DecodeBudgetExhausted):
        await read_body(chunks, None, **UNLIMITED, reserve=reserve)
    assert chunks.pulled == 6 and reserve.calls == [10 * KIB] * 5


# --- large bodies are decoded off the event loop --------------------------------------------------


async def test_small_bodies_are_decoded_on_the_loop() -> None:
    offload = Offloads()
    event = DATA[:2000]
    assert await read_body(Chunks(gzip.compress(event)), "gzip", **UNLIMITED, offload=offload) == event
    assert offload.calls == 0


async def test_a_large_body_goes_to_a_thread_past_the_threshold() -> None:
    data = bytes(OFFLOAD_AFTER + 10 * SLICE_BYTES)
    offload = Offloads()
    assert await read_body(Chunks(gzip.compress(data, 1)), "gzip", **UNLIMITED, offload=offload) == data
    assert 10 <= offload.calls <= 10 + len(data) // (64 * KIB)


async def loop_gaps(decoding: Callable[[], Any]) -> tuple[float, int, float]:
    """Run ``decoding()`` while a task ticks every millisecond: (longest gap between two ticks,
    number of ticks, seconds the decoding took)."""
    gaps: list[float] = []
    done = False

    async def tick() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    try:
        await decoding()
    finally:
        took = time.perf_counter() - started
        done = True
        await ticker
    return max(gaps), len(gaps), took


@pytest.mark.parametrize(
    ("name", "bomb"), [("gzip", lambda: gzip_bomb(128)), ("br", lambda: brotli_bomb(128)), ("zstd", lambda: zstd_bomb(128))]
)
async def test_decoding_a_bomb_does_not_hold_up_the_loop(name: str, bomb: Callable[[], bytes]) -> None:
    body = bomb()
    chunks = Chunks(body, min(64 * KIB, len(body) // 4))  # one chunk of a bomb inflates to tens of MiB

    async def decoding() -> None:
        with pytest.raises(body_module.Rejection) as info:
            await read_body(chunks, name, max_body_bytes=1 << 30, max_decoded_bytes=100 * MIB)
        assert info.value.status == 413

    longest, ticks, took = await loop_gaps(decoding)
    # Decoding 100 MiB takes a tenth of a second or more; done on the loop, that would be one gap
    # as long as the whole decoding. In slices, the loop waits at most for a slice's hand-over:
    # a small share of the decoding, or 50 ms on a machine so busy that the decoding itself is slow.
    assert longest < max(0.05, took / 4), (longest, ticks, took)
    assert ticks >= 10, (longest, ticks, took)
