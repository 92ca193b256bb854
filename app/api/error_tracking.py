"""``/api/v4/projects/:id/error_tracking/{settings,client_keys}``: GitLab's Error Tracking API.

All routes need the Maintainer role (GitLab's ``admin_operations``). GET/PATCH on a project
without settings answer 404 "Error Tracking Setting Not Found"; PATCH never creates, PUT
creates or updates. Keys of another project answer 404 "Not found".
"""

from __future__ import annotations

from aiohttp import web

from app import state
from app.api import entities
from app.api.access import project_access
from app.api.pagination import page_from
from app.api.params import found, path_id, read_params
from app.api.responses import paginated
from app.db import error_tracking
from app.identity import MAINTAINER
from app.problems import json_response

routes = web.RouteTableDef()
SETTINGS_PATH = r"/api/v4/projects/{id}/error_tracking/settings"
KEYS_PATH = r"/api/v4/projects/{id}/error_tracking/client_keys"
SETTING_NOT_FOUND = "404 Error Tracking Setting Not Found"
KEY_NOT_FOUND = "404 Not found"


@routes.get(SETTINGS_PATH)
async def get_settings(request: web.Request) -> web.Response:
    access = await project_access(request, MAINTAINER)
    row = found(await error_tracking.settings(request.app[state.POOL], access.project_id), SETTING_NOT_FOUND)
    return json_response(entities.error_tracking_settings(row))


async def _save_settings(request: web.Request, create: bool) -> web.Response:
    access = await project_access(request, MAINTAINER)
    params = await read_params(request)
    active = params.boolean("active", required=True)
    integrated = params.boolean("integrated", required=create)
    params.done()
    async with request.app[state.POOL].acquire() as conn:
        row = await error_tracking.save_settings(conn, access.project_id, active, integrated, create)
    return json_response(entities.error_tracking_settings(found(row, SETTING_NOT_FOUND)))


@routes.put(SETTINGS_PATH)
async def put_settings(request: web.Request) -> web.Response:
    return await _save_settings(request, create=True)


@routes.patch(SETTINGS_PATH)
async def patch_settings(request: web.Request) -> web.Response:
    return await _save_settings(request, create=False)


@routes.get(KEYS_PATH)
async def list_client_keys(request: web.Request) -> web.Response:
    access = await project_access(request, MAINTAINER)
    page = page_from(await read_params(request))
    total, rows = await error_tracking.list_keys(request.app[state.POOL], access.project_id, page.size, page.offset)
    external_url = request.app[state.SETTINGS].external_url
    return paginated(request, page, total, [entities.client_key(r, external_url) for r in rows])


@routes.post(KEYS_PATH)
async def create_client_key(request: web.Request) -> web.Response:
    access = await project_access(request, MAINTAINER)
    row = await error_tracking.create_key(request.app[state.POOL], access.project_id)
    return json_response(entities.client_key(row, request.app[state.SETTINGS].external_url), 201)


@routes.delete(KEYS_PATH + r"/{key_id}")
async def delete_client_key(request: web.Request) -> web.Response:
    access = await project_access(request, MAINTAINER)
    key_id = path_id(request, "key_id", KEY_NOT_FOUND)
    async with request.app[state.POOL].acquire() as conn:
        row = await error_tracking.delete_key(conn, access.project_id, key_id)
    return json_response(entities.client_key(found(row, KEY_NOT_FOUND), request.app[state.SETTINGS].external_url))
