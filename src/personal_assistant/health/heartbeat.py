"""Worker heartbeats: a live worker says so, and keeps the leases of the runs it holds.

Every worker process that claims runs beats from a thread of its own, every ``interval``
seconds, on a connection of its own. Each beat, in one short transaction:

* refreshes the process's row in ``worker_heartbeats`` (keyed by the ``worker_id`` written on
  the runs it claims, ``host:pid``): ``pa status`` reports a worker that stopped beating while
  it holds ``running`` runs (:mod:`personal_assistant.workers.utils.health`);
* renews the lease of every run the process holds (:class:`HeldRuns`, from before its claim
  until its outcome is stored) to ``now + lease``, with ``lease`` = :data:`STALE_AFTER_BEATS`
  intervals + ``LEASE_MARGIN``.

So a run's lease says whether its *worker* lives, not how long the run may take (the agent's
own timeout bounds that). Only a worker that vanished, was stopped (SIGSTOP, a frozen VM) or
lost the database for a whole lease loses its runs to the reaper; a slow agent or a blocked
event loop does not. The beat runs outside the event loop for that reason, and checks that the
loop still answers: a loop silent for longer than ``wedged_after`` is *wedged* (a bug, or
hostile input that escaped its bounds), so the process stops renewing and its runs go to
another worker, as if it had vanished. Renewing is a compare-and-set on ``(id, worker_id,
state = 'running')`` for the ids the process holds in memory: a run the reaper already took
back is not renewed, nor are the orphaned runs of a dead process that had the same
``host:pid`` (a restarted container).

A process also says what it is (:class:`Presence`): a worker's main process its queues, code
version and the Celery settings delivery depends on, written when it is ready; the scheduler
its role, from its tick. ``pa status`` and ``pa doctor`` read them to find a queue without a
live consumer, no live scheduler, or workers that disagree. A process that shuts down cleanly
deletes its row (:func:`leave`): a silent row is a process that died or was stopped.

The other kind of stall, a consumer that stops fetching messages while its loop is fine
(celery#8030), shows as queued runs that wait: the oldest-queued-run check covers it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.clock import utcnow
from personal_assistant.core.states import ProcessRole, RunState
from personal_assistant.database.dialect import dialect_insert, unindexed
from personal_assistant.database.engine import idle_in_transaction_limit, make_sync_engine
from personal_assistant.database.models import TaskRun, WorkerHeartbeat
from personal_assistant.health.liveness import STALE_AFTER_BEATS

__all__ = [
    "PRUNE_AFTER",
    "STALE_AFTER_BEATS",
    "Heartbeat",
    "HeldRuns",
    "Presence",
    "beat",
    "leave",
    "renew",
]

log = logging.getLogger(__name__)

#: Rows of processes silent this long are deleted (each process prunes once, at its start).
PRUNE_AFTER = timedelta(days=1)


def run_lease(interval: float, margin: float) -> timedelta:
    """How long a run stays leased to its worker without a beat."""
    return timedelta(seconds=STALE_AFTER_BEATS * interval + margin)


class HeldRuns:
    """The ids of the runs this process is claiming or running, shared by the loop and the beat.

    A multiset: two batches of the process may name the same run (a message delivered twice).
    """

    def __init__(self) -> None:
        self._runs: Counter[int] = Counter()
        self._lock = threading.Lock()

    def add(self, run_ids: Iterable[int]) -> None:
        with self._lock:
            self._runs.update(run_ids)

    def discard(self, run_ids: Iterable[int]) -> None:
        """Let go of ``run_ids`` once each; a run no batch holds any more is dropped. The cost
        is that of ``run_ids``, not of every run held (rebuilding the counter for each group
        written was 1.9 % of the worker's CPU with 2,000 runs in flight)."""
        with self._lock:
            runs = self._runs
            for run_id in run_ids:
                left = runs.get(run_id, 0) - 1
                if left > 0:
                    runs[run_id] = left
                else:
                    runs.pop(run_id, None)

    def snapshot(self) -> list[int]:
        with self._lock:
            return sorted(self._runs)

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)


@dataclass(frozen=True)
class Presence:
    """What a beating process is: its role, the queues it consumes (a worker's main process),
    its code version and the delivery settings it runs with."""

    role: ProcessRole = ProcessRole.WORKER
    queues: tuple[str, ...] = ()
    version: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "queues": ",".join(self.queues) or None,
            "version": self.version,
            "config": dict(self.config) or None,
        }


def beat(
    conn: Connection,
    worker_id: str,
    *,
    now: datetime,
    prune_before: datetime | None = None,
    presence: Presence | None = None,
) -> None:
    """Record that ``worker_id`` is alive at ``now`` (and what it is, when ``presence`` is
    given); optionally delete rows silent since ``prune_before``."""
    described = presence.columns() if presence is not None else {}
    insert = dialect_insert(conn, WorkerHeartbeat).values(
        worker_id=worker_id, started_at=now, beat_at=now, **described
    )
    updated = {"beat_at": insert.excluded.beat_at}
    updated.update({name: insert.excluded[name] for name in described})
    conn.execute(
        insert.on_conflict_do_update(index_elements=[WorkerHeartbeat.worker_id], set_=updated)
    )
    if prune_before is not None:
        conn.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < prune_before))


def leave(conn: Connection, worker_id: str) -> None:
    """Delete ``worker_id``'s row: the process is shutting down cleanly."""
    conn.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))


async def announce(
    engine: AsyncEngine, worker_id: str, *, now: datetime, presence: Presence
) -> None:
    """:func:`beat` on an async engine (the scheduler beats from its tick)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: beat(sync, worker_id, now=now, presence=presence))


async def depart(engine: AsyncEngine, worker_id: str) -> None:
    """:func:`leave` on an async engine."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: leave(sync, worker_id))


