"""``/api/v4/projects``: create, list, show and delete projects."""

from __future__ import annotations

from aiohttp import web

from app import identity, state
from app.api import entities
from app.api.access import project_access
from app.api.pagination import page_from
from app.api.params import read_params
from app.api.responses import paginated
from app.auth import authenticate
from app.db import projects
from app.identity import GUEST, OWNER
from app.problems import HTTPProblem, json_response

routes = web.RouteTableDef()


@routes.post("/api/v4/projects")
async def create_project(request: web.Request) -> web.Response:
    """Accepts GitLab's ``name``/``path`` plus the namespace as a path (``namespace``, ``namespace_path``
    or ``namespace_id`` given as a path), or ``path_with_namespace`` directly. Without a namespace the
    project goes to the caller's personal namespace, the only one where a user who is not an
    administrator may create projects. The creator becomes Owner."""
    caller = await authenticate(request)
    params = await read_params(request)
    name = params.string("name")
    path = params.string("path")
    full_path = params.string("path_with_namespace")
    namespace = params.string("namespace_path") or params.string("namespace") or params.string("namespace_id")
    description = params.string("description")
    params.done()
    if not full_path:
        if not (path or name):
            raise HTTPProblem.bad_params("name, path are missing, at least one parameter must be provided")
        full_path = f"{namespace or caller.username}/{path or name}"
    identity.require_creatable(full_path, caller.username, caller.is_admin)
    row = await identity.create_project(request.app[state.POOL], full_path, name, description, caller.user_id)
    return json_response(entities.project(row, request.app[state.SETTINGS].external_url), 201)


@routes.get("/api/v4/projects")
async def list_projects(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    page = page_from(await read_params(request))
    total, rows = await projects.list_projects(
        request.app[state.POOL], caller.user_id, caller.is_admin, page.size, page.offset
    )
    external_url = request.app[state.SETTINGS].external_url
    return paginated(request, page, total, [entities.project(r, external_url) for r in rows])


@routes.get(r"/api/v4/projects/{id}")
async def show_project(request: web.Request) -> web.Response:
    access = await project_access(request, GUEST)
    return json_response(entities.project(access.project, request.app[state.SETTINGS].external_url))


@routes.delete(r"/api/v4/projects/{id}")
async def delete_project(request: web.Request) -> web.Response:
    access = await project_access(request, OWNER)
    await projects.delete_project(request.app[state.POOL], access.project_id)
    return json_response({"message": "202 Accepted"}, 202)
