"""The worker's side of a run: claim a batch, run the agent for each, store the outcomes.

One message carries one or many run ids. The batch costs a handful of database round trips
whatever its size: one claim (a compare-and-set), one load, one write of all outcomes. Agent
calls run concurrently on the process's event loop, bounded by ``MAX_IN_FLIGHT``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
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

    def as_dict(self) -> dict[str, int]:
        return {
            "requested": self.requested,
            "claimed": self.claimed,
            "succeeded": self.succeeded,
            "retrying": self.retrying,
            "failed": self.failed,
            "stale": self.stale,
        }


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
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        self._policy = RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds)
        # The lease outlives the agent's timeout, so only a vanished worker loses its runs.
        self._lease = timedelta(seconds=settings.run_timeout_seconds + 30)

    async def process(self, run_ids: Sequence[int]) -> BatchReport:
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
        outcomes = await asyncio.gather(*(self._execute(run) for run in claimed))
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
            else:
                log.warning(
                    "event=run_attempt_failed run_id=%s attempt=%s error=%r",
                    outcome.run_id,
                    outcome.attempt,
                    outcome.error,
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

    async def _execute(self, run: run_store.ClaimedRun) -> run_store.Outcome:
        async with self._in_flight:
            return await self._executor.execute(run.request)

    async def reap(self) -> tuple[int, tuple[int, ...]]:
        async with self._engine.begin() as conn:
            return await run_store.reap_expired(
                conn, now=self._clock(), pause_after=self._settings.pause_after_failures
            )
