"""The scheduling logic: claim due tasks, record their runs, send owed runs to the workers.

``tick(now)`` is one step: it claims every due task in batches, inserts one run per firing and
advances ``next_run_at`` in the same transaction, then, after commit, hands the new run ids to
``publish``. It also sends runs that are owed a dispatch (never sent, due for a retry, or whose
message was lost) and returns the seconds until the next thing is due. Any number of
schedulers may tick at once: the unique key ``(task_id, scheduled_for)`` makes a duplicate run
impossible, and ``SKIP LOCKED`` keeps them from waiting on each other.

A claim plans before it locks (:meth:`TaskScheduler.claim_due`): catch-up after downtime can
cost tens of milliseconds a task, and PostgreSQL counts the client's time inside a transaction
as idle. The plan is made in a thread, off the event loop (which may hold a worker's runs), and
the claim then locks the planned tasks and keeps those whose ``next_run_at`` has not moved.

A run records when its message was published (``published_at``). One never published (a
``run_now`` run, a publish that failed) is sent on the next tick. One published and still
unclaimed after ``DISPATCH_LEASE`` is sent again only when its message may be lost: while
messages wait in the run queue (``backlog``), its own is presumed among them and its lease is
renewed, unless the queue has visibly moved past it (see :meth:`TaskScheduler.dispatch_owed`).

A scheduler that stalls inside one of its transactions (stopped, frozen, its broker read hung)
holds the tasks or runs it locked, and the others skip them. PostgreSQL ends such a transaction
after ``LEASE_MARGIN`` idle (:func:`limit_idle_in_transaction`): the rows are claimed by
another scheduler, and the stalled one finds its connection closed should it resume.

Claims lock ``FOR NO KEY UPDATE`` (``key_share=True``): they change no key, so a row that
references a claimed one (a notification naming its task, written by a worker) does not wait
for the claim to commit.

Runs enter the broker within their owner's share (:mod:`fair_dispatch`: ``USER_DISPATCH_LIMIT``
runs open per user, ``MAX_RUNS_PER_HOUR``): a claim records a user's runs beyond it unpublished,
owed a tick interval later, and :meth:`TaskScheduler.dispatch_owed` sends them round robin
across users as room frees. While owed runs wait for room, the tick looks at them again once
per tick interval, not in a loop. With both limits at 0, every run is sent at once, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Text, bindparam, case, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.core.catchup import plan_due
from personal_assistant.core.schedules import Schedule, parse_schedule
from personal_assistant.core.states import OPEN_RUN_STATES, CatchUp, RunState, TaskStatus
from personal_assistant.database.engine import limit_idle_in_transaction
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.errors import ScheduleError
from personal_assistant.runs import fair_store
from personal_assistant.runs.bulk import NewRun, insert_runs, set_next_run_at
from personal_assistant.runs.fair_dispatch import (
    Limits,
    Owed,
    Tally,
    Usage,
    over_hour_reason,
    share,
)

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[int]], None]
#: How many messages wait in the broker's run queue for a worker; None when it cannot tell.
Backlog = Callable[[], int | None]

#: A tick never claims for longer than this before returning (it returns 0: call again).
TICK_BUDGET_S = 2.0
#: Concurrent claimers during a burst on PostgreSQL (see ``_claim_all``).
BURST_CLAIMERS = 2
#: A claim plans for at most this long (at least one task) before it claims what it planned.
PLAN_BUDGET_S = 1.0
#: How long a tick waits when the due tasks are held by another scheduler's claim.
CONTENDED_DELAY_S = 0.05
#: Messages published this much apart may be taken out of order (prefetch, several workers).
REORDER_SLACK = timedelta(seconds=5)

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
    #: Due tasks may remain for this claimer (a full batch, or planning stopped at its budget).
    more: bool = False


@dataclass(frozen=True)
class TaskPlan:
    """What a claim does to one due task, planned before the claim's transaction."""

    task_id: int
    due_at: datetime  # the ``next_run_at`` planned from: the claim's compare-and-set
    runs: tuple[NewRun, ...]
    next_run_at: datetime | None
    dropped: int
    finished: bool  # its last firings were all skipped: nothing will ever complete it
    broken: str | None  # its stored schedule cannot be read: the task fails with this reason


