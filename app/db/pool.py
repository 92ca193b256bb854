"""The asyncpg connection pool, and resolving which database to use (configured or embedded)."""

from __future__ import annotations

import asyncpg

from app.config import Settings
from app.db.embedded import start_embedded


def database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when set, else the embedded server (started on first use)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        command_timeout=30,
        # Short-lived statements only; a stuck query must not hold a connection forever.
        server_settings={"application_name": "errgate", "statement_timeout": "30s"},
    )
