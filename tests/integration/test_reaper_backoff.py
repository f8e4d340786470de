"""A reaped run waits for its backoff like any other retry.

The reaper used to set a run whose worker vanished to ``retrying`` with
``lease_expires_at = now``: retried at once, however many attempts it had lost, while a failed
attempt waits ``RETRY_BASE * 2 ** (attempt - 1)`` (capped, with jitter).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personal_assistant.agents.offline import OfflineAgent
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import RunProcessor
from support.factories import queued_runs
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

BASE = 100.0  # RETRY_BASE_SECONDS: large, so that "at once" and "after the backoff" differ
JITTER = 0.25  # core.backoff spreads a delay by up to a quarter of itself


async def _reap(settings: Settings) -> int:
    engine = make_async_engine(settings.database_url)
    processor = RunProcessor(
        engine,
        TaskExecutor(OfflineAgent(), timeout=settings.run_timeout_seconds),
        settings,
        worker_id="reaper:1",
    )
    try:
        reaped, _ = await processor.reap()
        return reaped
    finally:
        await engine.dispose()


def test_a_reaped_run_retries_after_the_backoff_of_its_attempt(
    database_url: str, db: Db, tmp_path: Path
) -> None:
    settings = settings_for(
        {
            "DATABASE_URL": database_url,
            "PA_HOME": str(tmp_path),
            "RETRY_BASE_SECONDS": str(BASE),
            "RETRY_MAX_SECONDS": "10000",
            "MAX_RETRIES": "5",
        }
    )
    first, second = asyncio.run(queued_runs(settings, 2, owner="Ruth"))
    # Two runs whose worker vanished mid-attempt: attempts 1 and 2, leases ended a second ago.
    for run_id, attempt in ((first, 1), (second, 2)):
        db.execute(
            "UPDATE task_runs SET state = 'running', attempt = :a, worker_id = 'gone:1',"
            " started_at = now(), lease_expires_at = now() - interval '1 second' WHERE id = :r",
            a=attempt,
            r=run_id,
        )
    before = datetime.now(UTC)
    assert asyncio.run(_reap(settings)) == 2
    after = datetime.now(UTC)
    for run_id, attempt in ((first, 1), (second, 2)):
        state, retry_at, worker = db.rows(
            "SELECT state, lease_expires_at, worker_id FROM task_runs WHERE id = :r", r=run_id
        )[0]
        delay = BASE * 2 ** (attempt - 1)
        assert (state, worker) == ("retrying", None)
        assert before + timedelta(seconds=delay * (1 - JITTER)) <= retry_at
        assert retry_at <= after + timedelta(seconds=delay * (1 + JITTER))
