"""Fixtures of the web page's tests: one errgate for the module's HTTP tests, and a cookie-keeping client."""

from __future__ import annotations

from typing import AsyncIterator

import aiohttp
import asyncpg
import pytest

from app.server import create_app
from tests.conftest import Server, serving, test_settings, url_of
from tests.web.helpers import WebClient


@pytest.fixture(scope="session")
async def web_server(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Server]:
    """errgate for the web tests (no state outside PostgreSQL, which each test empties)."""
    app = create_app(test_settings(database_url))
    async with serving(app) as runner:
        yield Server(url_of(runner), app, runner)


@pytest.fixture
async def client(web_server: Server, pool: asyncpg.Pool) -> AsyncIterator[WebClient]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield WebClient(session, web_server.url)


@pytest.fixture
async def other_client(web_server: Server, pool: asyncpg.Pool) -> AsyncIterator[WebClient]:
    """A second browser: its own cookies."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield WebClient(session, web_server.url)
