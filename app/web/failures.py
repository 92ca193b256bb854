"""What every web page answer carries: HTML error pages, sign-in for visitors, security and cache headers.

Signed-out visitors get the sign-in page at the URL they asked for; every answer carries the
Content-Security-Policy, no framing, and no caching of pages (static files: a year, by digest).

The middleware acts on the web page's routes only (app.web.paths.PAGE_ROUTES); the REST API and
the collector keep answering every failure in JSON (app/problems.py). It stands inside
``error_middleware`` and outside self-reporting, so that an unexpected exception on a page is
reported, logged once (``log_unexpected``) and answered with an HTML page.
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web

from app.observe import route_pattern
from app.problems import Handler, HTTPProblem, log_unexpected
from app.web import paths
from app.web.sessions import SignInNeeded
from app.web.signin import sign_in_page
from app.web.templating import page

# No inline script or style anywhere: the page's one script and one stylesheet are files of its own.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_MAX_AGE = 365 * 86400


def _detail(body: dict) -> str:
    """The human part of one of the API's error bodies."""
    for key in ("error_description", "message", "error"):
        if isinstance(body.get(key), str):
            return body[key]
    return ""


def error_page(request: web.Request, status: int, detail: str = "") -> web.Response:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    detail = detail.removeprefix(title).lstrip(" -") if detail.startswith(title) else detail
    return page(request, "error.html", {"title": title, "detail": detail}, status)


def _security_headers(request: web.Request, response: web.StreamResponse, static: bool) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    if not static:
        # Pages show errors, events and DSNs of one signed-in person: no browser or proxy keeps them.
        headers["Cache-Control"] = "no-store"
    elif response.status == 200 and request.query.get("v"):
        headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}, immutable"
    else:
        headers["Cache-Control"] = "no-cache"


@web.middleware
async def page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    pattern = route_pattern(request)
    if pattern not in paths.PAGE_ROUTES:
        return await handler(request)
    static = pattern == paths.STATIC_PREFIX
    try:
        response = await handler(request)
    except SignInNeeded as needed:
        response = sign_in_page(request, next_path=request.path_qs if request.method == "GET" else None,
                                notice=needed.notice, status=401)
    except HTTPProblem as problem:
        response = error_page(request, problem.status, _detail(problem.body))
        response.headers.update(problem.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if static:
            response = web.Response(status=exc.status, text=f"{exc.status} {exc.reason}")
        else:
            response = error_page(request, exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except Exception as exc:
        response = error_page(request, log_unexpected(request, exc))
    _security_headers(request, response, static)
    return response
