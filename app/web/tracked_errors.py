"""The error list and the error page (filled in with the triage queries)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
