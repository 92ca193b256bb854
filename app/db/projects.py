"""Projects and their members: the SQL behind project access."""

from __future__ import annotations

import asyncpg

from app.db import error_counts
from app.db.error_tracking import KEYS_CHANNEL
from app.db.pool import Executor

PROJECT_COLUMNS = "p.id, p.name, p.path, p.namespace_path, p.path_with_namespace, p.description, p.created_at"
MEMBER_COLUMNS = "u.id, u.username, u.name, u.state, m.access_level, m.expires_at, m.created_at"


async def create_project(
    db: asyncpg.Connection, name: str, path: str, namespace_path: str, description: str | None,
    creator_id: int | None, creator_level: int,
) -> asyncpg.Record:
    """Create a project with its creator, if any, as a member at ``creator_level``."""
    async with db.transaction():
        row = await db.fetchrow(
            f"""insert into projects as p (name, path, namespace_path, path_with_namespace, description, creator_id)
                values ($1, $2, $3, $3 || '/' || $2, $4, $5) returning {PROJECT_COLUMNS}""",
            name, path, namespace_path, description, creator_id,
        )
        if creator_id is not None:
            await db.execute(
                "insert into members (project_id, user_id, access_level) values ($1, $2, $3)",
                row["id"], creator_id, creator_level,
            )
        return row


async def project_for_user(db: Executor, ref: int | str, user_id: int) -> asyncpg.Record | None:
    """The project by id or path, with the user's access level (null when not a member)."""
    key_clause = "p.id = $1::bigint" if isinstance(ref, int) else "lower(p.path_with_namespace) = lower($1::text)"
    return await db.fetchrow(
        f"""select {PROJECT_COLUMNS}, m.access_level
            from projects p left join members m on m.project_id = p.id and m.user_id = $2
            where {key_clause}""",
        ref, user_id,
    )


async def list_projects(
    db: Executor, user_id: int, all_projects: bool, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """Projects visible to the user (all of them for an administrator), newest first like GitLab."""
    visible = "true" if all_projects else "exists (select 1 from members m where m.project_id = p.id and m.user_id = $1)"
    total = await db.fetchval(f"select count(*) from projects p where {visible} and $1::bigint is not null", user_id)
    rows = await db.fetch(
        f"""select {PROJECT_COLUMNS} from projects p where {visible} and $1::bigint is not null
            order by p.id desc limit $2 offset $3""",
        user_id, limit, offset,
    )
    return total, rows


async def delete_project(db: Executor, project_id: int) -> None:
    """Delete the project and everything in it; collectors drop its cached keys."""
    await db.execute(
        "with d as (delete from projects where id = $1 returning id) select pg_notify($2, 'project:' || id) from d",
        project_id, KEYS_CHANNEL,
    )


async def list_members(db: Executor, project_id: int, limit: int, offset: int) -> tuple[int, list[asyncpg.Record]]:
    total = await db.fetchval("select count(*) from members where project_id = $1", project_id)
    rows = await db.fetch(
        f"""select {MEMBER_COLUMNS} from members m join users u on u.id = m.user_id
            where m.project_id = $1 order by u.id limit $2 offset $3""",
        project_id, limit, offset,
    )
    return total, rows


async def member(db: Executor, project_id: int, user_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    """The member, its row locked until the end of the transaction when ``lock``."""
    return await db.fetchrow(
        f"select {MEMBER_COLUMNS} from members m join users u on u.id = m.user_id "
        f"where m.project_id = $1 and m.user_id = $2 {'for update of m' if lock else ''}",
        project_id, user_id,
    )


async def lock_owners(db: asyncpg.Connection, project_id: int, owner_level: int) -> list[int]:
    """The user ids of the project's Owners, their rows locked until the end of the transaction.

    Taken before any other member row of the project, in user id order, so concurrent changes
    queue behind each other. One that waited re-reads the rows it locked: an Owner that the
    change before it demoted or removed is not counted.
    """
    rows = await db.fetch(
        "select user_id from members where project_id = $1 and access_level = $2 order by user_id for update",
        project_id, owner_level,
    )
    return [r["user_id"] for r in rows]


async def add_member(db: Executor, project_id: int, user_id: int, access_level: int) -> bool:
    """Add a member; False when the user is a member already."""
    status = await db.execute(
        "insert into members (project_id, user_id, access_level) values ($1, $2, $3) on conflict do nothing",
        project_id, user_id, access_level,
    )
    return status.endswith(" 1")


async def update_member(db: Executor, project_id: int, user_id: int, access_level: int) -> bool:
    status = await db.execute(
        "update members set access_level = $3 where project_id = $1 and user_id = $2", project_id, user_id, access_level
    )
    return status.endswith(" 1")


async def remove_member(db: Executor, project_id: int, user_id: int) -> bool:
    status = await db.execute("delete from members where project_id = $1 and user_id = $2", project_id, user_id)
    return status.endswith(" 1")


async def projects_with_unresolved(
    db: Executor, user_id: int, all_projects: bool, min_level: int, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """The web page's projects: those where the user has ``min_level`` or above (all of them for
    an administrator), by path, each with its count of unresolved errors (an index-only count on
    the errors' (project_id, status, …) index)."""
    visible = "true" if all_projects else (
        "exists (select 1 from members m where m.project_id = p.id and m.user_id = $1 and m.access_level >= $2)"
    )
    where = f"{visible} and $1::bigint is not null and $2::int is not null"
    await error_counts.fold(db)  # new events reopen resolved errors
    total = await db.fetchval(f"select count(*) from projects p where {where}", user_id, min_level)
    rows = await db.fetch(
        f"""select {PROJECT_COLUMNS},
                   (select count(*) from error_tracking_errors e
                    where e.project_id = p.id and e.status = 'unresolved') as unresolved
            from projects p where {where}
            order by lower(p.path_with_namespace) limit $3 offset $4""",
        user_id, min_level, limit, offset,
    )
    return total, rows
