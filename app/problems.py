"""errgate's HTTP error type and the middleware that renders every failure as JSON.

Handlers and domain code raise :class:`HTTPProblem`; nothing else builds an error response
(the collector's parsers, which know no web framework, raise a Rejection that the collector's
route turns into one). GitLab's REST API and Sentry's ingestion protocol use different error
bodies, so the constructors below produce each family's shape, but rendering happens in one place.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Mapping

import orjson
from aiohttp import web

log = logging.getLogger("errgate.errors")

# The request's id, set by app.observe for every request; failures are logged with it.
REQUEST_ID = web.RequestKey("request_id", str)


class HTTPProblem(Exception):
    """A failure that knows its HTTP status, JSON body and extra headers."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})

    # GitLab REST API shapes -------------------------------------------------
    @classmethod
    def gitlab(cls, status: int, message: str) -> "HTTPProblem":
        """GitLab's ``{"message": "404 Project Not Found"}`` shape."""
        return cls(status, {"message": message})

    @classmethod
    def bad_params(cls, error: str) -> "HTTPProblem":
        """GitLab's (Grape's) parameter error: 400 ``{"error": "active is missing"}``."""
        return cls(400, {"error": error})

    # Sentry ingestion shapes ------------------------------------------------
    @classmethod
    def sentry(
        cls, status: int, detail: str, causes: list[str] | None = None, headers: Mapping[str, str] | None = None
    ) -> "HTTPProblem":
        """Relay's ``{"detail": "...", "causes": [...]}`` shape."""
        return cls(status, {"detail": detail, "causes": list(causes or [])}, headers)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Serialise ``body`` with orjson; the single way errgate writes JSON."""
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def render(problem: HTTPProblem) -> web.Response:
    return json_response(problem.body, problem.status, problem.headers)


_HTTP_MESSAGES = {404: "404 Not Found", 405: "405 Method Not Allowed", 413: "413 Request Entity Too Large"}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# nginx's status for a request the client abandoned; it only reaches the access log and metrics.
CLIENT_CLOSED_REQUEST = 499


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into a JSON response; log unexpected ones once with the request id."""
    try:
        return await handler(request)
    except HTTPProblem as problem:
        return render(problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status, f"{exc.status} {exc.reason}")
        return json_response({"message": message}, exc.status, {k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    except Exception as exc:
        status = log_unexpected(request, exc)
        message = "499 Client Closed Request" if status == CLIENT_CLOSED_REQUEST else "500 Internal Server Error"
        return json_response({"message": message}, status)


def log_unexpected(request: web.Request, exc: Exception) -> int:
    """Log an exception no handler expected, once, with the request id (call it from an
    ``except`` block); returns the status to answer: 500, or 499 when the client went away.
    The web page's HTML errors (app/web/failures.py) log through it too."""
    if client_went_away(request, exc):
        # Not errgate's fault (a client that hung up mid-body), and nobody reads the answer.
        log.info("client disconnected", extra={"request_id": request.get(REQUEST_ID), "route": request.path})
        return CLIENT_CLOSED_REQUEST
    log.exception("unhandled error", extra={"request_id": request.get(REQUEST_ID), "route": request.path})
    return 500


def client_went_away(request: web.Request, exc: Exception) -> bool:
    """aiohttp raises ConnectionResetError into a handler reading the body of a connection that
    closed. The same error from the database driver is errgate's problem: the client's own
    connection must be gone too."""
    transport = request.transport
    return isinstance(exc, ConnectionResetError) and (transport is None or transport.is_closing())
