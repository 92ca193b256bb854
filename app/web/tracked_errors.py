"""``/:namespace/:project/-/error_tracking``: the error list, the error page, status changes and an event's raw JSON.

The queries are the REST API's (app/db/tracked_errors.py, app/db/error_events.py) and the
search box takes the API's syntax (app/search_query.py). Reporters and above read; Developers
and above, with an ``api`` token, change statuses.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from app import state
from app.api.error_events import EVENT_NOT_FOUND
from app.api.params import found, path_id
from app.api.tracked_errors import ERROR_NOT_FOUND
from app.db import environments, error_events, tracked_errors
from app.identity import DEVELOPER, REPORTER
from app.problems import HTTPProblem, json_response
from app.search_query import parse_query
from app.web import access, event_view, paths
from app.web.sessions import SESSION
from app.web.templating import page, see_other

routes = web.RouteTableDef()
PER_PAGE = 20
MAX_PAGE = 10_000
TABS = ("unresolved", "resolved", "ignored", "all")
SORTS = {"last_seen": "Last seen", "first_seen": "First seen", "frequency": "Most events"}
STATUS_ACTIONS = {"resolved": "Resolve", "ignored": "Ignore", "unresolved": "Unresolve"}


def _filters(request: web.Request) -> dict[str, str]:
    """The list's query parameters as given (kept in every link and form of the list)."""
    query = request.query
    return {name: query.get(name, "").strip() for name in ("search", "status", "environment", "sort")}


def _page_number(request: web.Request) -> int:
    text = request.query.get("page", "1")
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_PAGE else 1


def _may_change(request: web.Request, level: int) -> bool:
    return level >= DEVELOPER and "api" in request[SESSION].caller.scopes


@routes.get(paths.ERROR_LIST)
async def error_list(request: web.Request) -> web.Response:
    project = await access.viewable(request, REPORTER)
    pool = request.app[state.POOL]
    filters = _filters(request)
    number = _page_number(request)
    context: dict[str, Any] = {
        "project": project.project, "filters": filters, "tabs": TABS, "sorts": SORTS, "page_number": number,
        "may_change": _may_change(request, project.access_level), "status_actions": STATUS_ACTIONS,
        "environments": await environments.project_environments(pool, project.project_id),
        "notice": None, "errors": [], "total": 0, "last_page": 1, "more": False, "counts": {}, "recent": {},
        "count_limit": tracked_errors.COUNT_LIMIT,
        "current_status": filters["status"] or "unresolved",
    }
    try:
        query = parse_query(filters["search"] or None, status=filters["status"] or None,
                            environment=filters["environment"] or None, sort=filters["sort"] or None)
    except ValueError as problem:
        context["notice"] = str(problem)
        return page(request, "error_list.html", context, 400)
    now = datetime.now(timezone.utc)
    counts, rows = await tracked_errors.status_counts_and_page(
        pool, project.project_id, query, PER_PAGE, (number - 1) * PER_PAGE
    )
    total = tracked_errors.total_from_counts(counts, query)  # the tabs' counts: not counted again
    limit = tracked_errors.count_limit(query)
    counted = total <= limit  # past it the count stopped: no last page is known
    context.update(
        errors=rows, count_limit=limit, total=total, current_status=query.status or "all",
        last_page=max(1, -(-total // PER_PAGE)) if counted else None, more=not counted or number * PER_PAGE < total,
        counts=counts,
        recent=await tracked_errors.recent_counts(pool, project.project_id, [r["id"] for r in rows], now),
    )
    return page(request, "error_list.html", context)


def _status_from(form: Any) -> str:
    status = form.get("status")
    if status not in tracked_errors.STATUSES:
        raise HTTPProblem.bad_params("status does not have a valid value")
    return status


@routes.post(paths.ERROR_LIST)
async def change_many(request: web.Request) -> web.Response:
    """The list's bulk form: the checked ``ids`` get ``status``; back to the same list."""
    project, form = await access.changeable(request, DEVELOPER)
    status = _status_from(form)
    ids = [number for number in (access.id_of(text) for text in form.getall("ids", [])) if number is not None]
    if ids:
        await tracked_errors.set_statuses(request.app[state.POOL], project.project_id, ids, status)
    back = {name: form.get(name, "") for name in ("search", "status_tab", "environment", "sort", "page")}
    back["status"] = back.pop("status_tab")
    target = paths.project_url("", project.project["path_with_namespace"])
    return see_other(request, paths.with_query(target, back))


@routes.post(paths.ERROR_STATUS)
async def change_one(request: web.Request) -> web.Response:
    project, form = await access.changeable(request, DEVELOPER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    status = _status_from(form)
    found(await tracked_errors.set_status(request.app[state.POOL], project.project_id, error_id, status), ERROR_NOT_FOUND)
    target = paths.project_url("", project.project["path_with_namespace"], f"error_tracking/{error_id}/details")
    return see_other(request, target)


def _event_id(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        raise HTTPProblem.gitlab(404, EVENT_NOT_FOUND) from None


@routes.get(paths.ERROR_DETAILS)
async def details(request: web.Request) -> web.Response:
    project = await access.viewable(request, REPORTER)
    pool = request.app[state.POOL]
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    error = found(await tracked_errors.error(pool, project.project_id, error_id), ERROR_NOT_FOUND)
    event_id = _event_id(request.query.get("event"))
    if event_id is None:
        event = await error_events.latest_event(pool, project.project_id, error_id)
    else:
        event = found(
            await error_events.event_of_error(pool, project.project_id, error_id, event_id, error["created_at"]),
            EVENT_NOT_FOUND,
        )
    now = datetime.now(timezone.utc)
    return page(request, "error_page.html", {
        "project": project.project, "error": error,
        "summary": await tracked_errors.error_summary(pool, error, now),
        "event": event,
        "view": event_view.build(event["payload"]) if event is not None else None,
        "neighbours": await error_events.neighbours(pool, project.project_id, error_id, event) if event else {},
        "may_change": _may_change(request, project.access_level), "status_actions": STATUS_ACTIONS,
    })


@routes.get(paths.EVENT_JSON)
async def event_json(request: web.Request) -> web.Response:
    """The stored event as sent: the REST route's payload, for a signed-in browser."""
    project = await access.viewable(request, REPORTER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    event_id = _event_id(request.match_info["event_id"])
    event = found(await error_events.event(request.app[state.POOL], project.project_id, error_id, event_id), EVENT_NOT_FOUND)
    return json_response(event["payload"])
