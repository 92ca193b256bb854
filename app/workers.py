"""Running the service: one process, or several worker processes sharing the port with SO_REUSEPORT.

The embedded PostgreSQL, when used, is started once by the parent so that workers only connect to it.
Self-reporting (``SENTRY_DSN``) is started in each serving process: sentry-sdk's client and its
sending thread belong to one process.
Each process runs on uvloop, which roughly halves the event loop's CPU cost per request.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys

import uvloop

from app.config import Settings
from app.db.pool import database_url
from app.logs import setup_logging
from app.selfreport import init_self_reporting
from app.server import serve


def _run(settings: Settings) -> None:
    if settings.sentry_dsn:
        init_self_reporting(settings.sentry_dsn)
    uvloop.run(serve(settings))


def _worker(settings: Settings) -> None:
    setup_logging(settings.log_level)
    _run(settings)


def serve_forever(settings: Settings, workers: int) -> int:
    if not settings.database_url:
        settings = dataclasses.replace(settings, database_url=database_url(settings))
    if workers <= 1:
        _run(settings)
        return 0
    settings = dataclasses.replace(settings, workers=workers)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(settings,), name=f"errgate-worker-{i}") for i in range(workers)]
    for process in processes:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.is_alive() and process.pid:
                try:
                    os.kill(process.pid, signum)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in processes:
        process.join()
    return 0 if all(p.exitcode == 0 for p in processes) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve_forever(Settings.from_env(), 1))
