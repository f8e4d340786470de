"""A claimed run carries its task's last three answers, newest first, on both databases.

On PostgreSQL the claim, the load and the history are one statement (``claims._PG_CLAIM``); on
SQLite three. Both give the agent the same: the task's last ``PREVIOUS_RESULTS`` succeeded
runs, newest first, nothing from failed runs or other tasks, and no history for a reminder.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs import claims
from support.factories import queued_runs
from support.stack import settings_for

pytestmark = pytest.mark.integration

DAY = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: (days after DAY, state, result) of the task's earlier runs.
EARLIER = [
    (0, "succeeded", "first"),
    (1, "succeeded", "second"),
    (2, "failed", None),
    (3, "succeeded", None),  # an answer stored empty
    (4, "succeeded", "fourth"),
    (5, "failed", None),
]


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest) -> str:
    name = "database_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(name))


def _claim(url: str, tmp_path: Path, task_type: str) -> claims.ClaimedRun:
    settings = settings_for({"DATABASE_URL": url, "PA_HOME": str(tmp_path)})
    [run_id, other_run] = asyncio.run(queued_runs(settings, 2))

    async def main() -> claims.ClaimedRun:
        engine = make_async_engine(url)
        try:
            async with engine.begin() as conn:
                task_id, other_task, user_id = (
                    await conn.execute(
                        text(
                            "SELECT r.task_id, o.task_id, r.user_id FROM task_runs r, task_runs o"
                            " WHERE r.id = :run AND o.id = :other"
                        ),
                        {"run": run_id, "other": other_run},
                    )
                ).one()
                await conn.execute(
                    text("UPDATE ai_tasks SET task_type = :type WHERE id = :id"),
                    {"type": task_type, "id": task_id},
                )
                rows = [(task_id, days, state, result) for days, state, result in EARLIER]
                rows.append((other_task, 6, "succeeded", "another task's"))
                for task, days, state, result in rows:
                    await conn.execute(
                        text(
                            "INSERT INTO task_runs (task_id, user_id, scheduled_for, state, "
                            "attempt, queued_at, finished_at, result) VALUES (:task, :user, "
                            ":at, :state, 1, :at, :at, :result)"
                        ),
                        {
                            "task": task,
                            "user": user_id,
                            "at": DAY + timedelta(days=days),
                            "state": state,
                            "result": result,
                        },
                    )
            async with engine.begin() as conn:
                [claimed] = await claims.claim(
                    conn, [run_id], worker_id="w", now=datetime.now(UTC), lease=timedelta(minutes=1)
                )
            return claimed
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_a_claimed_run_carries_its_task_s_last_three_answers_newest_first(
    url: str, tmp_path: Path
) -> None:
    claimed = _claim(url, tmp_path, "automated_task")
    history = [(p.scheduled_for, p.result) for p in claimed.request.previous_results]
    assert history == [
        (DAY + timedelta(days=4), "fourth"),
        (DAY + timedelta(days=3), ""),
        (DAY + timedelta(days=1), "second"),
    ]
    assert claimed.request.attempt == 1
    assert claimed.channels == ("in_app",)


def test_a_claimed_reminder_carries_no_history(url: str, tmp_path: Path) -> None:
    claimed = _claim(url, tmp_path, "reminder")
    assert claimed.request.previous_results == ()
    assert claimed.request.task_type == "reminder"
