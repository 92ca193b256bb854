"""The GitLab-compatible REST API under ``/api/v4``: one module per resource, routes gathered here."""

from __future__ import annotations

from aiohttp import web

from app.api import error_tracking, members, projects, tokens, tracked_errors, users


def setup_routes(app: web.Application) -> None:
    for module in (users, tokens, projects, members, error_tracking, tracked_errors):
        app.router.add_routes(module.routes)
