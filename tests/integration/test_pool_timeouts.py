"""An agent's answer survives a connection pool that is full when it is stored.

A worker's engine is shared by every Celery thread, the heartbeat and the deliveries. When all
its connections were checked out as outcomes were recorded, SQLAlchemy's ``TimeoutError``
("QueuePool limit ... reached") escaped ``RunProcessor._record``: the answer was dropped, the
run stayed ``running`` until its lease ended, and the agent was asked again. The write is now
tried again while the lease lasts, as after a database restart.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.config import Settings
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import BatchReport, RunProcessor
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

POOL_TIMEOUT = 2.0  # seconds a checkout waits for a free connection
HOLD = 3 * POOL_TIMEOUT  # the only connection is busy this long after the agent answers


class AnswerWhilePoolIsBusy:
    """An agent that answers once another task holds the pool's only connection."""

    name = "offline"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.calls = 0
        self.holder: asyncio.Task[None] | None = None

    async def complete(self, request: AgentRequest) -> AgentReply:
        self.calls += 1
        holding = asyncio.Event()
        self.holder = asyncio.create_task(self._hold(holding))
        await asyncio.wait_for(holding.wait(), timeout=30)
        return AgentReply(text=f"answer for run {request.run_id}", model="m")

    async def _hold(self, holding: asyncio.Event) -> None:
        async with self.engine.connect():
            holding.set()
            await asyncio.sleep(HOLD)

    async def aclose(self) -> None:
        return None


async def _queued_run(settings: Settings) -> int:
    async with AITaskManager(settings) as manager:
        user = await manager.create_user("Noor")
        at = datetime.now(UTC) + timedelta(days=1)
        task = await manager.create_task(
            user.id, "Digest", schedule={"kind": "once", "at": at.isoformat()}
        )
        return (await manager.run_now(task.id, user.id)).id


async def _process(settings: Settings, run_id: int) -> tuple[BatchReport, int]:
    url = make_url(settings.database_url).set(drivername="postgresql+psycopg")
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT)
    agent = AnswerWhilePoolIsBusy(engine)
    processor = RunProcessor(
        engine,
        TaskExecutor(agent, timeout=settings.run_timeout_seconds),
        settings,
        worker_id="test:1",
    )
    try:
        report = await processor.process([run_id])
        return report, agent.calls
    finally:
        await processor.heartbeat.stop()
        if agent.holder is not None:
            await agent.holder
        await engine.dispose()


def test_outcome_is_stored_once_the_pool_frees(database_url: str, db: Db, tmp_path: Path) -> None:
    settings = settings_for(
        {
            "DATABASE_URL": database_url,
            "PA_HOME": str(tmp_path),
            "HEARTBEAT_INTERVAL": "3600",
            "RUN_TIMEOUT": "60",
        }
    )
    run_id = asyncio.run(_queued_run(settings))
    report, calls = asyncio.run(_process(settings, run_id))
    assert (report.claimed, report.succeeded, calls) == (1, 1, 1)
    assert db.rows("SELECT state, attempt, result FROM task_runs WHERE id = :r", r=run_id) == [
        ("succeeded", 1, f"answer for run {run_id}")
    ]
    assert db.scalar("SELECT count(*) FROM notifications WHERE run_id = :r", r=run_id) == 1
