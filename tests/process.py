"""errgate run as a real process (``python -m app serve``) on a free loopback port, and free ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator, Callable

import aiohttp

from app.health import READINESS_PATH
from tests.conftest import ROOT_TOKEN

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def errgate_env(**extra: str) -> dict[str, str]:
    """This process's environment without any errgate setting, plus ``extra``."""
    dropped = ("DATABASE_URL", "TEST_DATABASE_URL", "SENTRY_DSN")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERRGATE_") and k not in dropped}
    env.update(extra)
    return env


async def readiness_status(session: aiohttp.ClientSession, base_url: str, timeout: float = 5.0) -> int | None:
    """The status of the readiness probe, or None when errgate did not answer."""
    try:
        async with session.get(base_url + READINESS_PATH, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return None


async def wait_ready(
    popen: subprocess.Popen[bytes], base_url: str, timeout: float, output: Callable[[], str] = lambda: ""
) -> None:
    """Poll readiness until it answers 200; fail at once if the process exits, or after ``timeout``
    seconds (with what ``output`` returns: the process's last lines)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if popen.poll() is not None:
                raise AssertionError(f"errgate exited with {popen.returncode}:\n{output()}")
            if await readiness_status(session, base_url, timeout=2.0) == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"errgate not ready after {timeout} s:\n{output()}")
            await asyncio.sleep(0.05)


class ErrgateProcess:
    """``python -m app serve`` in its own process group, its stdout and stderr in a log file."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log().splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def terminate(self) -> None:
        """SIGTERM, unless errgate has already exited."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)

    async def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        try:
            return await asyncio.to_thread(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_group(self) -> None:
        """SIGKILL errgate and any worker it started (its own process group), then reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.asynccontextmanager
async def errgate_process(
    database_url: str, log_path: Path, *, port: int | None = None, workers: int | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS, **env: str,
) -> AsyncIterator[ErrgateProcess]:
    """Start errgate on loopback against ``database_url`` (settings: ``env``), wait for readiness,
    kill it and its workers on exit. One worker unless ``workers`` or ``ERRGATE_WORKERS`` says
    otherwise (the default, one per core, would make a test depend on the machine)."""
    errgate = spawn_errgate(database_url, log_path, port=port, workers=workers, **env)
    try:
        await wait_ready(errgate.process, errgate.url, ready_timeout, errgate.log_tail)
        yield errgate
    finally:
        await asyncio.to_thread(errgate.kill_group)


def spawn_errgate(
    database_url: str, log_path: Path, *, port: int | None = None, workers: int | None = None, **env: str,
) -> ErrgateProcess:
    """``errgate serve`` started as :func:`errgate_process` starts it, not waited for: the caller
    waits, and kills it with :meth:`ErrgateProcess.kill_group`."""
    port = port or free_port()
    args = [sys.executable, "-m", "app", "serve"]
    if workers is not None:
        args += ["--workers", str(workers)]
    full_env = errgate_env(
        DATABASE_URL=database_url, ERRGATE_HOST="127.0.0.1", ERRGATE_PORT=str(port),
        ERRGATE_ROOT_TOKEN=ROOT_TOKEN, ERRGATE_LOG_LEVEL="warning",
        ERRGATE_DATA_DIR=str(log_path.parent / "errgate-data"), PYTHONUNBUFFERED="1", ERRGATE_WORKERS="1",
    )
    full_env.update(env)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            args, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ErrgateProcess(process, port, log_path)
