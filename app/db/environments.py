"""The environments a project's errors were seen in: the choices of the web page's environment selector."""

from __future__ import annotations

from app.db.pool import Executor

MAX_ENVIRONMENTS = 100


async def project_environments(db: Executor, project_id: int, limit: int = MAX_ENVIRONMENTS) -> list[str]:
    """Distinct environments by name, read as a loose index scan of the (project_id, environment,
    error_id) key: one index probe per environment, however many errors each has."""
    rows = await db.fetch(
        """with recursive found(environment) as (
               (select environment from error_tracking_error_environments
                where project_id = $1 order by environment limit 1)
               union all
               select (select e.environment from error_tracking_error_environments e
                       where e.project_id = $1 and e.environment > found.environment
                       order by e.environment limit 1)
               from found where found.environment is not null
           )
           select environment from found where environment is not null limit $2""",
        project_id, limit,
    )
    return [r["environment"] for r in rows]