def renew(conn: Connection, run_ids: Sequence[int], *, worker_id: str, until: datetime) -> int:
    """Extend to ``until`` the leases of ``run_ids`` that ``worker_id`` holds; how many.

    Only runs still ``running`` under this worker are renewed: one the reaper took back, or
    another process claimed since, is not. Rows locked by a transaction in progress (this
    process's own claim or write, a reaper pass) are skipped, not waited for: the next beat
    renews them.
    """
    if not run_ids:
        return 0
    mine = (
        select(TaskRun.id)
        .where(
            TaskRun.id.in_(list(run_ids)),
            TaskRun.worker_id == worker_id,
            unindexed(TaskRun.state == RunState.RUNNING),
        )
        .with_for_update(skip_locked=True)
    )
    result = conn.execute(
        update(TaskRun)
        .where(TaskRun.id.in_(mine.scalar_subquery()))
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


class Heartbeat:
    """Beats for one worker process from a daemon thread, once :meth:`ensure_started`.

    ``database_url`` opens the beat's own connections (one per beat): a full pool or a busy
    event loop never delays it. ``clock`` is refreshed against the database on every beat.
    """

    def __init__(
        self,
        database_url: str,
        worker_id: str,
        *,
        interval: float,
        lease: timedelta,
        held: HeldRuns,
        wedged_after: float,
        stall_limit: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        measure: Callable[[Connection], None] | None = None,
    ) -> None:
        """``stall_limit``: how long a beat may sit idle in its transaction (``LEASE_MARGIN``).
        ``measure``, when given, reads the database's clock on each beat's connection (a
        :class:`~personal_assistant.database.clock.DatabaseClock`'s ``measure``)."""
        self._url = database_url
        self._measure = measure
        self._worker_id = worker_id
        self._interval = interval
        self._lease = lease
        self._held = held
        self._wedged_after = wedged_after
        self._stall_limit = stall_limit
        self._clock = clock
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_answered = time.monotonic()
        self._probe_pending = False
        self._first = True
        self._renewed_until: datetime | None = None
        #: What this process is, written with every beat once set (a worker when it is ready).
        self.presence: Presence | None = None

    def leased_until(self, at_least: datetime) -> datetime:
        """Until when the runs held are leased: the last renewal's end, or ``at_least``."""
        renewed = self._renewed_until
        return at_least if renewed is None or renewed < at_least else renewed

    @property
    def lease(self) -> timedelta:
        return self._lease

    def ensure_started(self) -> None:
        """Start beating (the first beat at once), unless already started; call on the loop
        whose health the beat watches."""
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
            self._loop_answered = time.monotonic()
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._beat_forever, name="pa-heartbeat", daemon=True
            )
            self._thread.start()

    async def stop(self, *, leave_row: bool = False) -> None:
        """Stop beating; ``leave_row``: delete this process's row too (a clean shutdown)."""
        thread = self._thread
        self._stop.set()
        if thread is not None:
            await asyncio.to_thread(thread.join, 10)
        self._thread = None
        if leave_row:
            await asyncio.to_thread(self._leave)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def beat_once(self) -> int:
        """One beat: the heartbeat row, the leases of the runs held; returns leases renewed."""
        if self._engine is None:
            self._engine = make_sync_engine(self._url)
        wedged = self._loop_wedged()
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Stopped (SIGSTOP) mid-beat, the process would keep its runs' rows locked, and
                # the reaper skips locked rows: PostgreSQL ends the beat after the margin.
                conn.execute(idle_in_transaction_limit(self._stall_limit))
            if self._measure is not None:
                self._measure(conn)
            now = self._clock()
            beat(
                conn,
                self._worker_id,
                now=now,
                prune_before=now - PRUNE_AFTER if self._first else None,
                presence=self.presence,
            )
            renewed = (
                0
                if wedged
                else renew(
                    conn, self._held.snapshot(), worker_id=self._worker_id, until=now + self._lease
                )
            )
        self._first = False
        if not wedged:
            self._renewed_until = now + self._lease
        return renewed

    def _leave(self) -> None:
        try:
            if self._engine is None:
                self._engine = make_sync_engine(self._url)
            with self._engine.begin() as conn:
                leave(conn, self._worker_id)
        except Exception:  # the database is away: the row goes silent, and is pruned later
            log.warning("event=heartbeat_leave_failed worker_id=%s", self._worker_id, exc_info=True)

    def _loop_wedged(self) -> bool:
        """Whether the watched loop has not answered for ``wedged_after``; probes it again."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        if not self._probe_pending:  # the last probe was answered: send another
            self._probe_pending = True
            loop.call_soon_threadsafe(self._answered)
            return False
        silent = time.monotonic() - self._loop_answered
        if silent > self._interval:
            log.warning(
                "event=loop_blocked worker_id=%s silent_s=%.1f held_runs=%s",
                self._worker_id,
                silent,
                len(self._held),
            )
        if silent > self._wedged_after:
            log.error(
                "event=loop_wedged worker_id=%s silent_s=%.1f detail=leases no longer renewed",
                self._worker_id,
                silent,
            )
            return True
        return False

    def _answered(self) -> None:
        self._loop_answered = time.monotonic()
        self._probe_pending = False

    def _beat_forever(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            started = time.monotonic()
            try:
                self.beat_once()
            except Exception:  # the database is away: try again at the next beat
                log.warning("event=heartbeat_failed worker_id=%s", self._worker_id, exc_info=True)
            delay = max(0.0, self._interval - (time.monotonic() - started))
