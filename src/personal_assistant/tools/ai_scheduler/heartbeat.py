"""Worker heartbeats: every worker process that claims runs says, at an interval, that it lives.

One row per process in ``worker_heartbeats``, keyed by the ``worker_id`` it writes on the runs
it claims (``host:pid``). :class:`Heartbeat` refreshes ``beat_at`` from a task on the process's
event loop, the loop the agent calls run on: a process that is stopped (SIGSTOP), frozen, or
whose loop is blocked stops beating. ``pa status`` then reports the worker, by its id, while it
holds ``running`` runs (:mod:`personal_assistant.workers.utils.health`); the reaper retries
those runs when their lease expires. The heartbeat only reports: it never decides who owns a
run, so a worker that beats late changes nothing.

The other kind of stall, a consumer that stops fetching messages while its loop is fine
(celery#8030), shows as queued runs that wait: the oldest-queued-run check covers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.database.models import WorkerHeartbeat
from personal_assistant.database.types import utcnow
from personal_assistant.tools.ai_scheduler.bulk import dialect_insert

__all__ = ["PRUNE_AFTER", "STALE_AFTER_BEATS", "Heartbeat", "beat"]

log = logging.getLogger(__name__)

#: A worker is reported stalled after this many intervals without a beat.
STALE_AFTER_BEATS = 3
#: Rows of processes silent this long are deleted (each process prunes once, at its start).
PRUNE_AFTER = timedelta(days=1)


async def beat(
    conn: AsyncConnection, worker_id: str, *, now: datetime, prune_before: datetime | None = None
) -> None:
    """Record that ``worker_id`` is alive at ``now``; optionally delete rows silent since before."""
    insert = dialect_insert(conn, WorkerHeartbeat).values(
        worker_id=worker_id, started_at=now, beat_at=now
    )
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[WorkerHeartbeat.worker_id], set_={"beat_at": insert.excluded.beat_at}
        )
    )
    if prune_before is not None:
        await conn.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < prune_before))


class Heartbeat:
    """Beats for one worker process, every ``interval`` seconds, once :meth:`ensure_started`."""

    def __init__(
        self,
        engine: AsyncEngine,
        worker_id: str,
        *,
        interval: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._worker_id = worker_id
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        """Start beating on the running loop (the first beat at once), unless already started."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._beat_forever(), name="pa-heartbeat"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _beat_forever(self) -> None:
        first = True
        while True:
            now = self._clock()
            try:
                async with self._engine.begin() as conn:
                    await beat(
                        conn,
                        self._worker_id,
                        now=now,
                        prune_before=now - PRUNE_AFTER if first else None,
                    )
                first = False
            except Exception:  # the database is away: try again at the next beat
                log.warning("event=heartbeat_failed worker_id=%s", self._worker_id, exc_info=True)
            await asyncio.sleep(self._interval)
