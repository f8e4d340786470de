"""A group of successful outcomes stored in one statement, on PostgreSQL.

The common case of :func:`~personal_assistant.runs.results.record`: every outcome of the group
is an answer. Its runs, their tasks and their notification rows are written by one statement,
atomic on its own, which the worker sends outside a transaction: one round trip where the
ownership check (a ``SELECT ... FOR UPDATE``), three writes and the transaction's ``BEGIN``,
``SET LOCAL`` and ``COMMIT`` took seven (``tests/integration/test_round_trips.py``).

Ownership is the compare-and-set of the ``UPDATE`` itself: a run is written only while it is
``running`` with the attempt that answered (a concurrent reaper's change is seen once its lock
is released: PostgreSQL tests the condition again on the row's new version). Only the runs it
wrote touch their tasks and get notification rows; the others are stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.database import pg_arrays
from personal_assistant.notifications.outbox import NewNotification, pg_note_arrays
from personal_assistant.runs.bulk import Success

__all__ = ["Stored", "store_successes_at_once"]


@dataclass(frozen=True)
class Stored:
    """What the statement wrote: the runs still owned, and the notification rows as
    ``(id, status)``."""

    run_ids: frozenset[int]
    notifications: list[tuple[int, str]]


async def store_successes_at_once(
    conn: AsyncConnection,
    successes: Sequence[tuple[Success, int]],
    notes: Sequence[NewNotification],
    *,
    now: datetime,
    sweep_at: datetime,
) -> Stored:
    """Store ``successes`` (each with the attempt that answered) and, for the runs still owned,
    their tasks' last run and ``notes``; pending notes are swept up at ``sweep_at``."""
    rows = await conn.execute(
        _PG_STORE_SUCCESSES_AT_ONCE,
        {
            "now": now,
            "sweep_at": sweep_at,
            "ids": pg_arrays.ints([s.run_id for s, _ in successes]),
            "attempts": pg_arrays.ints([attempt for _, attempt in successes]),
            "results": pg_arrays.texts([s.result for s, _ in successes]),
            "agents": pg_arrays.texts([s.agent_name for s, _ in successes]),
            "models": pg_arrays.texts([s.model for s, _ in successes]),
            "prompts": pg_arrays.ints([s.prompt_tokens for s, _ in successes]),
            "completions": pg_arrays.ints([s.completion_tokens for s, _ in successes]),
            **pg_note_arrays(notes, prefix="n_"),
        },
    )
    run_ids: set[int] = set()
    notifications: list[tuple[int, str]] = []
    for kind, row_id, status in rows:
        if kind == "run":
            run_ids.add(int(row_id))
        else:
            notifications.append((int(row_id), str(status)))
    return Stored(frozenset(run_ids), notifications)


#: ``coalesce(...)`` keeps the state filter off the state index: the runs are found by key
#: (:func:`~personal_assistant.database.dialect.unindexed`). The task's status rule is
#: ``bulk._PG_TASKS_SUCCEEDED``'s, the notification rows ``outbox._PG_INSERT_NOTIFICATIONS``'.
_PG_STORE_SUCCESSES_AT_ONCE = text(
    """
    WITH done AS (
        UPDATE task_runs SET state = 'succeeded', finished_at = :now, lease_expires_at = NULL,
            error = NULL, result = v.result, agent_name = v.agent_name, agent_model = v.model,
            prompt_tokens = v.prompt_tokens, completion_tokens = v.completion_tokens
        FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS integer[]),
                    CAST(:results AS text[]), CAST(:agents AS text[]), CAST(:models AS text[]),
                    CAST(:prompts AS integer[]), CAST(:completions AS integer[]))
            AS v(id, attempt, result, agent_name, model, prompt_tokens, completion_tokens)
        WHERE task_runs.id = v.id AND task_runs.attempt = v.attempt
            AND coalesce(task_runs.state = 'running', false)
        RETURNING task_runs.id, task_runs.task_id, task_runs.scheduled_for
    ),
    tasks AS (
        UPDATE ai_tasks SET last_run_at = d.at, consecutive_failures = 0,
            status = CASE WHEN ai_tasks.status = 'active' AND ai_tasks.next_run_at IS NULL
                          THEN 'completed' ELSE ai_tasks.status END
        FROM (SELECT task_id, max(scheduled_for) AS at FROM done GROUP BY task_id) AS d
        WHERE ai_tasks.id = d.task_id
    ),
    notes AS (
        INSERT INTO notifications (run_id, task_id, user_id, channel, status, title, body,
                                   attempts, created_at, delivered_at, next_attempt_at)
        SELECT n.run_id, n.task_id, n.user_id, n.channel, n.status, n.title, n.body, 0, :now,
               CASE WHEN n.status = 'delivered' THEN CAST(:now AS timestamptz) END,
               CASE WHEN n.status = 'pending' THEN CAST(:sweep_at AS timestamptz) END
        FROM unnest(CAST(:n_run_ids AS bigint[]), CAST(:n_task_ids AS bigint[]),
                    CAST(:n_user_ids AS bigint[]), CAST(:n_channels AS text[]),
                    CAST(:n_statuses AS text[]), CAST(:n_titles AS text[]),
                    CAST(:n_bodies AS text[]))
            AS n(run_id, task_id, user_id, channel, status, title, body)
        WHERE n.run_id IN (SELECT id FROM done)
        ON CONFLICT (run_id, channel) DO NOTHING
        RETURNING id, status
    )
    SELECT 'run' AS kind, id, NULL AS status FROM done
    UNION ALL
    SELECT 'note', id, status FROM notes
    """
)
