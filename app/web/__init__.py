"""The web page: server-rendered Jinja2 pages on errgate's own routes (sign-in, projects, errors, settings).

No build step: templates in app/web/templates/, one stylesheet and one small script in
app/web/static/. Every page works with JavaScript off; the script only adds copy buttons and
a "select all" box.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def setup(app: web.Application) -> None:
    """Templates, the pages' routes and the static files (after the REST and collector routes).
    Their middleware, app.web.failures.page_middleware, is the application's (app/server.py)."""
    # Imported here, not with the package, so that its pure modules import without the web server.
    from app.web import paths, signin, templating, tracked_errors, tracking_settings

    templating.setup(app)
    for module in (signin, tracking_settings, tracked_errors):
        app.router.add_routes(module.routes)
    app.router.add_static(paths.STATIC_PREFIX, templating.STATIC_DIR, append_version=False)
