"""The GitLab-compatible REST API under ``/api/v4``: one module per resource, routes gathered here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def setup_routes(app: web.Application) -> None:
    # The route modules are imported here, not with the package, so that its pure modules
    # (pagination) import without the web server.
    from app.api import error_events, error_tracking, members, projects, tokens, tracked_errors, users

    for module in (users, tokens, projects, members, error_tracking, tracked_errors, error_events):
        app.router.add_routes(module.routes)
