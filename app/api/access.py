"""Who may touch a project: resolving ``:id`` (number or URL-encoded path) and GitLab's role checks.

A missing project and one the caller is not a member of answer the same 404, so that
project names do not leak; a member below the required role gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from app import state
from app.ids import parse_ref
from app.auth import Caller, authenticate
from app.db import projects
from app.identity import OWNER
from app.problems import HTTPProblem


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    caller: Caller
    project: asyncpg.Record
    access_level: int

    @property
    def project_id(self) -> int:
        return self.project["id"]


def project_not_found() -> HTTPProblem:
    return HTTPProblem.gitlab(404, "404 Project Not Found")


async def project_access(request: web.Request, min_level: int) -> ProjectAccess:
    # aiohttp has decoded the path once (group%2Fsub%2Fapp is group/sub/app here); decoding it
    # again would make group%252Fapp name group/app.
    return await access_to(request, parse_ref(request.match_info["id"]), min_level)


async def access_to(request: web.Request, ref: int | str, min_level: int) -> ProjectAccess:
    """The caller's access to the project ``ref`` (id or path), or 404 (no such project, not a
    member) or 403 (below ``min_level``). The web page calls it with the path of its URL."""
    caller = await authenticate(request)
    if isinstance(ref, str) and "\x00" in ref:  # PostgreSQL text cannot hold NUL
        raise project_not_found()
    row = await projects.project_for_user(request.app[state.POOL], ref, caller.user_id)
    if row is None:
        raise project_not_found()
    level = OWNER if caller.is_admin else row["access_level"]
    if level is None:
        raise project_not_found()
    if level < min_level:
        raise HTTPProblem.gitlab(403, "403 Forbidden")
    return ProjectAccess(caller, row, level)
