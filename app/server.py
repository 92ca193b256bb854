"""The aiohttp application factory (no I/O) and the runner that serves it until SIGTERM.

On SIGTERM readiness turns false at once, the listening socket closes, in-flight requests
(including events waiting for their batch) finish within ``ERRGATE_SHUTDOWN_GRACE_SECONDS``,
the writer commits what it holds, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Callable

from aiohttp import web

from app import headers, health, openapi, state, selfreport
from app import web as web_page
from app.api import setup_routes as setup_api_routes
from app.config import Settings
from app.startup import database_ctx
from app.problems import error_middleware
from app.ingest.routes import setup_routes as setup_ingest_routes
from app.ingest.service import ingest_ctx
from app.metrics import Metrics
from app.observe import observe_middleware
from app.web.failures import page_middleware
from app.protocol import Runner, ensure_file_descriptors

log = logging.getLogger("errgate.server")

# Every event loads into thousands of short-lived objects, so with CPython's default thresholds
# (700, 10, 10) the collector runs every few requests and keeps walking the service's long-lived
# objects (modules, the application, pools, caches). Once started, those are frozen out of
# collection and young collections run every GC_THRESHOLD allocations instead: measured on the
# ingest path (parse + load only), 310 → 195 µs of CPU per event. Cyclic garbage waits for the
# next young collection, or for a full one once promoted, which an idle worker may not run for a
# long time: after a large request app.memory runs a full collection itself.
GC_THRESHOLD = (50_000, 20, 100)

# aiohttp's own limit applies only to request.read()/post(); the collector streams its body with its own limits.
CLIENT_MAX_SIZE = 1024 * 1024


def create_app(settings: Settings) -> web.Application:
    middlewares = [observe_middleware, error_middleware, page_middleware]
    if settings.sentry_dsn:
        middlewares.append(selfreport.middleware(settings.sentry_dsn))
    app = web.Application(middlewares=middlewares, client_max_size=CLIENT_MAX_SIZE)
    app[state.SETTINGS] = settings
    app[state.METRICS] = Metrics()
    headers.install(app)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(ingest_ctx)
    health.setup_routes(app, with_metrics=settings.metrics_port is None)
    setup_api_routes(app)
    openapi.setup_routes(app)
    setup_ingest_routes(app)
    web_page.setup(app)
    return app


def create_metrics_app(metrics: Metrics) -> web.Application:
    app = web.Application()
    app[state.METRICS] = metrics
    headers.install(app)
    app.router.add_get(health.METRICS_PATH, health.metrics)
    return app


def make_runner(
    app: web.Application, shutdown_timeout: float = 20.0, settings: Settings | None = None
) -> web.AppRunner:
    """The runner used by ``errgate serve`` and by the tests: request bodies are passed through
    undecoded so that the collector decompresses them itself, as a bounded stream; connections
    get the timeouts and limit of ``settings`` (by default the application's, see app.protocol).
    aiohttp's access log is off: errgate writes its own (app.observe)."""
    if settings is None:
        settings = app[state.SETTINGS] if state.SETTINGS in app else Settings()
    metrics = app[state.METRICS] if state.METRICS in app else Metrics()
    return Runner(
        app, settings, metrics,
        auto_decompress=False, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout,
    )


async def start_sites(app: web.Application, settings: Settings) -> list[web.AppRunner]:
    """Serve ``app`` on ``host:port`` and, when ``metrics_port`` is set, ``/metrics`` alone on that port.

    Returns the runners, the main one first; ``runner.addresses`` tells the ports bound (port 0: any free one).
    """
    reuse_port = settings.workers > 1
    runners: list[web.AppRunner] = []
    try:
        main = make_runner(app, settings.shutdown_grace_seconds)
        await main.setup()
        runners.append(main)
        await web.TCPSite(main, settings.host, settings.port, reuse_port=reuse_port).start()
        if settings.metrics_port is not None:
            metrics = make_runner(create_metrics_app(app[state.METRICS]), settings.shutdown_grace_seconds, settings)
            await metrics.setup()
            runners.append(metrics)
            await web.TCPSite(metrics, settings.host, settings.metrics_port, reuse_port=reuse_port).start()
    except BaseException:  # a port in use, say: close what was opened (the pool with the app)
        for each in runners:
            await each.cleanup()
        raise
    return runners


async def stop_sites(app: web.Application, runners: list[web.AppRunner]) -> None:
    """Readiness false at once, then the sockets close and in-flight requests finish (metrics last)."""
    app[state.DRAINING].set()
    for each in runners:
        await each.cleanup()


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated and make young collections rarer (see GC_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


async def serve(settings: Settings, restarted: bool = False, serving: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; ``restarted``: this worker replaces one that died (counted in the
    metrics); ``serving`` is called once the port listens."""
    app = create_app(settings)
    if restarted:
        app[state.METRICS].worker_restarts.inc()
    ensure_file_descriptors(settings)
    # Before the socket listens: a SIGTERM that comes as soon as the port answers drains, not kills.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners = await start_sites(app, settings)
    if serving is not None:
        serving()
    metrics = app[state.METRICS]
    sampling = asyncio.create_task(metrics.keep_sampled()) if metrics.multiprocess_dir else None
    tune_garbage_collector()
    log.info("errgate listening", extra={"host": settings.host, "port": settings.port})
    await stop.wait()
    log.info("draining", extra={"grace_seconds": settings.shutdown_grace_seconds})
    await stop_sites(app, runners)
    if sampling:
        sampling.cancel()
    log.info("stopped")
