"""Forward-only migrations on a fresh database: each applied once, recorded, and safe to run concurrently."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import asyncpg
import pytest

from app.db import migrations
from tests.conftest import connect, fresh_database

ISSUE_TABLES = {
    "projects",
    "users",
    "members",
    "personal_access_tokens",
    "project_error_tracking_settings",
    "error_tracking_client_keys",
}


@pytest.fixture
async def fresh_database_url(base_database_url: str) -> AsyncIterator[str]:
    """An empty database of its own, dropped afterwards."""
    async with fresh_database(base_database_url, "errgate_migrations") as url:
        yield url


@pytest.fixture
async def conn(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with connect(fresh_database_url) as connection:
        yield connection


async def recorded_versions(conn: asyncpg.Connection) -> list[int]:
    return [r["version"] for r in await conn.fetch("select version from schema_migrations order by version")]


async def public_tables(conn: asyncpg.Connection) -> set[str]:
    return {r["tablename"] for r in await conn.fetch("select tablename from pg_tables where schemaname = 'public'")}


async def test_migrate_twice_applies_nothing_the_second_time(conn) -> None:
    assert await migrations.applied_version(conn) == 0
    first = await migrations.migrate(conn)
    expected = [m.version for m in migrations.discover()]
    assert [m.version for m in first] == expected and expected
    assert await migrations.migrate(conn) == []
    rows = await conn.fetch("select version, name, applied_at from schema_migrations order by version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in first]
    assert all(r["applied_at"] is not None for r in rows)
    assert ISSUE_TABLES <= await public_tables(conn)
    assert await migrations.applied_version(conn) == migrations.expected_version() == expected[-1]


async def test_concurrent_migrators_apply_each_migration_once(fresh_database_url) -> None:
    connections = [await asyncpg.connect(fresh_database_url) for _ in range(5)]
    try:
        results = await asyncio.gather(*(migrations.migrate(c) for c in connections))
        applied = sorted(m.version for result in results for m in result)
        assert applied == [m.version for m in migrations.discover()]
        assert await recorded_versions(connections[0]) == applied
        assert ISSUE_TABLES <= await public_tables(connections[0])
    finally:
        for c in connections:
            await c.close()


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def test_concurrent_migrators_with_a_slow_migration(fresh_database_url, tmp_path, monkeypatch) -> None:
    """A slow middle migration widens the window in which migrators without the lock would collide."""
    folder = write_migrations(
        tmp_path / "sql",
        {
            "001_create.sql": "create table counter (n int not null);",
            "002_slow.sql": "select pg_sleep(0.3); insert into counter values (2);",
            "003_more.sql": "insert into counter values (3);",
        },
    )
    monkeypatch.setattr(migrations, "sql_dir", lambda: folder)
    connections = [await asyncpg.connect(fresh_database_url) for _ in range(5)]
    try:
        results = await asyncio.gather(*(migrations.migrate(c) for c in connections))
        assert sorted(m.version for result in results for m in result) == [1, 2, 3]
        assert sum(1 for result in results if result) == 1
        assert [r["n"] for r in await connections[0].fetch("select n from counter order by n")] == [2, 3]
    finally:
        for c in connections:
            await c.close()


async def test_failed_migration_is_rolled_back_and_releases_the_lock(fresh_database_url, tmp_path, monkeypatch) -> None:
    folder = write_migrations(
        tmp_path / "sql",
        {
            "001_create.sql": "create table counter (n int not null);",
            "002_broken.sql": "insert into counter values (2); select no_such_function();",
        },
    )
    monkeypatch.setattr(migrations, "sql_dir", lambda: folder)
    first = await asyncpg.connect(fresh_database_url)
    second = await asyncpg.connect(fresh_database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrations.migrate(first)
        assert await recorded_versions(second) == [1]
        assert await second.fetchval("select count(*) from counter") == 0
        # The lock was released even though the migration failed: another migrator gets on with it.
        (folder / "002_broken.sql").write_text("insert into counter values (2);")
        applied = await asyncio.wait_for(migrations.migrate(second), timeout=5)
        assert [m.version for m in applied] == [2]
        assert await second.fetchval("select count(*) from counter") == 1
    finally:
        await first.close()
        await second.close()


def test_discover_orders_by_number_and_ignores_other_files(tmp_path, monkeypatch) -> None:
    folder = write_migrations(
        tmp_path,
        {"010_later.sql": "", "002_first.sql": "", "README.md": "", "003_Bad-Name.sql": "", "notes.sql": ""},
    )
    monkeypatch.setattr(migrations, "sql_dir", lambda: folder)
    assert [(m.version, m.name) for m in migrations.discover()] == [(2, "first"), (10, "later")]


def test_discover_rejects_duplicate_numbers(tmp_path, monkeypatch) -> None:
    folder = write_migrations(tmp_path, {"001_a.sql": "", "001_b.sql": ""})
    monkeypatch.setattr(migrations, "sql_dir", lambda: folder)
    with pytest.raises(RuntimeError, match="duplicate"):
        migrations.discover()


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in migrations.discover()]
    assert versions == list(range(1, len(versions) + 1))
