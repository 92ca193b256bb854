"""``/api/v4/projects/:id/members``: who can do what in a project (GitLab access levels 10–50).

Maintainers manage members below Owner; only Owners and administrators grant, change or take
the Owner role, and nobody takes it from a project's last Owner (403, as GitLab).
"""

from __future__ import annotations

from aiohttp import web

from app import identity, state
from app.api import entities
from app.api.access import ProjectAccess, project_access
from app.api.pagination import page_from
from app.api.params import path_id, read_params
from app.api.responses import paginated
from app.db import projects
from app.identity import ACCESS_LEVELS, GUEST, MAINTAINER, OWNER
from app.problems import HTTPProblem, json_response

routes = web.RouteTableDef()
VALID_LEVELS = tuple(ACCESS_LEVELS.values())
MEMBER_NOT_FOUND = "404 Member Not Found"


def _manages_owners(access: ProjectAccess) -> bool:
    """Owners and administrators (whose access counts as Owner)."""
    return access.access_level >= OWNER


@routes.get(r"/api/v4/projects/{id}/members")
async def list_members(request: web.Request) -> web.Response:
    access = await project_access(request, GUEST)
    page = page_from(await read_params(request))
    total, rows = await projects.list_members(request.app[state.POOL], access.project_id, page.size, page.offset)
    external_url = request.app[state.SETTINGS].external_url
    return paginated(request, page, total, [entities.member(r, external_url) for r in rows])


@routes.post(r"/api/v4/projects/{id}/members")
async def add_member(request: web.Request) -> web.Response:
    access = await project_access(request, MAINTAINER)
    params = await read_params(request)
    user_id = params.integer("user_id", required=True)
    level = params.integer("access_level", required=True, choices=VALID_LEVELS)
    params.done()
    if level == OWNER and not _manages_owners(access):
        raise HTTPProblem.gitlab(403, "403 Forbidden")
    row = await identity.add_member(request.app[state.POOL], access.project_id, user_id, level)
    return json_response(entities.member(row, request.app[state.SETTINGS].external_url), 201)


@routes.put(r"/api/v4/projects/{id}/members/{user_id}")
async def update_member(request: web.Request) -> web.Response:
    access = await project_access(request, MAINTAINER)
    user_id = path_id(request, "user_id", MEMBER_NOT_FOUND)
    params = await read_params(request)
    level = params.integer("access_level", required=True, choices=VALID_LEVELS)
    params.done()
    row = await identity.change_member(
        request.app[state.POOL], access.project_id, user_id, level, may_manage_owners=_manages_owners(access)
    )
    return json_response(entities.member(row, request.app[state.SETTINGS].external_url))


@routes.delete(r"/api/v4/projects/{id}/members/{user_id}")
async def remove_member(request: web.Request) -> web.Response:
    access = await project_access(request, MAINTAINER)
    user_id = path_id(request, "user_id", MEMBER_NOT_FOUND)
    await identity.change_member(
        request.app[state.POOL], access.project_id, user_id, None, may_manage_owners=_manages_owners(access)
    )
    return web.Response(status=204)
