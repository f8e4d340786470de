"""The rates the alert rules look at, read from ``task_runs`` over the last ``window``: the start
lateness of first attempts, the runs finished and failed, the attempts started and those that
ended in an error. A run deferred by the rate limit made no attempt and counts in none of them.

The rest of the facts (processes, queues, the broker) are the deployment's figures
(:mod:`~personal_assistant.workers.deployment`); :mod:`~personal_assistant.workers.alerting`
puts the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.core.states import RunState
from personal_assistant.database.models import TaskRun

__all__ = ["Rates", "read_rates"]

#: Lateness samples read at most (the newest): a p99 needs no more.
MAX_SAMPLES = 10_000
_DEFERRED = "deferred, no attempt made:%"


@dataclass(frozen=True)
class Rates:
    #: Start lateness of the first attempts started in the window, seconds (the newest).
    lateness_s: list[float]
    finished: int
    failed: int
    attempts: int
    attempt_errors: int


async def read_rates(engine: AsyncEngine, now: datetime, *, window: timedelta) -> Rates:
    since = now - window
    deferred = and_(
        TaskRun.state == RunState.RETRYING, func.coalesce(TaskRun.error, "").like(_DEFERRED)
    )
    errored = and_(
        TaskRun.state.in_([RunState.RETRYING, RunState.FAILED]),
        TaskRun.error.is_not(None),
        not_(TaskRun.error.like(_DEFERRED)),
    )
    async with engine.connect() as conn:
        started = (
            await conn.execute(
                select(TaskRun.started_at, TaskRun.scheduled_for)
                .where(TaskRun.started_at >= since, TaskRun.attempt == 1, not_(deferred))
                .order_by(TaskRun.started_at.desc())
                .limit(MAX_SAMPLES)
            )
        ).all()
        finished, failed = (
            await conn.execute(
                select(
                    func.count(),
                    func.count().filter(TaskRun.state == RunState.FAILED),
                ).where(
                    TaskRun.finished_at >= since,
                    TaskRun.state.in_([RunState.SUCCEEDED, RunState.FAILED]),
                )
            )
        ).one()
        attempts, attempt_errors = (
            await conn.execute(
                select(func.count(), func.count().filter(errored)).where(
                    TaskRun.started_at >= since, not_(deferred)
                )
            )
        ).one()
    return Rates(
        lateness_s=[
            max(0.0, (start - due).total_seconds()) for start, due in started if start is not None
        ],
        finished=int(finished),
        failed=int(failed),
        attempts=int(attempts),
        attempt_errors=int(attempt_errors),
    )
