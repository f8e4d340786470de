"""The worker's side of a run: claim a batch, run the agent for each, store the outcomes.

One message carries one or many run ids. A message's runs start on the slots that are free
and the rest as slots come free (:class:`Capacity`); each such part costs a few database
round trips whatever its size: one claim (a compare-and-set, with the load of what the agent
needs) and one write per group of outcomes that come together (all of them, when the runs
answer at once). On PostgreSQL the claim, and a write of answers only, are one statement each,
sent outside a transaction (:meth:`RunProcessor._connection`). A run's
outcome is stored, and its slot given back, as soon as the write under way ends, never held
for a slower run of its part. Agent calls run concurrently on the process's event loop. At most
``MAX_IN_FLIGHT`` runs are claimed and unfinished in a process at once: slots are taken
*before* the claim, so a claimed run never waits for a slot while its lease runs out. From its
first batch on, the process beats (:mod:`~personal_assistant.health.heartbeat`), so that a
stalled worker is reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.database.clock import DatabaseClock
from personal_assistant.database.engine import limit_idle_in_transaction
from personal_assistant.health.heartbeat import Heartbeat, HeldRuns, run_lease
from personal_assistant.metrics import record as metrics
from personal_assistant.notifications.channels import IN_APP
from personal_assistant.runs import claims, reaping, results
from personal_assistant.runs.answer_groups import AnswerGroups
from personal_assistant.runs.executor import Outcome, TaskExecutor

log = logging.getLogger(__name__)

#: Pause before storing outcomes again after the database failed; it doubles, up to the max.
RECORD_RETRY_S = 0.25
RECORD_RETRY_MAX_S = 2.0
#: Once a run of a part answers while others still run, the answers that come within this
#: long join its write: a write costs a few milliseconds of the loop's CPU whatever its size
#: (a write per answer: 2.8 ms of worker CPU a run with 500 in flight and answers spread over
#: 1-3 s; grouped, 1.9 ms; one write per part, 0.5 ms, but each run held for the slowest).
GROUP_WAIT_S = 0.1


@dataclass(frozen=True)
class BatchReport:
    requested: int
    claimed: int
    succeeded: int
    retrying: int
    failed: int
    stale: int
    pending_notifications: tuple[int, ...]

    def __add__(self, other: BatchReport) -> BatchReport:
        return BatchReport(
            self.requested + other.requested,
            self.claimed + other.claimed,
            self.succeeded + other.succeeded,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.stale + other.stale,
            self.pending_notifications + other.pending_notifications,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "requested": self.requested,
            "claimed": self.claimed,
            "succeeded": self.succeeded,
            "retrying": self.retrying,
            "failed": self.failed,
            "stale": self.stale,
        }


EMPTY = BatchReport(0, 0, 0, 0, 0, 0, ())


class Capacity:
    """At most ``limit`` runs reserved at once in this process, granted in parts.

    A message takes the slots that are free, not all it wants: waiting until the whole
    message fitted left slots idle (a message of 100 runs waited while 33 were free, and 500
    runs in flight reached 77-79 % of their ceiling in ``benchmarks/latency_bound.py``, now
    87-90 %). Each part costs a claim and a write whatever its size, so slots are not handed
    out one by one: a part is at least ``limit // PART_SHARE`` runs (or the message's rest),
    or what came free within :attr:`PART_WAIT_S` of the first slot. Without that wait, slots
    fewer than a part stayed idle for good when slots came back a part at a time (34 of 2,000,
    from one wave to the next).
    """

    #: A part is at least this fraction of the slots, ...
    PART_SHARE = 50
    #: ... or what came free within this many seconds of the first free slot.
    PART_WAIT_S = 0.05

    def __init__(self, limit: int) -> None:
        self.least = max(1, limit // self.PART_SHARE)
        self._free = limit
        self._changed = asyncio.Condition()

    async def take(self, wanted: int) -> int:
        """Wait for free slots, then take up to ``wanted`` of them; returns how many."""
        if wanted < 1:
            raise ValueError(f"cannot take {wanted} slots")
        need = min(wanted, self.least)
        async with self._changed:
            while True:
                await self._changed.wait_for(lambda: self._free > 0)
                if self._free < need:
                    with suppress(TimeoutError):
                        async with asyncio.timeout(self.PART_WAIT_S):
                            await self._changed.wait_for(lambda: self._free >= need)
                if self._free > 0:  # another message may have taken them meanwhile
                    granted = min(wanted, self._free)
                    self._free -= granted
                    return granted

    async def give(self, count: int) -> None:
        """Give back ``count`` slots taken before."""
        async with self._changed:
            self._free += count
            self._changed.notify_all()


class RunProcessor:
    def __init__(
        self,
        engine: AsyncEngine,
        executor: TaskExecutor,
        settings: Settings,
        *,
        worker_id: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._executor = executor
        self._settings = settings
        self._worker_id = worker_id
        self._clock = clock
        self._capacity = Capacity(settings.max_in_flight)
        self._policy = RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds)
        # A run's lease says that its worker lives: each heartbeat renews it (see heartbeat).
        self._lease = run_lease(settings.heartbeat_interval_seconds, settings.lease_margin_seconds)
        self._delivery_lease = timedelta(seconds=settings.delivery_lease_seconds)
        self._held = HeldRuns()
        self.heartbeat = Heartbeat(
            engine.url.render_as_string(hide_password=False),
            worker_id,
            interval=settings.heartbeat_interval_seconds,
            lease=self._lease,
            held=self._held,
            # A loop silent for twice the longest a run may take is wedged, not busy.
            wedged_after=2 * (settings.run_timeout_seconds + settings.lease_margin_seconds),
            stall_limit=settings.lease_margin_seconds,
            clock=clock,
            measure=clock.measure if isinstance(clock, DatabaseClock) else None,
        )

    async def process(self, run_ids: Sequence[int]) -> BatchReport:
        """Claim, run and record ``run_ids``: as many at once as there are free slots, the
        rest as slots come free. Each part is claimed and recorded on its own; a part that
        fails does not stop the others, and the first failure is raised once all have ended."""
        self.heartbeat.ensure_started()  # from the first message on: this process claims runs
        parts: list[asyncio.Task[BatchReport]] = []
        rest = list(run_ids)
        try:
            while rest:
                granted = await self._capacity.take(len(rest))
                part, rest = rest[:granted], rest[granted:]
                parts.append(asyncio.create_task(self._process_part(part)))
        except BaseException:
            for task in parts:
                task.cancel()
            await asyncio.gather(*parts, return_exceptions=True)
            raise
        report = EMPTY
        failure: BaseException | None = None
        for result in await asyncio.gather(*parts, return_exceptions=True):
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                report += result
        if failure is not None:
            raise failure
        return report

    async def _process_part(self, run_ids: Sequence[int]) -> BatchReport:
        """Process runs whose slots were taken; each slot is given back once its run is
        recorded (or was not claimed), the rest when the part ends however it ends."""
        taken = len(run_ids)

        async def release(count: int) -> None:
            nonlocal taken
            taken -= count
            await self._capacity.give(count)

        try:
            return await self._process(run_ids, release)
        finally:
            if taken:
                await self._capacity.give(taken)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on runs that PostgreSQL ends if this process stalls in it.

        A process stopped or frozen between two statements keeps the rows it locked (runs it
        was claiming, recording or reaping): the dispatcher and the reaper skip locked rows, so
        those runs would wait for it however long it is gone. Idle in the transaction for
        ``LEASE_MARGIN`` (the time allowed for storing an outcome), it is presumed dead and its
        transaction rolled back: claimed runs are sent again, and running ones are retried when
        their lease ends. Should it resume, its connection is closed; the compare-and-set still
        decides what it may write.
        """
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._settings.lease_margin_seconds)
            yield conn

    @asynccontextmanager
    async def _connection(self, *, one_statement: bool) -> AsyncIterator[AsyncConnection]:
        """A connection for a claim or a write: in a transaction (:meth:`_transaction`) or,
        for one that is a single statement (atomic on its own), outside one. A transaction's
        ``BEGIN``, ``SET LOCAL`` and ``COMMIT`` are round trips that each run waited for
        between its answer and its next run's request (``tests/integration/test_round_trips.py``).
        """
        if not one_statement:
            async with self._transaction() as conn:
                yield conn
            return
        async with self._engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def _process(
        self, run_ids: Sequence[int], release: Callable[[int], Awaitable[None]]
    ) -> BatchReport:
        # Held from before the claim: should the loop stall between the claim's commit and the
        # next line, the heartbeat already renews the runs this process claimed.
        self._held.add(run_ids)
        held = Counter(run_ids)
        try:
            claimed_at = self._clock()
            one_statement = claims.in_one_statement(self._engine.dialect.name)
            async with self._connection(one_statement=one_statement) as conn:
                claimed = await claims.claim(
                    conn, run_ids, worker_id=self._worker_id, now=claimed_at, lease=self._lease
                )
            if len(claimed) < len(run_ids):
                await release(len(run_ids) - len(claimed))
            if not claimed:
                log.info("event=runs_not_claimed run_ids=%s", list(run_ids))
                return BatchReport(len(run_ids), 0, 0, 0, 0, 0, ())
            metrics.lateness(
                (claimed_at - run.request.scheduled_for).total_seconds()
                for run in claimed
                if run.request.attempt == 1
            )

            async def stored(group: Sequence[claims.ClaimedRun]) -> None:
                ids = [run.request.run_id for run in group]
                self._held.discard(ids)
                held.subtract(ids)
                await release(len(group))

            outcomes = await self._run_claimed(claimed, claimed_at, stored)
            return BatchReport(len(run_ids), len(claimed), 0, 0, 0, 0, ()) + outcomes
        finally:
            self._held.discard(list((+held).elements()))

    async def _run_claimed(
        self,
        claimed: Sequence[claims.ClaimedRun],
        claimed_at: datetime,
        stored: Callable[[Sequence[claims.ClaimedRun]], Awaitable[None]],
    ) -> BatchReport:
        """Run the agent for each claimed run and store the outcomes as they come: those that
        came while the last write was under way go in the next one. ``stored`` is called with
        each group once it is written.

        One write for a whole part kept every run of it ``running``, its answer unseen by its
        owner and its slot taken, until the slowest run of the part answered: with a real model,
        whose answers take from one second to the agent's timeout, one slow answer held up to a
        hundred others. When the runs answer together (the offline agent, or the fixed-delay
        server of ``benchmarks/latency_bound.py``) they are still written at once.
        """
        for run in claimed:
            log.info(
                "event=run_started run_id=%s task_id=%s attempt=%s",
                run.request.run_id,
                run.request.task_id,
                run.request.attempt,
            )
        answers = [asyncio.ensure_future(self._executor.execute(run.request)) for run in claimed]
        metrics.in_flight(len(answers))
        unstored = len(answers)
        report = EMPTY
        try:
            async for indexes in AnswerGroups(answers, wait_s=GROUP_WAIT_S):
                group = [claimed[i] for i in indexes]
                outcomes = [answers[i].result() for i in indexes]
                report += await self._store(group, outcomes, claimed_at)
                metrics.in_flight(-len(group))
                unstored -= len(group)
                await stored(group)
            return report
        finally:
            metrics.in_flight(-unstored)
            running = [answer for answer in answers if not answer.done()]
            for answer in running:
                answer.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _store(
        self, group: Sequence[claims.ClaimedRun], outcomes: Sequence[Outcome], claimed_at: datetime
    ) -> BatchReport:
        """Write one group's outcomes and count them (their ``requested`` and ``claimed`` are
        the part's, counted by :meth:`_process`)."""
        self._executor.count(outcomes)  # the agent was called, whether the write succeeds
        recorded = await self._record(
            group, outcomes, until=lambda: self.heartbeat.leased_until(claimed_at + self._lease)
        )
        took = (self._clock() - claimed_at).total_seconds()
        metrics.runs_finished(
            (recorded.outcomes[run.request.run_id], run.request.task_type, took)
            for run in group
            if run.request.run_id in recorded.outcomes
        )
        metrics.delivered(IN_APP, recorded.delivered)
        for outcome in outcomes:
            if outcome.ok:
                log.info(
                    "event=run_succeeded run_id=%s agent=%s", outcome.run_id, outcome.agent_name
                )
        return BatchReport(
            0,
            0,
            recorded.succeeded,
            recorded.retrying,
            recorded.failed,
            recorded.stale,
            recorded.pending_notifications,
        )

    async def _record(
        self,
        claimed: Sequence[claims.ClaimedRun],
        outcomes: Sequence[Outcome],
        *,
        until: Callable[[], datetime],
    ) -> results.Recorded:
        """Store the outcomes; while the database cannot be reached, or no connection of the
        pool is free, try again until ``until``.

        The agent's answers are worth keeping. Were the write simply dropped (a database
        restart between the claim and the write, or every pooled connection busy for the
        pool's timeout), the runs would stay ``running`` until their lease ends (``until()``:
        the heartbeat renews it while this process lives and reaches the database) and the
        reaper retried them, calling the agent again. Writing again is safe: ``record`` writes
        only the runs this attempt still owns, so a write that committed before its connection
        broke, or a run the reaper took back, is counted stale.
        """
        pause = RECORD_RETRY_S
        while True:
            try:
                one_statement = results.in_one_statement(self._engine.dialect.name, outcomes)
                async with self._connection(one_statement=one_statement) as conn:
                    return await results.record(
                        conn,
                        claimed,
                        outcomes,
                        now=self._clock(),
                        policy=self._policy,
                        pause_after=self._settings.pause_after_failures,
                        delivery_lease=self._delivery_lease,
                    )
            except (OperationalError, InterfaceError, PoolTimeout, DBAPIError) as exc:
                if not _worth_retrying(exc) or self._clock() + timedelta(seconds=pause) >= until():
                    raise
                log.warning(
                    "event=outcomes_not_stored run_ids=%s retry_in=%.2f error=%s",
                    [run.request.run_id for run in claimed],
                    pause,
                    type(getattr(exc, "orig", None) or exc).__name__,
                )
                await asyncio.sleep(pause)
                pause = min(2 * pause, RECORD_RETRY_MAX_S)

    async def reap(self) -> tuple[int, tuple[int, ...]]:
        """Retry or fail the runs whose lease ended; a retry waits this processor's backoff."""
        async with self._transaction() as conn:
            reaped = await reaping.reap(
                conn,
                now=self._clock(),
                policy=self._policy,
                pause_after=self._settings.pause_after_failures,
                delivery_lease=self._delivery_lease,
            )
        metrics.reaped(reaped.retried, reaped.failed)
        metrics.delivered(IN_APP, reaped.delivered)
        return reaped.count, reaped.pending_notifications


def _worth_retrying(exc: Exception) -> bool:
    """A write that failed for want of a connection (lost, ended by the server, none free)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    # e.g. the server ended a transaction left idle (a loop blocked mid-write): its session is
    # gone, so the connection is invalidated and the next try gets a new one.
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
