"""Identity operations shared by the REST API and the CLI: users, projects, members, tokens.

Each function validates its input, runs the SQL through ``app.db`` and raises
:class:`~app.problems.HTTPProblem` with GitLab's status and body when something is wrong,
so that both front ends answer the same way.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import asyncpg

from app import auth
from app.db import projects, users
from app.problems import HTTPProblem

# GitLab's project roles (access levels); a project's creator becomes its Owner.
GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
ACCESS_LEVELS = {"guest": GUEST, "reporter": REPORTER, "developer": DEVELOPER, "maintainer": MAINTAINER, "owner": OWNER}

USER_NOT_FOUND = "404 User Not Found"

_USERNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
_PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
# Unique indexes cover the email and the project's full path, and a btree entry holds at most
# about 2,700 bytes: longer values are refused here rather than fail in the database.
MAX_EMAIL_LENGTH = 255  # GitLab's
MAX_PROJECT_PATH_LENGTH = 1024


async def create_user(pool: asyncpg.Pool, username: str, name: str, email: str | None, admin: bool) -> asyncpg.Record:
    if not _USERNAME_RE.match(username) or username.endswith((".git", ".atom")):
        raise HTTPProblem(400, {"message": {"username": ["is invalid"]}})
    if email is not None and len(email) > MAX_EMAIL_LENGTH:
        raise HTTPProblem(400, {"message": {"email": [f"is too long (maximum is {MAX_EMAIL_LENGTH} characters)"]}})
    try:
        return await users.create_user(pool, username, name, email, admin)
    except asyncpg.UniqueViolationError as exc:
        field = "Email" if exc.constraint_name == "users_email_key" else "Username"
        raise HTTPProblem.gitlab(409, f"{field} has already been taken") from None


def split_project_path(path_with_namespace: str) -> tuple[str, str]:
    """``group/sub/app`` → (``group/sub``, ``app``), validating each segment."""
    segments = path_with_namespace.strip("/").split("/")
    if len(path_with_namespace) > MAX_PROJECT_PATH_LENGTH:
        raise HTTPProblem(400, {"message": {"path": [f"is too long (maximum is {MAX_PROJECT_PATH_LENGTH} characters)"]}})
    if len(segments) < 2 or not all(_PATH_SEGMENT_RE.fullmatch(s) for s in segments):
        raise HTTPProblem(400, {"message": {"path": ["must be a namespaced path such as group/app"]}})
    return "/".join(segments[:-1]), segments[-1]


def require_creatable(path_with_namespace: str, username: str, is_admin: bool) -> None:
    """A user who is not an administrator creates projects only directly in their personal
    namespace (``username/app``); elsewhere GitLab's answer is 400 ``namespace is not valid``."""
    namespace, _ = split_project_path(path_with_namespace)
    if not is_admin and namespace.lower() != username.lower():
        raise HTTPProblem(400, {"message": {"namespace": ["is not valid"]}})


async def create_project(
    pool: asyncpg.Pool, path_with_namespace: str, name: str | None, description: str | None, creator_id: int | None
) -> asyncpg.Record:
    namespace, path = split_project_path(path_with_namespace)
    async with pool.acquire() as conn:
        try:
            return await projects.create_project(conn, name or path, path, namespace, description, creator_id, OWNER)
        except asyncpg.UniqueViolationError:
            raise HTTPProblem(400, {"message": {"path": ["has already been taken"]}}) from None


async def require_user(pool: asyncpg.Pool, ref: int | str) -> asyncpg.Record:
    row = await (users.user_by_id(pool, ref) if isinstance(ref, int) else users.user_by_username(pool, ref))
    if row is None:
        raise HTTPProblem.gitlab(404, USER_NOT_FOUND)
    return row


async def add_member(pool: asyncpg.Pool, project_id: int, user_id: int, access_level: int) -> asyncpg.Record:
    await require_user(pool, user_id)
    if not await projects.add_member(pool, project_id, user_id, access_level):
        raise HTTPProblem.gitlab(409, "Member already exists")
    return await projects.member(pool, project_id, user_id)


async def change_member(
    pool: asyncpg.Pool, project_id: int, user_id: int, access_level: int | None, *, may_manage_owners: bool
) -> asyncpg.Record | None:
    """Give a member ``access_level``, or remove them when it is None; returns the changed member.

    One transaction that first locks the project's Owners, so two changes that each leave another
    Owner cannot together leave none. Not a member: 404. Touching the Owner role without
    ``may_manage_owners``, or taking it from the last Owner (administrators too): 403, as GitLab.
    """
    async with pool.acquire() as conn, conn.transaction():
        owners = await projects.lock_owners(conn, project_id, OWNER)
        current = await projects.member(conn, project_id, user_id, lock=True)
        if current is None:
            raise HTTPProblem.gitlab(404, "404 Member Not Found")
        if OWNER in (access_level, current["access_level"]) and not may_manage_owners:
            raise HTTPProblem.gitlab(403, "403 Forbidden")
        if access_level != OWNER and owners == [user_id]:
            raise HTTPProblem.gitlab(403, "403 Forbidden")
        if access_level is None:
            await projects.remove_member(conn, project_id, user_id)
            return None
        await projects.update_member(conn, project_id, user_id, access_level)
        return await projects.member(conn, project_id, user_id)


async def create_token(
    pool: asyncpg.Pool, user_id: int, name: str, scopes: list[str], expires_at: date | None
) -> tuple[asyncpg.Record, str]:
    """A new token for the user; returns the row and the token, which is shown only this once."""
    if expires_at is not None and expires_at <= datetime.now(timezone.utc).date():
        raise HTTPProblem(400, {"message": {"expires_at": ["must be in the future"]}})
    token = auth.generate_token()
    row = await users.create_token(pool, user_id, name, auth.token_digest(token), scopes, expires_at)
    return row, token
