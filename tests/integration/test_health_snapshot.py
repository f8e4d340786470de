"""Health read from the database: a stalled system is reported, by ``pa status`` too."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.database.engine import make_async_engine
from personal_assistant.workers.utils.health import assess
from personal_assistant.workers.utils.snapshot_reads import take_snapshot
from support.stack import Db, run

pytestmark = pytest.mark.integration


def test_stalled_queue_and_overdue_task_are_reported(database_url: str) -> None:
    db = Db(database_url)
    db.execute("INSERT INTO users (display_name, timezone, created_at) VALUES ('A', 'UTC', now())")
    db.execute(
        "INSERT INTO ai_tasks (user_id, title, description, task_type, schedule_kind, schedule,"
        " timezone, next_run_at, status, ai_context, notification_channels, catch_up,"
        " max_retries, consecutive_failures, created_at, updated_at) VALUES (1, 't', '',"
        " 'reminder', 'daily', '{\"kind\": \"daily\", \"times\": [\"09:00\"]}', 'UTC',"
        " now() - interval '10 minutes', 'active', '{}', '[\"in_app\"]', 'once', 3, 0, now(),"
        " now())"
    )
    db.execute(
        "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at,"
        " lease_expires_at) VALUES (1, now() - interval '1 hour', 'queued', 0,"
        " now() - interval '5 minutes', now() + interval '1 minute')"
    )
    db.close()

    async def snap() -> object:
        engine = make_async_engine(database_url, pooled=False)
        try:
            return await take_snapshot(engine, datetime.now(UTC))
        finally:
            await engine.dispose()

    health = assess(run(snap()))  # type: ignore[arg-type]
    assert health.snapshot.open_runs == {"queued": 1}
    assert health.snapshot.most_overdue_at is not None
    assert health.snapshot.most_overdue_at < datetime.now(UTC) - timedelta(minutes=9)
    assert len(health.problems) == 2

    result = subprocess.run(
        [sys.executable, "-m", "personal_assistant.cli.main", "status"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "is the scheduler (beat) running?" in result.stdout
