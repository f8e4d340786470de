"""The quick reads (``pa task list``, ``pa status``) on a plain driver connection, on both
backends: the same rows, the same snapshot and the same errors as the full façade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personal_assistant.app import views
from personal_assistant.app.quick import QuickReads
from personal_assistant.config import Settings
from personal_assistant.database import plain
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.failures import UnusableDatabase
from personal_assistant.errors import ConfigurationError, NotFoundError, ValidationError
from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.tasks.page import TaskPage
from personal_assistant.workers.utils.snapshot_reads import read_snapshot, take_snapshot
from support.stack import Db, run

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 7, 30, 15, 123456, tzinfo=UTC)
DAILY = {"kind": "daily", "times": ["09:00"]}


def _settings(url: str) -> Settings:
    return Settings(DATABASE_URL=url)  # type: ignore[call-arg]


def _fill(url: str) -> tuple[int, int]:
    """Two users; the first with five tasks of two types, one paused and one with context."""

    async def go() -> tuple[int, int]:
        async with AITaskManager(_settings(url), clock=lambda: NOW) as manager:
            ada = await manager.create_user("Ada", timezone="Europe/Paris")
            bob = await manager.create_user("Bob")
            for n in range(5):
                task = await manager.create_task(
                    ada.id,
                    f"task {n}",
                    schedule=DAILY if n % 2 else {"kind": "interval", "every_seconds": 600},
                    task_type="periodic_task" if n % 2 else "reminder",
                    ai_context={"n": n, "words": ["é", "ü"]} if n == 3 else None,
                )
                if n == 4:
                    await manager.pause_task(task.id, ada.id)
            await manager.create_task(bob.id, "not Ada's", schedule=DAILY)
            return ada.id, bob.id

    return run(go())


PAGES: list[dict[str, Any]] = [
    {},
    {"limit": 2},
    {"limit": 2, "after_id": 2},
    {"status": "paused"},
    {"status": "active", "task_type": "periodic_task"},
    {"task_type": "reminder", "after_id": 1, "limit": 1},
]


@pytest.mark.parametrize("filters", PAGES)
def test_a_page_holds_what_the_manager_lists(url: str, filters: dict[str, Any]) -> None:
    ada, _ = _fill(url)

    async def listed() -> list[dict[str, object]]:
        async with AITaskManager(_settings(url)) as manager:
            return [views.task(t) for t in await manager.list_tasks(ada, **filters)]

    expected = run(listed())
    with QuickReads.open(_settings(url)) as reads:
        read = [views.task(t) for t in reads.task_page(TaskPage.checked(ada, **filters))]
    assert read == expected
    assert expected  # every page of these filters holds a task
    assert {t["user_id"] for t in read} == {ada}


def test_users_are_found_by_id_and_listed(url: str) -> None:
    ada, bob = _fill(url)
    with QuickReads.open(_settings(url)) as reads:
        assert reads.user_ids() == [ada, bob]
        assert reads.user_id(bob) == bob
        with pytest.raises(NotFoundError, match="user 99 not found") as missing:
            reads.user_id(99)
        assert missing.value.field == "user_id"
        with pytest.raises(ValidationError) as bad:
            reads.task_page(TaskPage.checked(ada, status="sleeping"))
        assert bad.value.field == "status"


def test_the_snapshot_is_the_engines_snapshot(url: str) -> None:
    """Runs in every open state, an expired lease, a finished run, two heartbeats: the plain
    read and the engine's read build the same snapshot."""
    _fill(url)
    db = Db(url)
    at = NOW.replace(tzinfo=None) if url.startswith("sqlite") else NOW

    def moment(minutes: float) -> object:
        value = at + timedelta(minutes=minutes)
        return value.strftime(plain.SQLITE_TIME) if url.startswith("sqlite") else value

    db.execute(
        "INSERT INTO worker_heartbeats (worker_id, started_at, beat_at, role, queues, config)"
        " VALUES ('w1', :a, :b, 'worker', 'ai_tasks,email_tasks', :c),"
        " ('s1', :a, :b, 'scheduler', NULL, NULL)",
        a=moment(-60),
        b=moment(-0.25),
        c='{"concurrency": 8}',
    )
    for n, (state, lease, finished) in enumerate(
        [
            ("queued", 5, None),
            ("retrying", 5, None),
            ("running", -1, None),  # its lease has expired
            ("running", 5, None),
            ("succeeded", None, -2),
        ],
        start=1,
    ):
        db.execute(
            "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at,"
            " started_at, finished_at, lease_expires_at, worker_id) VALUES (:task, :at, :state,"
            " 1, :queued, :started, :finished, :lease, :worker)",
            task=1,
            at=moment(-100 + n),
            state=state,
            queued=moment(-10 + n),
            started=moment(-3) if state == "running" else None,
            finished=None if finished is None else moment(finished),
            lease=None if lease is None else moment(lease),
            worker="w1" if state == "running" else None,
        )
    db.execute("UPDATE ai_tasks SET next_run_at = :at WHERE id = 2", at=moment(-7))
    db.close()

    async def engines() -> object:
        engine = make_async_engine(url, pooled=False)
        try:
            return await take_snapshot(engine, NOW)
        finally:
            await engine.dispose()

    expected = run(engines())
    with plain.reader(url) as reader:
        read = read_snapshot(reader, NOW)
    assert read == expected
    assert read.open_runs == {"queued": 1, "retrying": 1, "running": 2}
    assert read.expired_running == 1
    assert read.oldest_expired_lease_at == NOW - timedelta(minutes=1)
    assert read.most_overdue_at == NOW - timedelta(minutes=7)
    assert read.last_finished_at == NOW - timedelta(minutes=2)
    assert [(w.worker_id, w.running) for w in read.workers] == [("w1", 2)]
    assert [(p.worker_id, p.queues, dict(p.config)) for p in read.processes] == [
        ("s1", (), {}),
        ("w1", ("ai_tasks", "email_tasks"), {"concurrency": 8}),
    ]


def test_a_plain_reader_writes_nothing(url: str) -> None:
    _fill(url)
    with (
        pytest.raises(UnusableDatabase, match=r"read-?only") as refused,
        plain.reader(url) as reader,
    ):
        reader.rows("UPDATE users SET display_name = 'Eve'")
    assert refused.value.field == "DATABASE_URL"
    db = Db(url)
    assert db.rows("SELECT display_name FROM users ORDER BY id") == [("Ada",), ("Bob",)]
    db.close()


def test_a_missing_sqlite_file_has_no_schema_and_is_not_made(tmp_path: Path) -> None:
    target = tmp_path / "none.db"
    with (
        pytest.raises(ConfigurationError, match="has no schema: run `pa db upgrade` first"),
        QuickReads.open(_settings(f"sqlite:///{target}")),
    ):
        pass
    assert not target.exists()


def test_a_database_behind_the_newest_revision_is_refused(url: str) -> None:
    db = Db(url)
    db.execute("UPDATE alembic_version SET version_num = '0001'")
    db.close()
    with (
        pytest.raises(ConfigurationError, match="is at revision 0001, not "),
        QuickReads.open(_settings(url)),
    ):
        pass


def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = "postgresql://pa:hunter2@127.0.0.1:1/pa"
    with pytest.raises(UnusableDatabase) as away, QuickReads.open(_settings(url)):
        pass
    message = str(away.value)
    assert message.startswith(
        "DATABASE_URL: cannot read the database at postgresql://pa:****@127.0.0.1:1/pa: "
    )
    assert "hunter2" not in message
    assert away.value.field == "DATABASE_URL"
