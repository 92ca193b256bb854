"""``/``: the sign-in form (a personal access token) for visitors, the projects page once signed in; ``/-/sign_out``."""

from __future__ import annotations

from aiohttp import web

from app import state
from app.db import projects
from app.identity import REPORTER
from app.problems import HTTPProblem
from app.web import paths, sessions
from app.web.templating import page, see_other

routes = web.RouteTableDef()
PROJECTS_PER_PAGE = 50


def sign_in_page(
    request: web.Request, *, next_path: str | None = None, notice: str | None = None, status: int = 200
) -> web.Response:
    nonce = sessions.sign_in_nonce(request)
    response = page(
        request, "sign_in.html",
        {"sign_in_csrf": sessions.csrf_token(nonce), "next_path": paths.safe_next(next_path) or "", "notice": notice},
        status,
    )
    sessions.keep_nonce(request, response, nonce)
    return response


def _page_number(request: web.Request) -> int:
    text = request.query.get("page", "1")
    return int(text) if text.isdigit() and 0 < int(text) < 10**6 else 1


@routes.get(paths.HOME)
async def home(request: web.Request) -> web.Response:
    session = await sessions.current(request)
    if session is None:
        return sign_in_page(request, next_path=request.query.get("next"), notice=request.get(sessions.ENDED))
    number = _page_number(request)
    total, rows = await projects.projects_with_unresolved(
        request.app[state.POOL], session.caller.user_id, session.caller.is_admin, REPORTER,
        PROJECTS_PER_PAGE, (number - 1) * PROJECTS_PER_PAGE,
    )
    return page(request, "projects.html", {
        "projects": rows, "total": total, "page_number": number,
        "last_page": max(1, -(-total // PROJECTS_PER_PAGE)),
    })


@routes.post(paths.HOME)
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sessions.check_csrf(request.cookies.get(sessions.SIGN_IN_COOKIE), form)
    token = form.get("token")
    next_path = paths.safe_next(form.get("next") if isinstance(form.get("next"), str) else None)
    response = see_other(request, next_path or paths.HOME)
    try:
        if not isinstance(token, str) or not token.strip():
            raise HTTPProblem.gitlab(401, "Enter a personal access token.")
        await sessions.sign_in(request, token.strip(), response)
    except HTTPProblem as problem:
        notice = problem.body.get("error_description") or problem.body.get("message") or "This token cannot sign in."
        if problem.status == 401 and notice == "401 Unauthorized":
            notice = "No such token."
        return sign_in_page(request, next_path=next_path, notice=notice, status=problem.status)
    return response


@routes.post(paths.SIGN_OUT)
async def sign_out(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sessions.check_csrf(request.cookies.get(sessions.SESSION_COOKIE), form)
    response = see_other(request, paths.HOME)
    await sessions.sign_out(request, response)
    return response

