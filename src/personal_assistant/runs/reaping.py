"""The reaper's step: runs whose worker vanished (``running``, their lease ended).

Each is retried after the backoff of the lost attempt, as a failed attempt would be
(:func:`~personal_assistant.runs.outcomes.after_failure`), or, out of tries, ends ``failed``,
counted on its task, with its notification rows (:mod:`results`). The reaper never lowers a
run's ``attempt``, so the claim that lost the run never finds its ``attempt`` running again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.core.states import RunState
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.notifications.outbox import DELIVERY_LEASE
from personal_assistant.runs.claims import load_claimed
from personal_assistant.runs.outcomes import after_failure, failure_text
from personal_assistant.runs.results import (
    Written,
    fail_runs,
    retry_runs,
    update_tasks_after_failure,
    write_notifications,
)

__all__ = ["Reaped", "reap"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reaped:
    retried: int
    failed: int
    pending_notifications: tuple[int, ...] = ()
    delivered: int = 0  # notifications delivered as written (in-app)

    @property
    def count(self) -> int:
        return self.retried + self.failed


async def reap(
    conn: AsyncConnection,
    *,
    now: datetime,
    policy: RetryPolicy,
    pause_after: int,
    limit: int = 1000,
    delivery_lease: timedelta = DELIVERY_LEASE,
) -> Reaped:
    """Runs whose worker vanished (running, lease expired): retry after the backoff of the
    lost attempt, as a failed attempt would (:func:`after_failure`), or fail if out of tries.
    """
    rows = (
        await conn.execute(
            select(TaskRun.id, TaskRun.attempt, AITask.max_retries)
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(TaskRun.state == RunState.RUNNING, TaskRun.lease_expires_at <= now)
            .order_by(TaskRun.lease_expires_at)
            .limit(limit)
            .with_for_update(of=TaskRun.__table__, skip_locked=True)
        )
    ).all()
    if not rows:
        return Reaped(0, 0)
    retry: list[dict[str, Any]] = []
    give_up = []
    for r in rows:
        decision = after_failure(
            attempt=r.attempt, max_retries=r.max_retries, permanent=False, now=now, policy=policy
        )
        log.warning(
            "event=run_reaped run_id=%s attempt=%s next=%s",
            r.id,
            r.attempt,
            decision.state.value,
        )
        if decision.state == RunState.RETRYING:
            retry.append(
                {
                    "b_id": r.id,
                    "b_retry_at": decision.retry_at,
                    "b_error": f"attempt {r.attempt} lost: the worker stopped before finishing it",
                }
            )
        else:
            give_up.append(r)
    await retry_runs(conn, retry, worker_id=None)
    written = Written((), 0)
    if give_up:
        claimed = await load_claimed(conn, [r.id for r in give_up])
        failures = [
            (
                c,
                failure_text(
                    "the worker stopped before finishing it", c.request.attempt, final=True
                ),
            )
            for c in claimed
        ]
        await fail_runs(conn, failures, now=now)
        await update_tasks_after_failure(conn, failures, pause_after=pause_after)
        written = await write_notifications(
            conn, [(c, False, t) for c, t in failures], now=now, delivery_lease=delivery_lease
        )
    return Reaped(len(retry), len(give_up), written.pending, written.delivered)
