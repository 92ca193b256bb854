"""``/api/v4/projects/:id/error_tracking/errors/:error_id/events``: an error's stored events (an errgate extension).

Newest first and paginated, the latest, or one by its id (32 hex digits, or with dashes);
each with its full stored payload. Reporter and above read them, as the errors.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from app import state
from app.api import entities
from app.api.access import project_access
from app.api.pagination import page_from
from app.api.params import found, path_id, read_params
from app.api.responses import paginated
from app.api.tracked_errors import ERROR_NOT_FOUND, ERRORS_PATH
from app.db import error_events, tracked_errors
from app.db.pool import Executor
from app.identity import REPORTER
from app.problems import HTTPProblem, json_response

routes = web.RouteTableDef()
EVENTS_PATH = ERRORS_PATH + r"/{error_id}/events"
EVENT_NOT_FOUND = "404 Event Not Found"
_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@routes.get(EVENTS_PATH)
async def list_events(request: web.Request) -> web.Response:
    access = await project_access(request, REPORTER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    page = page_from(await read_params(request))
    pool = request.app[state.POOL]
    total, rows = await error_events.list_events(pool, access.project_id, error_id, page.size, page.offset)
    found(total, ERROR_NOT_FOUND)
    return paginated(request, page, total, [entities.error_event(r) for r in rows])


async def _event_or_404(db: Executor, project_id: int, error_id: int, event: dict | None) -> web.Response:
    """The event, or the 404 that says whether the error or only the event is missing."""
    if event is None and not await tracked_errors.error_exists(db, project_id, error_id):
        raise HTTPProblem.gitlab(404, ERROR_NOT_FOUND)
    return json_response(entities.error_event(found(event, EVENT_NOT_FOUND)))


# Registered before the route with an id, which "latest" would otherwise match.
@routes.get(EVENTS_PATH + r"/latest")
async def latest_event(request: web.Request) -> web.Response:
    access = await project_access(request, REPORTER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    pool = request.app[state.POOL]
    return await _event_or_404(
        pool, access.project_id, error_id, await error_events.latest_event(pool, access.project_id, error_id)
    )


@routes.get(EVENTS_PATH + r"/{event_id}")
async def show_event(request: web.Request) -> web.Response:
    access = await project_access(request, REPORTER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    text = request.match_info["event_id"]
    pool = request.app[state.POOL]
    event = None
    if _EVENT_ID.fullmatch(text):
        event = await error_events.event(pool, access.project_id, error_id, uuid.UUID(text))
    return await _event_or_404(pool, access.project_id, error_id, event)
