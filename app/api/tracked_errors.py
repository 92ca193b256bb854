"""``/api/v4/projects/:id/error_tracking/errors``: the errors the collector stored (an errgate extension).

GitLab's REST API has no route for integrated error tracking's errors; these follow its
conventions (pagination, bodies, roles as for Sentry issues in GitLab: Reporter reads,
Developer changes the status).
"""

from __future__ import annotations

from aiohttp import web

from app import state
from app.api import entities
from app.api.access import project_access
from app.api.pagination import page_from
from app.api.params import found, path_id, read_params
from app.api.responses import paginated
from app.db import tracked_errors
from app.identity import DEVELOPER, REPORTER
from app.problems import json_response

routes = web.RouteTableDef()
ERRORS_PATH = r"/api/v4/projects/{id}/error_tracking/errors"
ERROR_NOT_FOUND = "404 Error Not Found"


@routes.get(ERRORS_PATH)
async def list_errors(request: web.Request) -> web.Response:
    access = await project_access(request, REPORTER)
    params = await read_params(request)
    status = params.string("status", choices=tracked_errors.STATUSES)
    page = page_from(params)
    total, rows = await tracked_errors.list_errors(request.app[state.POOL], access.project_id, status, page.size, page.offset)
    return paginated(request, page, total, [entities.error(r) for r in rows])


@routes.get(ERRORS_PATH + r"/{error_id}")
async def show_error(request: web.Request) -> web.Response:
    access = await project_access(request, REPORTER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    row = found(await tracked_errors.error(request.app[state.POOL], access.project_id, error_id), ERROR_NOT_FOUND)
    return json_response(entities.error(row))


@routes.put(ERRORS_PATH + r"/{error_id}")
async def update_error(request: web.Request) -> web.Response:
    access = await project_access(request, DEVELOPER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    params = await read_params(request)
    status = params.string("status", required=True, choices=tracked_errors.STATUSES)
    params.done()
    row = await tracked_errors.set_status(request.app[state.POOL], access.project_id, error_id, status)
    return json_response(entities.error(found(row, ERROR_NOT_FOUND)))
