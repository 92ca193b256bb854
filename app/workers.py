"""Running the service: one process, or several worker processes sharing the port with SO_REUSEPORT.

Before anything starts, the parent makes sure that the ports are free and the database answers, so
that either mistake stops the start with one line naming the variable (not one traceback per worker).
The embedded PostgreSQL, when used, is started once by the parent so that workers only connect to it.
Self-reporting (``SENTRY_DSN``) is started in each serving process: sentry-sdk's client and its
sending thread belong to one process.
With several workers the parent gives them a directory for their metrics files (app.metrics),
drops a worker's live gauges when it exits, and removes the directory when the last one has. It
starts again a worker that exits unless it was asked to stop (see _supervise and the README's
"Workers").
Each process runs on uvloop, which roughly halves the event loop's CPU cost per request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

import uvloop

from app.config import ConfigError, Settings
from app.db.pool import check_database, database_url
from app.logs import setup_logging
from app.metrics import worker_exited, workers_directory, workers_metrics
from app.selfreport import init_self_reporting
from app.server import serve

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
        return _supervise(settings, workers, directory)


# A worker that dies is started again, after a delay that doubles while its successors keep dying
# young (a crash at start, a database refusing new connections), so that a crash loop costs
# little CPU and floods no log; once a worker has lived STEADY_SECONDS its successor starts at once.
# Until some worker has served, a worker's exit is a failed start (a migration refused, say): the
# others are stopped and the parent exits 1, as one process would, for the orchestrator to see.
FIRST_RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0
STEADY_SECONDS = 60.0


@dataclasses.dataclass
class _Slot:
    """One of the worker places: its process now, and how soon a successor may start."""

    index: int
    process: multiprocessing.process.BaseProcess | None = None
    started_at: float = 0.0
    delay: float = 0.0  # before the next start, once this slot's process died young
    start_at: float | None = None  # when a successor is due; None while one runs

    def exited(self, now: float) -> float:
        """Schedule the successor of the process that just exited; returns the delay chosen."""
        if now - self.started_at >= STEADY_SECONDS:
            self.delay = 0.0
        delay = self.delay
        self.delay = min(max(FIRST_RESTART_DELAY_SECONDS, 2 * self.delay), MAX_RESTART_DELAY_SECONDS)
        self.process = None
        self.start_at = now + delay
        return delay


def _exit_status(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            pass
    return f"exit code {exitcode}"


def _supervise(settings: Settings, workers: int, metrics_directory: Path) -> int:
    """Start the workers and keep them running until SIGTERM or SIGINT, then wait for every one
    to exit: 0 when all of them stopped cleanly, else 1 (also after a failed start)."""
    supervisor = _Supervisor(settings, workers, metrics_directory)
    # A signal also wakes the wait, which may otherwise sleep until a restart is due.
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    previous_wakeup = signal.set_wakeup_fd(wake)
    previous = {signum: signal.signal(signum, supervisor.stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return supervisor.run(woken)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(woken)
        os.close(wake)


class _Supervisor:
    """The parent's bookkeeping: one :class:`_Slot` per worker place, the stop signal once one came."""

    def __init__(self, settings: Settings, workers: int, metrics_directory: Path) -> None:
        self.settings = settings
        self.metrics_directory = metrics_directory
        self.context = multiprocessing.get_context("spawn")
        self.slots = [_Slot(i) for i in range(workers)]
        self.stopping: list[int] = []  # the signal received, once one came
        # Set to 1 by the first worker that listens. Shared memory without a lock: a worker
        # killed while setting it cannot leave the parent waiting on a lock it held.
        self.served = self.context.RawValue("b", 0)
        self.clean = True

    def stop(self, signum: int, _frame: object = None) -> None:
        """Forward ``signum`` to every worker, and start none from now on."""
        self.stopping.append(signum)
        for slot in self.slots:
            self._signal(slot, signum)

    def run(self, woken: int) -> int:
        for slot in self.slots:
            self._start(slot, restarted=False)
        while True:
            running = {slot.process.sentinel: slot for slot in self.slots if slot.process is not None}
            if self.stopping and not running:
                return 0 if self.clean else 1
            due = [slot.start_at for slot in self.slots if slot.start_at is not None]
            timeout = None if self.stopping or not due else max(0.0, min(due) - time.monotonic())
            for ready in wait([*running, woken], timeout):
                if ready == woken:
                    os.read(woken, 64)
                else:
                    self._exited(running[ready])
            now = time.monotonic()
            for slot in self.slots:
                if slot.start_at is not None and slot.start_at <= now:
                    self._start(slot, restarted=True)

    def _start(self, slot: _Slot, restarted: bool) -> None:
        if self.stopping:
            slot.start_at = None
            return
        process = self.context.Process(
            target=_worker, args=(self.settings, restarted, self.served), name=f"errgate-worker-{slot.index}"
        )
        try:
            process.start()
        except OSError as exc:  # no memory or no process left to fork: as if it had died at once
            self._lost(slot, {"worker": process.name, "status": f"not started: {exc.strerror or exc}"})
            return
        slot.process, slot.started_at, slot.start_at = process, time.monotonic(), None
        if self.stopping:  # the signal came while it was being started: forward() did not see it
            self._signal(slot, self.stopping[-1])

    def _exited(self, slot: _Slot) -> None:
        process = slot.process
        assert process is not None
        process.join()
        worker_exited(self.metrics_directory, process.pid)
        slot.process = None
        if self.stopping:
            # Killed by the signal forwarded to it: it was still starting, with nothing to drain.
            self.clean = self.clean and process.exitcode in (0, -self.stopping[0])
            return
        self._lost(slot, {"worker": process.name, "pid": process.pid, "status": _exit_status(process.exitcode)})

    def _lost(self, slot: _Slot, worker: dict[str, Any]) -> None:
        """A worker is gone without being asked to: another starts later, unless none has served
        yet (a failed start). ``worker``: what the log line tells of it."""
        if not self.served.value:
            log.error("worker failed to start; stopping", extra=worker)
            self.clean = False
            self.stop(signal.SIGTERM)
            return
        delay = slot.exited(time.monotonic())
        log.error("worker exited; starting another", extra={**worker, "restart_in_seconds": delay})

    @staticmethod
    def _signal(slot: _Slot, signum: int) -> None:
        process = slot.process
        if process is not None and process.pid and process.is_alive():
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve_forever(Settings.from_env(), 1))
