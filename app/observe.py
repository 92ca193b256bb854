"""Per-request observation: a request id, one structured access log line, and the HTTP metrics.

The log line carries the request id, method, route pattern, status, duration and project id
(when the route has one) — never headers, query strings, bodies, tokens or keys.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time

from aiohttp import web

from app import state
from app.problems import REQUEST_ID, Handler

log = logging.getLogger("errgate.access")

# Request ids: a random prefix per process and a counter, unique without a system call each.
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)


def route_pattern(request: web.Request) -> str:
    """The matched route's pattern as aiohttp spells it (``/api/v4/projects/{id}``), or ``unmatched``."""
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id", "")[:64] or f"{_ID_PREFIX}{next(_ids):08x}"
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        duration = time.perf_counter() - started
        route = route_pattern(request)
        metrics = request.app[state.METRICS]
        metrics.request_done(route, request.method, status, duration)
        if log.isEnabledFor(logging.INFO):  # skip building the record on the hot path when it is not written
            project = request.match_info.get("project_id") or request.match_info.get("id")
            log.info(
                "request",
                extra={
                    "request_id": request_id, "method": request.method, "route": route, "status": status,
                    "duration_ms": round(duration * 1000, 2), "project_id": project,
                },
            )
