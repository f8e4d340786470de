"""Retention: delete finished runs older than the configured age, with their notifications.

A run is old when it is finished (succeeded, failed, skipped or cancelled) and its
``finished_at`` (its ``scheduled_for`` when it has none) is before ``now - retention``. Open
runs (queued, running, retrying) are never touched, however old. Deletion goes in batches of
``batch_size`` runs, one short transaction each, so that it never holds locks for long:

    DELETE FROM notifications WHERE run_id IN (<the batch's run ids>)
    DELETE FROM task_runs WHERE id IN (<the batch's run ids>) AND state IN (<finished>)

:func:`purge` is a step with a chosen ``now``: the maintenance task calls it on a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.core.states import FINAL_RUN_STATES
from personal_assistant.database.models import Notification, TaskRun
from personal_assistant.errors import ValidationError

DEFAULT_BATCH = 1000
_FINISHED = sorted(state.value for state in FINAL_RUN_STATES)


@dataclass(frozen=True)
class Purged:
    runs: int = 0
    notifications: int = 0
    batches: int = 0
    complete: bool = True  # False: stopped at max_batches; old runs may be left


def cutoff(now: datetime, retention: timedelta) -> datetime:
    """Runs finished before this instant are deleted (pure)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if retention <= timedelta(0):
        raise ValidationError("must be a positive duration", field="retention")
    return now - retention


async def purge_batch(engine: AsyncEngine, *, before: datetime, batch_size: int) -> tuple[int, int]:
    """Delete up to ``batch_size`` finished runs older than ``before``, in one transaction.

    Returns ``(runs, notifications)`` deleted.
    """
    ended = func.coalesce(TaskRun.finished_at, TaskRun.scheduled_for)
    async with engine.begin() as conn:
        ids = list(
            (
                await conn.scalars(
                    select(TaskRun.id)
                    .where(TaskRun.state.in_(_FINISHED), ended < before)
                    .order_by(TaskRun.id)
                    .limit(batch_size)
                )
            ).all()
        )
        if not ids:
            return 0, 0
        notes = await conn.execute(delete(Notification).where(Notification.run_id.in_(ids)))
        runs = await conn.execute(
            delete(TaskRun).where(TaskRun.id.in_(ids), TaskRun.state.in_(_FINISHED))
        )
    return runs.rowcount, notes.rowcount


async def purge(
    engine: AsyncEngine,
    *,
    now: datetime,
    retention: timedelta,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
) -> Purged:
    """Delete every finished run older than ``now - retention``, batch after batch."""
    if batch_size < 1:
        raise ValidationError("must be 1 or more", field="batch_size")
    before = cutoff(now, retention)
    runs = notes = batches = 0
    while max_batches is None or batches < max_batches:
        deleted_runs, deleted_notes = await purge_batch(
            engine, before=before, batch_size=batch_size
        )
        if deleted_runs == 0 and deleted_notes == 0:
            return Purged(runs, notes, batches)
        runs, notes, batches = runs + deleted_runs, notes + deleted_notes, batches + 1
        if deleted_runs < batch_size:
            return Purged(runs, notes, batches)
    return Purged(runs, notes, batches, complete=False)
