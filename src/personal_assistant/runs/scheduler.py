"""The scheduling logic: claim due tasks, record their runs, send owed runs to the workers.

``tick(now)`` is one step: it claims every due task in batches, inserts one run per firing and
advances ``next_run_at`` in the same transaction, then, after commit, hands the new run ids to
``publish``. It also sends runs that are owed a dispatch (never sent, due for a retry, or whose
message was lost) and returns the seconds until the next thing is due. Any number of
schedulers may tick at once: the unique key ``(task_id, scheduled_for)`` makes a duplicate run
impossible, and ``SKIP LOCKED`` keeps them from waiting on each other.

A claim plans before it locks (:meth:`TaskScheduler.claim_due`): catch-up after downtime can
cost tens of milliseconds a task, and PostgreSQL counts the client's time inside a transaction
as idle. The plan is made once per distinct schedule and due instant, in a thread, off the
event loop (which may hold a worker's runs), unless it is a burst's few plans; the claim then
locks the planned tasks and keeps those whose ``next_run_at`` has not moved (:mod:`due_tasks`,
:mod:`plans`).

A run records when its message was published (``published_at``). One never published (a
``run_now`` run, a publish that failed) is sent on the next tick. One published and still
unclaimed after ``DISPATCH_LEASE`` is sent again only when its message may be lost: while
messages wait in the run queue (``backlog``), its own is presumed among them and its lease is
renewed, unless the queue has visibly moved past it (:mod:`dispatch`).

A scheduler that stalls inside one of its transactions (stopped, frozen, its broker read hung)
holds the tasks or runs it locked, and the others skip them. PostgreSQL ends such a transaction
after ``LEASE_MARGIN`` idle (:func:`limit_idle_in_transaction`): the rows are claimed by
another scheduler, and the stalled one finds its connection closed should it resume.

Runs enter the broker within their owner's share (:mod:`fair_dispatch`: ``USER_DISPATCH_LIMIT``
runs open per user, ``MAX_RUNS_PER_HOUR``): a claim records a user's runs beyond it unpublished,
owed a tick interval later, and :meth:`TaskScheduler.dispatch_owed` sends them round robin
across users as room frees. While owed runs wait for room, the tick looks at them again once
per tick interval, not in a loop. With both limits at 0, every run is sent at once, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.core.states import RunState, TaskStatus
from personal_assistant.database.engine import limit_idle_in_transaction
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.metrics import record as metrics
from personal_assistant.runs import claim_at_once, dispatch, due_tasks, fair_store
from personal_assistant.runs.due_tasks import ClaimReport, Cursor
from personal_assistant.runs.fair_dispatch import Limits, Tally, Usage
from personal_assistant.runs.plans import (
    Candidate,
    NewRun,
    TaskPlan,
    distinct_plans,
    new_runs,
    plan_batch,
    within_shares,
)

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[int]], None]
#: How many messages wait in the broker's run queue for a worker; None when it cannot tell.
Backlog = Callable[[], int | None]

#: A tick never claims for longer than this before returning (it returns 0: call again).
TICK_BUDGET_S = 2.0
#: Concurrent claimers during a burst on PostgreSQL (see ``_claim_all``).
BURST_CLAIMERS = 3
#: A burst's owners' counts are kept across the ticks it takes, for at most this long (see
#: ``_claim_all``).
BURST_TALLY_S = 30.0
#: A claim plans for at most this long (at least one task) before it claims what it planned.
PLAN_BUDGET_S = 1.0
#: How long a tick waits when the due tasks are held by another scheduler's claim.
CONTENDED_DELAY_S = 0.05
#: A batch due within the grace with at most this many distinct plans is planned on the loop.
INLINE_PLANS = 8

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
        #: During a burst's claims: its owners' counts, each read once (see ``_claim_all``),
        #: and when they were first read.
        self._tally: Tally | None = None
        self._tally_since = 0.0

    async def tick(self, now: datetime) -> float:
        """Claim and dispatch what is due at ``now``; return seconds until the next due work.

        When nothing is due (the usual case) this is a single read. Due tasks that another
        scheduler holds (locked, being claimed) are not spun on: the tick asks to be called
        again after :data:`CONTENDED_DELAY_S`.
        """
        started = time.monotonic()
        try:
            return await self._tick_once(now, started)
        finally:
            metrics.tick(time.monotonic() - started)

    async def _tick_once(self, now: datetime, started: float) -> float:
        next_task, next_owed = await self._next_due()
        contended = False
        if next_task is None or next_task > now:
            self._tally = None  # no burst goes on
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
        another plans its batch. SQLite has one writer at a time, so one claimer there. Each
        claimer reads on from where its last read stopped (``after``: see
        :func:`~due_tasks.candidates`); the next tick reads from the start again.
        """

        async def drain(part: tuple[int, int], after: Cursor | None) -> tuple[bool, int]:
            claimed = 0
            while True:
                report = await self.claim_due(now, part=part, after=after)
                claimed += report.tasks
                if not report.more:
                    return True, claimed
                if time.monotonic() - started > TICK_BUDGET_S:
                    return False, claimed
                after = report.last

        self._keep_or_start_tally()
        try:
            first = await self.claim_due(now)
            if not first.more:
                self._tally = None
                return first.tasks
            claimers = BURST_CLAIMERS if self._engine.dialect.name == "postgresql" else 1
            results = await asyncio.gather(
                *(drain((k, claimers), first.last) for k in range(claimers))
            )
        except BaseException:
            self._tally = None
            raise
        if not all(done for done, _ in results):
            return None  # the burst goes on in the next tick, with the same tally
        self._tally = None
        return first.tasks + sum(n for _, n in results)

    def _keep_or_start_tally(self) -> None:
        """The owners' counts a burst's claims decide from (fair dispatch), read once per
        owner: kept across the ticks of one burst (a tick stops claiming after
        :data:`TICK_BUDGET_S`; at 1,000,000 tasks due at once, reading the counts of 10,000
        owners again each tick was a fifth of the claimers' time), at most
        :data:`BURST_TALLY_S`. Nothing else sends runs until the burst is claimed (owed runs
        are dispatched after it), and runs that finish meanwhile are still counted: the safe
        side, a run held a little longer (:class:`~fair_dispatch.Tally`)."""
        if not self._limits.active:
            self._tally = None
            return
        if self._tally is None or time.monotonic() - self._tally_since > BURST_TALLY_S:
            self._tally = Tally()
            self._tally_since = time.monotonic()

    async def claim_due(
        self, now: datetime, *, part: tuple[int, int] = (0, 1), after: Cursor | None = None
    ) -> ClaimReport:
        """One batch: read due tasks, plan their firings, then claim and record them at once.

        The plan (catch-up after downtime can be tens of milliseconds a task) is made before
        the claiming transaction, in a thread: PostgreSQL counts the client's time between
        statements as idle (``LEASE_MARGIN``), and the event loop may hold runs. The claim then
        locks the planned tasks ``SKIP LOCKED`` and keeps those whose ``next_run_at`` is still
        the one planned from (compare-and-set): a task claimed meanwhile by another scheduler is
        left to it. ``part`` = ``(k, n)`` reads only task ids ``= k (mod n)``;
        ``after``, only the due tasks after that one (in ``(next_run_at, id)`` order).
        """
        async with self._engine.connect() as conn:
            candidates = await due_tasks.candidates(
                conn, now, part=part, limit=self._settings.claim_batch, after=after
            )
        if not candidates:
            return ClaimReport(0, 0, 0)
        owners = {task_id: user_id for task_id, _, _, _, user_id in candidates}
        plans, tally = await self._plan(candidates, owners, now)
        more = len(plans) < len(candidates) or len(candidates) >= self._settings.claim_batch
        kept, runs, new_run_ids = await self._claim(plans, owners, tally, now)
        if not kept:
            return ClaimReport(0, 0, 0, more=False)
        await self._send(new_run_ids, now)
        report = _claimed(
            kept, runs, new_run_ids, more=more, last=(plans[-1].due_at, plans[-1].task_id)
        )
        metrics.runs_created(report.runs, report.skipped)
        return report

    async def _claim(
        self,
        plans: Sequence[TaskPlan],
        owners: Mapping[int, int],
        tally: Tally | None,
        now: datetime,
    ) -> tuple[list[TaskPlan], list[NewRun], list[int]]:
        """Claim a planned batch: the plans of the tasks claimed, their runs, and the ids of
        the runs to publish.

        On PostgreSQL a batch whose tasks all go on is claimed in one statement, outside a
        transaction (:mod:`claim_at_once`); fair dispatch then shares out the runs of every
        planned task before it: a task another scheduler claimed meanwhile (rare: schedulers
        read their own parts of a burst) still counts in this burst's tally, the safe side (a
        run held a little longer). Any other batch is claimed in a transaction
        (:func:`due_tasks.lock_planned`, then :func:`due_tasks.record`).
        """
        lease, hold = now + self._lease, now + self._tick
        if claim_at_once.in_one_statement(self._engine.dialect.name, plans):
            runs = self._within_shares(new_runs(plans), owners, tally)
            async with self._engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                claimed, new_run_ids = await claim_at_once.claim(
                    conn, plans, runs, now=now, lease=lease, owners=owners, hold=hold
                )
            kept = [p for p in plans if p.task_id in claimed]
            return kept, [r for r in runs if r.task_id in claimed], new_run_ids
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._settings.lease_margin_seconds)
            kept = await due_tasks.lock_planned(conn, plans)
            if not kept:
                return [], [], []
            runs = self._within_shares(new_runs(kept), owners, tally)
            new_run_ids = await due_tasks.record(
                conn, kept, runs, now=now, lease=lease, owners=owners, hold=hold
            )
        return kept, runs, new_run_ids

    def _within_shares(
        self, runs: list[NewRun], owners: Mapping[int, int], tally: Tally | None
    ) -> list[NewRun]:
        return runs if tally is None else within_shares(runs, owners, tally, self._limits)

    async def _plan(
        self, candidates: Sequence[Candidate], owners: Mapping[int, int], now: datetime
    ) -> tuple[list[TaskPlan], Tally | None]:
        """Plan the candidates in a thread; under fair dispatch, meanwhile read the counts of
        their owners not yet in the tick's tally. Returns the plans and that tally."""
        deadline = time.monotonic() + PLAN_BUDGET_S

        def plan() -> list[TaskPlan]:
            return plan_batch(
                candidates, now, deadline, grace=self._grace, limit=self._settings.catchup_limit
            )

        # A burst due just now on a few schedules plans in well under a millisecond, less than
        # a thread's hand-off and its contention for the GIL with this loop; catch-up (tasks
        # due before the grace) or many schedules are planned in the thread.
        recent = all(due_at >= now - self._grace for _, _, due_at, _, _ in candidates)
        inline = recent and distinct_plans(candidates) <= INLINE_PLANS
        planning = _ready(plan()) if inline else asyncio.to_thread(plan)
        if not self._limits.active:
            return await planning, None
        tally = self._tally or Tally()
        missing = tally.missing(owners.values())
        plans, counted = await asyncio.gather(planning, self._usage(missing, now))
        tally.learn(missing, counted)
        return plans, tally

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
                await dispatch.mark_unsent(conn, run_ids, now=now)
            raise

    async def dispatch_owed(self, now: datetime) -> int:
        """Send runs owed a dispatch: unsent or lost queued runs, and retries now due.

        A queued run is owed when its dispatch lease has expired. Never published
        (``published_at`` NULL: ``run_now``, a publish that failed), it is sent at once. Sent
        and still unclaimed, its message was lost, or it still waits behind others (a burst,
        workers down). While messages wait in the run queue (``backlog``), the second is
        presumed (its lease is renewed: a copy of every waiting run per lease would multiply
        the workers' work), unless the queue has moved past it
        (:func:`~dispatch.resend_or_postpone`). With the queue empty, or the backlog unknown,
        it is sent again. A retry now due is always sent: it has no message yet. Returns the
        number of runs sent.

        Under fair dispatch (a limit set), runs never sent and retries are sent only within
        their owners' shares, round robin across users (:func:`~dispatch.owed_fairly`); the
        others keep waiting. A lost message is sent again as above: its run already counts as
        open.
        """
        limit = self._settings.claim_batch
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._settings.lease_margin_seconds)
            queued = await dispatch.owed_queued(conn, now, limit=limit, fair=self._limits.active)
            waiting = await self._waiting(any(sent is not None for _, sent in queued))
            passed = await dispatch.newest_running_publish(conn) if waiting else None
            ids, postponed = dispatch.resend_or_postpone(
                queued, waiting=bool(waiting), passed=passed
            )
            room = limit - len(queued)
            if room > 0 and self._limits.active:
                ids += await dispatch.owed_fairly(conn, now, limits=self._limits, limit=room)
            elif room > 0:
                ids += await dispatch.due_retries(conn, now, limit=room)
            await dispatch.mark_sent(conn, ids, postponed, now=now, lease=self._lease)
        if postponed:
            log.info("event=redispatch_postponed count=%s waiting=%s", len(postponed), waiting)
        if not ids:
            return 0
        await self._send(ids, now)
        log.info("event=runs_dispatched count=%s", len(ids))
        return len(ids)

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


async def _ready(value: list[TaskPlan]) -> list[TaskPlan]:
    return value


def _claimed(
    kept: Sequence[TaskPlan],
    runs: Sequence[NewRun],
    new_run_ids: Sequence[int],
    *,
    more: bool,
    last: Cursor,
) -> ClaimReport:
    """Log a claim (firings dropped by catch-up, tasks and runs claimed) and report it."""
    for plan in kept:
        if plan.dropped:
            log.warning("event=catchup_dropped task_id=%s dropped=%s", plan.task_id, plan.dropped)
    skipped = sum(not r.run for r in runs)
    held = sum(r.held for r in runs)
    log.info(
        "event=tasks_claimed tasks=%s runs=%s skipped=%s held=%s",
        len(kept),
        len(new_run_ids) + held,
        skipped,
        held,
    )
    return ClaimReport(len(kept), len(new_run_ids) + held, skipped, more=more, last=last)
