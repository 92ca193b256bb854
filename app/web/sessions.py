"""Web sign-in: the session cookie, the signed-in caller of each page request, and CSRF tokens.

Signing in with a personal access token opens a server-side session: the cookie carries a
random id (HttpOnly, SameSite=Lax, Secure behind an https ``ERRGATE_EXTERNAL_URL``), the
database only its SHA-256 digest and the token's row id; the token itself is stored nowhere.
Every request checks the session's token again as the REST API checks a token (app/auth.py):
a revoked or expired token, or a blocked user, ends the token's sessions, and the token's scopes
apply (a ``read_api`` token may look, not change).

Each form that changes something is a POST carrying a CSRF token derived from the session id
(HMAC), compared in constant time. The sign-in form, which has no session yet, derives its token
from a random nonce in a cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from aiohttp import web

from app import auth, state
from app.auth import CALLER, Caller
from app.db import web_sessions
from app.problems import HTTPProblem
from app.web import paths

SESSION_COOKIE = "errgate_session"
SIGN_IN_COOKIE = "errgate_sign_in"
CSRF_FIELD = "_csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in request: the caller (its token's user and scopes) and the forms' CSRF token."""

    caller: Caller
    csrf: str


SESSION = web.RequestKey("web_session", Session)
ENDED = web.RequestKey("web_session_ended", str)  # why the request's session just ended, for the sign-in page


class SignInNeeded(Exception):
    """No valid session: the page answers with the sign-in page (app.web.failures)."""

    def __init__(self, notice: str | None = None) -> None:
        super().__init__(notice)
        self.notice = notice


def digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).digest()


def csrf_token(secret: str) -> str:
    """The CSRF token of a session id (or of the sign-in nonce): unguessable without the cookie."""
    return hmac.new(secret.encode("utf-8", "surrogateescape"), b"errgate csrf", hashlib.sha256).hexdigest()


def check_csrf(secret: str | None, form: Mapping[str, Any]) -> None:
    """403 unless the form carries the token of ``secret``."""
    sent = form.get(CSRF_FIELD)
    if not secret or not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(secret)):
        raise HTTPProblem.gitlab(403, "403 Forbidden - the form was not sent from this page (CSRF token missing or wrong)")


def _cookie_options(request: web.Request) -> dict[str, Any]:
    external_url = request.app[state.SETTINGS].external_url
    return {
        "path": paths.base_path(external_url) or "/",
        "httponly": True,
        "samesite": "Lax",
        "secure": external_url.startswith("https:"),
    }


async def sign_in(request: web.Request, token: str, response: web.StreamResponse) -> None:
    """Open a session for ``token`` (the API's 401/403 problems when it cannot sign in) and set its cookie."""
    pool = request.app[state.POOL]
    row = await auth.find_token(pool, token)
    auth.check_token(row, "GET")
    await auth.note_use(pool, row)
    hours = request.app[state.SETTINGS].session_hours
    session_id = secrets.token_urlsafe(32)
    await web_sessions.create(pool, digest(session_id), row["token_id"], timedelta(hours=hours))
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(hours * 3600), **_cookie_options(request))
    response.del_cookie(SIGN_IN_COOKIE, path=_cookie_options(request)["path"])


async def sign_out(request: web.Request, response: web.StreamResponse) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await web_sessions.delete(request.app[state.POOL], digest(session_id))
    response.del_cookie(SESSION_COOKIE, path=_cookie_options(request)["path"])


async def current(request: web.Request) -> Session | None:
    """The request's session, or None (no cookie, unknown or expired session, or its token no
    longer signs in: then the token's sessions end). A ``read_api`` session on a POST is 403."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    pool = request.app[state.POOL]
    row = await web_sessions.session_with_token(pool, digest(session_id))
    if row is None:
        return None
    try:
        auth.check_token(row, "GET")
    except HTTPProblem as problem:
        await web_sessions.delete_for_token(pool, row["token_id"])
        reason = problem.body.get("error_description") or problem.body.get("message")
        request[ENDED] = f"You were signed out: {reason}"
        return None
    caller = auth.check_token(row, request.method)
    await auth.note_use(pool, row)
    request[CALLER] = caller  # app.api.access then checks roles for this caller, as for the API
    session = request[SESSION] = Session(caller, csrf_token(session_id))
    return session


async def required(request: web.Request) -> Session:
    session = await current(request)
    if session is None:
        raise SignInNeeded(request.get(ENDED))
    return session


async def posted_form(request: web.Request) -> tuple[Session, Mapping[str, Any]]:
    """A signed-in POST's form, its CSRF token checked first (403), then its session and scope."""
    form = await request.post()
    check_csrf(request.cookies.get(SESSION_COOKIE), form)
    return await required(request), form


def sign_in_nonce(request: web.Request) -> str:
    """The sign-in form's nonce: the cookie's, or a new one that :func:`keep_nonce` sets."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(16)


def keep_nonce(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    if request.cookies.get(SIGN_IN_COOKIE) != nonce:
        response.set_cookie(SIGN_IN_COOKIE, nonce, max_age=3600, **_cookie_options(request))
