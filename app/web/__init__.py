"""The web page: server-rendered Jinja2 pages on errgate's own routes (sign-in, projects, errors, settings).

No build step: templates in app/web/templates/, one stylesheet and one small script in
app/web/static/. Every page works with JavaScript off; the script only adds copy buttons and
a "select all" box.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.web.failures import page_middleware

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["page_middleware", "setup"]


def setup(app: web.Application) -> None:
    """Templates, the pages' routes and the static files (after the REST and collector routes)."""
    from app.web import paths, signin, templating, tracked_errors, tracking_settings

    templating.setup(app)
    for module in (signin, tracking_settings, tracked_errors):
        app.router.add_routes(module.routes)
    app.router.add_static(paths.STATIC_PREFIX, templating.STATIC_DIR, append_version=False)
