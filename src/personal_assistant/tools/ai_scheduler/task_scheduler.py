"""The scheduling logic: claim due tasks, record their runs, send owed runs to the workers.

``tick(now)`` is one step: it claims every due task in batches (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a ``BEGIN IMMEDIATE`` single-writer transaction on SQLite), inserts one run per
firing and advances ``next_run_at`` in the same transaction, then, after commit, hands the new
run ids to ``publish``. It also re-sends runs that are owed a dispatch (new, due for a retry, or
whose message was lost) and returns the seconds until the next thing is due. Any number of
schedulers may tick at once: the unique key ``(task_id, scheduled_for)`` makes a duplicate run
impossible, and ``SKIP LOCKED`` keeps them from waiting on each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.core.catchup import plan_due
from personal_assistant.core.schedules import Schedule, parse_schedule
from personal_assistant.core.states import RunState, TaskStatus
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.errors import ScheduleError
from personal_assistant.tools.ai_scheduler.run_store import dialect_insert

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[int]], None]

#: A tick never claims for longer than this before returning (it returns 0: call again).
TICK_BUDGET_S = 2.0


@dataclass(frozen=True)
class ClaimReport:
    tasks: int
    runs: int
    skipped: int


class TaskScheduler:
    def __init__(self, engine: AsyncEngine, settings: Settings, publish: Publish) -> None:
        self._engine = engine
        self._settings = settings
        self._publish = publish
        self._lease = timedelta(seconds=settings.dispatch_lease_seconds)
        self._grace = timedelta(seconds=settings.misfire_grace_seconds)
        self._schedules: dict[tuple[int, str], Schedule] = {}

    async def tick(self, now: datetime) -> float:
        """Claim and dispatch what is due at ``now``; return seconds until the next due work."""
        started = time.monotonic()
        while True:
            report = await self.claim_due(now)
            if report.tasks < self._settings.claim_batch:
                break
            if time.monotonic() - started > TICK_BUDGET_S:
                return 0.0
        while await self.dispatch_owed(now) >= self._settings.claim_batch:
            if time.monotonic() - started > TICK_BUDGET_S:
                return 0.0
        return await self.seconds_until_next(now)

    async def claim_due(self, now: datetime) -> ClaimReport:
        """One batch: claim due tasks, insert their runs, advance them; publish after commit."""
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        AITask.id,
                        AITask.schedule,
                        AITask.timezone,
                        AITask.next_run_at,
                        AITask.catch_up,
                    )
                    .where(AITask.status == TaskStatus.ACTIVE, AITask.next_run_at <= now)
                    .order_by(AITask.next_run_at)
                    .limit(self._settings.claim_batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return ClaimReport(0, 0, 0)
            runs: list[dict[str, Any]] = []
            advances: list[dict[str, Any]] = []
            broken: list[dict[str, Any]] = []
            skipped = 0
            for row in rows:
                try:
                    schedule = self._schedule(row.id, row.schedule)
                except ScheduleError as exc:
                    broken.append({"b_id": row.id, "b_reason": f"invalid schedule: {exc}"})
                    continue
                plan = plan_due(
                    schedule,
                    row.next_run_at,
                    now,
                    row.catch_up,
                    grace=self._grace,
                    limit=self._settings.catchup_limit,
                )
                for firing in plan.firings:
                    runs.append(
                        _run_row(
                            row.id,
                            firing.scheduled_for,
                            firing.run,
                            now,
                            now + self._lease if firing.run else None,
                        )
                    )
                    skipped += not firing.run
                if plan.dropped:
                    log.warning("event=catchup_dropped task_id=%s dropped=%s", row.id, plan.dropped)
                advances.append({"b_id": row.id, "b_next": plan.next_run_at})
            new_run_ids = await _insert_runs(conn, runs)
            if advances:
                await conn.execute(
                    update(AITask)
                    .where(AITask.id == bindparam("b_id"))
                    .values(next_run_at=bindparam("b_next"))
                    .execution_options(synchronize_session=False),
                    advances,
                )
            if broken:
                await conn.execute(
                    update(AITask)
                    .where(AITask.id == bindparam("b_id"))
                    .values(
                        status=TaskStatus.FAILED,
                        status_reason=bindparam("b_reason"),
                        next_run_at=None,
                    )
                    .execution_options(synchronize_session=False),
                    broken,
                )
        if new_run_ids:
            self._publish(new_run_ids)
        log.info(
            "event=tasks_claimed tasks=%s runs=%s skipped=%s", len(rows), len(new_run_ids), skipped
        )
        return ClaimReport(len(rows), len(new_run_ids), skipped)

    async def dispatch_owed(self, now: datetime) -> int:
        """Send runs owed a dispatch: queued ones whose lease expired and retries now due."""
        async with self._engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        select(TaskRun.id)
                        .where(
                            TaskRun.state.in_((RunState.QUEUED, RunState.RETRYING)),
                            TaskRun.lease_expires_at <= now,
                        )
                        .order_by(TaskRun.lease_expires_at)
                        .limit(self._settings.claim_batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return 0
            await conn.execute(
                update(TaskRun)
                .where(TaskRun.id.in_(ids))
                .values(state=RunState.QUEUED, lease_expires_at=now + self._lease)
                .execution_options(synchronize_session=False)
            )
        self._publish(list(ids))
        log.info("event=runs_dispatched count=%s", len(ids))
        return len(ids)

    async def seconds_until_next(self, now: datetime) -> float:
        """Until the next due task or owed run, capped at the tick interval."""
        async with self._engine.connect() as conn:
            next_task = await conn.scalar(
                select(func.min(AITask.next_run_at)).where(AITask.status == TaskStatus.ACTIVE)
            )
            next_run = await conn.scalar(
                select(func.min(TaskRun.lease_expires_at)).where(
                    TaskRun.state.in_((RunState.QUEUED, RunState.RETRYING))
                )
            )
        cap = self._settings.tick_seconds
        due = [t for t in (next_task, next_run) if t is not None]
        if not due:
            return cap
        return max(0.0, min(cap, (min(due) - now).total_seconds()))

    def _schedule(self, task_id: int, data: dict[str, Any]) -> Schedule:
        """Parsed schedules, cached by task and content (a task's schedule rarely changes)."""
        key = (task_id, repr(data))
        schedule = self._schedules.get(key)
        if schedule is None:
            if len(self._schedules) > 200_000:
                self._schedules.clear()
            schedule = self._schedules[key] = parse_schedule(data)
        return schedule


def _run_row(
    task_id: int, scheduled_for: datetime, run: bool, now: datetime, lease: datetime | None
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "scheduled_for": scheduled_for,
        "state": RunState.QUEUED if run else RunState.SKIPPED,
        "attempt": 0,
        "queued_at": now,
        "finished_at": None if run else now,
        "lease_expires_at": lease,
    }


async def _insert_runs(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert runs; a firing that already has a run is left alone (the unique key)."""
    if not rows:
        return []
    stmt = (
        dialect_insert(conn, TaskRun)
        .on_conflict_do_nothing(index_elements=["task_id", "scheduled_for"])
        .returning(TaskRun.id, TaskRun.state)
    )
    inserted = (await conn.execute(stmt, rows)).all()
    return [run_id for run_id, state in inserted if state == RunState.QUEUED]
