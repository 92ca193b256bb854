"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset: starts, creates the database, keeps data."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import AsyncIterator

import asyncpg
import orjson

from app.db.embedded import start_embedded
from tests.conftest import stop_embedded
from tests.process import errgate_env

ROOT = Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def embedded_connection(data_dir: Path) -> AsyncIterator[asyncpg.Connection]:
    """A connection to errgate's database on the embedded server in ``data_dir``, let go of afterwards."""
    url = await asyncio.to_thread(start_embedded, data_dir)
    try:
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(stop_embedded, data_dir)


async def test_data_survives_a_restart(tmp_path) -> None:
    async with embedded_connection(tmp_path) as conn:
        assert await conn.fetchval("select current_database()") == "errgate"
        await conn.execute("create table kept (value text)")
        await conn.execute("insert into kept values ('still here')")
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists(), "the server did not stop"

    async with embedded_connection(tmp_path) as conn:
        assert await conn.fetchval("select value from kept") == "still here"


async def test_errgate_migrate_without_database_url_uses_the_embedded_server(tmp_path) -> None:
    """The README's first command path: no DATABASE_URL, data under ERRGATE_DATA_DIR."""
    env = errgate_env(ERRGATE_DATA_DIR=str(tmp_path))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "migrate", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert stderr == b"", "a one-shot command logs its progress only when ERRGATE_LOG_LEVEL is set"
    result = orjson.loads(stdout)
    assert result["applied"] and result["applied"][-1] == result["version"]
    assert (tmp_path / "pgdata" / "PG_VERSION").exists()
    # The embedded server stops when the last errgate process using it exits.
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
