"""Bulk writes of the scheduler's hot path, one statement per batch whatever its size.

On PostgreSQL the rows travel as arrays and are expanded by ``unnest`` on the server: one
short statement, no per-row parameter parsing (a multi-row ``VALUES`` of 1,000 rows costs more
to build and parse than to run). Elsewhere (SQLite, the embedded default) the portable
``executemany`` forms are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.states import RunState
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.tools.ai_scheduler.run_store import dialect_insert


@dataclass(frozen=True)
class NewRun:
    task_id: int
    scheduled_for: datetime
    run: bool  # False: recorded as skipped


_PG_INSERT_RUNS = text(
    """
    INSERT INTO task_runs
        (task_id, scheduled_for, state, attempt, queued_at, finished_at, lease_expires_at)
    SELECT r.task_id, r.scheduled_for, r.state, 0, :now,
           CASE WHEN r.state = 'skipped' THEN CAST(:now AS timestamptz) END,
           CASE WHEN r.state = 'queued' THEN CAST(:lease AS timestamptz) END
    FROM unnest(CAST(:task_ids AS bigint[]), CAST(:scheduled AS timestamptz[]),
                CAST(:states AS text[])) AS r(task_id, scheduled_for, state)
    ON CONFLICT (task_id, scheduled_for) DO NOTHING
    RETURNING id, state
    """
)

_PG_SET_NEXT = text(
    """
    UPDATE ai_tasks SET next_run_at = v.next_run_at
    FROM unnest(CAST(:ids AS bigint[]), CAST(:nexts AS timestamptz[])) AS v(id, next_run_at)
    WHERE ai_tasks.id = v.id
    """
)


async def insert_runs(
    conn: AsyncConnection, runs: Sequence[NewRun], *, now: datetime, lease: datetime
) -> list[int]:
    """Insert runs (queued or skipped); a firing that already has a run is left alone.

    Returns the ids of the queued runs this call inserted.
    """
    if not runs:
        return []
    states = [RunState.QUEUED.value if r.run else RunState.SKIPPED.value for r in runs]
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            _PG_INSERT_RUNS,
            {
                "now": now,
                "lease": lease,
                "task_ids": [r.task_id for r in runs],
                "scheduled": [r.scheduled_for for r in runs],
                "states": states,
            },
        )
    else:
        rows: list[dict[str, Any]] = [
            {
                "task_id": r.task_id,
                "scheduled_for": r.scheduled_for,
                "state": state,
                "attempt": 0,
                "queued_at": now,
                "finished_at": None if r.run else now,
                "lease_expires_at": lease if r.run else None,
            }
            for r, state in zip(runs, states, strict=True)
        ]
        stmt = (
            dialect_insert(conn, TaskRun)
            .on_conflict_do_nothing(index_elements=["task_id", "scheduled_for"])
            .returning(TaskRun.id, TaskRun.state)
        )
        result = await conn.execute(stmt, rows)
    return [run_id for run_id, state in result.all() if state == RunState.QUEUED]


async def set_next_run_at(
    conn: AsyncConnection, advances: Sequence[tuple[int, datetime | None]]
) -> None:
    """Set each task's ``next_run_at``: ``(task_id, next_run_at)`` pairs."""
    if not advances:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(
            _PG_SET_NEXT,
            {"ids": [task_id for task_id, _ in advances], "nexts": [n for _, n in advances]},
        )
        return
    await conn.execute(
        update(AITask)
        .where(AITask.id == bindparam("b_id"))
        .values(next_run_at=bindparam("b_next"))
        .execution_options(synchronize_session=False),
        [{"b_id": task_id, "b_next": nxt} for task_id, nxt in advances],
    )
