"""The errors' pending counts folded into their rows (sql/008_pending_counts.sql says why they wait)."""

from __future__ import annotations

from app.db.pool import Executor


async def fold(db: Executor, *, wait: bool = True) -> int | None:
    """Fold every pending count into its error; returns the errors updated.

    With ``wait`` (readers: what was acknowledged must be counted in what they read) a fold that
    another session is running is waited for, then this one runs; without it (the workers'
    periodic fold) None is returned at once when another fold runs.
    """
    return await db.fetchval("select error_tracking_fold_counts($1)", wait)


async def vacuum(db: Executor) -> None:
    """Vacuum the pending counts: each fold reads every page of that table, whose rows all die
    within a second, and autovacuum may be off or a minute away (``autovacuum_naptime``).
    A vacuum already running on it is not waited for."""
    await db.execute("vacuum (skip_locked) error_tracking_error_counts_pending")
