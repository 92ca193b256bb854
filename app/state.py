"""Typed keys for objects stored on the aiohttp application (one place, nothing stringly typed)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from app.config import Settings

if TYPE_CHECKING:
    from app.ingest.body import Offload
    from app.ingest.inflight import DecodeBudget
    from app.ingest.keycache import KeyCache
    from app.ingest.writer import EventWriter
    from app.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
DSN = web.AppKey("dsn", str)
KEY_CACHE: web.AppKey["KeyCache"] = web.AppKey("key_cache")
WRITER: web.AppKey["EventWriter"] = web.AppKey("writer")
METRICS: web.AppKey["Metrics"] = web.AppKey("metrics")
DECODE_BUDGET: web.AppKey["DecodeBudget"] = web.AppKey("decode_budget")
DECODE_OFFLOAD: web.AppKey["Offload"] = web.AppKey("decode_offload")  # runs a decoding slice in a thread
DRAINING = web.AppKey("draining", asyncio.Event)  # set on SIGTERM: readiness answers 503
