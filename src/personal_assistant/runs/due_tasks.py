"""The claim of due tasks in SQL: read them, lock the planned ones, record their runs.

The due tasks are read without locking (:func:`candidates`) and planned outside any
transaction (:mod:`plans`). The claim then locks the planned tasks ``SKIP LOCKED`` and keeps
those whose ``next_run_at`` is still the one planned from, a compare-and-set
(:func:`lock_planned`): a task claimed meanwhile by another scheduler is left to it. In the same
transaction it inserts their runs, advances their ``next_run_at`` and closes the tasks nothing
is left to run (:func:`record`).

Locks are ``FOR NO KEY UPDATE`` (``key_share=True``): a claim changes no key, so a row that
references a claimed task (a notification naming it, written by a worker) does not wait for
the claim to commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, bindparam, cast, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.states import OPEN_RUN_STATES, TaskStatus
from personal_assistant.database import pg_arrays
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.runs.bulk import insert_runs, set_next_run_at
from personal_assistant.runs.plans import Candidate, NewRun, TaskPlan, cast_due


@dataclass(frozen=True)
class ClaimReport:
    tasks: int
    runs: int
    skipped: int
    #: Due tasks may remain for this claimer (a full batch, or planning stopped at its budget).
    more: bool = False


#: For the rest of the (read-only) transaction of :func:`candidates`.
_NO_SORT = text("SET LOCAL enable_sort = off")


async def candidates(
    conn: AsyncConnection, now: datetime, *, part: tuple[int, int], limit: int
) -> list[Candidate]:
    """Due active tasks, oldest first, read without locking (the claim locks them).

    ``part`` = ``(k, n)`` reads only task ids ``= k (mod n)``. PostgreSQL has no statistics
    for ``id % n`` and guesses it keeps 0.5 % of the rows, so with many tasks due it would
    rather scan the whole table and sort it (75 ms a batch at 200,000 due) than walk the
    ``(status, next_run_at)`` index until the batch is full (0.5 ms): the read is made with
    sorting off, which leaves it the index.
    """
    index, parts = part
    if parts > 1 and conn.dialect.name == "postgresql":
        await conn.execute(_NO_SORT)
    query = (
        select(
            AITask.id,
            cast(AITask.schedule, Text),
            AITask.next_run_at,
            AITask.catch_up,
            AITask.user_id,
        )
        .where(AITask.status == TaskStatus.ACTIVE, AITask.next_run_at <= now)
        .order_by(AITask.next_run_at)
        .limit(limit)
    )
    if parts > 1:
        query = query.where(AITask.id % parts == index)
    rows = (await conn.execute(query)).all()
    return [
        (task_id, data, cast_due(due_at), catch_up, user_id)
        for task_id, data, due_at, catch_up, user_id in rows
    ]


_PG_LOCK_PLANNED = text(
    """
    SELECT t.id
    FROM ai_tasks AS t
    JOIN unnest(CAST(:ids AS bigint[]), CAST(:dues AS timestamptz[])) AS p(id, due_at)
        ON t.id = p.id AND t.next_run_at = p.due_at
    WHERE t.status = 'active'
    FOR NO KEY UPDATE OF t SKIP LOCKED
    """
)


async def lock_planned(conn: AsyncConnection, plans: Sequence[TaskPlan]) -> list[TaskPlan]:
    """Lock the planned tasks ``SKIP LOCKED``; the plans whose task is still as planned from.

    On PostgreSQL the compare-and-set is in the statement: it locks and returns only the tasks
    whose ``next_run_at`` is still the one planned from.
    """
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            _PG_LOCK_PLANNED,
            {
                "ids": pg_arrays.ints([p.task_id for p in plans]),
                "dues": pg_arrays.times([p.due_at for p in plans]),
            },
        )
        kept = set(result.scalars().all())
        return [p for p in plans if p.task_id in kept]
    locked = {
        task_id: due_at
        for task_id, due_at in await conn.execute(
            select(AITask.id, AITask.next_run_at)
            .where(
                AITask.id.in_([p.task_id for p in plans]),
                AITask.status == TaskStatus.ACTIVE,
            )
            .with_for_update(skip_locked=True, key_share=True)
        )
    }
    return [p for p in plans if p.task_id in locked and locked[p.task_id] == p.due_at]


async def record(
    conn: AsyncConnection,
    kept: Sequence[TaskPlan],
    runs: Sequence[NewRun],
    *,
    now: datetime,
    lease: datetime,
    owners: Mapping[int, int],
    hold: datetime,
) -> list[int]:
    """Insert the claimed tasks' runs (recorded as published), advance their ``next_run_at``
    and close the finished or broken ones; the ids of the new runs to publish."""
    new_run_ids = await insert_runs(
        conn,
        runs,
        now=now,
        lease=lease,
        published=True,
        owners=owners,
        hold=hold,
    )
    await set_next_run_at(conn, [(p.task_id, p.next_run_at) for p in kept if p.broken is None])
    await _close_tasks(conn, kept)
    return new_run_ids


async def _close_tasks(conn: AsyncConnection, plans: Sequence[TaskPlan]) -> None:
    """Complete tasks whose last firings were skipped; fail those whose schedule is broken."""
    await _complete_spent(
        conn,
        [p.task_id for p in plans if p.next_run_at is None and not p.finished and not p.broken],
    )
    finished = [p.task_id for p in plans if p.finished]
    broken = [{"b_id": p.task_id, "b_reason": p.broken} for p in plans if p.broken is not None]
    if finished:
        await conn.execute(
            update(AITask)
            .where(AITask.id.in_(finished))
            .values(
                status=TaskStatus.COMPLETED,
                status_reason="its last firing was missed and skipped (catch-up policy)",
            )
        )
    if broken:
        await conn.execute(
            update(AITask)
            .where(AITask.id == bindparam("b_id"))
            .values(status=TaskStatus.FAILED, status_reason=bindparam("b_reason"), next_run_at=None)
            .execution_options(synchronize_session=False),
            broken,
        )


async def _complete_spent(conn: AsyncConnection, last: Sequence[int]) -> None:
    """Complete the tasks among ``last`` with no firing left and no open run.

    Their last firing already had a run (the insert met the unique key: an edit put
    ``next_run_at`` back on a firing that ran): no run of theirs would ever finish them.
    """
    if not last:
        return
    open_run = (
        select(TaskRun.id)
        .where(TaskRun.task_id == AITask.id, TaskRun.state.in_(OPEN_RUN_STATES))
        .exists()
    )
    await conn.execute(
        update(AITask)
        .where(
            AITask.id.in_(last),
            AITask.status == TaskStatus.ACTIVE,
            AITask.next_run_at.is_(None),
            ~open_run,
        )
        .values(
            status=TaskStatus.COMPLETED,
            status_reason="its last firing already has a run",
        )
        .execution_options(synchronize_session=False)
    )
