"""``/:namespace/:project/-/error_tracking/settings``: tracking on or off, client keys and DSNs, for Maintainers.

The SQL is the REST settings and client-keys API's (app/db/error_tracking.py).
"""

from __future__ import annotations

from aiohttp import web

from app import state
from app.api import entities
from app.api.error_tracking import KEY_NOT_FOUND
from app.api.params import found, path_id
from app.db import error_tracking
from app.identity import MAINTAINER
from app.web import access, paths
from app.web.templating import page, see_other

routes = web.RouteTableDef()
MAX_KEYS_SHOWN = 100


def _back(request: web.Request, path_with_namespace: str) -> web.Response:
    return see_other(request, paths.project_url("", path_with_namespace, "error_tracking/settings"))


@routes.get(paths.SETTINGS)
async def show(request: web.Request) -> web.Response:
    project = await access.viewable(request, MAINTAINER)
    pool = request.app[state.POOL]
    row = await error_tracking.settings(pool, project.project_id)
    total, keys = await error_tracking.list_keys(pool, project.project_id, MAX_KEYS_SHOWN, 0)
    external_url = request.app[state.SETTINGS].external_url
    return page(request, "settings.html", {
        "project": project.project,
        "enabled": bool(row and row["enabled"] and row["integrated"]),
        "keys": [entities.client_key(k, external_url) for k in keys],
        "keys_total": total,
        "may_change": "api" in project.caller.scopes,  # a read_api token looks only
    })


@routes.post(paths.SETTINGS)
async def save(request: web.Request) -> web.Response:
    project, form = await access.changeable(request, MAINTAINER)
    enabled = form.get("enabled") == "true"
    async with request.app[state.POOL].acquire() as conn:
        await error_tracking.save_settings(conn, project.project_id, enabled, True, create=True)
    return _back(request, project.project["path_with_namespace"])


@routes.post(paths.CLIENT_KEYS)
async def create_key(request: web.Request) -> web.Response:
    project, _ = await access.changeable(request, MAINTAINER)
    await error_tracking.create_key(request.app[state.POOL], project.project_id)
    return _back(request, project.project["path_with_namespace"])


@routes.post(paths.CLIENT_KEY_DELETE)
async def delete_key(request: web.Request) -> web.Response:
    project, _ = await access.changeable(request, MAINTAINER)
    async with request.app[state.POOL].acquire() as conn:
        found(await error_tracking.delete_key(conn, project.project_id, path_id(request, "key_id", KEY_NOT_FOUND)), KEY_NOT_FOUND)
    return _back(request, project.project["path_with_namespace"])
