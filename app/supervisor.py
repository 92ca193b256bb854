"""The parent of several workers: starts them, starts again those that die, forwards stop signals.

A worker that dies is started again, after a delay that doubles while its successors keep dying
young (a crash at start, a database refusing new connections), so that a crash loop costs little
CPU and floods no log; once a worker has lived STEADY_SECONDS its successor starts at once.
Until some worker has served, a worker's exit is a failed start (a migration refused, say): the
others are stopped and the parent exits 1, as one process would, for the orchestrator to see.
On SIGTERM or SIGINT, forwarded to every worker, none is started again. A dead worker's live
gauges are dropped from the metrics files (app.metrics).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

from app.config import Settings
from app.metrics import worker_exited

log = logging.getLogger("errgate.supervisor")

Worker = Callable[[Settings, bool, Any], None]
"""A worker process's function: ``worker(settings, restarted, served)``."""

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
        self.start_at = now + delay
        return delay


def _exit_status(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            pass
    return f"exit code {exitcode}"


def supervise(worker: Worker, settings: Settings, workers: int, metrics_directory: Path) -> int:
    """Start ``workers`` processes running ``worker(settings, restarted, served)`` and keep them
    running until SIGTERM or SIGINT, then wait for every one to exit: 0 when all of them stopped
    cleanly, else 1 (also after a failed start). ``served`` is a shared byte the worker sets to 1
    once it listens."""
    supervisor = _Supervisor(worker, settings, workers, metrics_directory)
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

    def __init__(self, worker: Worker, settings: Settings, workers: int, metrics_directory: Path) -> None:
        self.worker = worker
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
            target=self.worker, args=(self.settings, restarted, self.served), name=f"errgate-worker-{slot.index}"
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
