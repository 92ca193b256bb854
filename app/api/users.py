"""``/api/v4/user`` and ``/api/v4/users``: the current user, listing and (admin) creating users."""

from __future__ import annotations

from aiohttp import web

from app import identity, state
from app.api import entities
from app.api.pagination import page_from
from app.api.params import read_params
from app.api.responses import paginated
from app.auth import authenticate, require_admin
from app.db import users
from app.problems import json_response

routes = web.RouteTableDef()


@routes.get("/api/v4/user")
async def current_user(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    row = await users.user_by_id(request.app[state.POOL], caller.user_id)
    return json_response(entities.user(row, request.app[state.SETTINGS].external_url, private=True))


@routes.get("/api/v4/users")
async def list_users(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    params = await read_params(request)
    username = params.string("username")
    page = page_from(params)
    total, rows = await users.list_users(request.app[state.POOL], username, page.size, page.offset)
    external_url = request.app[state.SETTINGS].external_url
    items = [entities.user(r, external_url, private=caller.is_admin or r["id"] == caller.user_id) for r in rows]
    return paginated(request, page, total, items)


@routes.post("/api/v4/users")
async def create_user(request: web.Request) -> web.Response:
    await require_admin(request)
    params = await read_params(request)
    username = params.string("username", required=True)
    name = params.string("name", required=True)
    email = params.string("email")
    admin = params.boolean("admin")
    params.done()
    row = await identity.create_user(request.app[state.POOL], username, name, email, bool(admin))
    return json_response(entities.user(row, request.app[state.SETTINGS].external_url, private=True), 201)
