"""Bulk writes of the scheduler's hot path, one statement per batch whatever its size.

On PostgreSQL the rows travel as arrays and are expanded by ``unnest`` on the server: one
short statement, no per-row parameter parsing (a multi-row ``VALUES`` of 1,000 rows costs more
to build and parse than to run). Elsewhere (SQLite, the embedded default) the portable
``executemany`` forms are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.states import RunState, TaskStatus
from personal_assistant.database import pg_arrays
from personal_assistant.database.dialect import dialect_insert
from personal_assistant.database.driver import pg_driver
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.runs.plans import NewRun

#: The rows of new runs, from the arrays of :func:`run_arrays` (``r``): the ``INSERT`` of
#: :data:`_PG_INSERT_RUNS` and of the scheduler's one-statement claim (``claim_at_once``).
PG_NEW_RUNS = """
        INSERT INTO task_runs
            (task_id, user_id, scheduled_for, state, attempt, queued_at, finished_at,
             lease_expires_at, published_at, error)
        SELECT r.task_id, r.user_id, r.scheduled_for, r.state, 0, %(now)s,
               CASE WHEN r.state = 'skipped' THEN CAST(%(now)s AS timestamptz) END,
               CASE WHEN r.state = 'queued' AND r.held THEN CAST(%(hold)s AS timestamptz)
                    WHEN r.state = 'queued' THEN CAST(%(lease)s AS timestamptz) END,
               CASE WHEN r.state = 'queued' AND NOT r.held
                    THEN CAST(%(published)s AS timestamptz) END,
               r.reason
        FROM unnest(CAST(%(task_ids)s AS bigint[]), CAST(%(user_ids)s AS bigint[]),
                    CAST(%(scheduled)s AS timestamptz[]), CAST(%(states)s AS text[]),
                    CAST(%(held)s AS boolean[]), CAST(%(reasons)s AS text[]))
            AS r(task_id, user_id, scheduled_for, state, held, reason)"""

#: The ids of the queued runs inserted that the caller publishes: when it records them as
#: published (``:published`` set), those not held; otherwise all of them.
_PG_INSERT_RUNS = f"""
    WITH inserted AS ({PG_NEW_RUNS}
        ON CONFLICT (task_id, scheduled_for) DO NOTHING
        RETURNING id, state, published_at
    )
    SELECT id FROM inserted
    WHERE state = 'queued'
      AND (published_at IS NOT NULL OR CAST(%(published)s AS timestamptz) IS NULL)
