"""Any number of schedulers at once: exactly one run per due firing, every run sent once."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import redis

from support.celery_messages import message_body
from support.processes import ProcessGroup, wait_until
from support.services import REDIS_URL
from support.stack import Db

pytestmark = pytest.mark.integration

TASKS = 1000
SCRIPT = Path(__file__).parents[1] / "support" / "scheduler_loop.py"


def _seed_due_tasks(db: Db, count: int) -> None:
    db.execute(
        "INSERT INTO users (display_name, timezone, created_at) VALUES ('Load', 'UTC', now())"
    )
    db.execute(
        """
        INSERT INTO ai_tasks (user_id, title, description, task_type, schedule_kind, schedule,
            timezone, next_run_at, status, ai_context, notification_channels, catch_up,
            max_retries, consecutive_failures, created_at, updated_at)
        SELECT 1, 'task ' || g, '', 'reminder', 'daily',
            '{"kind": "daily", "times": ["09:00"], "timezone": "UTC"}', 'UTC',
            now() - interval '1 second', 'active', '{}', '["in_app"]', 'once', 3, 0,
            now(), now()
        FROM generate_series(1, :n) AS g
        """,
        n=count,
    )


def _queued_run_ids(client: redis.Redis, key: str) -> list[int]:
    ids: list[int] = []
    for raw in client.lrange(key, 0, -1):
        args, _kwargs, _embed = message_body(json.loads(raw))
        ids.extend(args[0])
    return ids


def test_three_schedulers_claim_each_due_task_once(
    database_url: str, stack_env: dict[str, str], processes: ProcessGroup, redis_prefix: str
) -> None:
    db = Db(database_url)
    _seed_due_tasks(db, TASKS)
    # No worker consumes here: a long dispatch lease keeps queued runs from being re-sent. One
    # user owns every task: no per-user cap (test_fair_dispatch.py), so all are sent at once.
    env = {
        **stack_env,
        "SCHEDULER_BATCH": "50",
        "RUNS_PER_MESSAGE": "20",
        "DISPATCH_LEASE": "600",
        "USER_DISPATCH_LIMIT": "0",
    }
    procs = [
        processes.start(f"scheduler{i}", [sys.executable, str(SCRIPT), "2"], env) for i in range(3)
    ]
    wait_until(
        lambda: all(p.poll() is not None for p in procs),
        timeout=60,
        message="the schedulers to finish",
    )
    assert [p.returncode for p in procs] == [0, 0, 0]
    claimed = [
        int(re.findall(r"claimed=(\d+)", processes.log(f"scheduler{i}"))[-1]) for i in range(3)
    ]
    assert sum(claimed) == TASKS

    assert db.scalar("SELECT count(*) FROM task_runs") == TASKS
    assert db.scalar("SELECT count(DISTINCT task_id) FROM task_runs") == TASKS
    assert db.scalar("SELECT count(*) FROM ai_tasks WHERE next_run_at <= now()") == 0

    client = redis.Redis.from_url(REDIS_URL)
    sent = _queued_run_ids(client, f"{redis_prefix}ai_tasks")
    client.close()
    assert len(sent) == TASKS
    assert set(sent) == {r[0] for r in db.rows("SELECT id FROM task_runs")}
    db.close()
