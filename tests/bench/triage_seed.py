"""The triage mode's data: one project's errors and events inserted set-based, with realistic skew and words.

Errors get exception names, descriptions and actors made of words drawn from :data:`WORDS`
(the first ones far more often than the last, as in real messages: :data:`COMMON_WORD` is in
about a third of the descriptions) and a long tail of made-up words; :data:`RARE_WORD` is in
five descriptions and :data:`ABSENT_WORD` in none. Events are spread over the daily partitions
of the last :data:`DAYS` days (created with errgate's own partition code), each with a small
payload, the environment and release of its error at its time.
"""

from __future__ import annotations

import math
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import asyncpg

from app.db import partitions
from app.ingest.payload import pack_event
from tests.bench import sql

DAYS = 30
EVENTS_PER_STATEMENT = 1_000_000
COMMON_WORD = "timeout"
RARE_WORD = "quokka"
ABSENT_WORD = "xylophone"
RELEASES = [f"shop@2.{minor}.0" for minor in range(DAYS // 4, -1, -1)]  # newest first, one every 4 days
NAMES = [
    "ValueError", "KeyError", "TypeError", "AttributeError", "IndexError", "RuntimeError", "TimeoutError",
    "ConnectionResetError", "ConnectionRefusedError", "PermissionError", "FileNotFoundError", "ZeroDivisionError",
    "UnicodeDecodeError", "JSONDecodeError", "IntegrityError", "OperationalError", "DoesNotExist", "ValidationError",
    "HTTPError", "ReadTimeout", "SSLError", "MemoryError", "RecursionError", "NotImplementedError", "AssertionError",
]
MODULES = [
    "shop.views", "shop.cart", "shop.checkout", "shop.payments", "shop.search", "shop.accounts", "shop.api.orders",
    "shop.api.products", "shop.tasks.mail", "shop.tasks.export", "shop.db.models", "shop.inventory", "shop.shipping",
    "shop.admin", "shop.reports", "shop.webhooks", "shop.auth.tokens", "shop.cache", "shop.images", "shop.i18n",
]
WORDS = [COMMON_WORD, *"""
    connection user order request invalid missing failed database cart payment session token
    product customer response value field server client cannot expired refused unexpected key index
    reset lookup parse decode encode write read open close commit rollback lock deadlock retry
    upstream gateway proxy cache queue worker task mail export import image upload download file
    path permission denied quota limit exceeded stock inventory shipping address country currency
    price discount coupon invoice refund charge card declined fraud webhook signature mismatch
    header cookie locale translation template render context variable undefined attribute object
    none integer string float list dict tuple json xml csv schema migration column table constraint
    unique foreign violates duplicate row query slow memory recursion depth maximum minimum range
    negative zero division socket closed broken pipe handshake certificate verify hostname resolve
    dns search filter sort page report admin account password email login
""".split()]


def vocabulary(size: int = 1000) -> list[str]:
    """:data:`WORDS`, then made-up words (letters that none of the special words need) up to ``size``."""
    rng = random.Random(14)
    syllables = [c + v for c in "bdfgklmnprstv" for v in "aeiou"]
    words = list(WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


async def seed(conn: asyncpg.Connection, project_id: int, errors: int, events: int,
               progress: Callable[[str], None] = lambda line: None) -> dict[str, int | float]:
    """Insert ``errors`` errors of ``project_id`` and about ``events`` events (Zipf rounding), then
    let the tables settle (vacuum, analyze, checkpoint). Returns the counts and the seconds taken."""
    started = time.monotonic()
    now = datetime.now(timezone.utc)
    await partitions.create_partitions(conn, (now - timedelta(days=DAYS + 1)).date(), now.date() + timedelta(days=1))
    scale = events / sum(1 / rank for rank in range(1, errors + 1))  # the rank-1 error's events
    payload = pack_event({"message": "seeded event", "platform": "python", "tags": {"browser": "Firefox 120"}})
    await conn.execute(sql.TRIAGE_PLAN_TABLE)
    try:
        await conn.execute(sql.TRIAGE_PLAN, errors, scale, now, DAYS, NAMES, vocabulary(), MODULES, RARE_WORD)
        await conn.execute(sql.TRIAGE_ERRORS, project_id, RELEASES, now)
        await conn.execute(sql.TRIAGE_ENVIRONMENTS, project_id)
        await conn.execute(sql.TRIAGE_RELEASES, project_id, RELEASES, now)
        progress(f"{errors} errors inserted ({time.monotonic() - started:.0f} s)")
        # The events are consistent by construction: their foreign-key check, a trigger per
        # row, would be most of the insert's time (the errors' own triggers have run above).
        await conn.execute("set session_replication_role = replica")
        statements = max(1, math.ceil(events / EVENTS_PER_STATEMENT))
        for share in range(statements):
            await conn.execute(sql.TRIAGE_EVENTS, project_id, statements, share, RELEASES, now, payload)
            progress(f"events: {share + 1}/{statements} inserted ({time.monotonic() - started:.0f} s)")
    finally:
        await conn.execute("reset session_replication_role")
        await conn.execute("drop table triage_plan")
    for statement in sql.TRIAGE_SETTLE:
        await conn.execute(statement)
    return {
        "errors": await conn.fetchval(sql.PROJECT_ERRORS, project_id),
        "events": await conn.fetchval(sql.STORED_EVENTS),
        "seed_seconds": round(time.monotonic() - started, 1),
    }
