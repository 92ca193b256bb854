"""Liveness never needs the database; readiness answers 503 with a JSON reason when errgate should get no traffic."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg

from app import health, state
from app.db import migrations
from tests.conftest import Server


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def test_liveness_answers_without_the_database(server: Server, http: aiohttp.ClientSession) -> None:
    assert await _get(http, server.url + health.LIVENESS_PATH) == (200, {"status": "ok"})
    await server.app[state.POOL].close()
    assert await _get(http, server.url + health.LIVENESS_PATH) == (200, {"status": "ok"})


async def test_readiness_reports_the_schema_version(server: Server, http: aiohttp.ClientSession) -> None:
    status, body = await _get(http, server.url + health.READINESS_PATH)
    assert (status, body) == (200, {"status": "ok", "schema_version": migrations.expected_version()})
    assert body["schema_version"] > 0


async def test_readiness_is_503_while_draining_and_liveness_is_not(server: Server, http: aiohttp.ClientSession) -> None:
    server.app[state.DRAINING].set()
    assert await _get(http, server.url + health.READINESS_PATH) == (
        503, {"status": "unavailable", "reason": "draining"}
    )
    assert await _get(http, server.url + health.LIVENESS_PATH) == (200, {"status": "ok"})


async def test_readiness_is_503_when_the_schema_is_not_the_expected_one(
    server: Server, http: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    expected = migrations.expected_version()
    future = expected + 1000
    await pool.execute("insert into schema_migrations (version, name) values ($1, 'from_the_future')", future)
    try:
        status, body = await _get(http, server.url + health.READINESS_PATH)
    finally:
        await pool.execute("delete from schema_migrations where version = $1", future)
    assert (status, body) == (
        503, {"status": "unavailable", "reason": f"schema at version {future}, expected {expected}"}
    )
    assert (await _get(http, server.url + health.READINESS_PATH))[0] == 200


async def test_readiness_is_503_when_the_database_is_unreachable(server: Server, http: aiohttp.ClientSession) -> None:
    await server.app[state.POOL].close()
    status, body = await _get(http, server.url + health.READINESS_PATH)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("database unreachable"), body


async def test_readiness_reads_the_migrations_folder_once(
    server: Server, http: aiohttp.ClientSession, monkeypatch
) -> None:
    assert (await _get(http, server.url + health.READINESS_PATH))[0] == 200

    def gone() -> None:
        raise FileNotFoundError("sql/ read again")

    monkeypatch.setattr(migrations, "sql_dir", gone)
    status, body = await _get(http, server.url + health.READINESS_PATH)
    assert (status, body) == (200, {"status": "ok", "schema_version": migrations.expected_version()})
