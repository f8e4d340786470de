"""The per-process runtime: one long-lived event loop and the services that live on it.

Celery tasks are plain functions (Celery never awaits ``async def`` tasks). They hand their
coroutine to this process's loop, which runs in a daemon thread started on first use and
started afresh in a forked child, so that many runs can be in flight in one process while
Celery's threads wait. The database engine, the agent and the processor are created on that
loop and live as long as the process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.agents import build_agent
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.tools.ai_scheduler.notification_service import NotificationService
from personal_assistant.tools.ai_scheduler.run_processor import RunProcessor
from personal_assistant.tools.ai_scheduler.task_executor import TaskExecutor
from personal_assistant.tools.ai_scheduler.task_scheduler import Backlog, Publish, TaskScheduler

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` submits a coroutine and waits for it."""

    def __init__(self, name: str = "pa-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        loop = self._ensure()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def stop(self) -> None:
        with self._lock:
            if self._loop is not None and self._pid == os.getpid():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    processor: RunProcessor
    notifications: NotificationService


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Runtime:
    """This process's loop and services, built lazily (never at import)."""

    def __init__(self) -> None:
        self.loop = LoopThread()
        self._services: Services | None = None
        self._pid: int | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.loop.run(coro, timeout)

    def services(self, settings: Settings) -> Services:
        if self._services is None or self._pid != os.getpid():
            self._services = self.run(self._build(settings))
            self._pid = os.getpid()
        return self._services

    def scheduler(
        self, settings: Settings, publish: Publish, backlog: Backlog | None = None
    ) -> TaskScheduler:
        return TaskScheduler(self.services(settings).engine, settings, publish, backlog=backlog)

    async def _build(self, settings: Settings) -> Services:
        engine = make_async_engine(settings.database_url, pool_size=10)
        executor = TaskExecutor(build_agent(settings), timeout=settings.run_timeout_seconds)
        processor = RunProcessor(engine, executor, settings, worker_id=worker_id())
        notifications = NotificationService(
            engine, lease=timedelta(seconds=settings.delivery_lease_seconds)
        )
        return Services(settings, engine, processor, notifications)


runtime = Runtime()
