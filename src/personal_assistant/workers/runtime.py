"""The per-process runtime: one long-lived event loop and the services that live on it.

Celery tasks are plain functions (Celery never awaits ``async def`` tasks). They hand their
coroutine to this process's loop, which runs in a daemon thread started on first use and
started afresh in a forked child, so that many runs can be in flight in one process while
Celery's threads wait. The database engine, the agent and the processor are created on that
loop and live as long as the process.

Work whose size a user controls (a calendar feed's sync, a data export) runs on a second loop,
:attr:`Runtime.bulk`, with an engine of its own. On one loop, the steps of 16 feed syncs took
turns with a run's steps, and another user's run took 0.1-0.25 s instead of 0.03 s
(``tests/chaos/test_hostile_feeds.py``). On a loop of its own, a bulk step never queues ahead
of a run's; the two loops still share the interpreter's lock, which is why production runs
``ai_tasks`` on workers of their own (docs/security.md, "One worker for every queue").

Both loops are uvloop's where it is installed (a dependency on Linux and macOS;
:func:`new_event_loop`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.agents.factory import build_agent
from personal_assistant.channel_keys import optional_cipher
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.database.clock import DatabaseClock
from personal_assistant.database.engine import make_async_engine
from personal_assistant.notifications.delivery import NotificationService
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import RunProcessor
from personal_assistant.runs.scheduler import (
    BURST_CLAIMERS,
    TaskScheduler,
)
from personal_assistant.workers.dispatch import run_backlog, run_publisher

T = TypeVar("T")

log = logging.getLogger(__name__)

#: A scheduling process measures the database's clock again after this many seconds.
CLOCK_REFRESH_S = 30.0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's where it is installed, else asyncio's.

    A worker's loop holds every run in flight. With 2,000 of them in one process, each wave of
    answers keeps the loop busy while the next requests wait for it: on uvloop the worker used
    10-20 % less CPU and reached 89.7-89.9 % of the ceiling instead of 86.9-88.6 % (three runs
    each, ``benchmarks/latency_bound.py``).
    """
    try:
        import uvloop
    except ImportError:  # Windows, or a platform without its wheel
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` submits a coroutine and waits for it."""

    def __init__(self, name: str = "pa-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        loop = self._ensure()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and close it once its thread has ended."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is not None and thread is not None and self._pid == os.getpid():
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
                if not thread.is_alive():
                    loop.close()
            self._loop = self._thread = None


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    processor: RunProcessor
    notifications: NotificationService


#: Connections the process uses besides its tasks': a reading of the database's clock (the
#: heartbeat, which renews leases, opens connections of its own, outside this pool).
BACKGROUND_CONNECTIONS = 1


def pool_limits(settings: Settings) -> tuple[int, int]:
    """``(pool_size, max_overflow)`` for a process's engine: enough that no checkout waits.

    Every database user of a worker is a Celery task (runs, deliveries, the reaper, syncs,
    the scheduler step) waiting for its coroutine on this process's loop, and each holds one
    connection at a time, except a scheduler step, whose burst claims on ``BURST_CLAIMERS``
    connections at once. So at most ``tasks`` transactions from tasks, where ``tasks`` is
    ``WORKER_CONCURRENCY`` with the threads pool and 1 with prefork or solo (each child
    process has an engine of its own), plus a clock reading in the background:

    - ``pool_size = tasks + BACKGROUND_CONNECTIONS``: every task in a transaction at once,
      kept open between uses (a pool opens connections only when asked for them);
    - ``max_overflow = tasks * (BURST_CLAIMERS - 1)``: every task in a scheduler burst at once,
      opened for the burst and closed after it.

    Should a checkout still wait past the pool's timeout, a run's outcome is written again
    while its lease lasts (``RunProcessor._record``).
    """
    tasks = _task_slots(settings)
    return tasks + BACKGROUND_CONNECTIONS, tasks * (BURST_CLAIMERS - 1)


def bulk_pool_limits(settings: Settings) -> tuple[int, int]:
    """``(pool_size, max_overflow)`` of the bulk engine: one connection kept, and one for each
    task that may hold one at once (bulk work is rare: its connections are not kept)."""
    return 1, _task_slots(settings) - 1


def _task_slots(settings: Settings) -> int:
    """Celery tasks one process runs at once: each child of prefork or solo has its own."""
    return settings.worker_concurrency if settings.worker_pool == "threads" else 1


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Runtime:
    """This process's loop and services, built lazily (never at import)."""

    def __init__(self, host_clock: Callable[[], datetime] = utcnow) -> None:
        self.loop = LoopThread()
        #: The loop of work whose size a user controls (module doc).
        self.bulk = LoopThread("pa-bulk")
        self._services: Services | None = None
        self._pid: int | None = None
        self._bulk_engine: AsyncEngine | None = None
        self._bulk_pid: int | None = None
        self._build_lock = threading.Lock()
        #: The database's clock, read on this host: every "now" of this process comes from it.
        self.clock = DatabaseClock(host_clock)

    def now(self, settings: Settings) -> datetime:
        """The time as the database has it, measured again when the last reading is old.

        A worker process re-measures on every heartbeat; a process that only schedules (beat)
        re-measures here, at most every :data:`CLOCK_REFRESH_S`. Should the database be away,
        the last offset stands.
        """
        services = self.services(settings)
        age = self.clock.age()
        if age is None or age > CLOCK_REFRESH_S:
            try:
                self.run(_measure(services.engine, self.clock), timeout=CLOCK_REFRESH_S)
            except Exception:
                log.warning("event=clock_not_measured", exc_info=True)
        return self.clock()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.loop.run(coro, timeout)

    def run_bulk(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the bulk loop; it must use :meth:`bulk_engine`, not the services'."""
        return self.bulk.run(coro, timeout)

    def bulk_engine(self, settings: Settings) -> AsyncEngine:
        """The engine of the bulk loop (an engine's connections belong to one loop)."""
        with self._build_lock:
            if self._bulk_engine is None or self._bulk_pid != os.getpid():
                pool_size, max_overflow = bulk_pool_limits(settings)
                self._bulk_engine = make_async_engine(
                    settings.database_url, pool_size=pool_size, max_overflow=max_overflow
                )
                self._bulk_pid = os.getpid()
            return self._bulk_engine

    def services(self, settings: Settings) -> Services:
        """This process's services, built by the first caller; the others wait for it.

        A worker's Celery threads start together: unlocked, each built its own engine and
        processor (16 threads, 16 times the ``MAX_IN_FLIGHT`` cap). The lock is held while
        the loop thread builds; that never deadlocks because nothing on the loop calls this.
        """
        with self._build_lock:
            if self._services is None or self._pid != os.getpid():
                self._services = self.run(self._build(settings))
                self._pid = os.getpid()
            return self._services

    def scheduler(self, app: Celery, settings: Settings) -> TaskScheduler:
        """A scheduler on this process's engine that publishes run ids through ``app`` and reads
        the queue's backlog from it: the one place its publisher is wired."""
        publish = run_publisher(app, per_message=settings.runs_per_message)
        engine = self.services(settings).engine
        return TaskScheduler(engine, settings, publish, backlog=run_backlog(app))

    async def _build(self, settings: Settings) -> Services:
        pool_size, max_overflow = pool_limits(settings)
        engine = make_async_engine(
            settings.database_url, pool_size=pool_size, max_overflow=max_overflow
        )
        executor = TaskExecutor(
            build_agent(settings),
            timeout=settings.run_timeout_seconds,
            model=settings.agent_model if settings.agent == "openai" else None,
        )
        try:
            await _measure(engine, self.clock)
        except Exception:  # the database is away: its own errors come from the first real use
            log.warning("event=clock_not_measured", exc_info=True)
        processor = RunProcessor(
            engine, executor, settings, worker_id=worker_id(), clock=self.clock
        )
        notifications = NotificationService(
            engine,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
            clock=self.clock,
            cipher=optional_cipher(settings),
            outbound=settings.outbound_policy,
        )
        return Services(settings, engine, processor, notifications)


async def _measure(engine: AsyncEngine, clock: DatabaseClock) -> None:
    async with engine.connect() as conn:
        await clock.ameasure(conn)


runtime = Runtime()
