"""A schedule edit never leaves a task active with no run and no ``next_run_at``.

The path: ``update_task`` computed the first firing after the *editor's* clock. An edit whose
clock reads a little earlier than the scheduler's (a client host a second behind, or an edit
that read the time, then waited for the row lock the scheduler's claim held) and that states
the ``once`` time the scheduler has just run (a form saved with its schedule unchanged) set
``next_run_at`` back to that time, and reactivated the task if its run had completed it. The
next claim planned that firing again, but its run already existed (``UNIQUE (task_id,
scheduled_for)``, ``ON CONFLICT DO NOTHING``): ``next_run_at`` became NULL, no run was made,
and the task stayed ``active`` with nothing that would ever finish it.

An edit now schedules the first firing that has no run yet; when there is none, it leaves the
task to its open run, or completes it and says why.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import RunProcessor
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
AT = NOW + timedelta(minutes=1)  # the once task's time
BEHIND = timedelta(seconds=1)  # how far the editor's clock reads behind the scheduler's


class Answer:
    name = "offline"

    async def complete(self, request: AgentRequest) -> AgentReply:
        return AgentReply(text="done", model="m")

    async def aclose(self) -> None:
        return None


class Stack:
    """A manager whose clock is set by the test, a scheduler and a worker on one database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.now = NOW
        self.engine = make_async_engine(settings.database_url)
        self.manager = AITaskManager(settings, engine=self.engine, clock=lambda: self.now)
        self.scheduler = TaskScheduler(self.engine, settings, lambda run_ids: None)
        self.processor = RunProcessor(
            self.engine, TaskExecutor(Answer(), timeout=10), settings, worker_id="test:1"
        )

    async def close(self) -> None:
        await self.processor.heartbeat.stop()
        await self.engine.dispose()


def _settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(
        {"DATABASE_URL": database_url, "PA_HOME": str(tmp_path), "HEARTBEAT_INTERVAL": "3600"}
    )


def _task(db: Db, task_id: int) -> tuple[Any, ...]:
    return tuple(
        db.rows("SELECT status, next_run_at, status_reason FROM ai_tasks WHERE id = :t", t=task_id)[
            0
        ]
    )


def _open_runs(db: Db, task_id: int) -> int:
    return int(
        db.scalar(
            "SELECT count(*) FROM task_runs WHERE task_id = :t"
            " AND state IN ('queued', 'running', 'retrying')",
            t=task_id,
        )
    )


def _assert_not_stranded(db: Db, task_id: int) -> None:
    status, next_run_at, _ = _task(db, task_id)
    assert not (status == "active" and next_run_at is None and _open_runs(db, task_id) == 0), (
        "active, with no next run and no open run: nothing will ever run or finish it"
    )


def test_restating_a_once_time_that_already_ran_completes_the_task(
    database_url: str, db: Db, tmp_path: Path
) -> None:
    async def go() -> tuple[int, Any]:
        stack = Stack(_settings(database_url, tmp_path))
        try:
            user = await stack.manager.create_user("Ana")
            task = await stack.manager.create_task(
                user.id, "Call the bank", schedule={"kind": "once", "at": AT.isoformat()}
            )
            assert (await stack.scheduler.claim_due(AT)).runs == 1
            run_id = db.scalar("SELECT id FROM task_runs WHERE task_id = :t", t=task.id)
            assert (await stack.processor.process([run_id])).succeeded == 1
            assert _task(db, task.id)[0] == "completed"
            stack.now = AT - BEHIND  # the editor's clock: still before the time that ran
            edited = await stack.manager.update_task(
                task.id,
                user.id,
                title="Call the bank about the card",
                schedule={"kind": "once", "at": AT.isoformat()},
            )
            await stack.scheduler.claim_due(AT + BEHIND)
            return task.id, edited
        finally:
            await stack.close()

    task_id, edited = asyncio.run(go())
    _assert_not_stranded(db, task_id)
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=task_id) == 1
    status, next_run_at, reason = _task(db, task_id)
    assert (status, next_run_at) == ("completed", None)
    assert reason is not None and "already ran" in reason
    assert (edited.status, edited.next_run_at, edited.title) == (
        "completed",
        None,
        "Call the bank about the card",
    )


def test_restating_a_once_time_whose_run_is_open_leaves_it_to_that_run(
    database_url: str, db: Db, tmp_path: Path
) -> None:
    async def go() -> int:
        stack = Stack(_settings(database_url, tmp_path))
        try:
            user = await stack.manager.create_user("Ben")
            task = await stack.manager.create_task(
                user.id, "Water the plants", schedule={"kind": "once", "at": AT.isoformat()}
            )
            assert (await stack.scheduler.claim_due(AT)).runs == 1
            stack.now = AT - BEHIND
            await stack.manager.update_task(
                task.id, user.id, schedule={"kind": "once", "at": AT.isoformat()}
            )
            run_id = db.scalar("SELECT id FROM task_runs WHERE task_id = :t", t=task.id)
            assert (await stack.processor.process([run_id])).succeeded == 1
            await stack.scheduler.claim_due(AT + BEHIND)
            return task.id
        finally:
            await stack.close()

    task_id = asyncio.run(go())
    _assert_not_stranded(db, task_id)
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=task_id) == 1
    assert _task(db, task_id)[:2] == ("completed", None)


def test_a_new_time_after_the_run_is_scheduled(database_url: str, db: Db, tmp_path: Path) -> None:
    later = AT + timedelta(hours=1)

    async def go() -> int:
        stack = Stack(_settings(database_url, tmp_path))
        try:
            user = await stack.manager.create_user("Cy")
            task = await stack.manager.create_task(
                user.id, "Stretch", schedule={"kind": "once", "at": AT.isoformat()}
            )
            assert (await stack.scheduler.claim_due(AT)).runs == 1
            run_id = db.scalar("SELECT id FROM task_runs WHERE task_id = :t", t=task.id)
            assert (await stack.processor.process([run_id])).succeeded == 1
            stack.now = AT - BEHIND
            await stack.manager.update_task(
                task.id, user.id, schedule={"kind": "once", "at": later.isoformat()}
            )
            assert _task(db, task.id)[:3] == ("active", later, None)
            assert (await stack.scheduler.claim_due(later)).runs == 1
            return task.id
        finally:
            await stack.close()

    task_id = asyncio.run(go())
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=task_id) == 2
