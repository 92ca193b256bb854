"""The aiohttp application factory (no I/O) and the runner that serves it until SIGTERM.

On SIGTERM readiness turns false at once, the listening socket closes, in-flight requests
(including events waiting for their batch) finish within ``ERRGATE_SHUTDOWN_GRACE_SECONDS``,
the writer commits what it holds, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from app import health, keys
from app.api import setup_routes as setup_api_routes
from app.config import Settings
from app.database import database_ctx
from app.errors import error_middleware
from app.ingest.routes import setup_routes as setup_ingest_routes
from app.ingest.service import ingest_ctx
from app.metrics import Metrics
from app.observe import observe_middleware

log = logging.getLogger("errgate.server")

# aiohttp's own limit applies only to request.read()/post(); the collector streams its body with its own limits.
CLIENT_MAX_SIZE = 1024 * 1024


def create_app(settings: Settings, metrics: Metrics | None = None) -> web.Application:
    app = web.Application(middlewares=[observe_middleware, error_middleware], client_max_size=CLIENT_MAX_SIZE)
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = metrics or Metrics()
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(ingest_ctx)
    health.setup_routes(app, with_metrics=settings.metrics_port is None)
    setup_api_routes(app)
    setup_ingest_routes(app)
    return app


def create_metrics_app(metrics: Metrics) -> web.Application:
    app = web.Application()
    app[keys.METRICS] = metrics
    app.router.add_get(health.METRICS_PATH, health.metrics)
    return app


def make_runner(app: web.Application, shutdown_timeout: float = 20.0) -> web.AppRunner:
    """The runner used by ``errgate serve`` and by the tests: request bodies are passed through
    undecoded so that the collector decompresses them itself, as a bounded stream."""
    return web.AppRunner(
        app, auto_decompress=False, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    runner = make_runner(app, settings.shutdown_grace_seconds)
    await runner.setup()
    reuse_port = settings.workers > 1
    await web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port).start()
    runners = [runner]
    if settings.metrics_port is not None:
        metrics_runner = web.AppRunner(create_metrics_app(app[keys.METRICS]), access_log=None, handle_signals=False)
        await metrics_runner.setup()
        await web.TCPSite(metrics_runner, settings.host, settings.metrics_port, reuse_port=reuse_port).start()
        runners.append(metrics_runner)
    log.info("errgate listening", extra={"host": settings.host, "port": settings.port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", extra={"grace_seconds": settings.shutdown_grace_seconds})
    app[health.DRAINING].set()
    for each in reversed(runners):
        await each.cleanup()
    log.info("stopped")
