"""``/api/v4/users/:user_id/personal_access_tokens`` and ``/api/v4/personal_access_tokens/:id``: the token routes.

An administrator creates a user's token; its owner or an administrator revokes it (``self`` is
the caller's own).
"""

from __future__ import annotations

from aiohttp import web

from app import identity, state
from app.api import entities
from app.api.params import path_id, read_params
from app.auth import SCOPES, authenticate, require_admin
from app.db import users
from app.problems import HTTPProblem, json_response

routes = web.RouteTableDef()
TOKEN_NOT_FOUND = "404 Not found"


@routes.post(r"/api/v4/users/{user_id}/personal_access_tokens")
async def create_token(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = path_id(request, "user_id", identity.USER_NOT_FOUND)
    params = await read_params(request)
    name = params.string("name", required=True)
    scopes = params.strings("scopes", required=True, choices=SCOPES)
    expires_at = params.date("expires_at")
    params.done()
    await identity.require_user(request.app[state.POOL], user_id)
    row, token = await identity.create_token(request.app[state.POOL], user_id, name, scopes, expires_at)
    return json_response(entities.personal_access_token(row, token), 201)


@routes.delete(r"/api/v4/personal_access_tokens/{token_id}")
async def revoke_token(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    self_revoke = request.match_info["token_id"] == "self"
    token_id = caller.token_id if self_revoke else path_id(request, "token_id", TOKEN_NOT_FOUND)
    pool = request.app[state.POOL]
    row = await users.token_by_id(pool, token_id)
    # Another user's token answers like a missing one, so token ids do not leak.
    if row is None or (row["user_id"] != caller.user_id and not caller.is_admin):
        raise HTTPProblem.gitlab(404, TOKEN_NOT_FOUND)
    await users.revoke_token(pool, token_id)
    return web.Response(status=204)
