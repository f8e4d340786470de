"""Waiting for the agent's rate limit is not a failed attempt.

When the shared token bucket (Redis) asked a run to wait longer than it may
(``RUN_TIMEOUT / 2``), the run failed an attempt: a busy limiter used up a healthy task's
retries and paused it after ``PAUSE_AFTER_FAILURES``. A run the limiter holds back now goes
back to the queue for when the bucket has a token again (``retrying``, retry time = the wait),
its ``attempt`` counting only real tries, and its task's ``consecutive_failures`` untouched.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.agents.factory import build_limiter
from personal_assistant.agents.ratelimit import RateLimitedAgent
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import BatchReport, RunProcessor
from personal_assistant.tasks.manager import AITaskManager
from support.services import REDIS_URL
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

RATE = 0.01  # tokens per second, burst 1: once taken, the next token is 100 s away


class Counting:
    """An agent that answers and counts its calls."""

    name = "offline"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: AgentRequest) -> AgentReply:
        self.calls += 1
        return AgentReply(text=f"answer for run {request.run_id}", model="m")

    async def aclose(self) -> None:
        return None


async def _setup(settings: Settings) -> tuple[int, int, int]:
    """A daily task with no retries, paused after one failed run, and a run queued now."""
    async with AITaskManager(settings) as manager:
        user = await manager.create_user("Lena")
        task = await manager.create_task(
            user.id, "Digest", schedule={"kind": "daily", "times": ["09:00"]}, max_retries=0
        )
        run = await manager.run_now(task.id, user.id)
        return user.id, task.id, run.id


async def _empty_the_bucket(settings: Settings, user_id: int) -> None:
    limiter = build_limiter(settings)
    assert limiter is not None
    try:
        assert await limiter.try_take(user_id) == 0.0  # the only token of the burst
    finally:
        await limiter.aclose()


async def _process(settings: Settings, run_id: int, agent: Counting) -> BatchReport:
    engine = make_async_engine(settings.database_url)
    limiter = build_limiter(settings)
    assert limiter is not None
    limited = RateLimitedAgent(agent, limiter, max_wait=settings.run_timeout_seconds / 2)
    processor = RunProcessor(
        engine,
        TaskExecutor(limited, timeout=settings.run_timeout_seconds),
        settings,
        worker_id="test:1",
    )
    try:
        return await processor.process([run_id])
    finally:
        await processor.heartbeat.stop()
        await limited.aclose()
        await engine.dispose()


def test_a_run_held_back_by_the_rate_limit_keeps_its_attempts(
    database_url: str, redis_prefix: str, db: Db, tmp_path: Path
) -> None:
    settings = settings_for(
        {
            "DATABASE_URL": database_url,
            "PA_HOME": str(tmp_path),
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": redis_prefix,
            "AGENT_RATE_PER_SECOND": str(RATE),
            "RUN_TIMEOUT": "2",  # a run may wait 1 s for a token
            "PAUSE_AFTER_FAILURES": "1",
            "HEARTBEAT_INTERVAL": "3600",
        }
    )
    user_id, task_id, run_id = asyncio.run(_setup(settings))
    asyncio.run(_empty_the_bucket(settings, user_id))
    agent = Counting()

    def run_row() -> tuple[Any, ...]:
        return tuple(
            db.rows(
                "SELECT state, attempt, lease_expires_at FROM task_runs WHERE id = :r", r=run_id
            )[0]
        )

    for _ in range(3):  # held back three times: no attempt made, none counted
        before = datetime.now(UTC)
        asyncio.run(_process(settings, run_id, agent))
        state, attempt, retry_at = run_row()
        assert (state, attempt) == ("retrying", 0)
        assert retry_at is not None and retry_at > before + timedelta(seconds=10)
        assert db.rows(
            "SELECT status, consecutive_failures FROM ai_tasks WHERE id = :t", t=task_id
        ) == [("active", 0)]
        db.execute("UPDATE task_runs SET state = 'queued' WHERE id = :r", r=run_id)  # dispatched

    assert agent.calls == 0
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(f"{redis_prefix}ratelimit:agent:global")  # the bucket refilled
    finally:
        client.close()
    report = asyncio.run(_process(settings, run_id, agent))
    assert (report.succeeded, agent.calls) == (1, 1)
    assert run_row()[:2] == ("succeeded", 1)
    assert db.rows(
        "SELECT status, consecutive_failures FROM ai_tasks WHERE id = :t", t=task_id
    ) == [("active", 0)]
