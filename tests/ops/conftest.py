"""Fixtures of the operations tests: an HTTP session, and ``errgate serve`` run as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator, Callable

import aiohttp
import pytest

from app.health import READINESS_PATH
from tests.conftest import ROOT_TOKEN

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 20.0


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Process:
    """A running ``python -m app serve``; its stderr goes to a file, read with :meth:`stderr`."""

    url: str
    popen: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float) -> int:
        """The exit code; fails the test when the process is still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"errgate did not exit within {timeout} s")
            await asyncio.sleep(0.02)
        return self.popen.returncode


ProcessFactory = Callable[..., "contextlib.AbstractAsyncContextManager[Process]"]


@pytest.fixture
def errgate_process(database_url: str, tmp_path: Path) -> ProcessFactory:
    """``async with errgate_process(ERRGATE_LOG_LEVEL="warning") as proc:`` runs errgate on a free port
    against the test database until the block ends (SIGTERM, then kill if it does not stop)."""

    @contextlib.asynccontextmanager
    async def run(**env_overrides: str) -> AsyncIterator[Process]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERRGATE_") and k != "SENTRY_DSN"}
        env.update(
            DATABASE_URL=database_url, ERRGATE_HOST="127.0.0.1", ERRGATE_PORT=str(port),
            ERRGATE_ROOT_TOKEN=ROOT_TOKEN, ERRGATE_LOG_LEVEL="info", PYTHONUNBUFFERED="1",
        )
        env.update(env_overrides)
        stderr_path = tmp_path / f"errgate-{port}.stderr"
        with stderr_path.open("wb") as stderr:
            popen = subprocess.Popen(
                [sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            )
        process = Process(f"http://127.0.0.1:{port}", popen, stderr_path)
        try:
            await _wait_ready(process)
            yield process
        finally:
            process.terminate()
            try:
                await process.wait(START_TIMEOUT_SECONDS)
            finally:
                if popen.poll() is None:
                    popen.kill()
                    popen.wait()

    return run


async def _wait_ready(process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    async with aiohttp.ClientSession() as session:
        while True:
            if process.popen.poll() is not None:
                raise AssertionError(f"errgate exited with {process.popen.returncode}:\n{process.stderr()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(process.url + READINESS_PATH) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise AssertionError(f"errgate was not ready within {START_TIMEOUT_SECONDS} s:\n{process.stderr()}")
            await asyncio.sleep(0.05)
