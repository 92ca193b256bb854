"""What the benchmark reads from PostgreSQL: WAL written, what a run stored, the plans of errgate's queries."""

from __future__ import annotations

from typing import Any

import asyncpg

from app.db import error_tracking, tracked_errors
from app.search_query import parse_query
from tests.bench import sql
from tests.conftest import connect


async def wal_totals(dsn: str) -> tuple[int, int]:
    """WAL bytes and full-page images written so far by the whole PostgreSQL server."""
    async with connect(dsn) as conn:
        row = await conn.fetchrow(sql.WAL_TOTALS)
        return row["wal_bytes"], row["wal_fpi"]


async def stored(dsn: str, preloaded: int) -> tuple[int, int]:
    """The events a run stored (those preloaded not counted), and its distinct errors."""
    async with connect(dsn) as conn:
        events = await conn.fetchval(sql.STORED_EVENTS) - preloaded
        return events, await conn.fetchval(sql.STORED_ERRORS)


class _Explaining:
    """Stands in for the connection an app/db function is given: each statement it runs is
    explained with its arguments instead, so that the plans are those of errgate's own SQL."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    async def _explain(self, statement: str, *args: Any) -> None:
        self.plans.append("\n".join(r[0] for r in await self.conn.fetch(f"explain {statement}", *args)))

    async def fetch(self, statement: str, *args: Any) -> list[Any]:
        await self._explain(statement, *args)
        return []

    async def fetchrow(self, statement: str, *args: Any) -> None:
        await self._explain(statement, *args)

    async def fetchval(self, statement: str, *args: Any) -> int:
        await self._explain(statement, *args)
        return 0

    def access_paths(self) -> str:
        """The kinds of scan in the plans, in this order, or the first plan's first line if none."""
        text = "\n".join(self.plans)
        nodes = [n for n in ("Index Only Scan", "Index Scan", "Bitmap Index Scan", "Seq Scan") if n in text]
        return ", ".join(nodes) or text.splitlines()[0]


async def explain_queries(dsn: str) -> dict[str, str]:
    """The access paths PostgreSQL chooses for the queries behind settings, keys and listings."""
    async with connect(dsn) as conn:
        project_id = await conn.fetchval(sql.FIRST_PROJECT)
        error_id = await conn.fetchval(sql.FIRST_ERROR, project_id)
        queries = {
            "settings": lambda db: error_tracking.settings(db, project_id),
            "client_keys": lambda db: error_tracking.list_keys(db, project_id, 20, 0),
            "key_lookup": lambda db: error_tracking.key_for_ingest(db, "glet_x"),
            "error_list": lambda db: tracked_errors.list_errors(db, project_id, parse_query(None), 20, 0),
            "error_events": lambda db: db.fetch(sql.ERROR_EVENTS, project_id, error_id),
        }
        plans = {}
        for name, query in queries.items():
            explaining = _Explaining(conn)
            await query(explaining)
            plans[name] = explaining.access_paths()
        return plans
