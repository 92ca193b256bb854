"""sql/006_triage.sql on a database that already holds errors and events: what triage needs is filled in from them."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import asyncpg
import pytest

from app.db import migrations, partitions
from tests.conftest import connect, fresh_database

T0 = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)


@pytest.fixture
async def conn(base_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with fresh_database(base_database_url, "errgate_migrations") as url, connect(url) as connection:
        yield connection


async def test_existing_events_fill_environments_releases_levels_and_search(conn, tmp_path, monkeypatch) -> None:
    before = tmp_path / "sql"
    before.mkdir()
    for migration in migrations.discover():
        if migration.version < 6:
            shutil.copy(migration.path, before / migration.path.name)
    real_dir = migrations.sql_dir()
    monkeypatch.setattr(migrations, "sql_dir", lambda: before)
    await migrations.migrate(conn)
    await partitions.create_partitions(conn, T0.date(), T0.date())
    project_id = await conn.fetchval(
        "insert into projects (name, path, namespace_path, path_with_namespace) values ('a', 'a', 'g', 'g/a') returning id"
    )
    ids = {}
    for fingerprint in ("one", "quiet"):
        ids[fingerprint] = await conn.fetchval(
            """insert into error_tracking_errors (project_id, fingerprint, name, description, actor, platform,
                                                  first_seen_at, last_seen_at, events_count)
               values ($1, $2, 'KeyError', 'basket ' || $2, 'view(shop)', 'python', $3, $3, 3) returning id""",
            project_id, fingerprint, T0,
        )
    # Events out of order; one stored as jsonb, before payload_text existed.
    events = [(ids["one"], "warning", "production", "2.0", 2), (ids["one"], "fatal", "staging", "1.0", 1),
              (ids["one"], "info", "production", None, 3), (ids["quiet"], "error", None, None, 1)]
    for n, (error_id, level, environment, release, minutes) in enumerate(events):
        await conn.execute(
            """insert into error_tracking_error_events (project_id, error_id, event_id, level, environment, release,
                   occurred_at, received_at, received_on, received_hour, payload, payload_text)
               values ($1, $2, gen_random_uuid(), $3, $4, $5, $6, $6, $7, 10,
                       case when $8 then '{}'::jsonb end, case when not $8 then '{}' end)""",
            project_id, error_id, level, environment, release, T0 + timedelta(minutes=minutes), T0.date(), n == 0,
        )

    monkeypatch.setattr(migrations, "sql_dir", lambda: real_dir)
    assert [m.version for m in await migrations.migrate(conn)] == [6]

    rows = {r["id"]: r for r in await conn.fetch("select * from error_tracking_errors")}
    assert (rows[ids["one"]]["level"], rows[ids["one"]]["first_release"], rows[ids["one"]]["last_release"]) == (
        "info", "1.0", "2.0")
    assert (rows[ids["quiet"]]["level"], rows[ids["quiet"]]["first_release"], rows[ids["quiet"]]["last_release"]) == (
        "error", None, None)
    environments = await conn.fetch("select error_id, environment from error_tracking_error_environments order by 2")
    assert [(r["error_id"], r["environment"]) for r in environments] == [(ids["one"], "production"), (ids["one"], "staging")]
    releases = await conn.fetch("select error_id, release from error_tracking_error_releases order by 2")
    assert [(r["error_id"], r["release"]) for r in releases] == [(ids["one"], "1.0"), (ids["one"], "2.0")]
    found = await conn.fetch(
        "select error_id from error_tracking_error_search where text ilike '%BASKET QUIET%' and project_id = $1",
        project_id,
    )
    assert [r["error_id"] for r in found] == [ids["quiet"]]
