"""Fixtures of the operations tests: ``errgate serve`` run as a real process."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import pytest

from tests.process import ErrgateProcess, errgate_process as start_errgate, free_port

ProcessFactory = Callable[..., "contextlib.AbstractAsyncContextManager[ErrgateProcess]"]


@pytest.fixture
def errgate_process(database_url: str, tmp_path: Path) -> ProcessFactory:
    """``async with errgate_process(ERRGATE_LOG_LEVEL="warning") as proc:`` runs errgate on a free port
    against the test database, at log level info unless told, until the block ends."""

    def run(**env_overrides: str) -> contextlib.AbstractAsyncContextManager[ErrgateProcess]:
        port = free_port()
        env = {"ERRGATE_LOG_LEVEL": "info", **env_overrides}
        return start_errgate(database_url, tmp_path / f"errgate-{port}.log", port=port, **env)

    return run
