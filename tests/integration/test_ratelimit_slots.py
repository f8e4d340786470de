"""A run the rate limit holds back gives its worker slot back: it waits as data, not in a slot.

Before, a run told to wait for a token slept in its worker slot for up to half its
``RUN_TIMEOUT``: with one user's runs throttled, every slot of a worker could be asleep, and
another user's run, which its own bucket would have let through at once, waited behind them
(0.5 s -> 430 s in the review). Now a run holds its slot at most ``HOLD_SECONDS`` for a token;
told to wait longer, it goes back to the queue for the time it was told.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personal_assistant.agents.factory import build_agent
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import BatchReport, RunProcessor
from personal_assistant.tasks.manager import AITaskManager
from support.services import REDIS_URL
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

ALICE_DEADLINE_S = 10.0  # Bob's second token is 20 s away: a held slot would make her wait that


async def _runs(settings: Settings) -> tuple[int, int, int]:
    """Two runs of Bob's and one of Alice's, queued now."""
    async with AITaskManager(settings) as manager:
        ids = []
        for name, count in (("Bob", 2), ("Alice", 1)):
            user = await manager.create_user(name)
            for n in range(count):
                task = await manager.create_task(
                    user.id, f"{name} {n}", schedule={"kind": "daily", "times": ["09:00"]}
                )
                ids.append((await manager.run_now(task.id, user.id)).id)
        return ids[0], ids[1], ids[2]


async def _scenario(settings: Settings, db: Db, bob1: int, bob2: int, alice: int) -> BatchReport:
    engine = make_async_engine(settings.database_url)
    agent = build_agent(settings)
    processor = RunProcessor(
        engine, TaskExecutor(agent, timeout=settings.run_timeout_seconds), settings, worker_id="w:1"
    )
    try:
        assert (await processor.process([bob1])).succeeded == 1  # Bob's only token
        second = asyncio.create_task(processor.process([bob2]))  # told to wait 20 s
        while db.scalar("SELECT state FROM task_runs WHERE id = :r", r=bob2) == "queued":
            await asyncio.sleep(0.02)  # claimed: it holds the process's only slot, or held it
        report = await asyncio.wait_for(processor.process([alice]), ALICE_DEADLINE_S)
        await second
        return report
    finally:
        await processor.heartbeat.stop()
        await agent.aclose()
        await engine.dispose()


def test_a_throttled_run_gives_its_slot_to_another_users_run(
    database_url: str, redis_prefix: str, db: Db, tmp_path: Path
) -> None:
    settings = settings_for(
        {
            "DATABASE_URL": database_url,
            "PA_HOME": str(tmp_path),
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": redis_prefix,
            "AGENT_USER_RATE_PER_SECOND": "0.05",  # one token per user every 20 s, burst 1
            "MAX_IN_FLIGHT": "1",  # one slot in the process
            "RUN_TIMEOUT": "60",  # before: a run could hold its slot 30 s for a token
            "HEARTBEAT_INTERVAL": "3600",
        }
    )
    bob1, bob2, alice = asyncio.run(_runs(settings))
    started = datetime.now(UTC)
    report = asyncio.run(_scenario(settings, db, bob1, bob2, alice))
    assert report.succeeded == 1
    state, attempt, retry_at = db.rows(
        "SELECT state, attempt, lease_expires_at FROM task_runs WHERE id = :r", r=bob2
    )[0]
    # Bob's second run waits as data, for about when his bucket has a token, no attempt used.
    assert (state, attempt) == ("retrying", 0)
    assert started + timedelta(seconds=15) < retry_at < started + timedelta(seconds=40)
