"""The worker's claim of a batch of runs, and what the agent needs for each claimed run.

A claim is a compare-and-set: a run is claimed only from ``queued``, taking a lease (its
``lease_expires_at``) and adding one to its ``attempt``. A second delivery of the same message
claims nothing. The claimed runs are loaded with their task, their owner and, but for
reminders, the task's last :data:`PREVIOUS_RESULTS` successful results (:func:`load_claimed`).

On PostgreSQL the claim and the load are one statement (:data:`_PG_CLAIM`), atomic on its own,
so that a worker may send it outside a transaction: one round trip where the claim, the load,
the history and the transaction's own statements took six
(``tests/integration/test_round_trips.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.agents.base import AgentRequest, PreviousResult
from personal_assistant.core.states import RunState
from personal_assistant.database import pg_arrays
from personal_assistant.database.dialect import id_in, unindexed
from personal_assistant.database.models import AITask, TaskRun, User

__all__ = ["PREVIOUS_RESULTS", "ClaimedRun", "claim", "in_one_statement", "load_claimed"]

PREVIOUS_RESULTS = 3


@dataclass(frozen=True)
class ClaimedRun:
    request: AgentRequest
    max_retries: int
    channels: tuple[str, ...]
    user_id: int


async def claim(
    conn: AsyncConnection,
    run_ids: Sequence[int],
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
) -> list[ClaimedRun]:
    """Claim the queued runs among ``run_ids`` and load what the agent needs for them (on
    PostgreSQL in one statement, which needs no transaction of its own)."""
    if in_one_statement(conn.dialect.name):
        rows = await conn.execute(
            _PG_CLAIM,
            {
                "ids": pg_arrays.ints(run_ids),
                "now": now,
                "worker_id": worker_id,
                "lease_until": now + lease,
                "previous": PREVIOUS_RESULTS,
            },
        )
        return [
            _claimed_run(fields, _history(ats or (), results or ()))
            for *fields, ats, results in rows
        ]
    claimed = (
        (
            await conn.execute(
                update(TaskRun)
                .where(
                    id_in(conn, TaskRun.id, run_ids),
                    unindexed(TaskRun.state == RunState.QUEUED),
                )
                .values(
                    state=RunState.RUNNING,
                    attempt=TaskRun.attempt + 1,
                    started_at=now,
                    worker_id=worker_id,
                    lease_expires_at=now + lease,
                )
                .returning(TaskRun.id)
            )
        )
        .scalars()
        .all()
    )
    if not claimed:
        return []
    return await load_claimed(conn, claimed, with_history=True)


def in_one_statement(dialect: str) -> bool:
    """Whether :func:`claim` is one statement, atomic on its own (on PostgreSQL)."""
    return dialect == "postgresql"


async def _previous_results(
    conn: AsyncConnection, task_ids: Sequence[int]
) -> dict[int, list[PreviousResult]]:
    if not task_ids:
        return {}
    ranked = (
        select(
            TaskRun.task_id,
            TaskRun.scheduled_for,
            TaskRun.result,
            func.row_number()
            .over(partition_by=TaskRun.task_id, order_by=TaskRun.scheduled_for.desc())
            .label("rank"),
        )
        .where(
            id_in(conn, TaskRun.task_id, set(task_ids)),
            unindexed(TaskRun.state == RunState.SUCCEEDED),
        )
        .subquery()
    )
    rows = (
        await conn.execute(
            select(ranked.c.task_id, ranked.c.scheduled_for, ranked.c.result)
            .where(ranked.c.rank <= PREVIOUS_RESULTS)
            .order_by(ranked.c.task_id, ranked.c.scheduled_for.desc())
        )
    ).all()
    history: dict[int, list[PreviousResult]] = {}
    for row in rows:
        history.setdefault(row.task_id, []).append(
            PreviousResult(row.scheduled_for, row.result or "")
        )
    return history


async def load_claimed(
    conn: AsyncConnection, run_ids: Sequence[int], *, with_history: bool = False
) -> list[ClaimedRun]:
    """What the agent and the bookkeeping need for each run: task, owner, recent results."""
    rows = (
        await conn.execute(
            select(
                TaskRun.id,
                TaskRun.task_id,
                TaskRun.scheduled_for,
                TaskRun.attempt,
                AITask.title,
                AITask.description,
                AITask.task_type,
                AITask.ai_context,
                AITask.max_retries,
                AITask.notification_channels,
                AITask.user_id,
                AITask.timezone,
                User.display_name,
            )
            .join(AITask, AITask.id == TaskRun.task_id)
            .join(User, User.id == AITask.user_id)
            .where(id_in(conn, TaskRun.id, run_ids))
        )
    ).all()
    history = (
        await _previous_results(conn, [r.task_id for r in rows if r.task_type != "reminder"])
        if with_history
        else {}
    )
    return [_claimed_run(r, history.get(r.task_id, ())) for r in rows]


def _history(ats: Sequence[datetime], texts: Sequence[str | None]) -> list[PreviousResult]:
    return [PreviousResult(at, text or "") for at, text in zip(ats, texts, strict=True)]


def _claimed_run(row: Sequence[Any], history: Sequence[PreviousResult]) -> ClaimedRun:
    """A claimed run from the columns of the load (or the first ones of :data:`_PG_CLAIM`,
    in the same order) and its history.

    The columns are read by position: by name, a row's 13 columns took 4 of the 10 us the
    mapping of a claimed run cost, about 5 % of the worker's CPU per run end to end.
    """
    (
        run_id,
        task_id,
        scheduled_for,
        attempt,
        title,
        description,
        task_type,
        ai_context,
        max_retries,
        channels,
        user_id,
        timezone,
        owner_name,
    ) = row
    return ClaimedRun(
        request=AgentRequest(
            task_id=task_id,
            run_id=run_id,
            title=title,
            instruction=description,
            task_type=task_type,
            ai_context=dict(ai_context or {}),
            owner_name=owner_name,
            timezone=timezone,
            scheduled_for=scheduled_for,
            local_time=scheduled_for.astimezone(ZoneInfo(timezone)),
            attempt=attempt,
            previous_results=tuple(history),
            user_id=user_id,
        ),
        max_retries=max_retries,
        channels=tuple(channels or ()),
        user_id=user_id,
    )


#: The claim of :func:`claim` on PostgreSQL, with the load of :func:`load_claimed` and the
#: history of :func:`_previous_results`, in one statement. ``coalesce(...)`` keeps each filter on
#: state off the state index (:func:`~personal_assistant.database.dialect.unindexed`): the runs
#: are found by key, and a task's history through ``(task_id, scheduled_for)``, newest first, at
#: most ``:previous`` rows (the window function of :func:`_previous_results` read all of it).
_PG_CLAIM = text(
    """
    WITH claimed AS (
        UPDATE task_runs SET state = 'running', attempt = attempt + 1, started_at = :now,
            worker_id = :worker_id, lease_expires_at = :lease_until
        WHERE id = ANY(CAST(:ids AS bigint[])) AND coalesce(state = 'queued', false)
        RETURNING id, task_id, scheduled_for, attempt
    )
    SELECT c.id, c.task_id, c.scheduled_for, c.attempt, t.title, t.description, t.task_type,
        t.ai_context, t.max_retries, t.notification_channels, t.user_id, t.timezone,
        u.display_name, h.ats, h.results
    FROM claimed AS c
    JOIN ai_tasks AS t ON t.id = c.task_id
    JOIN users AS u ON u.id = t.user_id
    CROSS JOIN LATERAL (
        SELECT array_agg(p.scheduled_for ORDER BY p.scheduled_for DESC) AS ats,
            array_agg(p.result ORDER BY p.scheduled_for DESC) AS results
        FROM (
            SELECT r.scheduled_for, r.result FROM task_runs AS r
            WHERE r.task_id = c.task_id AND t.task_type <> 'reminder'
                AND coalesce(r.state = 'succeeded', false)
            ORDER BY r.scheduled_for DESC LIMIT :previous
        ) AS p
    ) AS h
    """
)
