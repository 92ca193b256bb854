"""Jinja2 for the web page: the environment (autoescape always on), its filters, and rendering a page.

Templates are in app/web/templates/, the stylesheet and script in app/web/static/, both package
data. Static URLs carry a digest of the file (``errgate.css?v=…``) so that browsers may keep them
for a year and still get a new one after an upgrade.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from app import state
from app.web import format, paths
from app.web.sessions import CSRF_FIELD, SESSION

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def static_versions() -> dict[str, str]:
    """Each static file's name → the first hex digits of its SHA-256."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in STATIC_DIR.iterdir() if p.is_file()}


def setup(app: web.Application) -> None:
    versions = static_versions()
    base = paths.base_path(app[state.SETTINGS].external_url)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        # Every template, whatever its name, escapes what it prints: event data is hostile.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        base=base,
        csrf_field=CSRF_FIELD,
        static_url=lambda name: f"{base}{paths.STATIC_PREFIX}/{name}?v={versions[name]}",
        project_url=lambda path_with_namespace, tail="error_tracking": paths.project_url(base, path_with_namespace, tail),
        with_query=paths.with_query,
        bars=format.bars,
        count_of_all=format.count_of_all,
    )
    env.filters.update(exact=format.exact, count=format.count)


def page(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    """Render ``template`` with ``context`` plus the session (if any), the CSRF token and ``now``."""
    session = request.get(SESSION)
    now = datetime.now(timezone.utc)
    full = {
        "session": session,
        "csrf": session.csrf if session else "",
        "now": now,
        "ago": lambda moment: format.relative(moment, now),
        **context,
    }
    return aiohttp_jinja2.render_template(template, request, full, status=status)


def see_other(request: web.Request, path: str) -> web.Response:
    """303 to ``path`` of this site (under ``ERRGATE_EXTERNAL_URL``'s path): where a form's POST goes next."""
    base = paths.base_path(request.app[state.SETTINGS].external_url)
    return web.Response(status=303, headers={"Location": base + path})
