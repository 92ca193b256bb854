"""Forward-only SQL migrations from ``sql/NNN_name.sql``, each applied once under an advisory lock.

Several replicas may start at the same time: the first takes the lock and migrates,
the others wait for it and then find nothing left to do.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.db.pool import advisory_lock

log = logging.getLogger("errgate.migrations")

# Arbitrary but fixed key for pg_advisory_lock: "errgate" in ASCII.
_LOCK_KEY = 0x65727267617465
_FILE_RE = re.compile(r"^(\d+)_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def sql_dir() -> Path:
    """The migrations folder: beside the package in a checkout, under ``share/errgate/sql`` when installed."""
    for candidate in (Path(__file__).resolve().parents[2] / "sql", Path(sys.prefix) / "share" / "errgate" / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("errgate's sql/ migrations folder was not found")


def discover() -> list[Migration]:
    """The migrations in :func:`sql_dir`, by number; files not named ``NNN_name.sql`` are not migrations."""
    directory = sql_dir()
    found = []
    for path in sorted(directory.iterdir()):
        match = _FILE_RE.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {directory}")
    return sorted(found, key=lambda m: m.version)


@functools.cache
def expected_version() -> int:
    """The version this build's migrations reach, read from sql/ once per process (readiness asks on every probe)."""
    migrations = discover()
    return migrations[-1].version if migrations else 0


async def applied_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("select to_regclass('schema_migrations') is not null")
    if not exists:
        return 0
    return await conn.fetchval("select coalesce(max(version), 0) from schema_migrations")


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply every pending migration; returns the ones applied by this call."""
    applied: list[Migration] = []
    async with advisory_lock(conn, _LOCK_KEY):
        await conn.execute(
            """create table if not exists schema_migrations (
                   version integer primary key,
                   name text not null,
                   applied_at timestamptz not null default now())"""
        )
        done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for migration in discover():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.path.read_text())
                await conn.execute(
                    "insert into schema_migrations (version, name) values ($1, $2)", migration.version, migration.name
                )
            log.info("applied migration", extra={"version": migration.version, "migration": migration.name})
            applied.append(migration)
    return applied
