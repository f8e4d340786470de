"""``AITaskManager`` on both backends: operations, ownership, and bad input leaving no rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personal_assistant.config import Settings
from personal_assistant.errors import ConflictError, NotFoundError, ValidationError
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, run

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
DAILY = {"kind": "daily", "times": ["09:00"]}


@pytest.fixture
def manager(url: str) -> Iterator[AITaskManager]:
    settings = Settings(DATABASE_URL=url)  # type: ignore[call-arg]
    yield AITaskManager(settings, clock=lambda: NOW)


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


def test_create_uses_the_owners_zone_and_computes_the_next_run(manager: AITaskManager) -> None:
    async def go() -> Any:
        user = await manager.create_user("Ada", timezone="Europe/Paris")
        task = await manager.create_task(user.id, "Stand-up", schedule=DAILY)
        return task, await manager.get_task(task.id, user.id)

    created, loaded = run(go())
    assert loaded.timezone == "Europe/Paris"
    assert loaded.next_run_at == datetime(2026, 11, 29, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert loaded.schedule == {"kind": "daily", "times": ["09:00"], "timezone": "Europe/Paris"}
    assert (loaded.status, loaded.notification_channels) == ("active", ["in_app"])
    assert created.id == loaded.id


def test_lifecycle_pause_resume_update_run_now_delete(manager: AITaskManager, db: Db) -> None:
    async def go() -> None:
        user = await manager.create_user("Bob")
        task = await manager.create_task(user.id, "Plants", schedule=DAILY)
        paused = await manager.pause_task(task.id, user.id)
        assert paused.status == "paused"
        with pytest.raises(ConflictError):
            await manager.pause_task(task.id, user.id)
        resumed = await manager.resume_task(task.id, user.id)
        assert resumed.status == "active" and resumed.next_run_at is not None
        updated = await manager.update_task(
            task.id,
            user.id,
            title="Balcony plants",
            schedule={"kind": "cron", "expression": "0 7 * * *"},
        )
        assert updated.title == "Balcony plants"
        assert updated.next_run_at == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
        queued = await manager.run_now(task.id, user.id)
        assert (queued.state, queued.scheduled_for, queued.lease_expires_at) == ("queued", NOW, NOW)
        runs = await manager.list_runs(user.id, task_id=task.id)
        assert [r.id for r in runs] == [queued.id]
        assert [t.id for t in await manager.list_tasks(user.id, status="active")] == [task.id]
        await manager.delete_task(task.id, user.id)
        assert await manager.list_tasks(user.id) == []

    run(go())
    assert db.scalar("SELECT count(*) FROM task_runs") == 0


def test_someone_elses_task_is_not_found(manager: AITaskManager) -> None:
    async def go() -> None:
        owner = await manager.create_user("Owner")
        other = await manager.create_user("Other")
        task = await manager.create_task(owner.id, "Private", schedule=DAILY)
        for call in (
            manager.get_task(task.id, other.id),
            manager.pause_task(task.id, other.id),
            manager.delete_task(task.id, other.id),
            manager.run_now(task.id, other.id),
            manager.update_task(task.id, other.id, title="mine now"),
            manager.list_runs(other.id, task_id=task.id),
        ):
            with pytest.raises(NotFoundError) as err:
                await call
            assert err.value.field == "task_id"
        assert (await manager.get_task(task.id, owner.id)).title == "Private"

    run(go())


BAD_INPUT = [
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": "bell\x07"}, "title"),
    ({"description": "y" * 10_001}, "description"),
    ({"task_type": "shell"}, "task_type"),
    ({"notification_channels": ["pigeon"]}, "notification_channels"),
    ({"catch_up": "sometimes"}, "catch_up"),
    ({"max_retries": 99}, "max_retries"),
    ({"ai_context": {"x": object()}}, "ai_context"),
    ({"schedule": {"kind": "cron", "expression": "61 * * * *"}}, "schedule.expression"),
    (
        {"schedule": {"kind": "daily", "times": ["09:00"], "timezone": "Mars/Olympus"}},
        "schedule.timezone",
    ),
    ({"schedule": {"kind": "weekly", "weekdays": [], "times": ["09:00"]}}, "schedule.weekdays"),
    ({"schedule": {"kind": "once", "at": "2020-01-01T09:00"}}, "schedule.at"),
    (
        {
            "schedule": {
                "kind": "daily",
                "times": ["09:00"],
                "start": "2027-01-02T00:00",
                "end": "2027-01-01T00:00",
            }
        },
        "schedule.end",
    ),
]


@pytest.mark.parametrize(("change", "field"), BAD_INPUT)
def test_bad_input_names_the_field_and_writes_nothing(
    manager: AITaskManager, db: Db, change: dict[str, Any], field: str
) -> None:
    async def go() -> None:
        user = await manager.create_user("Eve")
        fields: dict[str, Any] = {"title": "ok", "schedule": DAILY, **change}
        title = fields.pop("title")
        with pytest.raises(ValidationError) as err:
            await manager.create_task(user.id, title, **fields)
        assert err.value.field == field, err.value

    run(go())
    assert db.scalar("SELECT count(*) FROM ai_tasks") == 0


def test_missing_user_and_bad_user_fields(manager: AITaskManager, db: Db) -> None:
    async def go() -> None:
        with pytest.raises(NotFoundError) as err:
            await manager.create_task(404, "ghost", schedule=DAILY)
        assert err.value.field == "user_id"
        for kwargs, field in (
            ({"timezone": "Nowhere/Land"}, "timezone"),
            ({"email": "not-an-email"}, "email"),
            ({"phone": "call me"}, "phone"),
        ):
            with pytest.raises(ValidationError) as verr:
                await manager.create_user("Zed", **kwargs)
            assert verr.value.field == field

    run(go())
    assert db.scalar("SELECT count(*) FROM users") == 0


def test_interval_is_anchored_at_creation(manager: AITaskManager) -> None:
    async def go() -> Any:
        user = await manager.create_user("Ivy")
        return await manager.create_task(
            user.id, "Stretch", schedule={"kind": "interval", "every": "90m"}
        )

    task = run(go())
    assert task.next_run_at == NOW + timedelta(minutes=90)
