"""Bodies and small helpers shared by the REST API tests (GitLab's exact shapes, written once)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from typing import Any

UNAUTHORIZED = {"message": "401 Unauthorized"}
FORBIDDEN = {"message": "403 Forbidden"}
PROJECT_NOT_FOUND = {"message": "404 Project Not Found"}
SETTING_NOT_FOUND = {"message": "404 Error Tracking Setting Not Found"}
KEY_NOT_FOUND = {"message": "404 Not found"}
EXPIRED = {"error": "invalid_token", "error_description": "Token has expired."}
REVOKED = {"error": "invalid_token", "error_description": "Token has been revoked."}
INSUFFICIENT_SCOPE = {
    "error": "insufficient_scope",
    "error_description": "The request requires higher privileges than provided by the access token.",
    "scope": "api",
}

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
BELOW_MAINTAINER = [GUEST, REPORTER, DEVELOPER]
MAINTAINER_OR_ABOVE = [MAINTAINER, OWNER]


def utc_today() -> date:
    """Token expiry is compared with the UTC date, as GitLab does."""
    return datetime.now(timezone.utc).date()


def days_from_today(days: int) -> date:
    return utc_today() + timedelta(days=days)


def parse_link_header(value: str) -> dict[str, str]:
    """``<url>; rel="next", <url>; rel="last"`` → ``{"next": url, "last": url}``."""
    links = {}
    for part in value.split(","):
        if not part.strip():
            continue
        url, _, rel = part.partition(";")
        links[rel.strip().removeprefix('rel="').removesuffix('"')] = url.strip().strip("<>")
    return links


async def members_of(pool: Any, project_id: int) -> dict[int, int]:
    """The project's members as stored: user id → access level."""
    rows = await pool.fetch("select user_id, access_level from members where project_id = $1", project_id)
    return {r["user_id"]: r["access_level"] for r in rows}


async def token_id_of(pool: Any, token: str) -> int:
    """The id of a stored token, found by its SHA-256 digest as errgate stores it."""
    return await pool.fetchval(
        "select id from personal_access_tokens where token_digest = $1", hashlib.sha256(token.encode()).digest()
    )
