"""Liveness, readiness and the metrics endpoint (paths shared with deploy/ manifests and their tests).

Liveness never touches the database. Readiness answers 503 with a JSON reason while the
process drains after SIGTERM, when PostgreSQL does not answer, or when its schema is not
at the version this build expects.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from app import state
from app.db import migrations
from app.db.pool import DATABASE_ERRORS, within
from app.problems import json_response

LIVENESS_PATH = "/-/liveness"
READINESS_PATH = "/-/readiness"
METRICS_PATH = "/metrics"
READINESS_TIMEOUT_SECONDS = 2.0



async def liveness(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _schema_version(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return await migrations.applied_version(conn)


async def readiness(request: web.Request) -> web.Response:
    app = request.app
    if app[state.DRAINING].is_set():
        return json_response({"status": "unavailable", "reason": "draining"}, 503)
    if app[state.WRITER].database_down:
        return json_response({"status": "unavailable", "reason": "database unreachable"}, 503)
    try:
        version = await within(_schema_version(app[state.POOL]), READINESS_TIMEOUT_SECONDS)
    except DATABASE_ERRORS as exc:
        return json_response({"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"}, 503)
    expected = migrations.expected_version()
    if version != expected:
        return json_response(
            {"status": "unavailable", "reason": f"schema at version {version}, expected {expected}"}, 503
        )
    return json_response({"status": "ok", "schema_version": version})


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[state.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def setup_routes(app: web.Application, *, with_metrics: bool) -> None:
    app[state.DRAINING] = asyncio.Event()
    app.router.add_get(LIVENESS_PATH, liveness)
    app.router.add_get(READINESS_PATH, readiness)
    if with_metrics:
        app.router.add_get(METRICS_PATH, metrics)
