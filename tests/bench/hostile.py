"""The benchmark's hostile mode: each case of ``hostile_cases`` against a live errgate, measured, one JSON line each.

errgate runs as ``python -m app serve --workers N`` on a fresh database, its log captured to a
file, with the header and body timeouts shortened to :data:`SETTINGS` so that the slow-client
cases take seconds (their lines and the summary say so). For each case: the answers, the seconds it took, the
RSS of errgate's process tree before, at its peak (sampled every 50 ms) and a moment after,
and the latency of ``/-/liveness`` polled every 50 ms on a new connection each time (so that
every worker is asked) while the case runs. The poller shares this process's event loop with
the case's clients, whose bodies are built before the measured window opens.

The machine may be shared: a server whose tree passes ``--rss-guard-mb`` is killed, and the
case says so. A server killed or dead, or left busy by a request that timed out, is started
again (same database, same port) before the next case. Nothing is asserted: the mode reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import aiohttp

from app.health import LIVENESS_PATH
from tests.bench import processes
from tests.bench.hostile_cases import CASES, Case
from tests.bench.servers import tracked_project
from tests.conftest import fresh_database
from tests.process import ErrgateProcess, errgate_process, free_port

EXTERNAL_URL = "https://errgate.example.com/gitlab"
SETTINGS = {
    "ERRGATE_HEADER_TIMEOUT_SECONDS": "2",  # default 10
    "ERRGATE_BODY_TIMEOUT_SECONDS": "2",  # default 30
    "ERRGATE_EXTERNAL_URL": EXTERNAL_URL,
    "ERRGATE_LOG_LEVEL": "info",  # more of what errgate writes, all of it searched for the tokens
}
INTERVAL_SECONDS = 0.05
LIVENESS_TIMEOUT_SECONDS = 5.0
MB = 2**20

Emit = Callable[[dict[str, Any]], None]


class Target:
    """The errgate under attack: its address, a project with a client key, the root token, its log."""

    def __init__(self, stack: contextlib.AsyncExitStack, database_url: str, log_path: Path, workers: int) -> None:
        self._stack = stack
        self._database_url = database_url
        self._log_path = log_path
        self._workers = workers
        self._env = dict(SETTINGS, ERRGATE_ROOT_TOKEN="hostile-root-" + secrets.token_hex(12))
        self.server: ErrgateProcess
        self.url = ""
        self.external_url = EXTERNAL_URL
        self.header_timeout = float(SETTINGS["ERRGATE_HEADER_TIMEOUT_SECONDS"])
        self.body_timeout = float(SETTINGS["ERRGATE_BODY_TIMEOUT_SECONDS"])
        self.project_id = 0
        self.public_key = ""
        self.tokens: list[str] = []  # every root token used, for the log check

    @property
    def root_token(self) -> str:
        return self._env["ERRGATE_ROOT_TOKEN"]

    async def start(self, port: int) -> None:
        self.server = await self._stack.enter_async_context(
            errgate_process(self._database_url, self._log_path, port=port, workers=self._workers, **self._env)
        )
        self.url = self.server.url
        if self.root_token not in self.tokens:
            self.tokens.append(self.root_token)

    async def restart(self, **env: str) -> None:
        """Stop errgate and its workers, then start it again with ``env`` changed."""
        await asyncio.to_thread(self.server.kill_group)
        self._env.update(env)
        await self.start(self.server.port)

    async def make_project(self) -> None:
        dsn = urlsplit(await tracked_project(self.server.process, self.url, self.root_token))
        self.public_key = dsn.username or ""
        self.project_id = int(dsn.path.rpartition("/")[2])

    def log(self) -> str:
        return self.server.log()

    def rss(self) -> int:
        return processes.rss(self.server.pid)


class Watch:
    """While a case runs: the RSS of errgate's tree and the latency of liveness, every 50 ms."""

    def __init__(self, target: Target, guard_bytes: int) -> None:
        self.target = target
        self.guard_bytes = guard_bytes
        self.peak = 0
        self.latencies: list[float] = []
        self.failures = 0
        self.killed: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Watch:
        self._tasks = [asyncio.create_task(self._sample_rss()), asyncio.create_task(self._poll_liveness())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop(self._tasks)

    async def stop_liveness(self) -> None:
        """Latency is the case's; memory is watched on while errgate gives it back."""
        await self._stop(self._tasks[1:])

    @staticmethod
    async def _stop(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _sample_rss(self) -> None:
        while True:
            rss = self.target.rss()
            self.peak = max(self.peak, rss)
            if rss > self.guard_bytes and self.killed is None:
                self.killed = f"RSS {rss // MB} MB passed the guard of {self.guard_bytes // MB} MB"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.target.server.pid, signal.SIGKILL)
            await asyncio.sleep(INTERVAL_SECONDS)

    async def _poll_liveness(self) -> None:
        """A probe every 50 ms, each on a new connection and not waiting for the previous one, so
        that a stalled worker shows in every probe it holds; probes sent during the case are
        waited for (up to their timeout) when it ends."""
        timeout = aiohttp.ClientTimeout(total=LIVENESS_TIMEOUT_SECONDS)
        open_probes: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0),
                                         timeout=timeout) as session:
            try:
                while True:
                    probe = asyncio.create_task(self._probe(session))
                    open_probes.add(probe)
                    probe.add_done_callback(open_probes.discard)
                    await asyncio.sleep(INTERVAL_SECONDS)
            finally:
                await asyncio.gather(*open_probes, return_exceptions=True)

    async def _probe(self, session: aiohttp.ClientSession) -> None:
        started = time.monotonic()
        try:
            async with session.get(self.target.url + LIVENESS_PATH) as response:
                await response.read()
                ok = response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            ok = False
        self.latencies.append(time.monotonic() - started)
        self.failures += not ok

    def figures(self) -> dict[str, Any]:
        ms = sorted(1000 * latency for latency in self.latencies)
        return {
            "server_rss_mb_peak": round(self.peak / MB, 1),
            "liveness_p50_ms": round(statistics.median(ms), 1) if ms else None,
            "liveness_max_ms": round(ms[-1], 1) if ms else None,
            "liveness_polls": len(ms),
            "liveness_failures": self.failures,
        }


