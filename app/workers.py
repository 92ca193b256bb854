"""Running the service: one process, or several worker processes sharing the port with SO_REUSEPORT.

Before anything starts, the parent makes sure that the ports are free and the database answers, so
that either mistake stops the start with one line naming the variable (not one traceback per worker).
The embedded PostgreSQL, when used, is started once by the parent so that workers only connect to it.
Self-reporting (``SENTRY_DSN``) is started in each serving process: sentry-sdk's client and its
sending thread belong to one process.
With several workers the parent gives them a directory for their metrics files (app.metrics),
drops a worker's live gauges when it exits, and removes the directory when the last one has.
Each process runs on uvloop, which roughly halves the event loop's CPU cost per request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import multiprocessing
import os
import signal
import socket
import sys
from multiprocessing.connection import wait
from pathlib import Path

import uvloop

from app.config import ConfigError, Settings
from app.db.pool import check_database, database_url
from app.logs import setup_logging
from app.metrics import worker_exited, workers_directory, workers_metrics
from app.selfreport import init_self_reporting
from app.server import serve


def _run(settings: Settings) -> None:
    if settings.sentry_dsn:
        init_self_reporting(settings.sentry_dsn)
    uvloop.run(serve(settings))


def _worker(settings: Settings) -> None:
    setup_logging(settings.log_level)
    _run(settings)


def _check_port_free(host: str, port: int, variable: str) -> None:
    """Bind ``host:port`` once and let go, as the server will bind it (SO_REUSEADDR, no SO_REUSEPORT:
    another errgate on the port is refused too, even though workers share it among themselves)."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
    except OSError as exc:
        where = f"{host or '*'}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{variable}: {where} is already in use; stop what listens there or set {variable} to a free port"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"{variable}: no permission to listen on {where}; set {variable} to a port above 1023"
            ) from None
        raise ConfigError(
            f"ERRGATE_HOST: cannot listen on {where} ({exc.strerror or exc}); "
            "set ERRGATE_HOST to an address of this machine, such as 127.0.0.1 or 0.0.0.0"
        ) from None


def serve_forever(settings: Settings, workers: int) -> int:
    _check_port_free(settings.host, settings.port, "ERRGATE_PORT")
    if settings.metrics_port is not None:
        _check_port_free(settings.host, settings.metrics_port, "ERRGATE_METRICS_PORT")
    if not settings.database_url:
        settings = dataclasses.replace(settings, database_url=database_url(settings))
    if workers <= 1:
        _run(settings)  # opening its pool names DATABASE_URL in one line when it cannot connect
        return 0
    settings = dataclasses.replace(settings, workers=workers)
    directory = workers_directory(settings.data_dir, settings.host, settings.port)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(workers_metrics(directory))
        except OSError as exc:
            raise ConfigError(
                f"ERRGATE_DATA_DIR: cannot make {directory} for the workers' metrics ({exc.strerror or exc}); "
                "set ERRGATE_DATA_DIR to a writable directory"
            ) from None
        # Checked once here, so that N workers do not each print the same failure.
        check_database(settings.database_url)
        return _supervise(settings, workers, directory)


def _supervise(settings: Settings, workers: int, metrics_directory: Path) -> int:
    """Start the workers, forward SIGTERM and SIGINT to them, and wait until every one has exited."""
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
    running = {process.sentinel: process for process in processes}
    while running:
        for sentinel in wait(list(running)):
            process = running.pop(sentinel)
            process.join()
            worker_exited(metrics_directory, process.pid)
    return 0 if all(p.exitcode == 0 for p in processes) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve_forever(Settings.from_env(), 1))