"""


async def insert_runs(
    conn: AsyncConnection,
    runs: Sequence[NewRun],
    *,
    now: datetime,
    lease: datetime,
    owners: Mapping[int, int],
    published: bool = False,
    hold: datetime | None = None,
) -> list[int]:
    """Insert runs (queued or skipped); a firing that already has a run is left alone.

    ``published``: the caller publishes the queued runs right after its commit, so they are
    recorded as published at ``now`` (it records them unsent should the publish fail). A
    ``held`` run is recorded unpublished, owed at ``hold``. ``owners`` maps task ids to their
    owner, copied onto each run (``user_id``). Returns the ids of the queued runs this call
    inserted that the caller is to publish (all of them when ``published`` is false).
    """
    published_at = now if published else None
    if not runs:
        return []
    times = RunTimes(now, lease, hold or lease, published_at)
    if conn.dialect.name == "postgresql":
        return await _insert_runs_pg(conn, runs, times, owners)
    inserted = await _insert_runs_portable(conn, runs, times, owners)
    return [
        run_id
        for run_id, state, sent_at in inserted
        if state == RunState.QUEUED and (sent_at is not None or published_at is None)
    ]


#: An inserted run: ``(id, state, published_at)``.
_Inserted = tuple[int, str, datetime | None]


@dataclass(frozen=True)
class RunTimes:
    """The times written on new runs: queued, the lease of a sent one and of a held one, and
    ``published_at`` (None: the caller does not publish them)."""

    now: datetime
    lease: datetime
    hold: datetime
    published: datetime | None


async def _insert_runs_pg(
    conn: AsyncConnection, runs: Sequence[NewRun], times: RunTimes, owners: Mapping[int, int]
) -> list[int]:
    """PostgreSQL: the runs as arrays, expanded by ``unnest`` (one short statement, sent on
    the driver's connection); the ids to publish, chosen by the statement."""
    driver = await pg_driver(conn)
    cursor = await driver.execute(_PG_INSERT_RUNS, run_arrays(runs, owners, times))
    return [run_id for (run_id,) in await cursor.fetchall()]


def run_arrays(
    runs: Sequence[NewRun], owners: Mapping[int, int], times: RunTimes
) -> dict[str, object]:
    """The parameters of :data:`PG_NEW_RUNS`: the runs as array literals, and their times."""
    return {
        "now": times.now,
        "lease": times.lease,
        "hold": times.hold,
        "published": times.published,
        "task_ids": pg_arrays.ints([r.task_id for r in runs]),
        "user_ids": pg_arrays.ints([owners.get(r.task_id) for r in runs]),
        "scheduled": pg_arrays.times([r.scheduled_for for r in runs]),
        "states": pg_arrays.texts(_states(runs)),
        "held": pg_arrays.bools([r.held for r in runs]),
        "reasons": pg_arrays.texts([r.reason for r in runs]),
    }


def _states(runs: Sequence[NewRun]) -> list[str]:
    """Each new run's state: queued to run, or skipped."""
    return [RunState.QUEUED.value if r.run else RunState.SKIPPED.value for r in runs]


async def _insert_runs_portable(
    conn: AsyncConnection,
    runs: Sequence[NewRun],
    times: RunTimes,
    owners: Mapping[int, int],
) -> list[_Inserted]:
    """Elsewhere (SQLite): an ``executemany`` insert, one row of parameters per run."""
    rows: list[dict[str, Any]] = [
        {
            "task_id": r.task_id,
            "user_id": owners.get(r.task_id),
            "scheduled_for": r.scheduled_for,
            "state": state,
            "attempt": 0,
            "queued_at": times.now,
            "finished_at": None if r.run else times.now,
            "lease_expires_at": _lease_of(r, times),
            "published_at": times.published if r.run and not r.held else None,
            "error": r.reason,
        }
        for r, state in zip(runs, _states(runs), strict=True)
    ]
    stmt = (
        dialect_insert(conn, TaskRun)
        .on_conflict_do_nothing(index_elements=["task_id", "scheduled_for"])
        .returning(TaskRun.id, TaskRun.state, TaskRun.published_at)
    )
    result = await conn.execute(stmt, rows)
    return [(run_id, state, sent_at) for run_id, state, sent_at in result.all()]


def _lease_of(run: NewRun, times: RunTimes) -> datetime | None:
    """A new run's ``lease_expires_at``: held, owed at ``hold``; queued, ``lease``; skipped,
    none."""
    if run.held:
        return times.hold
    return times.lease if run.run else None


_PG_SET_NEXT = """
    UPDATE ai_tasks SET next_run_at = v.next_run_at
    FROM unnest(CAST(%(ids)s AS bigint[]), CAST(%(nexts)s AS timestamptz[])) AS v(id, next_run_at)
    WHERE ai_tasks.id = v.id
"""


async def set_next_run_at(
    conn: AsyncConnection, advances: Sequence[tuple[int, datetime | None]]
) -> None:
    """Set each task's ``next_run_at``: ``(task_id, next_run_at)`` pairs."""
    if not advances:
        return
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        await driver.execute(
            _PG_SET_NEXT,
            {
                "ids": pg_arrays.ints([task_id for task_id, _ in advances]),
                "nexts": pg_arrays.times([n for _, n in advances]),
            },
        )
        return
    await conn.execute(
        update(AITask)
        .where(AITask.id == bindparam("b_id"))
        .values(next_run_at=bindparam("b_next"))
        .execution_options(synchronize_session=False),
        [{"b_id": task_id, "b_next": nxt} for task_id, nxt in advances],
    )


@dataclass(frozen=True)
class Success:
    run_id: int
    task_id: int
    scheduled_for: datetime
    result: str
    agent_name: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


_PG_STORE_SUCCESSES = text(
    """
    UPDATE task_runs SET state = 'succeeded', finished_at = :now, lease_expires_at = NULL,
        error = NULL, result = v.result, agent_name = v.agent_name, agent_model = v.model,
        prompt_tokens = v.prompt_tokens, completion_tokens = v.completion_tokens
    FROM unnest(CAST(:ids AS bigint[]), CAST(:results AS text[]), CAST(:agents AS text[]),
                CAST(:models AS text[]), CAST(:prompts AS integer[]),
                CAST(:completions AS integer[]))
        AS v(id, result, agent_name, model, prompt_tokens, completion_tokens)
    WHERE task_runs.id = v.id
    """
)

_PG_TASKS_SUCCEEDED = text(
    """
    UPDATE ai_tasks SET last_run_at = v.at, consecutive_failures = 0,
        status = CASE WHEN ai_tasks.status = 'active' AND ai_tasks.next_run_at IS NULL
                      THEN 'completed' ELSE ai_tasks.status END
    FROM (SELECT id, max(at) AS at
          FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[])) AS u(id, at)
          GROUP BY id) AS v
    WHERE ai_tasks.id = v.id
    """
)


async def store_successes(
    conn: AsyncConnection, successes: Sequence[Success], *, now: datetime
) -> None:
    """Mark runs succeeded with their results, and their tasks as having run."""
    if not successes:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(
            _PG_STORE_SUCCESSES,
            {
                "now": now,
                "ids": pg_arrays.ints([s.run_id for s in successes]),
                "results": pg_arrays.texts([s.result for s in successes]),
                "agents": pg_arrays.texts([s.agent_name for s in successes]),
                "models": pg_arrays.texts([s.model for s in successes]),
                "prompts": pg_arrays.ints([s.prompt_tokens for s in successes]),
                "completions": pg_arrays.ints([s.completion_tokens for s in successes]),
            },
        )
        await conn.execute(
            _PG_TASKS_SUCCEEDED,
            {
                "ids": pg_arrays.ints([s.task_id for s in successes]),
                "ats": pg_arrays.times([s.scheduled_for for s in successes]),
            },
        )
        return
    await conn.execute(
        update(TaskRun)
        .where(TaskRun.id == bindparam("b_id"))
        .values(
            state=RunState.SUCCEEDED,
            finished_at=now,
            lease_expires_at=None,
            error=None,
            result=bindparam("b_result"),
            agent_name=bindparam("b_agent"),
            agent_model=bindparam("b_model"),
            prompt_tokens=bindparam("b_prompt"),
            completion_tokens=bindparam("b_completion"),
        )
        .execution_options(synchronize_session=False),
        [
            {
                "b_id": s.run_id,
                "b_result": s.result,
                "b_agent": s.agent_name,
                "b_model": s.model,
                "b_prompt": s.prompt_tokens,
                "b_completion": s.completion_tokens,
            }
            for s in successes
        ],
    )
    await conn.execute(
        update(AITask)
        .where(AITask.id == bindparam("b_id"))
        .values(
            last_run_at=bindparam("b_at"),
            consecutive_failures=0,
            status=case(
                (
                    and_(AITask.status == TaskStatus.ACTIVE, AITask.next_run_at.is_(None)),
                    TaskStatus.COMPLETED,
                ),
                else_=AITask.status,
            ),
        )
        .execution_options(synchronize_session=False),
        [{"b_id": s.task_id, "b_at": s.scheduled_for} for s in successes],
    )
