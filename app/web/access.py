"""Who may see or change a project's pages: the API's role rules (app/api/access.py) for the signed-in caller.

A page the caller may not see answers 404, as the API does for a project it does not show:
a Guest sees no errors, a Developer no settings. A form the caller may see but not send (a
Reporter resolving an error) is 403.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from app.api.access import ProjectAccess, access_to, project_not_found
from app.ids import parse_id
from app.identity import GUEST, REPORTER
from app.problems import HTTPProblem
from app.web import sessions


def _path(request: web.Request) -> str:
    return f"{request.match_info['namespace']}/{request.match_info['project']}"


async def viewable(request: web.Request, min_level: int) -> ProjectAccess:
    """The project of the page's URL when the caller has ``min_level`` there, else 404."""
    await sessions.required(request)
    access = await access_to(request, _path(request), GUEST)
    if access.access_level < min_level:
        raise project_not_found()
    return access


async def changeable(request: web.Request, min_level: int) -> tuple[ProjectAccess, Mapping[str, Any]]:
    """A POSTed form (CSRF checked first) and the project, when the caller has ``min_level`` there:
    else 403, or 404 when the caller may not even see the project's errors."""
    _, form = await sessions.posted_form(request)
    access = await access_to(request, _path(request), GUEST)
    if access.access_level < REPORTER:
        raise project_not_found()
    if access.access_level < min_level:
        raise HTTPProblem.gitlab(403, "403 Forbidden - your role in this project may not do this")
    return access, form


def id_of(value: Any) -> int | None:
    """A form field as a row id, or None."""
    return parse_id(value) if isinstance(value, str) else None
