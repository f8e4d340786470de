"""The scheduling logic: claim due tasks, record their runs, send owed runs to the workers.

``tick(now)`` is one step: it claims every due task in batches (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a ``BEGIN IMMEDIATE`` single-writer transaction on SQLite), inserts one run per
firing and advances ``next_run_at`` in the same transaction, then, after commit, hands the new
run ids to ``publish``. It also re-sends runs that are owed a dispatch (new, due for a retry, or
whose message was lost) and returns the seconds until the next thing is due. Any number of
schedulers may tick at once: the unique key ``(task_id, scheduled_for)`` makes a duplicate run
impossible, and ``SKIP LOCKED`` keeps them from waiting on each other.

A queued run is sent again only when its message may be lost: while messages wait in the run
queue (``backlog``), its message is presumed to be waiting among them and its lease is renewed
instead (see :meth:`TaskScheduler.dispatch_owed`).

A scheduler that stalls inside one of its transactions (stopped, frozen, its broker read hung)
holds the tasks or runs it locked, and the others skip them. PostgreSQL ends such a transaction
after ``LEASE_MARGIN`` idle (:func:`limit_idle_in_transaction`): the rows are claimed by
another scheduler, and the stalled one finds its connection closed should it resume.

Claims lock ``FOR NO KEY UPDATE`` (``key_share=True``): they change no key, so a row that
references a claimed one (a notification naming its task, written by a worker) does not wait
for the claim to commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, bindparam, case, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.core.catchup import plan_due
from personal_assistant.core.schedules import Schedule, parse_schedule
from personal_assistant.core.states import CatchUp, RunState, TaskStatus
from personal_assistant.database.engine import limit_idle_in_transaction
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.errors import ScheduleError
from personal_assistant.tools.ai_scheduler.bulk import NewRun, insert_runs, set_next_run_at

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[int]], None]
#: How many messages wait in the broker's run queue for a worker; None when it cannot tell.
Backlog = Callable[[], int | None]

#: A tick never claims for longer than this before returning (it returns 0: call again).
TICK_BUDGET_S = 2.0
#: Concurrent claimers during a burst on PostgreSQL (see ``_claim_all``).
BURST_CLAIMERS = 2

_earliest_task = (
    select(func.min(AITask.next_run_at)).where(AITask.status == TaskStatus.ACTIVE).scalar_subquery()
)
_earliest_queued = (
    select(func.min(TaskRun.lease_expires_at))
    .where(TaskRun.state == RunState.QUEUED)
    .scalar_subquery()
)
_earliest_retry = (
    select(func.min(TaskRun.lease_expires_at))
    .where(TaskRun.state == RunState.RETRYING)
    .scalar_subquery()
)
_NEXT_DUE = select(
    _earliest_task.label("next_task"),
    func.coalesce(
        case(
            (_earliest_queued < _earliest_retry, _earliest_queued),
            else_=_earliest_retry,
        ),
        _earliest_queued,
    ).label("next_owed"),
)


@dataclass(frozen=True)
class ClaimReport:
    tasks: int
    runs: int
    skipped: int


class TaskScheduler:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        publish: Publish,
        *,
        backlog: Backlog | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._publish = publish
        self._backlog = backlog
        self._lease = timedelta(seconds=settings.dispatch_lease_seconds)
        self._grace = timedelta(seconds=settings.misfire_grace_seconds)

    async def tick(self, now: datetime) -> float:
        """Claim and dispatch what is due at ``now``; return seconds until the next due work.

        When nothing is due (the usual case) this is a single read.
        """
        started = time.monotonic()
        next_task, next_owed = await self._next_due()
        if next_task is not None and next_task <= now:
            if not await self._claim_all(now, started):
                return 0.0
            next_task, next_owed = await self._next_due()
        if next_owed is not None and next_owed <= now:
            while await self.dispatch_owed(now) >= self._settings.claim_batch:
                if time.monotonic() - started > TICK_BUDGET_S:
                    return 0.0
            next_task, next_owed = await self._next_due()
        return self._delay(now, next_task, next_owed)

    async def _claim_all(self, now: datetime, started: float) -> bool:
        """Claim until nothing is due; False if the tick's time budget ran out first.

        After a full first batch (a burst), several claimers drain concurrently on their own
        connections: while one waits for PostgreSQL, another plans its batch. ``SKIP LOCKED``
        splits the rows between them. SQLite has one writer at a time, so one claimer there.
        """
        batch = self._settings.claim_batch

        async def drain() -> bool:
            while (await self.claim_due(now)).tasks >= batch:
                if time.monotonic() - started > TICK_BUDGET_S:
                    return False
            return True

        if (await self.claim_due(now)).tasks < batch:
            return True
        claimers = BURST_CLAIMERS if self._engine.dialect.name == "postgresql" else 1
        return all(await asyncio.gather(*(drain() for _ in range(claimers))))

    async def claim_due(self, now: datetime) -> ClaimReport:
        """One batch: claim due tasks, insert their runs, advance them; publish after commit."""
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._settings.lease_margin_seconds)
            rows = (
                await conn.execute(
                    select(
                        AITask.id,
                        cast(AITask.schedule, Text),
                        AITask.next_run_at,
                        AITask.catch_up,
                    )
                    .where(AITask.status == TaskStatus.ACTIVE, AITask.next_run_at <= now)
                    .order_by(AITask.next_run_at)
                    .limit(self._settings.claim_batch)
                    .with_for_update(skip_locked=True, key_share=True)
                )
            ).all()
            if not rows:
                return ClaimReport(0, 0, 0)
            runs: list[NewRun] = []
            advances: list[tuple[int, datetime | None]] = []
            broken: list[dict[str, Any]] = []
            finished: list[int] = []
            for task_id, data, due_at, catch_up in rows:
                try:
                    schedule = parse_stored_schedule(data)
                except ScheduleError as exc:
                    broken.append({"b_id": task_id, "b_reason": f"invalid schedule: {exc}"})
                    continue
                plan = plan_due(
                    schedule,
                    cast_due(due_at),
                    now,
                    CatchUp(catch_up).value,
                    grace=self._grace,
                    limit=self._settings.catchup_limit,
                )
                runs.extend(NewRun(task_id, f.scheduled_for, f.run) for f in plan.firings)
                if plan.dropped:
                    log.warning(
                        "event=catchup_dropped task_id=%s dropped=%s", task_id, plan.dropped
                    )
                advances.append((task_id, plan.next_run_at))
                if plan.next_run_at is None and not any(f.run for f in plan.firings):
                    # Its last firings were all skipped: nothing will ever complete it.
                    finished.append(task_id)
            new_run_ids = await insert_runs(conn, runs, now=now, lease=now + self._lease)
            await set_next_run_at(conn, advances)
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
        skipped = sum(not r.run for r in runs)
        log.info(
            "event=tasks_claimed tasks=%s runs=%s skipped=%s", len(rows), len(new_run_ids), skipped
        )
        return ClaimReport(len(rows), len(new_run_ids), skipped)

    async def dispatch_owed(self, now: datetime) -> int:
        """Send runs owed a dispatch: queued ones whose lease expired and retries now due.

        A queued run whose lease expired was sent and not claimed: its message was lost, or it
        still waits behind others (a burst, workers down). While messages wait in the run
        queue (``backlog``), the second is presumed: the lease is renewed and nothing is sent,
        since a copy would only lengthen the queue (a backlog longer than ``DISPATCH_LEASE``
        otherwise got a copy of every waiting run per lease, multiplying the workers' work).
        With the queue empty, or the backlog unknown, the run is sent again. A retry now due
        is always sent: it has no message yet. Returns the number of runs sent.

        One select per state, so each walks its own ``(state, lease_expires_at)`` index range
        in order instead of sorting every owed run.
        """
        waiting: int | None = None
        limit = self._settings.claim_batch
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._settings.lease_margin_seconds)
            ids: list[int] = []
            postponed: list[int] = []
            for state in (RunState.QUEUED, RunState.RETRYING):
                found = (
                    (
                        await conn.execute(
                            select(TaskRun.id)
                            .where(TaskRun.state == state, TaskRun.lease_expires_at <= now)
                            .order_by(TaskRun.lease_expires_at)
                            .limit(limit - len(ids) - len(postponed))
                            .with_for_update(skip_locked=True, key_share=True)
                        )
                    )
                    .scalars()
                    .all()
                )
                if state == RunState.QUEUED and found and self._backlog is not None:
                    # Read only when a queued run is owed: an idle tick does no broker I/O.
                    waiting = await asyncio.to_thread(self._backlog)
                if state == RunState.QUEUED and waiting:
                    postponed += found
                else:
                    ids += found
                if len(ids) + len(postponed) >= limit:
                    break
            if postponed:
                await conn.execute(
                    update(TaskRun)
                    .where(TaskRun.id.in_(postponed))
                    .values(lease_expires_at=now + self._lease)
                    .execution_options(synchronize_session=False)
                )
            if ids:
                await conn.execute(
                    update(TaskRun)
                    .where(TaskRun.id.in_(ids))
                    .values(state=RunState.QUEUED, lease_expires_at=now + self._lease)
                    .execution_options(synchronize_session=False)
                )
        if postponed:
            log.info("event=redispatch_postponed count=%s waiting=%s", len(postponed), waiting)
        if not ids:
            return 0
        self._publish(list(ids))
        log.info("event=runs_dispatched count=%s", len(ids))
        return len(ids)

    async def seconds_until_next(self, now: datetime) -> float:
        """Until the next due task or owed run, capped at the tick interval."""
        return self._delay(now, *await self._next_due())

    async def _next_due(self) -> tuple[datetime | None, datetime | None]:
        """The earliest ``next_run_at`` of an active task and lease of an owed run: one read.

        Each ``min`` is over one index range (``(status, next_run_at)``,
        ``(state, lease_expires_at)``), so its cost does not grow with the tables.
        """
        async with self._engine.connect() as conn:
            row = (await conn.execute(_NEXT_DUE)).one()
        return row[0], row[1]

    def _delay(self, now: datetime, *due: datetime | None) -> float:
        cap = self._settings.tick_seconds
        times = [t for t in due if t is not None]
        if not times:
            return cap
        return max(0.0, min(cap, (min(times) - now).total_seconds()))


@lru_cache(maxsize=65_536)
def parse_stored_schedule(text: str) -> Schedule:
    """A stored schedule, parsed once per distinct text (many tasks share "daily at 09:00")."""
    return parse_schedule(json.loads(text))


def cast_due(value: datetime | None) -> datetime:
    """A claimed task's ``next_run_at``: never NULL, the claim asked for ``<= now``."""
    assert value is not None
    return value
