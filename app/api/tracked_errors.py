"""``/api/v4/projects/:id/error_tracking/errors``: the errors the collector stored (an errgate extension).

GitLab's REST API has no route for integrated error tracking's errors; these follow its
conventions (pagination, bodies, roles as for Sentry issues in GitLab: Reporter reads,
Developer changes the status). The list takes ``status`` (``unresolved`` by default, or
``all``), ``search`` (:mod:`app.search_query`), ``environment`` and ``sort``; past 10,000
matching errors (1,000 when searched or filtered: ``tracked_errors.count_limit``) it gives no
``X-Total``, ``X-Total-Pages`` nor ``last`` link, as GitLab past 10,000.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from app import state
from app.api import entities
from app.api.access import project_access
from app.api.pagination import MAX_PER_PAGE, page_from
from app.api.params import Params, found, path_id, read_params
from app.api.responses import paginated
from app.db import tracked_errors
from app.identity import DEVELOPER, REPORTER
from app.problems import HTTPProblem, json_response
from app.search_query import ALL, SORTS, parse_query

routes = web.RouteTableDef()
ERRORS_PATH = r"/api/v4/projects/{id}/error_tracking/errors"
ERROR_NOT_FOUND = "404 Error Not Found"
#: Errors one bulk update may name.
MAX_BULK_IDS = MAX_PER_PAGE


def _without_blanks(params: Params, names: tuple[str, ...]) -> Params:
    """Blank values of these optional parameters count as not given (an empty search box)."""
    for name in names:
        value = params.values.get(name)
        if isinstance(value, str) and not value.strip():
            del params.values[name]
    return params


@routes.get(ERRORS_PATH)
async def list_errors(request: web.Request) -> web.Response:
    access = await project_access(request, REPORTER)
    params = _without_blanks(await read_params(request), ("status", "sort", "search", "environment"))
    status = params.string("status", choices=(*tracked_errors.STATUSES, ALL))
    sort = params.string("sort", choices=SORTS)
    search = params.string("search")
    environment = params.string("environment")
    page = page_from(params)  # raises the parameters' errors
    try:
        query = parse_query(search, status=status, environment=environment, sort=sort)
    except ValueError as exc:
        raise HTTPProblem.bad_params(str(exc)) from None
    # One row more than the page: whether a next page exists when there are too many to count.
    total, rows = await tracked_errors.list_errors(
        request.app[state.POOL], access.project_id, query, page.size + 1, page.offset
    )
    items = [entities.error(r) for r in rows[: page.size]]
    if total > tracked_errors.count_limit(query):
        return paginated(request, page, None, items, has_next=len(rows) > page.size)
    return paginated(request, page, total, items)


@routes.put(ERRORS_PATH)
async def update_errors(request: web.Request) -> web.Response:
    """Bulk status change: ``ids[]`` (or a JSON list) and ``status``; ids of other projects are ignored."""
    access = await project_access(request, DEVELOPER)
    params = await read_params(request)
    ids = params.integers("ids", required=True, max_items=MAX_BULK_IDS)
    status = params.string("status", required=True, choices=tracked_errors.STATUSES)
    params.done()
    rows = await tracked_errors.set_statuses(request.app[state.POOL], access.project_id, ids, status)
    return json_response([entities.error(r) for r in rows])


@routes.get(ERRORS_PATH + r"/{error_id}")
async def show_error(request: web.Request) -> web.Response:
    access = await project_access(request, REPORTER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    pool = request.app[state.POOL]
    row = found(await tracked_errors.error(pool, access.project_id, error_id), ERROR_NOT_FOUND)
    summary = await tracked_errors.error_summary(pool, row, datetime.now(timezone.utc))
    return json_response({**entities.error(row), "summary": entities.error_summary(summary)})


@routes.put(ERRORS_PATH + r"/{error_id}")
async def update_error(request: web.Request) -> web.Response:
    access = await project_access(request, DEVELOPER)
    error_id = path_id(request, "error_id", ERROR_NOT_FOUND)
    params = await read_params(request)
    status = params.string("status", required=True, choices=tracked_errors.STATUSES)
    params.done()
    row = await tracked_errors.set_status(request.app[state.POOL], access.project_id, error_id, status)
    return json_response(entities.error(found(row, ERROR_NOT_FOUND)))