def _left_busy(answers: Iterable[object]) -> bool:
    """A request errgate did not answer in time may still hold a worker: the next case needs a fresh one."""
    return any(answer == "timeout" for answer in answers)


async def run_case(case: Case, target: Target, guard_mb: int, settle_seconds: float) -> dict[str, Any]:
    prepared = await asyncio.to_thread(case.prepare)
    rss_before = target.rss()
    async with Watch(target, guard_mb * MB) as watch:
        started = time.monotonic()
        try:
            result = await case.run(target, prepared)
        except Exception as exc:  # reported like any other outcome; the next case still runs
            result = {"answers": ["error"], "error": f"{type(exc).__name__}: {exc}"}
        seconds = time.monotonic() - started
        await watch.stop_liveness()
        await asyncio.sleep(settle_seconds)  # what errgate gives back once the clients are gone
        dead = target.server.process.poll() is not None
        rss_after = None if dead else round(target.rss() / MB, 1)
    line = {"mode": "hostile", "case": case.name, "expected": case.expected, **result,
            "seconds": round(seconds, 2), "server_rss_mb_before": round(rss_before / MB, 1),
            **watch.figures(), "server_rss_mb_after": rss_after}
    if watch.killed or dead or _left_busy(result["answers"]):
        line["server_restarted"] = watch.killed or ("it had exited" if dead else "a request timed out")
        await target.restart()
    return line


def selected(names: Iterable[str] | None) -> list[Case]:
    if not names:
        return list(CASES)
    by_name = {case.name: case for case in CASES}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown hostile cases: {', '.join(unknown)} (known: {', '.join(by_name)})")
    return [by_name[name] for name in names]


async def run(
    admin_url: str, emit: Emit, *, cases: Iterable[str] | None = None, workers: int = 2, rss_guard_mb: int = 6144,
    settle_seconds: float = 2.0, keep_database: bool = False,
) -> dict[str, Any]:
    """Run ``cases`` (names; all when None) in order against one errgate; ``emit`` each case's
    line, then the summary line, which is also returned."""
    chosen = selected(cases)
    started = time.monotonic()
    answers: dict[str, list[object]] = {}
    peak, restarts = 0.0, 0
    with tempfile.TemporaryDirectory(prefix="errgate-hostile-") as log_dir:
        async with contextlib.AsyncExitStack() as stack:
            db_url = await stack.enter_async_context(fresh_database(admin_url, "errgate_hostile", keep_database))
            target = Target(stack, db_url, Path(log_dir) / "errgate.log", workers)
            await target.start(free_port())
            await target.make_project()
            for case in chosen:
                line = await run_case(case, target, rss_guard_mb, settle_seconds)
                answers[case.name] = line["answers"]
                peak = max(peak, line["server_rss_mb_peak"])
                restarts += "server_restarted" in line
                emit(line)
            log = target.log()
            summary = {
                "mode": "hostile", "summary": True, "answers": answers, "workers": workers,
                "settings": SETTINGS,
                "rss_guard_mb": rss_guard_mb, "server_rss_mb_peak": peak, "server_restarts": restarts,
                "root_token_in_log": any(token in log for token in target.tokens), "log_lines": len(log.splitlines()),
                "seconds": round(time.monotonic() - started, 1), "cpus": os.cpu_count(),
            }
    emit(summary)
    return summary