def plan_task(
    task_id: int,
    data: str,
    due_at: datetime,
    now: datetime,
    policy: str,
    *,
    grace: timedelta,
    limit: int,
) -> TaskPlan:
    """The plan for one due task (pure: no I/O)."""
    try:
        schedule = parse_stored_schedule(data)
    except ScheduleError as exc:
        return TaskPlan(task_id, due_at, (), None, 0, False, f"invalid schedule: {exc}")
    plan = plan_due(schedule, due_at, now, CatchUp(policy).value, grace=grace, limit=limit)
    runs = tuple(NewRun(task_id, f.scheduled_for, f.run) for f in plan.firings)
    finished = plan.next_run_at is None and not any(f.run for f in plan.firings)
    return TaskPlan(task_id, due_at, runs, plan.next_run_at, plan.dropped, finished, None)


async def _close_tasks(conn: AsyncConnection, plans: Sequence[TaskPlan]) -> None:
    """Complete tasks whose last firings were skipped; fail those whose schedule is broken.

    A task with no firing left whose last one already had a run (the insert met the unique
    key: an edit put ``next_run_at`` back on a firing that ran) and no open run is completed
    too: no run of it would ever finish it.
    """
    last = [p.task_id for p in plans if p.next_run_at is None and not p.finished and not p.broken]
    if last:
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


