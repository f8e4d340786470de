"""The one builder of a new ``ai_tasks`` row, and the status a schedule edit leaves."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from personal_assistant.core.schedule_kinds import Daily, Once
from personal_assistant.core.states import TaskStatus
from personal_assistant.database.models import AITask
from personal_assistant.tasks.rows import new_task, schedule_columns, status_after_edit

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
FIELDS = {
    "title": "Stand up",
    "description": "",
    "task_type": "reminder",
    "ai_context": {},
    "notification_channels": ["in_app"],
    "catch_up": "once",
    "max_retries": 3,
}


def test_a_new_row_fills_every_column_but_those_the_database_or_a_run_fills() -> None:
    first = NOW + timedelta(hours=1)
    daily = Daily(times=(time(9, 0),), timezone="Europe/Paris")
    row = new_task(FIELDS, schedule=daily, next_run_at=first, now=NOW)
    later = {"id", "user_id", "last_run_at", "status_reason"}  # the owner: where it is written
    assert set(row) == set(AITask.__table__.columns.keys()) - later
    assert row["next_run_at"] == first
    assert (row["status"], row["consecutive_failures"]) == (TaskStatus.ACTIVE, 0)
    assert row["created_at"] == row["updated_at"] == NOW
    assert (row["schedule_kind"], row["timezone"]) == ("daily", "Europe/Paris")


def test_schedule_columns_are_those_of_the_schedule() -> None:
    once = Once(at=NOW, timezone="UTC")
    columns = schedule_columns(once)
    assert columns["schedule_kind"] == "once" == columns["schedule"]["kind"]
    assert columns["timezone"] == "UTC"


def test_a_schedule_edit_revives_completes_or_leaves_the_status() -> None:
    later = NOW + timedelta(days=1)
    assert status_after_edit(TaskStatus.COMPLETED, later, ran=NOW, open_run=False) == {
        "status": TaskStatus.ACTIVE,
        "status_reason": None,
        "consecutive_failures": 0,
    }
    assert status_after_edit(TaskStatus.PAUSED, later, ran=NOW, open_run=False) == {}
    done = status_after_edit(TaskStatus.ACTIVE, None, ran=NOW, open_run=False)
    assert done["status"] == TaskStatus.COMPLETED
    assert "2026-12-03 08:00:00 UTC already ran" in done["status_reason"]
    assert status_after_edit(TaskStatus.ACTIVE, None, ran=NOW, open_run=True) == {}
    assert status_after_edit(TaskStatus.FAILED, None, ran=NOW, open_run=False) == {}
