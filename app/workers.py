"""Running the service: one process, or several worker processes sharing the port with SO_REUSEPORT.

Before anything starts, the parent makes sure that the ports are free and the database answers, so
that either mistake stops the start with one line naming the variable (not one traceback per worker).
The embedded PostgreSQL, when used, is started once by the parent so that workers only connect to it.
Self-reporting (``SENTRY_DSN``) is started in each serving process: sentry-sdk's client and its
sending thread belong to one process.
With several workers the parent gives them a directory for their metrics files (app.metrics),
drops a worker's live gauges when it exits, and removes the directory when the last one has. It
starts again a worker that exits unless it was asked to stop (app.supervisor).
Each process runs on uvloop, which roughly halves the event loop's CPU cost per request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import socket
import sys
from typing import Any, Callable

import uvloop

from app.config import ConfigError, Settings
from app.db.pool import check_database, database_url
from app.logs import setup_logging
from app.metrics import workers_directory, workers_metrics
from app.selfreport import init_self_reporting
from app.server import serve
from app.supervisor import supervise

log = logging.getLogger("errgate.workers")


def _run(settings: Settings, restarted: bool = False, serving: Callable[[], None] | None = None) -> int:
    """Serve until stopped: 0. An unexpected error (a migration the database refuses, say) is
    logged as one JSON line with its traceback, not printed as a bare traceback: 1. A
    ConfigError goes up to the command, which prints it as one line."""
    if settings.sentry_dsn:
        init_self_reporting(settings.sentry_dsn)
    try:
        uvloop.run(serve(settings, restarted=restarted, serving=serving))
    except ConfigError:
        raise
    except Exception:
        log.critical("errgate stopped by an unexpected error", exc_info=True)
        return 1
    return 0


def _worker(settings: Settings, restarted: bool, served: Any) -> None:
    """A worker process; ``served`` is the parent's shared byte, set to 1 once this worker listens."""
    setup_logging(settings.log_level)
    try:
        code = _run(settings, restarted, lambda: setattr(served, "value", 1))
    except ConfigError as exc:
        log.error(str(exc))
        code = 2
    sys.exit(code)


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
        return _run(settings)  # opening its pool names DATABASE_URL in one line when it cannot connect
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
        return supervise(_worker, settings, workers, directory)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve_forever(Settings.from_env(), 1))
