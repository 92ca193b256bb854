"""The aiohttp application factory (no I/O) and the runner that serves it."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from app import keys
from app.api import setup_routes
from app.config import Settings
from app.database import database_ctx
from app.errors import error_middleware

log = logging.getLogger("errgate.server")

# aiohttp's own limit applies only to request.read()/post(); the collector streams its body with its own limits.
CLIENT_MAX_SIZE = 1024 * 1024


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=CLIENT_MAX_SIZE)
    app[keys.SETTINGS] = settings
    app.cleanup_ctx.append(database_ctx)
    setup_routes(app)
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner used by ``errgate serve`` and by the tests: request bodies are passed through
    undecoded so that the collector decompresses them itself, as a bounded stream."""
    return web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False)


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=settings.workers > 1)
    await site.start()
    log.info("errgate listening", extra={"host": settings.host, "port": settings.port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
