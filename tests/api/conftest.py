"""One errgate for the whole session for the many small REST API tests.

The suite-wide ``server`` starts a fresh errgate per test (pool, migrations check, partition
maintenance, key-change listener, writer): about 60 ms, times some 300 tests here. The
management API keeps no state outside PostgreSQL, so emptying the tables (the suite-wide
``CLEANUP``) isolates tests as well; ``root`` and its ``ROOT_TOKEN``, which a server start
would create, are put back after each cleanup. ``start_server`` still starts a fresh errgate
for tests that need other settings.
"""

from __future__ import annotations

from typing import AsyncIterator

import asyncpg
import pytest
from aiohttp import web

from app.auth import token_digest
from app.db import users
from app.state import SETTINGS
from app.server import create_app, make_runner
from tests.conftest import ROOT_TOKEN, Server, test_settings


@pytest.fixture(autouse=True)
async def clean_tables(request: pytest.FixtureRequest, clean_tables: None) -> None:
    """The tables emptied (by tests/conftest.py's fixture of this name), then root and its token made again."""
    if "pool" not in request.fixturenames:
        return
    pool: asyncpg.Pool = request.getfixturevalue("pool")
    async with pool.acquire() as conn:
        await users.ensure_root(conn, token_digest(ROOT_TOKEN))


@pytest.fixture(scope="session")
async def shared_server(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Server]:
    app = create_app(test_settings(database_url))
    runner = make_runner(app, app[SETTINGS].shutdown_grace_seconds)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Server(f"http://127.0.0.1:{port}", app, runner)
    await runner.cleanup()


@pytest.fixture
async def server(shared_server: Server, pool: asyncpg.Pool) -> Server:
    return shared_server
