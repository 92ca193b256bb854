"""Personal access tokens: generation, digests, and authenticating REST requests as GitLab does.

A token is ``glpat-`` plus 20 random URL-safe characters. Only its SHA-256 digest is stored;
the digest found in the database is compared again in constant time. A request carries the
token in ``PRIVATE-TOKEN``, ``Authorization: Bearer`` or the ``private_token`` query parameter.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import asyncpg
from aiohttp import web

from app import state
from app.db import users
from app.problems import HTTPProblem

TOKEN_PREFIX = "glpat-"
SCOPES = ("api", "read_api")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
QUERY_TOKEN_PARAMS = ("private_token", "access_token")  # query parameters that may carry a token


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user behind a request."""

    user_id: int
    username: str
    is_admin: bool
    scopes: tuple[str, ...]
    token_id: int


CALLER = web.RequestKey("caller", Caller)


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(15)


def token_digest(token: str) -> bytes:
    # aiohttp hands over a header's non-UTF-8 bytes as lone surrogates; they digest like any wrong token.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def token_from_request(request: web.Request) -> str | None:
    header = request.headers.get("PRIVATE-TOKEN")
    if header:
        return header.strip()
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return next((request.query[name] for name in QUERY_TOKEN_PARAMS if request.query.get(name)), None)


def _unauthorized() -> HTTPProblem:
    return HTTPProblem.gitlab(401, "401 Unauthorized")


def _invalid_token(description: str) -> HTTPProblem:
    # GitLab's body for an expired or revoked token.
    return HTTPProblem(401, {"error": "invalid_token", "error_description": description})


def check_token(row: Mapping[str, Any], method: str) -> Caller:
    """The caller a found token row (``users.token_with_user``'s columns) stands for, or the
    API's refusal: revoked or expired 401, blocked user 403, a ``read_api`` token on a write 403
    (GitLab's order). The REST API checks each request's token with it, the web page each
    request's session token."""
    if row["revoked"]:
        raise _invalid_token("Token has been revoked.")
    if row["expires_at"] is not None and row["expires_at"] <= datetime.now(timezone.utc).date():
        raise _invalid_token("Token has expired.")
    if row["state"] != "active":
        raise HTTPProblem.gitlab(403, "403 Forbidden - Your account has been blocked.")
    scopes = tuple(row["scopes"])
    if "api" not in scopes and not (method in READ_METHODS and "read_api" in scopes):
        raise HTTPProblem(
            403,
            {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api",
            },
        )
    return Caller(row["id"], row["username"], row["is_admin"], scopes, row["token_id"])


async def find_token(pool: asyncpg.Pool, token: str) -> asyncpg.Record:
    """The token's row joined with its user, or 401 when no such token exists."""
    digest = token_digest(token)
    row = await users.token_with_user(pool, digest)
    if row is None or not hmac.compare_digest(row["token_digest"], digest):
        raise _unauthorized()
    return row


async def note_use(pool: asyncpg.Pool, row: Mapping[str, Any]) -> None:
    if row["last_used_at"] is None or (datetime.now(timezone.utc) - row["last_used_at"]).total_seconds() > 60:
        await users.touch_token(pool, row["token_id"])


async def authenticate(request: web.Request) -> Caller:
    """The caller of a REST request, or 401; a ``read_api`` token on a write is 403 (GitLab's order)."""
    cached = request.get(CALLER)
    if cached is not None:
        return cached
    token = token_from_request(request)
    if not token:
        raise _unauthorized()
    pool = request.app[state.POOL]
    row = await find_token(pool, token)
    caller = check_token(row, request.method)
    await note_use(pool, row)
    request[CALLER] = caller
    return caller


async def require_admin(request: web.Request) -> Caller:
    caller = await authenticate(request)
    if not caller.is_admin:
        raise HTTPProblem.gitlab(403, "403 Forbidden")
    return caller
