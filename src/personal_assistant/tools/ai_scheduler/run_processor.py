"""The worker's side of a run: claim a batch, run the agent for each, store the outcomes.

One message carries one or many run ids. The batch costs a handful of database round trips
whatever its size: one claim (a compare-and-set), one load, one write of all outcomes. Agent
calls run concurrently on the process's event loop. At most ``MAX_IN_FLIGHT`` runs are claimed
and unfinished in a process at once: capacity is reserved *before* the claim, so a claimed run
never waits for a slot while its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.database.types import utcnow
from personal_assistant.tools.ai_scheduler import run_store
from personal_assistant.tools.ai_scheduler.outcomes import RetryPolicy
from personal_assistant.tools.ai_scheduler.task_executor import TaskExecutor

log = logging.getLogger(__name__)


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
    """A weighted semaphore: at most ``limit`` runs reserved at once in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def reserve(self, count: int) -> AsyncIterator[None]:
        if not 0 < count <= self.limit:
            raise ValueError(f"cannot reserve {count} of {self.limit}")
        async with self._changed:
            await self._changed.wait_for(lambda: self._free >= count)
            self._free -= count
        try:
            yield
        finally:
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
        # The lease outlives the agent's timeout, so only a vanished worker loses its runs.
        self._lease = timedelta(
            seconds=settings.run_timeout_seconds + settings.lease_margin_seconds
        )

    async def process(self, run_ids: Sequence[int]) -> BatchReport:
        report = EMPTY
        step = self._capacity.limit
        for start in range(0, len(run_ids), step):
            chunk = run_ids[start : start + step]
            async with self._capacity.reserve(len(chunk)):
                report += await self._process(chunk)
        return report

    async def _process(self, run_ids: Sequence[int]) -> BatchReport:
        async with self._engine.begin() as conn:
            claimed = await run_store.claim(
                conn, run_ids, worker_id=self._worker_id, now=self._clock(), lease=self._lease
            )
        if not claimed:
            log.info("event=runs_not_claimed run_ids=%s", list(run_ids))
            return BatchReport(len(run_ids), 0, 0, 0, 0, 0, ())
        for run in claimed:
            log.info(
                "event=run_started run_id=%s task_id=%s attempt=%s",
                run.request.run_id,
                run.request.task_id,
                run.request.attempt,
            )
        outcomes = await asyncio.gather(*(self._executor.execute(run.request) for run in claimed))
        async with self._engine.begin() as conn:
            recorded = await run_store.record(
                conn,
                claimed,
                outcomes,
                now=self._clock(),
                policy=self._policy,
                pause_after=self._settings.pause_after_failures,
            )
        for outcome in outcomes:
            if outcome.ok:
                log.info(
                    "event=run_succeeded run_id=%s agent=%s", outcome.run_id, outcome.agent_name
                )
        return BatchReport(
            len(run_ids),
            len(claimed),
            recorded.succeeded,
            recorded.retrying,
            recorded.failed,
            recorded.stale,
            recorded.pending_notifications,
        )

    async def reap(self) -> tuple[int, tuple[int, ...]]:
        async with self._engine.begin() as conn:
            return await run_store.reap_expired(
                conn, now=self._clock(), pause_after=self._settings.pause_after_failures
            )
