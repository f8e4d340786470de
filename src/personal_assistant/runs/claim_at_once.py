"""The scheduler's claim of a planned batch in one statement, on PostgreSQL.

The claim of :mod:`due_tasks` (lock the planned tasks, insert their runs, advance their
``next_run_at``) as data-modifying ``WITH`` queries of a single statement: atomic on its own,
so it is sent outside a transaction, in one round trip where the transaction took six
(``BEGIN``, ``SET LOCAL``, the lock, the insert, the update, ``COMMIT``). The lock is the same
compare-and-set, ``FOR NO KEY UPDATE SKIP LOCKED``; runs are inserted for the tasks it locked
only.

The foreign key's checks of the new runs come at the statement's end, after the tasks'
update: each locks its task's new version (the transaction avoids that by inserting first),
a cost of PostgreSQL's, measured no slower in all (``CHANGELOG.md``).

Only for a batch whose every task goes on (:func:`in_one_statement`): a task that is finished,
or whose schedule is broken, is closed by further statements that must commit with the claim,
so such a batch is claimed in a transaction (:func:`due_tasks.lock_planned`,
:func:`due_tasks.record`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.database import pg_arrays
from personal_assistant.database.driver import pg_driver
from personal_assistant.runs.bulk import PG_NEW_RUNS, RunTimes, run_arrays
from personal_assistant.runs.plans import NewRun, TaskPlan

_PG_CLAIM = f"""
    WITH locked AS MATERIALIZED (
        SELECT t.id, p.next_run_at
        FROM ai_tasks AS t
        JOIN unnest(CAST(%(ids)s AS bigint[]), CAST(%(dues)s AS timestamptz[]),
                    CAST(%(nexts)s AS timestamptz[])) AS p(id, due_at, next_run_at)
            ON t.id = p.id AND t.next_run_at = p.due_at
        WHERE t.status = 'active'
        FOR NO KEY UPDATE OF t SKIP LOCKED
    ), inserted AS (
        {PG_NEW_RUNS} JOIN locked ON locked.id = r.task_id
        ON CONFLICT (task_id, scheduled_for) DO NOTHING
        RETURNING id, state, published_at
    ), advanced AS (
        UPDATE ai_tasks SET next_run_at = locked.next_run_at
        FROM locked
        WHERE ai_tasks.id = locked.id
    )
    SELECT ARRAY(SELECT id FROM locked),
           ARRAY(SELECT id FROM inserted WHERE state = 'queued' AND published_at IS NOT NULL)
"""


def in_one_statement(dialect: str, plans: Sequence[TaskPlan]) -> bool:
    """Whether a batch is claimed in one statement: on PostgreSQL, when every task goes on,
    i.e. has a next firing (a finished task, or one whose schedule is broken, has none)."""
    return dialect == "postgresql" and all(p.next_run_at is not None for p in plans)


async def claim(
    conn: AsyncConnection,
    plans: Sequence[TaskPlan],
    runs: Sequence[NewRun],
    *,
    now: datetime,
    lease: datetime,
    owners: Mapping[int, int],
    hold: datetime,
) -> tuple[set[int], list[int]]:
    """Lock the planned tasks still as planned, insert the runs of those, advance them; the
    ids of the tasks claimed and of the new runs to publish (recorded as published at
    ``now``; a ``held`` run waits unpublished until ``hold``)."""
    driver = await pg_driver(conn)
    cursor = await driver.execute(
        _PG_CLAIM,
        {
            "ids": pg_arrays.ints([p.task_id for p in plans]),
            "dues": pg_arrays.times([p.due_at for p in plans]),
            "nexts": pg_arrays.times([p.next_run_at for p in plans]),
            **run_arrays(runs, owners, RunTimes(now, lease, hold, published=now)),
        },
    )
    row = await cursor.fetchone()
    assert row is not None  # one row, always
    kept, run_ids = row
    return set(kept), list(run_ids)
