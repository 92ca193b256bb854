"""``errgate serve --workers 2``: a worker that dies is started again, counted, with a delay that
grows while its successors die young; SIGTERM during that delay stops everything, starting nothing;
a worker that fails before any has served stops the start (exit 1), restarting nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from tests.faults.helpers import (
    envelope_url, fresh_database, grouped_event, new_session, post_event, tracked_project_over_http, wait_until,
)
from tests.faults.test_workers import workers_of
from tests.faults.test_workers_metrics import scrape
from tests.conftest import connect
from tests.process import ErrgateProcess, errgate_process, spawn_errgate

WORKERS = 2
RESTART_LINE = "worker exited; starting another"
LISTENING = '"errgate listening"'


def restarts_logged(errgate: ErrgateProcess) -> list[dict]:
    """The parent's log records of workers it started again, in order."""
    return [json.loads(line) for line in errgate.log().splitlines() if RESTART_LINE in line]


async def logged_restarts(errgate: ErrgateProcess, count: int) -> list[dict]:
    await _logged(errgate, RESTART_LINE, count)
    return restarts_logged(errgate)


async def _logged(errgate: ErrgateProcess, text: str, count: int) -> None:
    """Once ``text`` is in ``count`` lines of the log."""
    await wait_until(lambda: errgate.log().count(text) >= count, 10, f"{count} log lines with {text}")


async def replaced(errgate: ErrgateProcess, gone: set[int], timeout: float = 30.0) -> list[psutil.Process]:
    """The listening workers, once there are WORKERS of them again and none is in ``gone``."""
    deadline = time.monotonic() + timeout
    while True:
        children = await workers_of(errgate.pid, errgate.port, WORKERS, timeout=max(0.0, deadline - time.monotonic()))
        if len(children) == WORKERS and not {c.pid for c in children} & gone:
            return children
        assert time.monotonic() < deadline, (children, errgate.log_tail())
        await asyncio.sleep(0.05)


TICK = 1 / os.sysconf("SC_CLK_TCK")


def _uptime() -> float:
    """Seconds since boot, on the clock that processes' start times are read from."""
    return float(Path("/proc/uptime").read_text().split()[0])


def _started(pid: int) -> float:
    """When ``pid`` started, in seconds since boot (to the clock tick; psutil's create_time adds
    the boot time, which Linux gives to the second only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[19]) * TICK


async def test_a_killed_worker_is_started_again_and_counted(base_database_url, scratch_dir) -> None:
    async with fresh_database(base_database_url) as url:
        async with errgate_process(url, scratch_dir / "errgate.log", workers=WORKERS) as errgate:
            children = await workers_of(errgate.pid, errgate.port, WORKERS)
            assert len(children) == WORKERS
            killed = children[0]
            killed.kill()
            now = await replaced(errgate, {killed.pid})
            [record] = await logged_restarts(errgate, 1)
            assert record["level"] == "error"
            assert record["pid"] == killed.pid and record["status"] == "SIGKILL", record
            assert await scrape(errgate, "errgate_worker_restarts_total") == 1

            # The group serves again (replaced() saw both workers listen): events are stored.
            async with new_session() as session:
                project = await tracked_project_over_http(session, errgate.url)
            events = [grouped_event("after-restart") for _ in range(16)]
            async with new_session(8) as session:
                outcomes = await asyncio.gather(*(
                    post_event(session, envelope_url(errgate.url, project.project_id), project.public_key, e)
                    for e in events
                ))
            assert [o.status for o in outcomes] == [200] * len(events)

            errgate.signal(signal.SIGTERM)
            assert await errgate.wait(20) == 0, errgate.log_tail()
            assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in now)


async def test_workers_dying_young_are_restarted_later_and_sigterm_cancels_the_restart(
    base_database_url, scratch_dir
) -> None:
    async with fresh_database(base_database_url) as url:
        async with errgate_process(url, scratch_dir / "errgate.log", workers=WORKERS, ERRGATE_LOG_LEVEL="info") as errgate:
            children = await workers_of(errgate.pid, errgate.port, WORKERS)
            gone: set[int] = set()
            # The same place's worker dies four times within a minute of its start.
            victim = children[0]
            for deaths in range(1, 5):
                killed_at = _uptime()
                victim.kill()
                gone.add(victim.pid)
                records = await logged_restarts(errgate, deaths)
                if deaths == 4:
                    break
                before = {c.pid for c in children}
                children = await replaced(errgate, gone)
                [victim] = [c for c in children if c.pid not in before]
                # Each successor was started no sooner than its delay after the kill.
                assert _started(victim.pid) - killed_at >= records[-1]["restart_in_seconds"] - TICK, records
                # Killed only once it logged that it listens, so that the log counts every worker started.
                await _logged(errgate, LISTENING, WORKERS + deaths)
            assert [r["restart_in_seconds"] for r in records] == [0.0, 1.0, 2.0, 4.0], records
            assert len({r["worker"] for r in records}) == 1, records

            # SIGTERM while the fourth successor waits its 4 s: the parent exits without starting it.
            errgate.signal(signal.SIGTERM)
            assert await errgate.wait(20) == 0, errgate.log_tail()
            assert len(restarts_logged(errgate)) == 4
            # Two workers at start and three successors: no sixth worker ever listened.
            assert errgate.log().count(LISTENING) == WORKERS + 3, errgate.log_tail()


@pytest.mark.parametrize("workers", [1, WORKERS])
async def test_a_start_that_fails_exits_1_with_the_error_logged_as_json(base_database_url, scratch_dir, workers) -> None:
    """A role that may connect but not create tables: the parent's check passes, every worker's
    migration is refused. With several workers the parent stops and exits 1, as one process
    does, instead of starting workers again and again."""
    role = f"errgate_no_create_{os.getpid()}"
    log_path = scratch_dir / "errgate.log"
    async with fresh_database(base_database_url) as url:
        async with connect(base_database_url) as admin:
            await admin.execute(f"drop role if exists {role}")  # left by a run that was killed
            await admin.execute(f"create role {role} login")
        async with connect(url) as db:
            await db.execute("revoke create on schema public from public")  # PostgreSQL 15's default, made sure
        try:
            parts = urlsplit(url)
            restricted = parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}").geturl()
            errgate = spawn_errgate(restricted, log_path, workers=workers)
            try:
                code = await errgate.wait(60)
            finally:
                await asyncio.to_thread(errgate.kill_group)
        finally:
            async with connect(base_database_url) as admin:
                await admin.execute(f"drop role {role}")
    log = errgate.log()
    assert code == 1, log[-3000:]
    records = [json.loads(line) for line in log.splitlines()]  # no bare traceback
    [failure, *_] = [r for r in records if r["level"] == "critical"]
    assert failure["message"] == "errgate stopped by an unexpected error"
    assert "permission denied for schema public" in failure["exception"], failure
    if workers > 1:
        assert "worker failed to start; stopping" in log, log[-3000:]
        assert RESTART_LINE not in log
