"""``pa run``'s screen shows every run that finishes after it started.

The screen marked the last run id at its first poll of the database. Should that poll come
after the scheduler has written a run (queued), the run would finish with an id not above the
mark, and neither it nor its notification would ever show: possible on a loaded machine, where
the first poll waits for the database while the scheduler starts. Found while reading the
screen for a failure of ``tests/e2e/test_run_errors.py`` in the CI of 0748586 (whose cause was
the test's own: see there). The marks are now read before the worker and the scheduler start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from personal_assistant.app.assistant import Assistant
from personal_assistant.cli import processes
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, settings_for


def test_a_run_written_before_the_first_poll_is_shown_when_it_finishes(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for({"DATABASE_URL": sqlite_url, "PA_HOME": str(tmp_path)})
    marks = asyncio.run(processes._marks(settings))  # as `pa run` does, before its children

    async def queue_a_run() -> int:
        async with AITaskManager(settings) as manager:
            user = await manager.create_user("Ada")
            task = await manager.create_task(
                user.id, "Stretch", schedule={"kind": "once", "at": "2030-01-01T09:00:00+00:00"}
            )
            return (await manager.run_now(task.id, user.id)).id

    run_id = asyncio.run(queue_a_run())
    feed = processes._Feed(marks)

    async def poll() -> None:
        async with Assistant(settings) as app:
            await feed.show_new(app.system)

    asyncio.run(poll())  # the screen's first poll: the run is still queued
    assert "run " not in capsys.readouterr().out
    db = Db(sqlite_url)
    try:
        db.execute(
            "UPDATE task_runs SET state = 'succeeded', result = 'done', "
            "started_at = scheduled_for, finished_at = scheduled_for WHERE id = :id",
            id=run_id,
        )
    finally:
        db.close()
    asyncio.run(poll())
    assert f"run {run_id} succeeded (Stretch)" in capsys.readouterr().out
