"""Prometheus metrics of errgate (prometheus-client): one registry per process, or the whole process group's.

Served at ``/metrics`` on the main port, or on ``ERRGATE_METRICS_PORT`` when set. With several
workers (app.workers), any worker answers for all of them through prometheus-client's
multiprocess mode, its documented way for pre-forked servers: the supervisor names a directory in
``PROMETHEUS_MULTIPROC_DIR`` before the workers start (prometheus-client chooses at import where
values live), each worker writes its values to its own files there, a scrape merges the files,
and the supervisor removes a dead worker's live gauges. Counters and histograms are summed over
every worker that ever ran; gauges here are per-process quantities, so they are summed over the live workers
(``livesum``), and sampled ones (pending events, pool, decoded bytes) are refreshed every
SAMPLE_SECONDS by each worker and at once by the one answering.

A single process keeps the plain in-memory registry: nothing to merge, no files, sampled gauges
read at each scrape, and each increment stays a locked float addition instead of a write to a
memory-mapped file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# prometheus-client reads this variable when it is imported, hence set before the workers start.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_SECONDS = 1.0

KNOWN_ITEM_TYPES = frozenset(
    {
        "event", "transaction", "attachment", "session", "sessions", "client_report", "user_report", "feedback",
        "check_in", "log", "span", "otel_span", "profile", "profile_chunk", "replay_event", "replay_recording",
        "statsd", "metric_buckets", "security", "nel",
    }
)
REJECTION_REASONS = {
    400: "invalid", 401: "unauthorized", 403: "forbidden", 413: "too_large", 415: "unsupported_encoding",
    429: "overloaded", 503: "unavailable",
}
# A 429 because the worker holds ERRGATE_MAX_INFLIGHT_BYTES of decoded bodies (not a slow writer).
DECODE_BUDGET_REASON = "decode_budget"

# Bounds the memo of labelled children (clients choose methods and item types).
MAX_REMEMBERED_CHILDREN = 1024


class Metrics:
    """Every metric of one process; a new one is one declaration in ``__init__``, with ``registry=r``
    (a gauge also with ``multiprocess_mode``, see the module's docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_VARIABLE) or None
        self._exposed = self.registry
        if self.multiprocess_dir:
            # The metrics above stay out of it: their values come from the files, every worker's.
            self._exposed = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed, self.multiprocess_dir)
        self._sampled: list[tuple[Gauge, Callable[[], float]]] = []
        self.requests = Counter("errgate_http_requests", "HTTP requests by route and status", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "errgate_http_request_duration_seconds", "HTTP request latency by route", ["route"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.items = Counter("errgate_ingest_items", "Envelope items received, by type", ["type"], registry=r)
        self.events_accepted = Counter("errgate_events_accepted", "Events answered 200 after commit", registry=r)
        self.events_stored = Counter("errgate_events_stored", "Events inserted (duplicates excluded)", registry=r)
        self.events_rejected = Counter(
            "errgate_events_rejected", "Collector requests refused, by reason", ["reason"], registry=r
        )
        self.rejected_before_body = Counter(
            "errgate_ingest_rejected_before_body",
            "Collector requests refused before their body was read (at most its envelope header line), by reason",
            ["reason"], registry=r,
        )
        self.decoded_bytes = Counter(
            "errgate_ingest_decoded_bytes", "Collector request body bytes decoded (Content-Encoding undone)", registry=r
        )
        self.batch_size = Histogram(
            "errgate_writer_batch_size", "Events per committed batch", registry=r,
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
        )
        self.commit_seconds = Histogram(
            "errgate_writer_commit_duration_seconds", "Time to commit one batch", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.writer_retries = Counter(
            "errgate_writer_retries", "Batches written again, by reason (deadlock, serialization, stale_error)",
            ["reason"], registry=r,
        )
        self.worker_restarts = Counter(
            "errgate_worker_restarts", "Workers started in place of one that exited unexpectedly (counted by each replacement)",
            registry=r,
        )
        self.queue_depth = Gauge(
            "errgate_writer_pending_events", "Events waiting for their batch to commit", registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_in_use = Gauge(
            "errgate_db_pool_connections_in_use", "Database connections in use", registry=r, multiprocess_mode="livesum"
        )
        self.pool_size = Gauge(
            "errgate_db_pool_connections", "Database connections open", registry=r, multiprocess_mode="livesum"
        )
        self.decoded_in_flight = Gauge(
            "errgate_ingest_decoded_bytes_in_flight",
            "Decoded request bytes held by collector requests (at most ERRGATE_MAX_INFLIGHT_BYTES per worker)",
            registry=r, multiprocess_mode="livesum",
        )
        self.connections_open = Gauge(
            "errgate_connections_open", "Client connections held", registry=r, multiprocess_mode="livesum"
        )
        self.connections_timed_out = Counter(
            "errgate_connections_timed_out",
            "Client connections closed by a timeout: request head too slow, body stalled, idle keep-alive",
            ["phase"], registry=r,
        )
        self.connections_refused = Counter(
            "errgate_connections_refused", "Connections closed at once: ERRGATE_MAX_CONNECTIONS were busy", registry=r
        )
        self.connections_reclaimed = Counter(
            "errgate_connections_reclaimed", "Idle keep-alive connections closed to make room for a new one", registry=r
        )
        self.unparsable_requests = Counter(
            "errgate_http_unparsable_requests", "Requests the HTTP parser refused, by status", ["status"], registry=r
        )

        # Labelled children, looked up once: labels() validates and locks on every call, and
        # these are counted on every request.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._item_children: dict[str, Any] = {}
        self._rejected_children: dict[str, tuple[Any, Any]] = {}  # reasons are few and fixed

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._request_children.get((route, method, status))
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            if len(self._request_children) < MAX_REMEMBERED_CHILDREN:
                self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def item_received(self, item_type: str) -> None:
        child = self._item_children.get(item_type)
        if child is None:
            child = self.items.labels(item_type if item_type in KNOWN_ITEM_TYPES else "other")
            if len(self._item_children) < MAX_REMEMBERED_CHILDREN:
                self._item_children[item_type] = child
        child.inc()

    def timed_out(self, phase: str) -> None:
        """``phase`` is ``headers``, ``body`` or ``keepalive``."""
        self.connections_timed_out.labels(phase).inc()

    def unparsable(self, status: int) -> None:
        self.unparsable_requests.labels(str(status)).inc()

    def rejected(self, status: int, *, before_body: bool, reason: str | None = None) -> None:
        """``reason`` when the status alone does not tell it (see DECODE_BUDGET_REASON)."""
        reason = reason or REJECTION_REASONS.get(status, str(status))
        children = self._rejected_children.get(reason)
        if children is None:
            children = (self.events_rejected.labels(reason), self.rejected_before_body.labels(reason))
            if len(self._rejected_children) < MAX_REMEMBERED_CHILDREN:
                self._rejected_children[reason] = children
        children[0].inc()
        if before_body:
            children[1].inc()

    def body_decoded(self, size: int) -> None:
        if size:
            self.decoded_bytes.inc(size)

    def observe_batch(self, size: int, inserted: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.commit_seconds.observe(seconds)
        self.events_accepted.inc(size)
        self.events_stored.inc(inserted)

    def writer_retried(self, reason: str) -> None:
        self.writer_retries.labels(reason).inc()

    def track(
        self, decoded_in_flight: Callable[[], float], queue_depth: Callable[[], float],
        pool_in_use: Callable[[], float], pool_size: Callable[[], float],
    ) -> None:
        """Gauges read from their sources: at each collection of this process's registry, and by
        :meth:`sample` into the files of the multiprocess mode (which ignores ``set_function``)."""
        self._sampled = [
            (self.decoded_in_flight, decoded_in_flight), (self.queue_depth, queue_depth),
            (self.pool_in_use, pool_in_use), (self.pool_size, pool_size),
        ]
        for gauge, source in self._sampled:
            gauge.set_function(source)

    def sample(self) -> None:
        for gauge, source in self._sampled:
            gauge.set(source())

    async def keep_sampled(self) -> None:
        """Refresh the sampled gauges every SAMPLE_SECONDS, for scrapes answered by another worker."""
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_SECONDS)

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess_dir:
            self.sample()
        return generate_latest(self._exposed), CONTENT_TYPE_LATEST


def workers_directory(data_dir: Path, host: str, port: int) -> Path:
    """Where the workers listening on ``host:port`` keep their metrics files: one errgate at a time
    can listen there, so the directory is this start's alone."""
    return data_dir / re.sub(r"[^\w.-]", "_", f"metrics-{host or 'any'}-{port}")


@contextlib.contextmanager
def workers_metrics(directory: Path) -> Iterator[Path]:
    """``directory`` made empty (a start killed before its end left files) and named in
    ``PROMETHEUS_MULTIPROC_DIR`` for the processes started inside the block; removed at its end."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        del os.environ[MULTIPROCESS_VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited(directory: Path, pid: int) -> None:
    """Drop the live gauges of a worker that exited; its counters stay in the sums."""
    multiprocess.mark_process_dead(pid, str(directory))
