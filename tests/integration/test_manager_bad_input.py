"""``AITaskManager`` refuses a schedule that is no object and ids beyond the database's range.

Both used to crash (``AttributeError``; ``DataError: bigint out of range`` on PostgreSQL,
``OverflowError`` on SQLite) instead of an error naming the field (chaos scenario 9).
"""

from __future__ import annotations

from typing import Any

import pytest

from personal_assistant.config import Settings
from personal_assistant.errors import NotFoundError, ScheduleError
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, run

pytestmark = pytest.mark.integration

DAILY = {"kind": "daily", "times": ["09:00"]}
HUGE = 2**70


@pytest.mark.parametrize("schedule", [None, "daily", ["daily"], 42])
def test_a_schedule_that_is_no_object_is_refused(url: str, schedule: Any) -> None:
    manager = AITaskManager(Settings(DATABASE_URL=url))  # type: ignore[call-arg]

    async def go() -> None:
        user = await manager.create_user("Ada")
        await manager.create_task(user.id, "T", schedule=schedule)

    with pytest.raises(ScheduleError, match="must be an object") as caught:
        run(go())
    assert caught.value.field == "schedule"
    db = Db(url)
    try:
        assert db.scalar("SELECT count(*) FROM ai_tasks") == 0
    finally:
        db.close()


def test_ids_beyond_the_database_range_are_not_found(url: str) -> None:
    manager = AITaskManager(Settings(DATABASE_URL=url))  # type: ignore[call-arg]

    async def user_id() -> int:
        return (await manager.create_user("Ada")).id

    me = run(user_id())
    calls = {
        "user_id": [
            lambda: manager.get_user(HUGE),
            lambda: manager.create_task(-HUGE, "T", schedule=DAILY),
            lambda: manager.list_tasks(HUGE),
            lambda: manager.list_runs(HUGE),
            lambda: manager.list_notifications(HUGE),
        ],
        "task_id": [
            lambda: manager.get_task(HUGE, me),
            lambda: manager.run_now(HUGE, me),
            lambda: manager.list_runs(me, task_id=HUGE),
        ],
        "run_id": [lambda: manager.get_run(HUGE, me)],
    }
    for field, attempts in calls.items():
        for attempt in attempts:
            with pytest.raises(NotFoundError) as caught:
                run(attempt())
            assert caught.value.field == field
    assert run(manager.mark_notifications_read(me, [HUGE])) == 0