async def _newest_running_publish(conn: AsyncConnection) -> datetime | None:
    """When the newest message that a worker has taken (its run now running) was published."""
    return (
        await conn.execute(
            select(func.max(TaskRun.published_at)).where(TaskRun.state == RunState.RUNNING)
        )
    ).scalar()


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
        self._tick = timedelta(seconds=settings.tick_seconds)
        self._limits = Limits(settings.user_dispatch_limit, settings.max_runs_per_hour)
        #: Owed runs left waiting for their owners' room are looked at again from then on.
        self._recheck_at: datetime | None = None
        #: During a tick's claims: its owners' counts, each read once (see ``claim_due``).
        self._tally: Tally | None = None

    async def tick(self, now: datetime) -> float:
        """Claim and dispatch what is due at ``now``; return seconds until the next due work.

        When nothing is due (the usual case) this is a single read. Due tasks that another
        scheduler holds (locked, being claimed) are not spun on: the tick asks to be called
        again after :data:`CONTENDED_DELAY_S`.
        """
        started = time.monotonic()
        next_task, next_owed = await self._next_due()
        contended = False
        if next_task is not None and next_task <= now:
            claimed = await self._claim_all(now, started)
            if claimed is None:
                return 0.0
            contended = claimed == 0
            next_task, next_owed = await self._next_due()
        if next_owed is not None and next_owed <= now and not self._waiting_for_room(now):
            while await self.dispatch_owed(now) >= self._settings.claim_batch:
                if time.monotonic() - started > TICK_BUDGET_S:
                    return 0.0
            next_task, next_owed = await self._next_due()
            if self._limits.active and next_owed is not None and next_owed <= now:
                # What is still owed waits for room under its owners' limits (or is another
                # scheduler's): looked at again in a tick interval, not in a loop.
                self._recheck_at = now + self._tick
        if next_owed is not None and self._waiting_for_room(now):
            assert self._recheck_at is not None
            next_owed = max(next_owed, self._recheck_at)
        delay = self._delay(now, next_task, next_owed)
        if contended and delay == 0.0:
            return min(CONTENDED_DELAY_S, self._settings.tick_seconds)
        return delay

    def _waiting_for_room(self, now: datetime) -> bool:
        return self._recheck_at is not None and now < self._recheck_at

    async def _claim_all(self, now: datetime, started: float) -> int | None:
        """Claim until nothing is due; the tasks claimed, or None if the time budget ran out.

        After a full first batch (a burst), several claimers drain concurrently on their own
        connections, each over its own share of the task ids: while one waits for PostgreSQL,
        another plans its batch. SQLite has one writer at a time, so one claimer there.
        """

        async def drain(part: tuple[int, int]) -> tuple[bool, int]:
            claimed = 0
            while True:
                report = await self.claim_due(now, part=part)
                claimed += report.tasks
                if not report.more:
                    return True, claimed
                if time.monotonic() - started > TICK_BUDGET_S:
                    return False, claimed

        self._tally = Tally() if self._limits.active else None
        try:
            first = await self.claim_due(now)
            if not first.more:
                return first.tasks
            claimers = BURST_CLAIMERS if self._engine.dialect.name == "postgresql" else 1
            results = await asyncio.gather(*(drain((k, claimers)) for k in range(claimers)))
        finally:
            self._tally = None
        if not all(done for done, _ in results):
            return None
        return first.tasks + sum(n for _, n in results)

    async def claim_due(self, now: datetime, *, part: tuple[int, int] = (0, 1)) -> ClaimReport:
        """One batch: read due tasks, plan their firings, then claim and record them at once.

        The plan (catch-up after downtime can be tens of milliseconds a task) is made before
        the claiming transaction, in a thread: PostgreSQL counts the client's time between
        statements as idle (``LEASE_MARGIN``), and the event loop may hold runs. The claim then
        locks the planned tasks ``SKIP LOCKED`` and keeps those whose ``next_run_at`` is still
        the one planned from (compare-and-set): a task claimed meanwhile by another scheduler is
        left to it. ``part`` = ``(k, n)`` reads only task ids ``= k (mod n)``.
        """
        candidates = await self._due_candidates(now, part)
        if not candidates:
            return ClaimReport(0, 0, 0)
        deadline = time.monotonic() + PLAN_BUDGET_S
        planning = asyncio.to_thread(self._plan_batch, candidates, now, deadline)
        owners = {task_id: user_id for task_id, _, _, _, user_id in candidates}
        tally: Tally | None = None
        if self._limits.active:  # the owners' counts are read while the plan is made
            tally = self._tally or Tally()
            missing = tally.missing(owners.values())
            plans, counted = await asyncio.gather(planning, self._usage(missing, now))
            tally.learn(missing, counted)
        else:
            plans = await planning
        more = len(plans) < len(candidates) or len(candidates) >= self._settings.claim_batch
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._settings.lease_margin_seconds)
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
            kept = [p for p in plans if p.task_id in locked and locked[p.task_id] == p.due_at]
            if not kept:
                return ClaimReport(0, 0, 0, more=False)
            runs = [r for p in kept for r in p.runs]
            if tally is not None:
                runs = self._share_new_runs(runs, owners, tally)
            new_run_ids = await insert_runs(
                conn,
                runs,
                now=now,
                lease=now + self._lease,
                published=True,
                owners=owners,
                hold=now + self._tick,
            )
            await set_next_run_at(
                conn, [(p.task_id, p.next_run_at) for p in kept if p.broken is None]
            )
            await _close_tasks(conn, kept)
        await self._send(new_run_ids, now)
        for plan in kept:
            if plan.dropped:
                log.warning(
                    "event=catchup_dropped task_id=%s dropped=%s", plan.task_id, plan.dropped
                )
        skipped = sum(not r.run for r in runs)
        held = sum(r.held for r in runs)
        log.info(
            "event=tasks_claimed tasks=%s runs=%s skipped=%s held=%s",
            len(kept),
            len(new_run_ids) + held,
            skipped,
            held,
        )
        return ClaimReport(len(kept), len(new_run_ids) + held, skipped, more=more)

    async def _usage(self, users: set[int], now: datetime) -> Usage:
        """The counts fair dispatch needs for a batch's owners, read before the claim locks.

        Read beside the plan rather than inside the claim's transaction: it hides their cost
        behind the plan's, and holds no lock. Within a tick, each owner is counted once
        (:class:`~fair_dispatch.Tally`); the cap is a soft one (see :mod:`fair_dispatch`).
        """
        if not users:
            return Usage({}, {})
        async with self._engine.connect() as conn:
            return await fair_store.usage(conn, users, self._limits, now=now, at_claim=True)

    def _share_new_runs(
        self, runs: list[NewRun], owners: Mapping[int, int], tally: Tally
    ) -> list[NewRun]:
        """New runs within their owners' shares as they are; the others held or skipped.

        A firing beyond the hourly quota is recorded skipped with the reason; one beyond the
        cap waits unpublished (see :mod:`fair_dispatch`). Oldest firings first, per user.
        """
        owed = [Owed(i, owners.get(r.task_id)) for i, r in enumerate(runs) if r.run]
        shares = share(owed, tally.usage(), self._limits, at_claim=True)
        tally.keep(shares)
        if not shares.hold and not shares.skip:
            return runs
        held, skipped = set(shares.hold), set(shares.skip)
        reason = over_hour_reason(self._limits)
        for i in shares.skip:
            log.info(
                "event=run_skipped_over_quota task_id=%s scheduled_for=%s",
                runs[i].task_id,
                runs[i].scheduled_for.isoformat(),
            )
        return [
            replace(r, held=True)
            if i in held
            else replace(r, run=False, reason=reason)
            if i in skipped
            else r
            for i, r in enumerate(runs)
        ]

    async def _due_candidates(
        self, now: datetime, part: tuple[int, int]
    ) -> list[tuple[int, str, datetime, str, int]]:
        """Due active tasks, oldest first, read without locking (the claim locks them)."""
        index, parts = part
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
            .limit(self._settings.claim_batch)
        )
        if parts > 1:
            query = query.where(AITask.id % parts == index)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            (task_id, data, cast_due(due_at), catch_up, user_id)
            for task_id, data, due_at, catch_up, user_id in rows
        ]

    def _plan_batch(
        self,
        candidates: Sequence[tuple[int, str, datetime, str, int]],
        now: datetime,
        deadline: float,
    ) -> list[TaskPlan]:
        """Plan each candidate's due firings, oldest first, until ``deadline`` (at least one)."""
        plans: list[TaskPlan] = []
        for task_id, data, due_at, catch_up, _ in candidates:
            if plans and time.monotonic() > deadline:
                break
            plans.append(
                plan_task(
                    task_id,
                    data,
                    due_at,
                    now,
                    CatchUp(catch_up).value,
                    grace=self._grace,
                    limit=self._settings.catchup_limit,
                )
            )
        return plans

    async def _send(self, run_ids: Sequence[int], now: datetime) -> None:
        """Publish runs recorded as published; should the broker refuse, record them unsent.

        An unsent run (``published_at`` NULL, lease expired) is sent on the next tick whatever
        waits in the run queue. Should this process die between its commit and the publish,
        the runs' leases expire and :meth:`dispatch_owed` finds them.
        """
        if not run_ids:
            return
        try:
            self._publish(run_ids)
        except Exception:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(TaskRun)
                    .where(TaskRun.id.in_(list(run_ids)), TaskRun.state == RunState.QUEUED)
                    .values(published_at=None, lease_expires_at=now)
                    .execution_options(synchronize_session=False)
                )
            raise

    async def dispatch_owed(self, now: datetime) -> int:
        """Send runs owed a dispatch: unsent or lost queued runs, and retries now due.

        A queued run is owed when its dispatch lease has expired. Never published
        (``published_at`` NULL: ``run_now``, a publish that failed), it is sent at once. Sent
        and still unclaimed, its message was lost, or it still waits behind others (a burst,
        workers down). While messages wait in the run queue (``backlog``), the second is
        presumed (its lease is renewed: a copy of every waiting run per lease would multiply
        the workers' work), unless the queue has moved past it: a run published after it by
        more than :data:`REORDER_SLACK` is already running, so its own message, first in and
        first out, was taken by a worker that died before claiming it, or lost. With the queue
        empty, or the backlog unknown, it is sent again. A retry now due is always sent: it
        has no message yet. Returns the number of runs sent.

        Under fair dispatch (a limit set), runs never sent and retries are sent only within
        their owners' shares, round robin across users (:meth:`_owed_fairly`); the others
        keep waiting. A lost message is sent again as above: its run already counts as open.

        One select per state, so each walks its own ``(state, lease_expires_at)`` index range
        in order instead of sorting every owed run.
        """
        limit = self._settings.claim_batch
        fair = self._limits.active
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._settings.lease_margin_seconds)
            owed_queued = select(TaskRun.id, TaskRun.published_at).where(
                TaskRun.state == RunState.QUEUED, TaskRun.lease_expires_at <= now
            )
            if fair:
                owed_queued = owed_queued.where(TaskRun.published_at.is_not(None))
            queued = (
                await conn.execute(
                    owed_queued.order_by(TaskRun.lease_expires_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True, key_share=True)
                )
            ).all()
            ids = [run_id for run_id, published in queued if published is None]
            postponed: list[int] = []
            waiting = await self._waiting(len(ids) < len(queued))
            if waiting:
                passed = await _newest_running_publish(conn)
                for run_id, published in queued:
                    if published is None:
                        continue
                    if passed is not None and published + REORDER_SLACK < passed:
                        ids.append(run_id)
                    else:
                        postponed.append(run_id)
            else:
                ids += [run_id for run_id, published in queued if published is not None]
            if fair and len(queued) < limit:
                ids += await self._owed_fairly(conn, now, limit - len(queued))
            elif len(queued) < limit:
                ids += (
                    (
                        await conn.execute(
                            select(TaskRun.id)
                            .where(
                                TaskRun.state == RunState.RETRYING, TaskRun.lease_expires_at <= now
                            )
                            .order_by(TaskRun.lease_expires_at)
                            .limit(limit - len(queued))
                            .with_for_update(skip_locked=True, key_share=True)
                        )
                    )
                    .scalars()
                    .all()
                )
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
                    .values(
                        state=RunState.QUEUED, lease_expires_at=now + self._lease, published_at=now
                    )
                    .execution_options(synchronize_session=False)
                )
        if postponed:
            log.info("event=redispatch_postponed count=%s waiting=%s", len(postponed), waiting)
        if not ids:
            return 0
        await self._send(ids, now)
        log.info("event=runs_dispatched count=%s", len(ids))
        return len(ids)

    async def _owed_fairly(self, conn: AsyncConnection, now: datetime, limit: int) -> list[int]:
        """Runs never sent and retries now due, up to ``limit``, within their owners' shares.

        Locked ``SKIP LOCKED`` and taken round robin across users (:mod:`fair_store`); the
        ones :func:`~fair_dispatch.share` holds keep waiting, as data. Nothing is skipped here:
        a queued run over the hourly quota waits for the hour to allow it.
        """
        batch = await fair_store.owed_runs(conn, now=now, limits=self._limits, limit=limit)
        shares = share(batch.runs, batch.usage, self._limits, at_claim=False)
        if shares.hold:
            log.info("event=runs_waiting_for_room held=%s", len(shares.hold))
        return list(shares.send)

    async def _waiting(self, published_owed: bool) -> int | None:
        """The run queue's backlog, read only when a published run is owed (an idle tick, or
        one owing only unsent runs and retries, does no broker I/O)."""
        if not published_owed or self._backlog is None:
            return None
        return await asyncio.to_thread(self._backlog)

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
