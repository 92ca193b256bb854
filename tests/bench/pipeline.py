"""The benchmark's pipeline mode: the collector's per-event work in-process, without HTTP or database.

Each envelope of the benchmark's corpus goes through what the envelope endpoint does with it
once the request has arrived: the body decoded as a stream, the envelope header read for its
dsn key, the envelope parsed, the event loaded, grouped, summarised and packed for the writer.
Printed: CPU µs per event (best and median of the rounds, ``time.process_time``) and the
functions with the most own time under cProfile (which slows everything, so its times compare
only with each other). Deterministic apart from the machine's noise: same corpus, no I/O.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import pstats
import statistics
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

from app.config import Settings
from app.ingest import credentials
from app.ingest.body import BodyReader
from app.ingest.routes import CHUNK_SIZE, ENVELOPE_HEADER_LIMIT, item_limits, pending_event
from app.ingest.envelope import parse_envelope, parse_envelope_header
from app.server import tune_garbage_collector
from tests.bench.corpus import build_corpus

DSN = "http://0123456789abcdef0123456789abcdef@127.0.0.1:9/1"
TOP_FUNCTIONS = 15
DEFAULT_EVENTS = 2000


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK_SIZE):
        yield body[start : start + CHUNK_SIZE]


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (every read is already in memory), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the pipeline suspended")


async def _one(body: bytes, encoding: str, settings: Settings) -> list[Any]:
    """What the envelope endpoint does with one request, up to the writer's queue."""
    reader = BodyReader(
        _chunks(body), encoding, max_body_bytes=settings.max_body_bytes,
        max_decoded_bytes=min(settings.max_envelope_bytes, settings.max_inflight_bytes),
    )
    try:
        line = await reader.read_prefix(ENVELOPE_HEADER_LIMIT)
        assert line is not None
        header = parse_envelope_header(line)
        credentials.key_from_dsn(header.headers.get("dsn"))
        envelope = parse_envelope(await reader.read_rest(), max_item_bytes=item_limits(settings), header=header)
    finally:
        reader.close()
    event_id = envelope.event_id
    return [
        pending_event(1, item.payload, event_id, settings.max_event_bytes) for item in envelope.items if item.type == "event"
    ]


@contextlib.contextmanager
def served_garbage_collector() -> Iterator[None]:
    """The collector tuned as ``errgate serve`` tunes it once started (what start-up made stays out of
    collections, see app.server.GC_THRESHOLD), then as it was."""
    threshold = gc.get_threshold()
    tune_garbage_collector()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _round(corpus: list[tuple[bytes, str]], settings: Settings) -> float:
    """CPU seconds for one pass over the corpus."""
    started = time.process_time()
    for body, encoding in corpus:
        _run(_one(body, encoding, settings))
    return time.process_time() - started


def _top_functions(corpus: list[tuple[bytes, str]], settings: Settings) -> list[dict[str, Any]]:
    profile = cProfile.Profile()
    profile.enable()
    _round(corpus, settings)
    profile.disable()
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({
            "function": f"{filename.rsplit('/', 2)[-1] if '/' in filename else filename}:{line}({name})",
            "calls_per_event": round(calls / len(corpus), 2),
            "own_us_per_event": round(own / len(corpus) * 1e6, 2),
            "cumulative_us_per_event": round(cumulative / len(corpus) * 1e6, 2),
        })
    rows.sort(key=lambda row: row["own_us_per_event"], reverse=True)
    return rows[:TOP_FUNCTIONS]


def run(events: int, rounds: int) -> dict[str, Any]:
    """``rounds`` passes over ``events`` envelopes of the corpus, then one under cProfile."""
    settings = Settings()
    corpus = build_corpus(events, DSN)
    _round(corpus, settings)  # warm up: caches, lazily compiled regexes
    with served_garbage_collector():
        timings = [_round(corpus, settings) / len(corpus) * 1e6 for _ in range(rounds)]
    return {
        "mode": "pipeline",
        "events": len(corpus),
        "rounds": rounds,
        "cpu_us_per_event_best": round(min(timings), 1),
        "cpu_us_per_event_median": round(statistics.median(timings), 1),
        "top_functions": _top_functions(corpus, settings),
    }
